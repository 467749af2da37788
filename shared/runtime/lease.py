"""A lease held in a database row: one holder at a time, taken over once it goes silent.

The row names its holder and when the holder last showed life (its heartbeat). ``take`` is one
conditional UPDATE — the row is free, or its holder silent for longer than ``stale_after`` — which
SQLite and PostgreSQL both apply atomically: of two callers racing for it, one updates the row and
the other updates nothing. ``renew`` and ``release`` touch the row only while the caller still
holds it, so a holder that was taken over learns so (they return False) instead of overwriting its
successor.

Used by the catalog's resync (``resync_lock``: one pass at a time) and by the deployer's per-
deployment lock (``deployments.operation_id``/``operation_at``: one operation at a time), each
with its own columns.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from shared.contracts.errors import Conflict


@dataclass(frozen=True)
class RowLease:
    """The lease in ``key``'s row of a table: ``holder`` names who holds it (NULL: free),
    ``heartbeat`` when it last showed life."""

    key: InstrumentedAttribute[Any]
    holder: InstrumentedAttribute[Any]
    heartbeat: InstrumentedAttribute[Any]
    stale_after: timedelta

    def is_live(self, holder: object, heartbeat: datetime | None, now: datetime) -> bool:
        """Whether a row showing ``holder`` and ``heartbeat`` is held by someone alive."""
        return holder is not None and heartbeat is not None and heartbeat >= now - self.stale_after

    def take(
        self,
        session: Session,
        key: object,
        holder: object,
        now: datetime,
        *,
        force: bool = False,
        **values: object,
    ) -> bool:
        """Take the lease for ``holder`` if it is free or stale (or regardless, with ``force``),
        setting ``values`` on the row with it; whether it was taken. The session's objects are
        expired when it was: the row changed under them."""
        condition = (
            sa.true()
            if force
            else sa.or_(self.holder.is_(None), self.heartbeat.is_(None), self.heartbeat < now - self.stale_after)
        )
        taken = self._update(session, condition, key, {self.holder.key: holder, self.heartbeat.key: now, **values})
        if taken:
            session.expire_all()
        return taken

    def start_job(
        self,
        session: Session,
        key: object,
        job: Any,
        now: datetime,
        running: Callable[[Any], str],
        abandon: Callable[[Any, datetime | None], None],
    ) -> None:
        """One job at a time, the lease's holder naming the running job's row: record ``job`` (a
        new row with an ``id`` and a ``status``) and take the lease for it. ``Conflict(running(
        row))`` while a live job holds it (``row`` None when another caller took it at the same
        moment); a job that held it and went silent is handed to ``abandon(row, its heartbeat)``
        if its row still says it runs."""
        lock_model: Any = self.key.class_
        lock = session.get(lock_model, key)
        if lock is None:
            raise RuntimeError(f"{lock_model.__tablename__} has no row: is the database migrated?")
        holder, heartbeat = getattr(lock, self.holder.key), getattr(lock, self.heartbeat.key)
        job_model = type(job)
        if self.is_live(holder, heartbeat, now):
            raise Conflict(running(session.get(job_model, holder)))
        session.add(job)
        session.flush()
        # Whoever updates the row second (after the first commits) finds it taken: Conflict.
        if not self.take(session, key, job.id, now):
            session.rollback()
            lock = session.get(lock_model, key)
            taken_by = getattr(lock, self.holder.key) if lock is not None else None
            raise Conflict(running(session.get(job_model, taken_by) if taken_by is not None else None))
        stale = session.get(job_model, holder) if holder is not None else None
        if stale is not None and stale.status == job.status:
            abandon(stale, heartbeat)

    def renew(self, session: Session, key: object, holder: object, now: datetime, **values: object) -> bool:
        """Show that ``holder`` is alive (and set ``values``); False if it no longer holds the lease."""
        return self._update(session, self.holder == holder, key, {self.heartbeat.key: now, **values})

    def release(self, session: Session, key: object, holder: object, **values: object) -> bool:
        """Free the lease if ``holder`` still holds it (and set ``values``); whether it did."""
        return self._update(session, self.holder == holder, key, {self.holder.key: None, **values})

    def _update(self, session: Session, condition: Any, key: object, values: dict[str, Any]) -> bool:
        table = self.key.class_
        result = session.execute(
            sa.update(table)
            .where(self.key == key, condition)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]
