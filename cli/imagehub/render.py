"""How RPC results look on a terminal: tables for lists, key/value panels for one object.

Tables are drawn without borders, headers in capitals and one line per row (like ``docker
images``), so they stay readable when piped into ``grep`` or ``awk``; one column per table (a
description or a reason) gives way when the terminal is narrow, and never the pull command.
Every value is printed as plain text (``rich.text.Text``): a description containing ``[red]`` is
shown as written, not taken as markup.
"""

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

PIPED_WIDTH = 100  # the width used when stdout is not a terminal and $COLUMNS is not set
MISSING = "-"
SHORT_HEX = 12  # what docker shows of an image ID


def make_console() -> Console:
    """A console sized to the terminal, or ``$COLUMNS`` / 100 columns when piped (rich says 80)."""
    stdout = sys.stdout
    if stdout.isatty():
        return Console(file=stdout, highlight=False)
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        width = PIPED_WIDTH
    return Console(file=stdout, width=max(width, 40), highlight=False, soft_wrap=False)


def emit(console: Console, renderable: RenderableType) -> None:
    """Print; when piped, without the blanks rich pads each table line with up to the full width."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_json(data: Any) -> None:
    """The raw RPC result, stable for scripts: sorted keys, two-space indent, one trailing newline."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


# -- values ---------------------------------------------------------------------------------------


def text(value: object) -> str:
    return MISSING if value is None or value == "" else str(value)


def human_size(size: int | str | None) -> str:  # type: ignore[return]  # the loop always returns, at TiB
    """``1536`` → ``1.5 KiB``: binary units, as the registry stores bytes."""
    if size is None or size == "":
        return MISSING
    size = int(size)
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}"


def size_detail(size: int | str | None) -> str:
    if size is None or size == "" or int(size) < 1024:
        return human_size(size)
    return f"{human_size(size)} ({int(size):,} bytes)"


def short_digest(digest: object) -> str:
    """``sha256:<64 hex>`` → ``sha256:<12 hex>``, enough to tell versions apart in a table."""
    if not digest:
        return MISSING
    algorithm, _, hexpart = str(digest).partition(":")
    return f"{algorithm}:{hexpart[:SHORT_HEX]}" if hexpart else str(digest)[:SHORT_HEX]


def short_id(image_id: object) -> str:
    """An image ID as ``docker images`` shows it: 12 hex digits, no algorithm."""
    if not image_id:
        return MISSING
    return str(image_id).partition(":")[2][:SHORT_HEX] or str(image_id)[:SHORT_HEX]


def parse_time(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:  # the services store UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def time_short(value: object) -> str:
    """``2024-05-01T12:34:56.78+00:00`` → ``2024-05-01 12:34`` (UTC) for a table cell."""
    if not value:
        return MISSING
    moment = parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M") if moment else str(value)


def time_long(value: object) -> str:
    if not value:
        return MISSING
    moment = parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else str(value)


def yes_no(value: object) -> str:
    return MISSING if value is None else ("yes" if value else "no")


def joined(values: Iterable[object] | None) -> str:
    return ", ".join(str(v) for v in values) if values else MISSING


# -- tables ---------------------------------------------------------------------------------------


def plain_table(*headers: str) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 1))
    for header in headers:
        table.add_column(header.rstrip(">"), no_wrap=True, justify="right" if header.endswith(">") else "left")
    return table


def fitted_table(
    console: Console,
    headers: Sequence[str],
    rows: Iterable[Iterable[object]],
    flexible: str | None = None,
    wrap: bool = False,
) -> Table:
    """A borderless table in which only column ``flexible`` gives way to fit the width: shortened
    with … or, with ``wrap``, wrapped onto more lines (for text that must be read in full).

    Rich would otherwise squeeze every column, pull commands and digests included, or wrap rows
    onto several lines. ``headers`` name the columns; a header ending in ``>`` is right-aligned.
    """
    names = [h.rstrip(">") for h in headers]
    cells = [[text(cell) for cell in row] for row in rows]
    gap = 2  # padding (0, 1) between neighbours, none at the edges
    flex_width = None
    if flexible is not None:
        index = names.index(flexible)
        fixed = sum(max([len(names[i])] + [len(row[i]) for row in cells]) for i in range(len(names)) if i != index)
        flex_width = max(console.width - fixed - gap * (len(names) - 1), len(flexible), 10)
    table = plain_table(*headers)
    if flexible is not None:
        column = table.columns[names.index(flexible)]
        column.max_width = flex_width
        if wrap:
            column.no_wrap, column.overflow = False, "fold"
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    return table


def page_footer(result: Mapping[str, Any], noun: str) -> str | None:
    """``3 of 120 repositories, page 1 of 3 (--page 2 for more)``; ``None`` when the list is empty."""
    items, total = result.get("items") or [], result.get("total", 0)
    if not items:
        return None
    page, page_size = result.get("page", 1), result.get("page_size") or len(items)
    pages = max(1, -(-total // page_size))
    footer = f"{len(items)} of {total} {noun}, page {page} of {pages}"
    if page < pages:
        footer += f" (--page {page + 1} for more)"
    return footer


# -- one object -----------------------------------------------------------------------------------


def key_value_panel(title: str, pairs: Iterable[tuple[str, object]], expand: bool = False) -> Panel:
    """A bordered panel of ``key  value`` lines; values are shown in full, wrapped if need be."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(Text(key), value if isinstance(value, (Text, Table)) else Text(text(value)))
    return Panel(grid, title=Text(title), title_align="left", box=box.ROUNDED, expand=expand)
