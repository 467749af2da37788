"""`imagehub resync` and `imagehub resync-status`: the catalogue reconciled with the registry."""

from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from imagehub import jobs, render, waiting
from imagehub.app import cli
from imagehub.commands import deployment_args
from imagehub.common import (
    CommandError,
    Session,
    say,
    session_options,
)
from shared.contracts.errors import Conflict, InvalidReference
from shared.contracts.reference import validate_path_component

RESYNC_CHANGES = (
    ("added", "added"),
    ("moved", "moved"),
    ("removed", "removed"),
    ("pending_removal", "pending removal"),
    ("skipped", "skipped"),
)


def resync_scope(report: Mapping[str, Any]) -> str:
    namespace = report.get("namespace")
    return f"namespace {namespace}" if namespace else "the whole registry"


def resync_counts(report: Mapping[str, Any]) -> str:
    """``2 added, 0 moved, 0 removed, 1 pending removal, 0 skipped``."""
    counts = report.get("counts") or {}
    return ", ".join(f"{counts.get(key, 0)} {label}" for key, label in RESYNC_CHANGES)


def resync_progress_line(elapsed: float, report: Mapping[str, Any]) -> str:
    """``   2.5s  running: repositories 40/120, tags 80; 3 added, …``: one line per change while waiting."""
    total = report.get("repositories_total")
    return (
        f"{elapsed:6.1f}s  {render.text(report.get('status'))}: repositories {report.get('repositories_scanned', 0)}/"
        f"{'?' if total is None else total}, tags {report.get('tags_scanned', 0)}; {resync_counts(report)}"
    )


def resync_summary(report: Mapping[str, Any]) -> str:
    """``Resync pass 7 (the whole registry) finished in 3.2 s: 120 repositories, 240 tags; …``."""
    started, finished = render.parse_time(report.get("started_at")), render.parse_time(report.get("finished_at"))
    took = f" in {(finished - started).total_seconds():.1f} s" if started and finished else ""
    return (
        f"Resync pass {render.text(report.get('pass_id'))} ({resync_scope(report)}) "
        f"{render.text(report.get('status'))}{took}: "
        f"{report.get('repositories_scanned', 0)} repositories, {report.get('tags_scanned', 0)} tags; "
        f"{resync_counts(report)}"
    )


def _resync_detail(key: str, entry: Mapping[str, Any]) -> str | None:
    if key == "moved":
        return f"was {render.short_digest(entry.get('previous_digest'))}"
    if key == "pending_removal":
        return (
            f"not in the registry (pass {render.text(entry.get('missing_since_pass'))}); "
            "removed if the next pass misses it too"
        )
    if key == "skipped":
        return entry.get("reason")
    return None


def resync_table(console: Console, report: Mapping[str, Any]) -> Table:
    """One row per change, in the order added, moved, removed, pending removal, skipped."""
    rows = [
        (
            label,
            entry.get("repository"),
            entry.get("tag"),
            render.short_digest(entry.get("digest")),
            _resync_detail(key, entry),
        )
        for key, label in RESYNC_CHANGES
        for entry in report.get(key) or []
    ]
    return render.fitted_table(
        console, ["CHANGE", "REPOSITORY", "TAG", "DIGEST", "DETAIL"], rows, flexible="DETAIL", wrap=True
    )


# -- reconciliation with the registry -------------------------------------------------------------
# The catalog runs a pass in a worker of its own and answers at once; the CLI follows it with
# get_resync (counters only while it runs), then fetches the report once.


def resync_follow_hint(pass_id: int | None = None) -> str:
    return f"follow it with `imagehub resync-status{'' if pass_id is None else f' {pass_id}'} --wait`"


def resync_progress(report: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        report.get("status"),
        report.get("repositories_total"),
        report.get("repositories_scanned"),
        report.get("tags_scanned"),
        tuple(sorted((report.get("counts") or {}).items())),
    )


def follow_resync(session: Session, answer: dict[str, Any], started: float, wait_timeout: float) -> None:
    """Report the pass's progress until it ends, print its report, exit 1 unless it finished."""
    catalog, pass_id = session.catalog, answer["pass_id"]
    job = jobs.Job(
        f"resync pass {pass_id}",
        lambda: catalog.get_resync(pass_id, items=False),
        resync_progress_line,
        resync_progress,
        resync_follow_hint(pass_id),
    )
    jobs.follow(session, job, answer, started, wait_timeout)
    show_resync(session, catalog.get_resync(pass_id))


def show_resync(session: Session, report: Mapping[str, Any]) -> None:
    if session.as_json:
        render.print_json(report)
    else:
        click.echo(resync_summary(report))
        if any((report.get("counts") or {}).values()):
            console = render.make_console()
            render.emit(console, resync_table(console, report))
    if report.get("status") not in ("running", "finished"):
        raise CommandError(
            f"resync pass {report.get('pass_id')} {report.get('status')}: {render.text(report.get('error'))}"
        )


@cli.command()
@click.argument("namespace", required=False)
@click.option("--no-wait", is_flag=True, help="return once the pass has started")
@deployment_args.wait_timeout_option
@session_options()
@click.pass_obj
def resync(session: Session, namespace: str | None, no_wait: bool, wait_timeout: float) -> None:
    """Compare the catalogue with the registry and repair it (operators).

    Without NAMESPACE, the whole registry. Tags the catalogue missed are indexed, moved tags
    follow the registry, and tags the registry no longer has are removed once two passes in a row
    miss them. Shows the progress, then every change. Exit 1 if the pass failed or is still
    running after --wait-timeout.
    """
    if namespace is not None:
        try:
            validate_path_component(namespace, "namespace")
        except InvalidReference as exc:
            raise click.BadParameter(str(exc), param_hint="'NAMESPACE'") from None
    started = waiting.CLOCK.now()
    try:
        answer = session.catalog.resync(namespace)
    except Conflict as exc:
        raise CommandError(str(exc), hint=resync_follow_hint()) from exc
    if no_wait:
        if session.as_json:
            render.print_json(answer)
            return
        click.echo(
            f"Resync pass {answer['pass_id']} ({resync_scope(answer)}) started; {resync_follow_hint(answer['pass_id'])}"
        )
        return
    say(session, f"Resync pass {answer['pass_id']} ({resync_scope(answer)})")
    follow_resync(session, answer, started, wait_timeout)


@cli.command("resync-status")
@click.argument("pass_id", metavar="[PASS]", type=click.IntRange(min=1), required=False)
@click.option("--wait", is_flag=True, help="first follow the pass until it ends")
@deployment_args.wait_timeout_option
@session_options()
@click.pass_obj
def resync_status(session: Session, pass_id: int | None, wait: bool, wait_timeout: float) -> None:
    """Show a resync pass and what it changed (without PASS, the latest)."""
    started = waiting.CLOCK.now()
    if wait:
        follow_resync(session, session.catalog.get_resync(pass_id, items=False), started, wait_timeout)
        return
    show_resync(session, session.catalog.get_resync(pass_id))
