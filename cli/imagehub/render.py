"""How RPC results look on a terminal: tables for lists, key/value panels for one object.

Tables are drawn without borders, headers in capitals and one line per row (like ``docker
images``), so they stay readable when piped into ``grep`` or ``awk``; one column per table (a
description or a reason) gives way when the terminal is narrow, and never the pull command.
Every value is printed as plain text (``rich.text.Text``): a description containing ``[red]`` is
shown as written, not taken as markup.
"""

import json
import os
import shlex
import sys
from datetime import UTC, datetime

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
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


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
        fixed = sum(max([len(names[i])] + [len(row[i]) for row in cells]) for i in range(len(names)) if i != index)
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
        (
            repo.get("name"),
            repo.get("description"),
            repo.get("latest_tag"),
            repo.get("tag_count"),
            repo.get("pull_command"),
        )
        for repo in result.get("items") or []
    ]
    return fitted_table(
        console, ["NAME", "DESCRIPTION", "LATEST", "TAGS>", "PULL COMMAND"], rows, flexible="DESCRIPTION"
    )


def repository_kind(repo):
    if repo.get("is_ownbase"):
        return "custom base"
    return "public" if repo.get("is_public") else "private"


def repositories_table(console, result):
    rows = [
        (
            repo.get("repository"),
            repository_kind(repo),
            repo.get("tag_count"),
            repo.get("latest_tag"),
            time_short(repo.get("updated_at")),
            repo.get("description"),
        )
        for repo in result.get("items") or []
    ]
    return fitted_table(
        console, ["REPOSITORY", "KIND", "TAGS>", "LATEST", "UPDATED", "DESCRIPTION"], rows, flexible="DESCRIPTION"
    )


def tags_table(console, result):
    rows = [
        (
            tag.get("tag"),
            short_digest(tag.get("digest")),
            short_id(tag.get("image_id")),
            human_size(tag.get("size")),
            time_short(tag.get("created")),
            time_short(tag.get("pushed_at")),
            tag.get("creator"),
        )
        for tag in result.get("items") or []
    ]
    return fitted_table(
        console, ["TAG", "DIGEST", "IMAGE ID", "SIZE>", "CREATED", "PUSHED", "CREATOR"], rows, flexible="CREATOR"
    )


def set_aside_table(console, result):
    rows = [
        (
            event.get("id"),
            time_short(event.get("at")),
            event.get("source"),
            event.get("action"),
            event.get("repository"),
            event.get("reason"),
        )
        for event in result.get("items") or []
    ]
    return fitted_table(
        console, ["ID", "AT", "SOURCE", "ACTION", "REPOSITORY", "REASON"], rows, flexible="REASON", wrap=True
    )


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
    panel = key_value_panel(
        repo.get("repository") or f"{repo.get('namespace')}/{repo.get('name')}",
        [
            ("Description", repo.get("description")),
            ("Visibility", "public library" if repo.get("is_public") else "private"),
            ("Custom base", yes_no(repo.get("is_ownbase"))),
            ("Tags", repo.get("tag_count")),
            ("Latest", repo.get("latest_tag")),
            ("Pull", repo.get("pull_command")),
            ("Updated", time_long(repo.get("updated_at"))),
        ],
        expand=with_overview,
    )  # as wide as the overview below it
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
        table.add_row(
            Text(platform_name(platform)), Text(text(platform.get("digest"))), Text(human_size(platform.get("size")))
        )
    return table


def tag_view(tag):
    platform = platform_name(tag)
    panel = key_value_panel(
        f"{tag.get('repository')}:{tag.get('tag')}",
        [
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
        ],
    )
    tables = [platforms_table(tag.get("platforms")), layers_table(tag.get("layers"))]
    return Group(panel, *(part for t in tables if t is not None for part in (Text(""), t)))


def reference_view(reference, parsed):
    return key_value_panel(
        reference,
        [
            ("Registry", parsed.get("registry")),
            ("Namespace", parsed.get("namespace")),
            ("Name", parsed.get("name")),
            ("Tag", parsed.get("tag")),
            ("Digest", parsed.get("digest")),
            ("Public", yes_no(parsed.get("is_public"))),
            ("Custom base", yes_no(parsed.get("is_ownbase"))),
        ],
    )


# -- deployments ----------------------------------------------------------------------------------

SHORT_UUID = 8  # the first group of a deployment's UUID: what `imagehub deployments` shows


def short_uuid(value):
    return str(value)[:SHORT_UUID] if value else MISSING


def number(value):
    """``30.0`` → ``30``, ``0.25`` → ``0.25``."""
    return MISSING if value is None else f"{float(value):g}"


def free_of_total(free, total, unit):
    return f"{unit(free)}/{unit(total)}"


def running_count(deployment):
    """Instances whose health check passed (state ``running``)."""
    return sum(1 for i in deployment.get("instances") or [] if i.get("state") == "running")


def replicas_text(deployment):
    """``running/desired``."""
    return f"{running_count(deployment)}/{text(deployment.get('replicas'))}"


def progress_line(elapsed, deployment):
    """``   2.5s  starting`` (``: reason`` when there is one): one line per change while waiting."""
    line = f"{elapsed:6.1f}s  {text(deployment.get('status'))}"
    return f"{line}: {deployment['reason']}" if deployment.get("reason") else line


def command_text(command):
    if not command:
        return "(the image's own)"
    return shlex.join(command) if isinstance(command, list) else str(command)


def env_text(env):
    """One ``KEY=VALUE`` per line, sorted."""
    return "\n".join(f"{key}={value}" for key, value in sorted((env or {}).items())) or MISSING


def port_text(port):
    container, host = port.get("container_port"), port.get("host_port")
    host = f"host {host}" if host else "host port allocated"
    return f"{container} -> {host}" if container else host


def health_text(health):
    if not health:
        return MISSING
    if health.get("type") == "http":
        return (
            f"http GET {health.get('path')} on ports[{health.get('port_index')}], answered within "
            f"{number(health.get('timeout'))} s"
        )
    return f"running for {number(health.get('seconds'))} s"


def deployments_table(console, result):
    rows = [
        (
            short_uuid(d.get("id")),
            d.get("name"),
            d.get("image"),
            d.get("revision"),
            replicas_text(d),
            d.get("status"),
            time_short(d.get("updated_at")),
        )
        for d in result.get("items") or []
    ]
    return fitted_table(
        console, ["ID", "NAME", "IMAGE", "REVISION>", "REPLICAS>", "STATUS", "UPDATED"], rows, flexible="IMAGE"
    )


def instances_table(instances):
    """Where each replica runs and answers; the reason (why it is not running) wraps, nothing is cut."""
    table = _plain_table("HOST", "ADDRESS", "STATE", "REVISION>", "CONTAINER", "REASON")
    reason = table.columns[-1]
    reason.no_wrap, reason.overflow = False, "fold"
    for instance in instances:
        table.add_row(
            *(
                Text(text(cell))
                for cell in (
                    instance.get("host"),
                    instance.get("address"),
                    instance.get("state"),
                    instance.get("revision"),
                    short_id(instance.get("container_id")),
                    instance.get("reason"),
                )
            )
        )
    return table


def instances_view(deployment):
    """The instances table, a line saying there are none, or None once the deployment is gone."""
    instances = deployment.get("instances") or []
    if instances:
        return instances_table(instances)
    return None if deployment.get("status") == "deleted" else Text("no instances")


def revision_text(deployment):
    revision, serving = deployment.get("revision"), deployment.get("serving_revision")
    if serving is None or serving == revision:
        return text(revision)
    return f"{revision} (revision {serving} serving)"


def pending_push_pairs(push):
    """A row for a push the policy follows that waits for the operation in progress, if any."""
    if not push:
        return []
    return [
        (
            "Pending",
            f"push of {text(push.get('tag'))} ({short_digest(push.get('digest'))}), rolled out when "
            f"the operation in progress ends",
        )
    ]


def deployment_view(deployment):
    """The image and settings shown are the newest revision's, which is not always the serving one."""
    spec = deployment.get("spec") or {}
    pairs = [
        ("ID", deployment.get("id")),
        ("Revision", revision_text(deployment)),
        ("Image", deployment.get("image")),
        ("Digest", deployment.get("digest")),
        ("Pool", deployment.get("pool")),
        ("Replicas", f"{text(deployment.get('replicas'))} ({running_count(deployment)} running)"),
        ("Status", deployment.get("status")),
        ("Reason", deployment.get("reason")),
        ("Command", command_text(spec.get("command"))),
        ("Env", env_text(spec.get("env"))),
        ("Ports", joined([port_text(p) for p in spec.get("ports") or []])),
        ("CPUs", number(spec.get("cpu"))),
        ("Memory", human_size(spec.get("memory_bytes"))),
        ("Restart", spec.get("restart_policy")),
        ("Health", health_text(spec.get("health"))),
        ("Auto-deploy", (deployment.get("auto_deploy") or {}).get("policy")),
        *pending_push_pairs(deployment.get("pending_push")),
        ("Created", time_long(deployment.get("created_at"))),
        ("Updated", time_long(deployment.get("updated_at"))),
    ]
    if deployment.get("deleted_at"):
        pairs.append(("Deleted", time_long(deployment.get("deleted_at"))))
    panel = key_value_panel(text(deployment.get("name")), pairs)
    instances = deployment.get("instances") or []
    if not instances:
        return Group(panel, Text("no instances"))
    return Group(panel, Text(""), instances_table(instances))


def trigger_text(revision):
    """``update``, ``rollback to 1``, ``auto-deploy by alice`` (who pushed what it follows)."""
    if revision.get("rollback_to") is not None:
        return f"{text(revision.get('trigger'))} to {revision['rollback_to']}"
    actor = (revision.get("push") or {}).get("actor")
    if actor:
        return f"{text(revision.get('trigger'))} by {actor}"
    return text(revision.get("trigger"))


def revisions_table(console, result):
    rows = [
        (
            r.get("revision"),
            r.get("image"),
            short_digest(r.get("digest")),
            r.get("status"),
            trigger_text(r),
            time_short(r.get("created_at")),
        )
        for r in result.get("items") or []
    ]
    return fitted_table(
        console, ["REVISION>", "IMAGE", "DIGEST", "STATUS", "TRIGGER", "CREATED"], rows, flexible="IMAGE"
    )


def revision_notes(result):
    """Lines under the revisions table: why each failed one failed, in full."""
    return [f"revision {r.get('revision')}: {r['reason']}" for r in result.get("items") or [] if r.get("reason")]


def pools_table(console, result):
    """One row per host; a pool's name on each of its hosts, so the rows grep well."""
    rows = []
    for pool in result.get("items") or []:
        for host in pool.get("hosts") or []:
            capacity, free = host.get("capacity") or {}, host.get("free") or {}
            rows.append(
                (
                    pool.get("name"),
                    host.get("name"),
                    host.get("address"),
                    yes_no(host.get("reachable")),
                    free_of_total(free.get("cpus"), capacity.get("cpus"), number),
                    free_of_total(free.get("memory_bytes"), capacity.get("memory_bytes"), human_size),
                    host.get("instances"),
                )
            )
    return fitted_table(
        console, ["POOL", "HOST", "ADDRESS", "REACHABLE", "CPUS FREE/TOTAL>", "MEMORY FREE/TOTAL>", "INSTANCES>"], rows
    )


def pool_notes(result):
    """Lines under the pools table: the default pool, and why a host is unreachable."""
    notes = [f"default pool: {pool.get('name')}" for pool in result.get("items") or [] if pool.get("default")]
    for pool in result.get("items") or []:
        for host in pool.get("hosts") or []:
            if host.get("reachable") is False:
                notes.append(f"{host.get('name')} is unreachable: {text(host.get('error'))}")
    return notes


# -- resync ---------------------------------------------------------------------------------------

RESYNC_CHANGES = (
    ("added", "added"),
    ("moved", "moved"),
    ("removed", "removed"),
    ("pending_removal", "pending removal"),
    ("skipped", "skipped"),
)


def resync_scope(report):
    namespace = report.get("namespace")
    return f"namespace {namespace}" if namespace else "the whole registry"


def resync_counts(report):
    """``2 added, 0 moved, 0 removed, 1 pending removal, 0 skipped``."""
    counts = report.get("counts") or {}
    return ", ".join(f"{counts.get(key, 0)} {label}" for key, label in RESYNC_CHANGES)


def resync_progress_line(elapsed, report):
    """``   2.5s  running: repositories 40/120, tags 80; 3 added, …``: one line per change while waiting."""
    total = report.get("repositories_total")
    return (
        f"{elapsed:6.1f}s  {text(report.get('status'))}: repositories {report.get('repositories_scanned', 0)}/"
        f"{'?' if total is None else total}, tags {report.get('tags_scanned', 0)}; {resync_counts(report)}"
    )


def resync_summary(report):
    """``Resync pass 7 (the whole registry) finished in 3.2 s: 120 repositories, 240 tags; …``."""
    started, finished = _parse_time(report.get("started_at")), _parse_time(report.get("finished_at"))
    took = f" in {(finished - started).total_seconds():.1f} s" if started and finished else ""
    return (
        f"Resync pass {text(report.get('pass_id'))} ({resync_scope(report)}) {text(report.get('status'))}{took}: "
        f"{report.get('repositories_scanned', 0)} repositories, {report.get('tags_scanned', 0)} tags; "
        f"{resync_counts(report)}"
    )


def _resync_detail(key, entry):
    if key == "moved":
        return f"was {short_digest(entry.get('previous_digest'))}"
    if key == "pending_removal":
        return (
            f"not in the registry (pass {text(entry.get('missing_since_pass'))}); "
            "removed if the next pass misses it too"
        )
    if key == "skipped":
        return entry.get("reason")
    return None


def resync_table(console, report):
    """One row per change, in the order added, moved, removed, pending removal, skipped."""
    rows = [
        (
            label,
            entry.get("repository"),
            entry.get("tag"),
            short_digest(entry.get("digest")),
            _resync_detail(key, entry),
        )
        for key, label in RESYNC_CHANGES
        for entry in report.get(key) or []
    ]
    return fitted_table(
        console, ["CHANGE", "REPOSITORY", "TAG", "DIGEST", "DETAIL"], rows, flexible="DETAIL", wrap=True
    )
