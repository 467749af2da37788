"""The tables every service with a database has, declared once: its transactional outbox
(``shared.runtime.outbox``) and the events it has processed (its idempotency keys).

Each service's ``models.py`` mixes these into its own declarative ``Base``; the columns are the
ones the services' migrations create, so adopting a mixin changes no schema.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from shared.runtime.clock import utcnow

EVENT_ID_LENGTH = 36  # a uuid4 as text


class OutboxEventMixin:
    """An event to dispatch, written in the transaction of the change it reports.

    Deleted once the broker has taken it, so the table holds only what is still pending: no
    retention job, and the relay's scan stays small.
    """

    __tablename__ = "outbox"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[sa.UniqueConstraint]:
        return (sa.UniqueConstraint("event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)  # the order the relay sends in
    event_type: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict]
    event_id: Mapped[str] = mapped_column(sa.String(EVENT_ID_LENGTH))  # the payload's; the same on every re-send
    # Stamped at INSERT (the flush, just before the commit) rather than when the logic started,
    # since the relay's minimum age (the normal path's head start) is measured from it.
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Sends the broker did not confirm or returned (no queue took it), and when the relay may try
    # again: the back-off doubles with each (``shared.runtime.outbox.backoff``).
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]


class OrderedOutboxEventMixin(OutboxEventMixin):
    """An outbox whose events about one thing (``ordering_key``) go out in the order they were
    committed (``shared.runtime.outbox`` holds back a key's later rows while an earlier one is
    being sent)."""

    ordering_key: Mapped[str | None] = mapped_column(sa.String(EVENT_ID_LENGTH))


class ProcessedEventMixin:
    """Inserted in the same transaction as an event's effect: a redelivery finds it and changes
    nothing."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(sa.String(EVENT_ID_LENGTH), primary_key=True)
    processed_at: Mapped[datetime]
