"""`imagehub library-sources` and `imagehub library-sync`: the public library fed from upstream
registries (platform admins)."""

from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from imagehub import jobs, render, waiting
from imagehub.app import cli
from imagehub.commands import deployment_args
from imagehub.common import CommandError, ImagehubGroup, Session, say, session_options, show_list
from shared.contracts.errors import Conflict

# In the order a sync's items move through them, then how they end.
ITEM_STATUSES = ("pending", "copying", "copied", "unchanged", "failed", "removed", "kept")


@cli.group("library-sources", cls=ImagehubGroup)
def library_sources() -> None:
    """The upstream images the public library mirrors (platform admins).

    Each source copies tags of an upstream repository into `library/NAME`: the exact --tag
    names, plus the tags a rule picks (--pattern, --versions, --newest). `imagehub library-sync`
    copies them; the catalog also syncs every enabled source on a timer.
    """


def selection(source: Mapping[str, Any]) -> str:
    """``latest, stable + 1.* in >=1.24 (newest 3)``."""
    parts = [", ".join(source.get("tags") or [])]
    rule = " ".join(
        part
        for part in (
            source.get("pattern"),
            f"in {source['versions']}" if source.get("versions") else None,
            f"(newest {source['newest']})" if source.get("newest") else None,
        )
        if part
    )
    return " + ".join(part for part in (parts[0], rule) if part)


def sources_table(console: Console, result: Mapping[str, Any]) -> Table:
    rows = [
        (
            source.get("library_repository"),
            f"{source.get('registry')}/{source.get('repository')}",
            selection(source),
            "yes" if source.get("enabled") else "no",
            "follow" if source.get("follow_removals") else "keep",
            source.get("credential") or "—",
        )
        for source in result.get("items") or []
    ]
    return render.fitted_table(
        console, ["LIBRARY", "UPSTREAM", "TAGS", "ENABLED", "REMOVALS", "LOGIN"], rows, flexible="TAGS", wrap=True
    )


@library_sources.command("list")
@session_options()
@click.pass_obj
def list_sources(session: Session) -> None:
    """List the library's sources."""
    result = session.catalog.list_library_sources()
    show_list(session, result, sources_table, "library sources", "no library sources")


@library_sources.command("set")
@click.argument("name")
@click.option("--registry", required=True, help="the upstream's host[:port], e.g. docker.io")
@click.option("--repository", required=True, help="its repository there, e.g. library/nginx")
@click.option("--tag", "tags", multiple=True, help="an exact tag to take (repeat for more)")
@click.option("--pattern", help="take the tags matching this glob, e.g. '1.*-alpine'")
@click.option("--versions", help="take the version tags in this range, e.g. '>=1.24, <2'")
@click.option("--newest", type=click.IntRange(min=1), help="of what the rule takes, only the N highest versions")
@click.option(
    "--follow-removals/--keep-removed", default=False, show_default=True, help="delete here what the upstream removed"
)
@click.option("--enabled/--disabled", default=True, show_default=True, help="synced by the timer")
@click.option("--insecure", is_flag=True, help="plain HTTP or an unverified certificate (a registry on loopback)")
@click.option("--credential", help="the upstream login's name in the catalog's LIBRARY_CREDENTIALS_FILE")
@session_options()
@click.pass_obj
def set_source(session: Session, name: str, tags: tuple[str, ...], **settings: Any) -> None:
    """Mirror an upstream repository into library/NAME (creates the source, or replaces it whole)."""
    source = session.catalog.set_library_source(name, tags=list(tags), **settings)
    if session.as_json:
        render.print_json(source)
        return
    click.echo(
        f"{source['library_repository']} mirrors {source['registry']}/{source['repository']}: {selection(source)}"
        f"{'' if source['enabled'] else ' (disabled)'}"
    )


@library_sources.command("remove")
@click.argument("name")
@session_options()
@click.pass_obj
def remove_source(session: Session, name: str) -> None:
    """Stop mirroring library/NAME; what was copied stays in the library."""
    answer = session.catalog.remove_library_source(name)
    if session.as_json:
        render.print_json(answer)
        return
    click.echo(f"library source {name} removed; the images it copied stay in library/{name}")


# -- syncs ---------------------------------------------------------------------------------------


def counts_line(report: Mapping[str, Any]) -> str:
    """``3 copied, 1 unchanged, 0 failed``: only the statuses a sync has items in (and failed)."""
    counts = report.get("counts") or {}
    shown = [status for status in ITEM_STATUSES if counts.get(status) or status == "failed"]
    return ", ".join(f"{counts.get(status, 0)} {status}" for status in shown)


def progress_line(elapsed: float, report: Mapping[str, Any]) -> str:
    return f"{elapsed:6.1f}s  {render.text(report.get('status'))}: {counts_line(report)}"


def summary(report: Mapping[str, Any]) -> str:
    started, finished = render.parse_time(report.get("started_at")), render.parse_time(report.get("finished_at"))
    took = f" in {(finished - started).total_seconds():.1f} s" if started and finished else ""
    scope = f"source {report['source']}" if report.get("source") else "every enabled source"
    status = render.text(report.get("status"))
    return f"Library sync {report.get('sync_id')} ({scope}) {status}{took}: {counts_line(report)}"


def items_table(console: Console, report: Mapping[str, Any]) -> Table:
    rows = [
        (
            f"library/{item.get('source')}",
            item.get("tag"),
            item.get("status"),
            render.short_digest(item.get("digest")),
            item.get("attempts"),
            "" if item.get("seconds") is None else f"{item['seconds']:.1f}s",
            item.get("error") or "",
        )
        for item in report.get("items") or []
    ]
    return render.fitted_table(
        console, ["LIBRARY", "TAG", "STATUS", "DIGEST", "TRIES", "TOOK", "ERROR"], rows, flexible="ERROR", wrap=True
    )


def show_sync(session: Session, report: Mapping[str, Any]) -> None:
    """The sync and its items; exit 1 if it did not finish, or a source or a tag failed."""
    failed_sources = {
        name: note.get("error")
        for name, note in (report.get("sources") or {}).items()
        if note.get("status") == "failed"
    }
    if session.as_json:
        render.print_json(report)
    else:
        click.echo(summary(report))
        for name, error in sorted(failed_sources.items()):
            click.echo(f"source {name} not listed: {error}")
        if report.get("items"):
            console = render.make_console()
            render.emit(console, items_table(console, report))
    failed = (report.get("counts") or {}).get("failed", 0)
    if report.get("status") not in ("running", "finished"):
        raise CommandError(
            f"library sync {report.get('sync_id')} {report.get('status')}: {render.text(report.get('error'))}"
        )
    if failed or failed_sources:
        raise CommandError(
            f"library sync {report.get('sync_id')}: {failed} tag(s) and {len(failed_sources)} source(s) failed",
            hint="the next sync tries them again; `imagehub library-sync` runs one now",
        )


def follow_hint(sync_id: int | None = None) -> str:
    return f"follow it with `imagehub library-sync-status{'' if sync_id is None else f' {sync_id}'} --wait`"


def follow_sync(session: Session, answer: dict[str, Any], started: float, wait_timeout: float) -> None:
    catalog, sync_id = session.catalog, answer["sync_id"]
    job = jobs.Job(
        f"library sync {sync_id}",
        lambda: catalog.get_library_sync(sync_id, items=False),
        progress_line,
        lambda report: (report.get("status"), tuple(sorted((report.get("counts") or {}).items()))),
        follow_hint(sync_id),
    )
    jobs.follow(session, job, answer, started, wait_timeout)
    show_sync(session, catalog.get_library_sync(sync_id))


@cli.command("library-sync")
@click.argument("source", required=False)
@click.option("--no-wait", is_flag=True, help="return once the sync has started")
@deployment_args.wait_timeout_option
@session_options()
@click.pass_obj
def library_sync(session: Session, source: str | None, no_wait: bool, wait_timeout: float) -> None:
    """Copy new and changed tags from the upstreams into the library now (platform admins).

    Without SOURCE, every enabled source. Shows the progress, then each tag: copied, unchanged,
    failed (after its retries), removed or kept (gone upstream). Exit 1 if a tag or a source
    failed, or the sync is still running after --wait-timeout.
    """
    started = waiting.CLOCK.now()
    try:
        answer = session.catalog.sync_library(source)
    except Conflict as exc:
        raise CommandError(str(exc), hint=follow_hint()) from exc
    scope = f"source {source}" if source else "every enabled source"
    if no_wait:
        if session.as_json:
            render.print_json(answer)
            return
        click.echo(f"Library sync {answer['sync_id']} ({scope}) started; {follow_hint(answer['sync_id'])}")
        return
    say(session, f"Library sync {answer['sync_id']} ({scope})")
    follow_sync(session, answer, started, wait_timeout)


@cli.command("library-sync-status")
@click.argument("sync_id", metavar="[SYNC]", type=click.IntRange(min=1), required=False)
@click.option("--wait", is_flag=True, help="first follow the sync until it ends")
@deployment_args.wait_timeout_option
@session_options()
@click.pass_obj
def library_sync_status(session: Session, sync_id: int | None, wait: bool, wait_timeout: float) -> None:
    """Show a library sync and each tag it looked at (without SYNC, the latest)."""
    started = waiting.CLOCK.now()
    if wait:
        follow_sync(session, session.catalog.get_library_sync(sync_id, items=False), started, wait_timeout)
        return
    show_sync(session, session.catalog.get_library_sync(sync_id))
