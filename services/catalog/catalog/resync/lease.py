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
    lock = session.get(ResyncLock, LOCK_ID)
    if lock is None:
        raise RuntimeError("resync_lock has no row: is the catalog database migrated (python -m catalog.migrate)?")
    running = _live_holder(session, lock, now)
    if running is not None:
        raise Conflict(_running_message(running))
    row = ResyncPass(
        namespace=namespace,
        trigger=trigger,
        status=ResyncPass.RUNNING,
        started_at=now,
        repositories_scanned=0,
        tags_scanned=0,
        report=empty_report(),
    )
    session.add(row)
    session.flush()
    previous, previous_heartbeat = lock.pass_id, lock.heartbeat_at
    # Whoever updates the row second (after the first commits) finds it taken: Conflict.
    if not LEASE.take(session, LOCK_ID, row.id, now):
        session.rollback()
        holder = session.get(ResyncLock, LOCK_ID)
        running = session.get(ResyncPass, holder.pass_id) if holder is not None and holder.pass_id else None
        raise Conflict(_running_message(running) if running else "another resync pass was starting at the same time")
    if previous is not None:
        stale = session.get(ResyncPass, previous)
        if stale is not None and stale.status == ResyncPass.RUNNING:
            log.warning(
                "resync pass %d showed no progress since %s: abandoned, pass %d takes over",
                stale.id,
                previous_heartbeat,
                row.id,
            )
            stale.status, stale.finished_at = ResyncPass.ABANDONED, now
            since = previous_heartbeat.isoformat() if previous_heartbeat else "its start"
            stale.error = f"no progress since {since}; taken over by pass {row.id}"
    return row.id


def _live_holder(session: Session, lock: ResyncLock, now: datetime) -> ResyncPass | None:
    if not LEASE.is_live(lock.pass_id, lock.heartbeat_at, now):
        return None
    return session.get(ResyncPass, lock.pass_id)


def _running_message(running: ResyncPass) -> str:
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
