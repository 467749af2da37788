"""The catalog's transactional outbox: ``shared.runtime.outbox`` on the catalog's ``outbox`` table.

Events are stored with the change they report (``emit``), sent after the commit (``send``), and
what could not go then is sent by the relay (``relay``): see ``shared.runtime.outbox``. The table has no
ordering key: order is kept within a transaction and by the relay's oldest-first scan.
"""

from datetime import datetime, timedelta
from typing import Any

from marshmallow import Schema
from sqlalchemy.orm import Session

from catalog.models import OutboxEvent
from shared.runtime import outbox as _outbox
from shared.runtime.outbox import (
    RELAY_BATCH,  # part of this module's interface
    Dispatch,
)


def emit(session: Session, event_type: str, schema_cls: type[Schema], **values: Any) -> tuple[str, dict[str, Any]]:
    """Make an event and add it to the outbox in ``session``; ``(event_type, payload)``."""
    return _outbox.emit(session, OutboxEvent, event_type, schema_cls, **values)


def send(session: Session, dispatch: Dispatch, event_ids: list[str]) -> int:
    """Dispatch the rows of ``event_ids`` (a committed transaction's own events), in order."""
    return _outbox.send(session, OutboxEvent, dispatch, event_ids)


def relay(
    session: Session, dispatch: Dispatch, min_age: timedelta, limit: int = RELAY_BATCH, now: datetime | None = None
) -> int:
    """Dispatch rows at least ``min_age`` old, oldest first; at most ``limit`` of them."""
    return _outbox.relay(session, OutboxEvent, dispatch, min_age, limit=limit, now=now)
