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
from datetime import datetime, timezone

from rich import box
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

PIPED_WIDTH = 100  # the width used when stdout is not a terminal and $COLUMNS is not set
MISSING = "-"
SHORT_HEX = 12  # what docker shows of an image ID


def make_console():
    """A console sized to the terminal, or ``$COLUMNS`` / 100 columns when piped (rich says 80)."""
    stdout = sys.stdout
    if stdout.isatty():
        return Console(file=stdout, highlight=False)
    try:
        width = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        width = PIPED_WIDTH
    return Console(file=stdout, width=max(width, 40), highlight=False, soft_wrap=False)


def emit(console, renderable):
    """Print; when piped, without the blanks rich pads each table line with up to the full width."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def print_json(data):
    """The raw RPC result, stable for scripts: sorted keys, two-space indent, one trailing newline."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


# -- values ---------------------------------------------------------------------------------------

def text(value):
    return MISSING if value is None or value == "" else str(value)


def human_size(size):
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


def size_detail(size):
    if size is None or size == "" or int(size) < 1024:
        return human_size(size)
    return f"{human_size(size)} ({int(size):,} bytes)"


def short_digest(digest):
    """``sha256:<64 hex>`` → ``sha256:<12 hex>``, enough to tell versions apart in a table."""
    if not digest:
        return MISSING
    algorithm, _, hexpart = str(digest).partition(":")
    return f"{algorithm}:{hexpart[:SHORT_HEX]}" if hexpart else str(digest)[:SHORT_HEX]


def short_id(image_id):
    """An image ID as ``docker images`` shows it: 12 hex digits, no algorithm."""
    if not image_id:
        return MISSING
    return str(image_id).partition(":")[2][:SHORT_HEX] or str(image_id)[:SHORT_HEX]


def _parse_time(value):
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:  # the services store UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def time_short(value):
    """``2024-05-01T12:34:56.78+00:00`` → ``2024-05-01 12:34`` (UTC) for a table cell."""
    if not value:
        return MISSING
    moment = _parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M") if moment else str(value)


def time_long(value):
    if not value:
        return MISSING
    moment = _parse_time(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else str(value)


def yes_no(value):
    return MISSING if value is None else ("yes" if value else "no")


def joined(values):
    return ", ".join(str(v) for v in values) if values else MISSING


# -- tables ---------------------------------------------------------------------------------------

def _plain_table(*headers):
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", padding=(0, 1))
    for header in headers:
        table.add_column(header.rstrip(">"), no_wrap=True, justify="right" if header.endswith(">") else "left")
    return table


def fitted_table(console, headers, rows, flexible=None, wrap=False):
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
        fixed = sum(
            max([len(names[i])] + [len(row[i]) for row in cells])
            for i in range(len(names)) if i != index)
        flex_width = max(console.width - fixed - gap * (len(names) - 1), len(flexible), 10)
    table = _plain_table(*headers)
    if flexible is not None:
        column = table.columns[names.index(flexible)]
        column.max_width = flex_width
        if wrap:
            column.no_wrap, column.overflow = False, "fold"
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    return table


def page_footer(result, noun):
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


def library_table(console, result):
    rows = [
        (repo.get("name"), repo.get("description"), repo.get("latest_tag"), repo.get("tag_count"),
         repo.get("pull_command"))
        for repo in result.get("items") or []
    ]
    return fitted_table(
        console, ["NAME", "DESCRIPTION", "LATEST", "TAGS>", "PULL COMMAND"], rows, flexible="DESCRIPTION")


def repository_kind(repo):
    if repo.get("is_ownbase"):
        return "custom base"
    return "public" if repo.get("is_public") else "private"


def repositories_table(console, result):
    rows = [
        (repo.get("repository"), repository_kind(repo), repo.get("tag_count"), repo.get("latest_tag"),
         time_short(repo.get("updated_at")), repo.get("description"))
        for repo in result.get("items") or []
    ]
    return fitted_table(
        console, ["REPOSITORY", "KIND", "TAGS>", "LATEST", "UPDATED", "DESCRIPTION"], rows,
        flexible="DESCRIPTION")


def tags_table(console, result):
    rows = [
        (tag.get("tag"), short_digest(tag.get("digest")), short_id(tag.get("image_id")),
         human_size(tag.get("size")), time_short(tag.get("created")), time_short(tag.get("pushed_at")),
         tag.get("creator"))
        for tag in result.get("items") or []
    ]
    return fitted_table(
        console, ["TAG", "DIGEST", "IMAGE ID", "SIZE>", "CREATED", "PUSHED", "CREATOR"], rows,
        flexible="CREATOR")


def set_aside_table(console, result):
    rows = [
        (event.get("id"), time_short(event.get("at")), event.get("source"), event.get("action"),
         event.get("repository"), event.get("reason"))
        for event in result.get("items") or []
    ]
    return fitted_table(
        console, ["ID", "AT", "SOURCE", "ACTION", "REPOSITORY", "REASON"], rows, flexible="REASON", wrap=True)


# -- one object -----------------------------------------------------------------------------------

def key_value_panel(title, pairs, expand=False):
    """A bordered panel of ``key  value`` lines; values are shown in full, wrapped if need be."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in pairs:
        grid.add_row(Text(key), value if isinstance(value, (Text, Table)) else Text(text(value)))
    return Panel(grid, title=Text(title), title_align="left", box=box.ROUNDED, expand=expand)


def repository_view(repo):
    overview = repo.get("overview")
    with_overview = bool(repo.get("is_public") or overview)
    panel = key_value_panel(repo.get("repository") or f"{repo.get('namespace')}/{repo.get('name')}", [
        ("Description", repo.get("description")),
        ("Visibility", "public library" if repo.get("is_public") else "private"),
        ("Custom base", yes_no(repo.get("is_ownbase"))),
        ("Tags", repo.get("tag_count")),
        ("Latest", repo.get("latest_tag")),
        ("Pull", repo.get("pull_command")),
        ("Updated", time_long(repo.get("updated_at"))),
    ], expand=with_overview)  # as wide as the overview below it
    if with_overview:
        body = Markdown(overview) if overview else Text("(no overview)", style="dim")
        return Group(panel, Panel(body, title="Overview", title_align="left", box=box.ROUNDED))
    return panel


def platform_name(platform):
    if not isinstance(platform, dict):
        return str(platform)
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(p) for p in parts if p)


def platforms_text(platforms):
    return joined([platform_name(p) for p in platforms]) if platforms else MISSING


def layers_table(layers):
    """The image's layer digests, in full; ``None`` when there are none (a multi-arch index)."""
    if not layers:
        return None
    table = _plain_table("#>", "LAYER DIGEST")
    for number, digest in enumerate(layers, 1):
        table.add_row(Text(str(number)), Text(text(digest)))
    return table


def platforms_table(platforms):
    """The per-platform manifests of a multi-arch image, full digests; ``None`` for a single image."""
    if not platforms:
        return None
    table = _plain_table("PLATFORM", "MANIFEST DIGEST", "SIZE>")
    for platform in platforms:
        table.add_row(Text(platform_name(platform)), Text(text(platform.get("digest"))),
                      Text(human_size(platform.get("size"))))
    return table


def tag_view(tag):
    platform = platform_name(tag)
    panel = key_value_panel(f"{tag.get('repository')}:{tag.get('tag')}", [
        ("Digest", tag.get("digest")),
        ("Image ID", tag.get("image_id")),
        ("Created", time_long(tag.get("created"))),
        ("Creator", tag.get("creator")),
        ("Pushed", time_long(tag.get("pushed_at"))),
        ("Size", size_detail(tag.get("size"))),
        ("Media type", tag.get("media_type")),
        ("Platform", platform),
        ("Platforms", platforms_text(tag.get("platforms"))),
        ("Layers", len(tag.get("layers") or []) or None),
        ("Other tags", joined(tag.get("other_tags"))),
        ("Pull", tag.get("pull_command")),
    ])
    tables = [platforms_table(tag.get("platforms")), layers_table(tag.get("layers"))]
    return Group(panel, *(part for t in tables if t is not None for part in (Text(""), t)))


def reference_view(reference, parsed):
    return key_value_panel(reference, [
        ("Registry", parsed.get("registry")),
        ("Namespace", parsed.get("namespace")),
        ("Name", parsed.get("name")),
        ("Tag", parsed.get("tag")),
        ("Digest", parsed.get("digest")),
        ("Public", yes_no(parsed.get("is_public"))),
        ("Custom base", yes_no(parsed.get("is_ownbase"))),
    ])
