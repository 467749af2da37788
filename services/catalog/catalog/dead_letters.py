"""The dead-letter desk: the suite's dead letters filed for operators, shown and replayed.

Every message a handler of the suite gave up on reaches the dead-letter queue
(``shared.contracts.topology``): parked by its handler with the reason in ``x-imagehub-*``
headers, or dead-lettered by RabbitMQ itself past the delivery limit (an ``x-death`` header then
says which queue and why). ``file`` turns either into one ``DeadLetter`` row per (queue, event):
the same event dying again (after a replay, or a second copy) counts another death on the same
row. ``replay`` (an admin's RPC) sends the message back, through the replay exchange, to the one
queue it died in; the handlers are idempotent on the event ID, so a replay of an event that did
get handled meanwhile changes nothing.

Nothing on the wire is trusted: the headers may be missing or malformed (then what can be told
is filed, and the rest left empty), the body need not be JSON, and a replay goes only to a queue
``SUBSCRIPTIONS`` names.
"""

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import NAME_LENGTH, SHORT_LENGTH, DeadLetter
from shared.contracts import topology
from shared.contracts.errors import Conflict, NotFound
from shared.runtime.pagination import listing, page_of

STATUSES = (DeadLetter.PARKED, DeadLetter.REPLAYED)
MAX_ERROR_LENGTH = 2000
# Headers a replay leaves behind: the reasons of its death, and RabbitMQ's own bookkeeping.
DEATH_HEADERS = frozenset(
    {
        topology.REASON_HEADER,
        topology.ERROR_HEADER,
        topology.QUEUE_HEADER,
        topology.DELIVERIES_HEADER,
        topology.EVENT_TYPE_HEADER,
        topology.SOURCE_HEADER,
        topology.REPLAY_HEADER,
        topology.DELIVERY_COUNT_HEADER,
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
    }
)


def _json_safe(value: Any) -> Any:
    """Headers as JSON can hold them (AMQP tables carry datetimes and bytes)."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _clip(value: Any, length: int) -> str | None:
    return None if value is None else str(value)[:length]


def _first_death(headers: Mapping[str, Any]) -> Mapping[str, Any]:
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return {}


def _event_id(body: bytes) -> str:
    try:
        payload = json.loads(body)
    except (TypeError, ValueError, UnicodeDecodeError):
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("event_id"), str) and payload["event_id"]:
        return payload["event_id"][:SHORT_LENGTH]
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def file(
    session: Session,
    body: bytes,
    headers: Mapping[str, Any] | None,
    routing_key: str | None,
    content_type: str | None,
    now: datetime,
) -> DeadLetter:
    """File a message taken from the dead-letter queue; returns its row (new or counted again)."""
    headers = dict(headers or {})
    death = _first_death(headers)
    queue = headers.get(topology.QUEUE_HEADER) or death.get("queue") or routing_key or "?"
    exchange = str(death.get("exchange") or "")
    keys = death.get("routing-keys")
    event_type = headers.get(topology.EVENT_TYPE_HEADER) or (keys[0] if isinstance(keys, list) and keys else None)
    source = headers.get(topology.SOURCE_HEADER) or (exchange.removesuffix(".events") if exchange else None)
    reason = headers.get(topology.REASON_HEADER) or death.get("reason") or "unknown"
    deliveries = _int_or_none(headers.get(topology.DELIVERIES_HEADER)) or _int_or_none(death.get("count"))
    fields = dict(
        source=_clip(source, SHORT_LENGTH),
        event_type=_clip(event_type, SHORT_LENGTH),
        reason=_clip(reason, SHORT_LENGTH) or "unknown",
        error=_clip(headers.get(topology.ERROR_HEADER), MAX_ERROR_LENGTH),
        deliveries=deliveries,
        body=body.decode("utf-8", "replace"),
        content_type=_clip(content_type, SHORT_LENGTH),
        headers=_json_safe(headers),
        last_dead_at=now,
        status=DeadLetter.PARKED,
    )
    queue_name, event_id = str(queue)[:NAME_LENGTH], _event_id(body)
    found = session.scalars(
        sa.select(DeadLetter).where(DeadLetter.queue == queue_name, DeadLetter.event_id == event_id).with_for_update()
    ).one_or_none()
    if found is None:
        found = DeadLetter(queue=queue_name, event_id=event_id, first_dead_at=now, deaths=1, replays=0, **fields)
        session.add(found)
    else:
        for name, value in fields.items():
            setattr(found, name, value)
        found.deaths += 1
    session.flush()
    return found


def view(letter: DeadLetter, with_body: bool = False) -> dict[str, Any]:
    shown = {
        "id": letter.id,
        "queue": letter.queue,
        "source": letter.source,
        "event_type": letter.event_type,
        "event_id": letter.event_id,
        "reason": letter.reason,
        "error": letter.error,
        "deliveries": letter.deliveries,
        "deaths": letter.deaths,
        "status": letter.status,
        "first_dead_at": letter.first_dead_at,
        "last_dead_at": letter.last_dead_at,
        "replays": letter.replays,
        "replayed_at": letter.replayed_at,
        "replayed_by": letter.replayed_by,
    }
    if with_body:
        shown.update(body=letter.body, content_type=letter.content_type, headers=letter.headers)
    return shown


def list_letters(session: Session, status: str | None, page: int, page_size: int) -> dict[str, Any]:
    """Newest death first; only ``status``'s when given."""
    stmt = sa.select(DeadLetter).order_by(DeadLetter.last_dead_at.desc(), DeadLetter.id.desc())
    if status is not None:
        stmt = stmt.where(DeadLetter.status == status)
    rows, total = page_of(session, stmt, page, page_size)
    return listing([view(r) for r in rows], total, page, page_size)


def get(session: Session, letter_id: int, for_update: bool = False) -> DeadLetter:
    stmt = sa.select(DeadLetter).where(DeadLetter.id == letter_id)
    found = session.scalars(stmt.with_for_update() if for_update else stmt).one_or_none()
    if found is None:
        raise NotFound(f"no dead letter {letter_id}")
    return found


def waiting(session: Session) -> int:
    """How many dead letters wait for an operator (parked, not replayed since)."""
    return int(session.scalar(sa.select(sa.func.count()).where(DeadLetter.status == DeadLetter.PARKED)) or 0)


def replay_message(letter: DeadLetter) -> tuple[str, bytes, dict[str, Any], str | None]:
    """``(queue, body, headers, content_type)`` to send for a replay of ``letter``: its original
    headers (nameko's call IDs) without those of its death, marked as a replay of it. ``Conflict``
    for a queue no handler of the suite reads (nothing to send it to)."""
    queues = {s.queue for s in topology.SUBSCRIPTIONS}
    if letter.queue not in queues:
        raise Conflict(
            f"dead letter {letter.id} came from queue {letter.queue!r}, which no handler of the suite reads: "
            f"it cannot be replayed"
        )
    headers = {k: v for k, v in (letter.headers or {}).items() if k not in DEATH_HEADERS}
    headers[topology.REPLAY_HEADER] = letter.id
    return letter.queue, letter.body.encode("utf-8"), headers, letter.content_type


def mark_replayed(letter: DeadLetter, by: str, now: datetime) -> None:
    letter.status = DeadLetter.REPLAYED
    letter.replays += 1
    letter.replayed_at = now
    letter.replayed_by = by[:NAME_LENGTH]
