"""The deployer's transactional outbox: ``shared.runtime.outbox`` on the deployer's ``outbox`` table.

Every event the deployer publishes (``deployment_status_changed``, ``rollout_requested``) is
added to the outbox by ``emit`` in the session of the change it reports, keyed by its deployment,
so it commits or rolls back with that change. After the commit the logic calls ``send`` with the
events its transaction returned; what could not go then (broker down, process died between the
commit and the dispatch) the relay (``relay``, on the ``deployer`` service's timer) sends later,
oldest first. One deployment's events go out in the order they were committed (``shared.runtime.outbox``:
ordering key). At least once: consumers dedupe on ``event_id``, which a re-send keeps.
"""

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from marshmallow import Schema
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import object_session

from deployer.models import Deployment, OutboxEvent
from deployer.runtime import Runtime
from shared.runtime import outbox as _outbox
from shared.runtime.outbox import RELAY_BATCH

log = logging.getLogger(__name__)


def emit(
    deployment: Deployment, event_type: str, schema_cls: type[Schema], **values: Any
) -> tuple[str, dict[str, Any]]:
    """Make an event about ``deployment`` (a row attached to the session of the change) and add it
    to the outbox in that session; ``(event_type, payload)``."""
    session = object_session(deployment)
    if session is None:
        raise RuntimeError(
            f"{event_type} for deployment {deployment.id}: the row is not in a session, so the event "
            f"cannot be written with the change"
        )
    return _outbox.emit(session, OutboxEvent, event_type, schema_cls, ordering_key=deployment.id, **values)


def send(rt: Runtime, events: Iterable[tuple[str, dict[str, Any]] | None]) -> int:
    """Dispatch ``events`` (a committed transaction's, None entries ignored) from the outbox
    through ``rt.publish``. Never raises for the broker or the database: the change is committed
    and its events are safe in the outbox, where the relay finds what this left."""
    event_ids = [payload["event_id"] for event in events if event is not None for _, payload in [event]]
    if not event_ids:
        return 0
    try:
        with rt.transaction() as session:
            return _outbox.send(session, OutboxEvent, rt.publish, event_ids)
    except DBAPIError as exc:
        log.warning(
            "outbox unreadable after the commit, %d event(s) left for the relay: %s",
            len(event_ids),
            str(exc).splitlines()[0],
        )
        return 0


def relay(rt: Runtime, min_age: timedelta, limit: int = RELAY_BATCH, now: datetime | None = None) -> int:
    """Send the events left in the outbox that are at least ``min_age`` (a timedelta) old, oldest
        first, through ``rt.publish``; how many went. Ages are by the wall clock (``created_at`` is
    stamped with it), not ``rt.now``. A database outage is logged: the next tick retries."""
    try:
        with rt.transaction() as session:
            return _outbox.relay(session, OutboxEvent, rt.publish, min_age, limit=limit, now=now)
    except DBAPIError as exc:
        log.warning("outbox relay: database unavailable, retrying next tick: %s", str(exc).splitlines()[0])
        return 0
