"""The transactional outbox: a service's events are stored with the change they report, sent after.

Used by the catalog (``catalog.outbox``) and the deployer (``deployer.outbox``), each with its own
table: a model class with ``id`` (the order rows are sent in), ``event_type``, ``payload``,
``event_id`` (unique) and ``created_at``, and optionally ``ordering_key`` (see below).

``emit`` makes an event and adds it to the outbox in the session of the change, so the event
commits or rolls back with it. After the commit the service sends that transaction's own rows
(``send``). Whatever could not go then (broker down, process died between commit and dispatch)
the relay sends later (``relay``), oldest first, stopping at the first failure so that the next
tick retries from the same row. A row is deleted once the broker has taken it (nameko waits for
the publisher confirm).

A send that fails leaves its row, counted (``attempts``) and due again after a back-off that
doubles with each failure (``next_attempt_at``, ``backoff``): a row the broker returned (mandatory:
no queue of its consumers exists) or did not confirm is retried, never deleted. The pass stops at
the first failure, since the broker is then likely away for the rows after it too; the next tick
starts again with what is due. A row waiting out its back-off holds back the later rows of its
ordering key (their order is kept), not the others; in a table without ordering keys, every
later row.

Delivery is at least once: a row sent whose deletion does not commit (database away) is sent
again, with the same ``event_id``, on which consumers dedupe.

Rows are read ``FOR UPDATE SKIP LOCKED``: on PostgreSQL a row being sent by one worker or
instance is skipped by every other, so the normal path and the relay never both send it. SQLite
has no row locks (the clause is left out); there a row is only the relay's once it is older than
its minimum age, which the normal path's send takes milliseconds to beat.

Order per key. A model with an ``ordering_key`` column (the deployer's: the deployment ID) keeps
the order of the events of one key across transactions: ``send`` first sends the rows of the same
keys that an earlier transaction left behind, and no sender sends a row of a key while an older
row of that key is held by another sender (it waits for a later tick or send). Without the column
(the catalog's), order is only kept within a transaction and by the relay's oldest-first scan.

The dispatch callable is passed in (``dispatch(event_type, payload)``), so this module knows no
framework.
"""

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from marshmallow import Schema
from sqlalchemy.orm import Session

from shared.contracts.events import make_event

log = logging.getLogger(__name__)

# How a row goes to the broker: ``dispatch(event_type, payload)`` (nameko's event dispatcher).
Dispatch = Callable[[str, dict[str, Any]], Any]

# Back-off of a row whose send failed: BACKOFF_BASE after the first failure, doubled after each
# one after it, at most BACKOFF_MAX.
BACKOFF_BASE = timedelta(seconds=1)
BACKOFF_MAX = timedelta(minutes=5)

# Rows the relay sends per tick: under a second of publisher confirms, so a tick (and the row
# locks it holds) stays short and a stopping container does not wait on a long drain; a backlog
# after an outage drains at about RELAY_BATCH per interval.
RELAY_BATCH = 500


def emit(
    session: Session,
    model: type[Any],
    event_type: str,
    schema_cls: type[Schema],
    ordering_key: str | None = None,
    **values: Any,
) -> tuple[str, dict[str, Any]]:
    """Make an event (``shared.contracts.events.make_event``) and add it to ``model``'s table in ``session``.

    Returns ``(event_type, payload)``, the form the logic functions return their events in.
    """
    payload = make_event(schema_cls, **values)
    fields = dict(event_type=event_type, payload=payload, event_id=payload["event_id"])
    if _keyed(model):
        fields["ordering_key"] = ordering_key
    session.add(model(**fields))
    return event_type, payload


def send(session: Session, model: type[Any], dispatch: Dispatch, event_ids: list[str]) -> int:
    """Dispatch the rows of ``event_ids`` (a committed transaction's own events), in order, after
    any older row of the same ordering keys still pending.

    Returns how many were sent; a row another sender holds is skipped (it sends it).
    """
    if not event_ids:
        return 0
    condition = model.event_id.in_(event_ids)
    if _keyed(model):
        own = session.execute(sa.select(model.id, model.ordering_key).where(condition)).all()
        keys = {key for _, key in own if key is not None}
        if keys:
            newest = max(row_id for row_id, _ in own)
            condition = sa.or_(condition, sa.and_(model.ordering_key.in_(keys), model.id < newest))
    # No back-off here: the transaction that just committed shows the broker may be back, and the
    # older rows of its keys must go before its own.
    return _dispatch_rows(session, model, dispatch, condition, limit=None, backoff_from=None)


def relay(
    session: Session,
    model: type[Any],
    dispatch: Dispatch,
    min_age: timedelta,
    limit: int = RELAY_BATCH,
    now: datetime | None = None,
) -> int:
    """Dispatch rows at least ``min_age`` (a timedelta) old, oldest first; at most ``limit`` of them.

    Returns how many were sent.
    """
    now = now or datetime.now(UTC)
    sent = _dispatch_rows(session, model, dispatch, model.created_at <= now - min_age, limit=limit, backoff_from=now)
    if sent:
        log.info("outbox relay sent %d left-over event(s)", sent)
    return sent


def backlog(session: Session, model: type[Any], now: datetime | None = None) -> tuple[int, float]:
    """``(rows pending, age in seconds of the oldest)``: what an operator's alert watches."""
    count, oldest = session.execute(sa.select(sa.func.count(), sa.func.min(model.created_at))).one()
    if not count or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:  # a plain aggregate skips the column type's conversion
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), max(((now or datetime.now(UTC)) - oldest).total_seconds(), 0.0)


def register_gauges(service: str, engine: Any, model: type[Any]) -> None:
    """The outbox's backlog and the age of its oldest row as gauges of ``service`` (read at scrape
    time, from ``engine``)."""
    from shared.runtime.metrics import gauge_callback  # the metrics need a service process

    def read() -> tuple[int, float]:
        with Session(engine) as session:
            return backlog(session, model)

    gauge_callback(
        "imagehub_outbox_backlog",
        "Events committed and not yet taken by the broker.",
        ["service"],
        lambda: [((service,), read()[0])],
    )
    gauge_callback(
        "imagehub_outbox_oldest_seconds",
        "Age of the oldest event waiting in the outbox (0 when none waits).",
        ["service"],
        lambda: [((service,), read()[1])],
    )


def backoff(attempts: int) -> timedelta:
    """How long a row waits after its ``attempts``-th failed send."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


def _keyed(model: type[Any]) -> bool:
    return hasattr(model, "ordering_key")


def _due(model: type[Any], now: datetime) -> Any:
    return sa.or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now)


def _dispatch_rows(
    session: Session,
    model: type[Any],
    dispatch: Dispatch,
    condition: Any,
    limit: int | None,
    backoff_from: datetime | None,
) -> int:
    """Send the rows matching ``condition``; with ``backoff_from`` (the relay's clock), only those
    whose back-off is over then."""
    now = backoff_from or datetime.now(UTC)
    if backoff_from is not None:
        due = _due(model, backoff_from)
        if not _keyed(model):
            # One order for the whole table: nothing overtakes a row waiting out its back-off.
            first_waiting = session.scalar(sa.select(sa.func.min(model.id)).where(condition, sa.not_(due)))
            if first_waiting is not None:
                condition = sa.and_(condition, model.id < first_waiting)
        condition = sa.and_(condition, due)
    query = sa.select(model).where(condition).order_by(model.id).limit(limit)
    rows = session.scalars(query.with_for_update(skip_locked=True)).all()
    waiting = _held_elsewhere(session, model, condition, limit, rows, backoff_from) if _keyed(model) else {}
    sent: list = []
    for row in rows:
        key = getattr(row, "ordering_key", None)
        if key in waiting and row.id > waiting[key]:
            continue  # an older event of its key is being sent, or waits out its back-off: this one goes after it
        try:
            dispatch(row.event_type, row.payload)
        # Whatever the broker client raises (connection refused, confirm timeout, returned as
        # unroutable): the row stays, due again after its back-off, and the pass stops here.
        except Exception as exc:  # noqa: BLE001
            row.attempts = (row.attempts or 0) + 1
            row.next_attempt_at = now + backoff(row.attempts)
            log.warning(
                "%s %s not dispatched (attempt %d, next in %ss), %d event(s) left in the outbox for the relay: %s",
                row.event_type,
                row.event_id,
                row.attempts,
                backoff(row.attempts).total_seconds(),
                len(rows) - len(sent),
                exc,
            )
            break
        sent.append(row.id)
    if sent:
        session.execute(sa.delete(model).where(model.id.in_(sent)))
    return len(sent)


def _held_elsewhere(
    session: Session, model: type[Any], condition: Any, limit: int | None, taken: Sequence[Any], now: datetime | None
) -> dict[str, int]:
    """``{ordering_key: oldest row id}`` of the rows that must go before later rows of their key
    and are not this pass's: the ones matching ``condition`` that another sender holds
    (PostgreSQL: locked, so skipped; never on SQLite, which has no row locks), and, when the
    back-off counts (``now`` given), any row of a key of this pass still waiting out its back-off."""
    taken_ids = {row.id for row in taken}
    waiting: dict[str, int] = {}
    for row_id, key in session.execute(
        sa.select(model.id, model.ordering_key).where(condition).order_by(model.id).limit(limit)
    ):
        if row_id not in taken_ids and key is not None:
            waiting.setdefault(key, row_id)
    keys = {row.ordering_key for row in taken if row.ordering_key is not None}
    if keys and now is not None:
        backing_off = sa.select(model.ordering_key, sa.func.min(model.id)).where(
            model.ordering_key.in_(keys), sa.not_(_due(model, now))
        )
        for key, row_id in session.execute(backing_off.group_by(model.ordering_key)):
            waiting[key] = min(waiting.get(key, row_id), row_id)
    return waiting
