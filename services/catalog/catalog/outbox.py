"""The transactional outbox: the catalog's events are stored with the change they report, sent after.

``emit`` makes an event and adds it to the ``outbox`` table in the session of the change, so the
event commits or rolls back with it. After the commit the service sends that transaction's own
rows (``send``). Whatever could not go then (broker down, process died between commit and
dispatch) the relay sends later (``relay``), oldest first, stopping at the first failure so that
the next tick retries from the same row. A row is deleted once the broker has taken it (nameko
waits for the publisher confirm).

Delivery is at least once: a row sent whose deletion does not commit (database away) is sent
again, with the same ``event_id``, on which consumers dedupe.

Rows are read ``FOR UPDATE SKIP LOCKED``: on PostgreSQL a row being sent by one worker or
instance is skipped by every other, so the normal path and the relay never both send it. SQLite
has no row locks (the clause is left out); there a row is only the relay's once it is older than
its minimum age, which the normal path's send takes milliseconds to beat.

The dispatch callable is passed in (``dispatch(event_type, payload)``), so this module knows no
framework.
"""
import logging
from datetime import datetime, timezone

import sqlalchemy as sa

from catalog.models import OutboxEvent
from shared.events import make_event

log = logging.getLogger(__name__)

# Rows the relay sends per tick: under a second of publisher confirms, so a tick (and the row
# locks it holds) stays short and a stopping container does not wait on a long drain; a backlog
# after an outage drains at about RELAY_BATCH per interval.
RELAY_BATCH = 500


def emit(session, event_type, schema_cls, **values):
    """Make an event (``shared.events.make_event``) and add it to the outbox in ``session``.

    Returns ``(event_type, payload)``, the form the logic functions return their events in.
    """
    payload = make_event(schema_cls, **values)
    session.add(OutboxEvent(event_type=event_type, payload=payload, event_id=payload["event_id"]))
    return event_type, payload


def send(session, dispatch, event_ids):
    """Dispatch the rows of ``event_ids`` (a committed transaction's own events), in order.

    Returns how many were sent; a row another sender holds is skipped (it sends it).
    """
    if not event_ids:
        return 0
    return _dispatch_rows(session, dispatch, OutboxEvent.event_id.in_(event_ids), limit=None)


def relay(session, dispatch, min_age, limit=RELAY_BATCH, now=None):
    """Dispatch rows at least ``min_age`` (a timedelta) old, oldest first; at most ``limit`` of them.

    Returns how many were sent.
    """
    cutoff = (now or datetime.now(timezone.utc)) - min_age
    sent = _dispatch_rows(session, dispatch, OutboxEvent.created_at <= cutoff, limit=limit)
    if sent:
        log.info("outbox relay sent %d left-over event(s)", sent)
    return sent


def _dispatch_rows(session, dispatch, condition, limit):
    rows = session.scalars(sa.select(OutboxEvent).where(condition).order_by(OutboxEvent.id).limit(limit)
                           .with_for_update(skip_locked=True)).all()
    sent = []
    for row in rows:
        try:
            dispatch(row.event_type, row.payload)
        # Whatever the broker client raises (connection refused, confirm timeout, unroutable): the
        # row stays, and so do the ones after it, so that they still go out in order.
        except Exception as exc:
            log.warning("%s %s not dispatched, %d event(s) left in the outbox for the relay: %s",
                        row.event_type, row.event_id, len(rows) - len(sent), exc)
            break
        sent.append(row.id)
    if sent:
        session.execute(sa.delete(OutboxEvent).where(OutboxEvent.id.in_(sent)))
    return len(sent)
