"""What ``get_resync`` shows of a pass: status, progress, counts and the changes it made."""

from typing import Any

from sqlalchemy.orm import Session

from catalog import store
from catalog.models import ResyncPass

LISTS = ("added", "moved", "removed", "pending_removal", "skipped")


def get_pass(session: Session, pass_id: int | None = None, items: bool = True) -> dict[str, Any]:
    """The pass ``pass_id`` (None: the latest) as ``pass_view`` shows it; ``NotFound``."""
    row = store.latest_or_get(
        session, ResyncPass, pass_id, "no resync pass has run yet", f"resync pass {pass_id} not found"
    )
    return pass_view(row, items)


def pass_view(row: ResyncPass, items: bool = True) -> dict[str, Any]:
    """What ``get_resync`` returns: status, progress, counts and (with ``items``) the changes."""
    report = row.report or empty_report()
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
        "counts": {name: len(report.get(name) or []) for name in LISTS},
    }
    for name in LISTS:
        view[name] = list(report.get(name) or []) if items else None
    return view


def empty_report() -> dict[str, list[dict[str, Any]]]:
    return {name: [] for name in LISTS}
