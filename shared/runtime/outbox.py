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
    return _dispatch_rows(session, model, dispatch, condition, limit=None)


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
    cutoff = (now or datetime.now(UTC)) - min_age
    sent = _dispatch_rows(session, model, dispatch, model.created_at <= cutoff, limit=limit)
    if sent:
        log.info("outbox relay sent %d left-over event(s)", sent)
    return sent


def _keyed(model: type[Any]) -> bool:
    return hasattr(model, "ordering_key")


def _dispatch_rows(session: Session, model: type[Any], dispatch: Dispatch, condition: Any, limit: int | None) -> int:
    query = sa.select(model).where(condition).order_by(model.id).limit(limit)
    rows = session.scalars(query.with_for_update(skip_locked=True)).all()
    waiting = _held_elsewhere(session, model, condition, limit, rows) if _keyed(model) else {}
    sent: list = []
    for row in rows:
        key = getattr(row, "ordering_key", None)
        if key in waiting and row.id > waiting[key]:
            continue  # an older event of its key is being sent by someone else: this one goes after it
        try:
            dispatch(row.event_type, row.payload)
        # Whatever the broker client raises (connection refused, confirm timeout, unroutable): the
        # row stays, and so do the ones after it, so that they still go out in order.
        except Exception as exc:  # noqa: BLE001
            log.warning(
                "%s %s not dispatched, %d event(s) left in the outbox for the relay: %s",
                row.event_type,
                row.event_id,
                len(rows) - len(sent),
                exc,
            )
            break
        sent.append(row.id)
    if sent:
        session.execute(sa.delete(model).where(model.id.in_(sent)))
    return len(sent)


def _held_elsewhere(
    session: Session, model: type[Any], condition: Any, limit: int | None, taken: Sequence[Any]
) -> dict[str, int]:
    """``{ordering_key: oldest row id}`` of the rows matching ``condition`` that another sender
    holds (PostgreSQL: locked, so skipped); always empty on SQLite, which has no row locks."""
    taken_ids = {row.id for row in taken}
    waiting: dict[str, int] = {}
    for row_id, key in session.execute(
        sa.select(model.id, model.ordering_key).where(condition).order_by(model.id).limit(limit)
    ):
        if row_id not in taken_ids and key is not None:
            waiting.setdefault(key, row_id)
    return waiting
