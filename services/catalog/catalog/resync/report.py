"""What ``get_resync`` shows of a pass: status, progress, counts and the changes it made."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, defer

from catalog import store
from catalog.models import ResyncPass
from shared.contracts.errors import NotFound

LISTS = ("added", "moved", "removed", "pending_removal", "skipped")
COUNTS = "counts"  # the lengths of the lists, saved beside them


def get_pass(session: Session, pass_id: int | None = None, items: bool = True) -> dict[str, Any]:
    """The pass ``pass_id`` (None: the latest) as ``pass_view`` shows it; ``NotFound``.

    Without ``items``, the report's entries are not read: only the counts a running pass saves
    beside them (a first pass's report holds an entry per tag, and get_resync is polled)."""
    if items:
        row = store.latest_or_get(
            session, ResyncPass, pass_id, "no resync pass has run yet", f"resync pass {pass_id} not found"
        )
        return pass_view(row, items)
    stmt = sa.select(ResyncPass).options(defer(ResyncPass.report))
    if pass_id is None:
        row = session.scalar(stmt.order_by(ResyncPass.id.desc()).limit(1))
        if row is None:
            raise NotFound("no resync pass has run yet")
    else:
        row = session.scalar(stmt.where(ResyncPass.id == pass_id))
        if row is None:
            raise NotFound(f"resync pass {pass_id} not found")
    counts = session.scalar(sa.select(ResyncPass.report[COUNTS]).where(ResyncPass.id == row.id))
    if not isinstance(counts, dict):  # a report saved without them: counted from its entries
        report = session.scalar(sa.select(ResyncPass.report).where(ResyncPass.id == row.id)) or {}
        counts = counts_of(report)
    return pass_view(row, items, counts)


def pass_view(row: ResyncPass, items: bool = True, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """What ``get_resync`` returns: status, progress, counts and (with ``items``) the changes.
    ``counts``: given, the report is not read (and no items are shown)."""
    report = (row.report or empty_report()) if counts is None else {}
    view: dict[str, Any] = {
        "pass_id": row.id,
        "namespace": row.namespace,
        "trigger": row.trigger,
        "status": row.status,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "repositories_total": row.repositories_total,
        "repositories_scanned": row.repositories_scanned,
        "tags_scanned": row.tags_scanned,
        "error": row.error,
        "counts": {name: (counts or {}).get(name, 0) for name in LISTS} if counts is not None else counts_of(report),
    }
    for name in LISTS:
        view[name] = list(report.get(name) or []) if items and counts is None else None
    return view


def counts_of(report: dict[str, Any]) -> dict[str, int]:
    return {name: len(report.get(name) or []) for name in LISTS}


def saved_report(report: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The report as a pass saves it: its lists, and their lengths under ``COUNTS``."""
    return {**report, COUNTS: counts_of(report)}


def empty_report() -> dict[str, list[dict[str, Any]]]:
    return {name: [] for name in LISTS}
