"""One pass at a time: the ``resync_lock`` row is a ``shared.runtime.lease.RowLease``.

``start_pass`` takes it with a conditional UPDATE; a second caller gets ``Conflict``. A pass renews
it as it progresses (``catalog.resync.scan``); one silent for longer than ``LOCK_STALE_AFTER``
(its process died) may be taken over, and its pass is marked ``abandoned``.
"""

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import ResyncLock, ResyncPass
from catalog.resync.report import empty_report
from shared.contracts.errors import Conflict
from shared.runtime.clock import utcnow
from shared.runtime.lease import RowLease

log = logging.getLogger(__name__)

LOCK_ID = 1
# A pass silent for this long is dead (its process killed): another may take the lock over.
LOCK_STALE_AFTER = timedelta(seconds=120)
LEASE = RowLease(ResyncLock.id, ResyncLock.pass_id, ResyncLock.heartbeat_at, LOCK_STALE_AFTER)

RPC, TIMER = "rpc", "timer"


def start_pass(session: Session, namespace: str | None, trigger: str, now: datetime | None = None) -> int:
    """Take the lock and record a new running pass; returns its id.

    ``Conflict`` (naming the running pass) if another pass holds the lock and is alive.
    """
    now = now or utcnow()
    row = ResyncPass(
        namespace=namespace,
        trigger=trigger,
        status=ResyncPass.RUNNING,
        started_at=now,
        repositories_scanned=0,
        tags_scanned=0,
        report=empty_report(),
    )

    def abandon(stale: ResyncPass, heartbeat: datetime | None) -> None:
        log.warning(
            "resync pass %d showed no progress since %s: abandoned, pass %d takes over", stale.id, heartbeat, row.id
        )
        stale.status, stale.finished_at = ResyncPass.ABANDONED, now
        since = heartbeat.isoformat() if heartbeat else "its start"
        stale.error = f"no progress since {since}; taken over by pass {row.id}"

    LEASE.start_job(session, LOCK_ID, row, now, _running_message, abandon)
    return row.id


def _running_message(running: ResyncPass | None) -> str:
    if running is None:
        return "another resync pass was starting at the same time"
    scope = f"namespace {running.namespace!r}" if running.namespace else "the whole registry"
    return (
        f"resync pass {running.id} ({scope}) is running since {running.started_at.isoformat()}; "
        f"one pass at a time: follow it with get_resync({running.id})"
    )


def start_periodic_pass(session: Session, interval: float, now: datetime | None = None) -> int | None:
    """Start a whole-registry pass for the timer, unless one runs or one started less than half an
    ``interval`` (seconds) ago (another instance's timer ran it). Returns its id, or None."""
    now = now or utcnow()
    latest = session.scalar(
        sa.select(ResyncPass.started_at).where(ResyncPass.namespace.is_(None)).order_by(ResyncPass.id.desc()).limit(1)
    )
    if latest is not None and latest > now - timedelta(seconds=interval / 2):
        return None
    try:
        return start_pass(session, None, TIMER, now)
    except Conflict as exc:
        log.info("periodic resync skipped: %s", exc)
        return None
