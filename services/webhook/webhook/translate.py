"""Registry notification events → the platform's domain events. No framework imports.

Every registry event gets exactly one ``Decision``:

* ``ignore`` — noise the platform never catalogues: blob pushes (``target.mediaType`` is
  ``application/octet-stream``) and the ``pull`` / ``mount`` actions;
* ``dispatch`` — a manifest ``push`` becomes ``image_pushed``; a ``delete`` (manifest, tag or
  repository) becomes ``image_deleted``;
* ``set_aside`` — anything else (unknown action, missing id/repository/digest, names that break
  the reference rules, …) becomes ``event_set_aside`` carrying the original event, so that an
  operator can see it. It is never refused: a 4xx would block the registry's queue for good.

Every ``event_id`` is derived from the registry event's ``id``: the registry re-sends the same
envelope until it gets a 2xx, and the consumers are idempotent on ``event_id``.
"""

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from marshmallow import Schema

from shared.contracts import events as contracts
from shared.contracts.errors import InvalidReference, InvalidRequest
from shared.contracts.reference import parse_repository, validate_digest, validate_tag

# Fixed for ever: changing it changes every event id, and consumers would apply retries twice.
EVENT_ID_NAMESPACE = uuid.UUID("7b2b6f30-680b-41ed-a3c1-74232dab04b4")

BLOB_MEDIA_TYPE = "application/octet-stream"
NOISE_ACTIONS = frozenset({"pull", "mount"})

DISPATCH = "dispatch"
SET_ASIDE = "set_aside"
IGNORE = "ignore"

T = TypeVar("T")


@dataclass(frozen=True)
class Decision:
    """What to do with one registry event; ``payload`` is the JSON-safe event to dispatch."""

    outcome: str
    event_type: str | None = None
    payload: dict[str, Any] | None = None
    reason: str | None = None

    @property
    def dispatches(self) -> bool:
        return self.outcome in (DISPATCH, SET_ASIDE)


class Unusable(Exception):
    """The registry event cannot become a domain event; the message says why."""


def event_id_for(registry_event_id: str, event_type: str) -> str:
    """The dispatched event's id: the same for every delivery of the same registry event."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{registry_event_id}:{event_type}"))


def translate_envelope(events: Iterable[Mapping[str, Any]], now: datetime | None = None) -> list[Decision]:
    """One ``Decision`` per event of an envelope's ``events`` list, in order."""
    return [_translate_guarded(event, now) for event in events]


def summarize(decisions: Sequence[Decision]) -> dict[str, int]:
    """The counts the webhook answers with."""
    return {
        "accepted": sum(d.outcome == DISPATCH for d in decisions),
        "set_aside": sum(d.outcome == SET_ASIDE for d in decisions),
        "ignored": sum(d.outcome == IGNORE for d in decisions),
    }


def _translate_guarded(event: Mapping[str, Any], now: datetime | None) -> Decision:
    try:
        return translate_event(event, now)
    except Exception as exc:  # noqa: BLE001  a bug must not turn into a 500 the registry retries for ever
        return set_aside(event, f"could not translate the event ({type(exc).__name__}: {exc})", now)


def translate_event(event: Mapping[str, Any], now: datetime | None = None) -> Decision:
    """Decide what one registry event (a dict) becomes."""
    target = event.get("target")
    action = _unicode_text(event.get("action"))
    if action in NOISE_ACTIONS:
        return Decision(IGNORE, reason=f"{action} events are not catalogued")
    if isinstance(target, dict) and (_text(target.get("mediaType")) or "").lower() == BLOB_MEDIA_TYPE:
        return Decision(IGNORE, reason="blob events are not catalogued")
    try:
        if action == "push":
            return _dispatch(contracts.IMAGE_PUSHED, contracts.ImagePushed, _image_pushed(event), event, now)
        if action == "delete":
            return _dispatch(contracts.IMAGE_DELETED, contracts.ImageDeleted, _image_deleted(event), event, now)
        raise Unusable(f"unknown action {action!r}" if action else "event has no action")
    except Unusable as exc:
        return set_aside(event, str(exc), now)


def set_aside(event: Mapping[str, Any], reason: str, now: datetime | None = None) -> Decision:
    """Keep an unusable event, with the reason, for the catalog's operators."""
    source_event_id = _unicode_text(event.get("id"))
    # A dict: mypy does not carry the isinstance() over to the second get().
    target = cast(dict[str, Any], event.get("target") if isinstance(event.get("target"), dict) else {})
    key = (
        source_event_id
        or "sha256:" + hashlib.sha256(json.dumps(event, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    )
    payload = contracts.make_event(
        contracts.EventSetAside,
        event_id=event_id_for(key, contracts.EVENT_SET_ASIDE),
        occurred_at=_occurred_at(event, now),
        source=contracts.WEBHOOK,
        reason=reason,
        source_event_id=source_event_id,
        action=_unicode_text(event.get("action")),
        repository=_unicode_text(target.get("repository")),
        payload=event,
    )
    return Decision(SET_ASIDE, contracts.EVENT_SET_ASIDE, payload, reason)


def _dispatch(
    event_type: str, schema: type[Schema], values: dict[str, Any], event: Mapping[str, Any], now: datetime | None
) -> Decision:
    try:
        payload = contracts.make_event(
            schema,
            event_id=event_id_for(values["source_event_id"], event_type),
            occurred_at=_occurred_at(event, now),
            **values,
        )
    except InvalidRequest as exc:
        raise Unusable(str(exc)) from exc
    return Decision(DISPATCH, event_type, payload)


def _image_pushed(event: Mapping[str, Any]) -> dict[str, Any]:
    common = _common(event)
    target = common.pop("target")
    digest = _text(target.get("digest"))
    if digest is None:
        raise Unusable("manifest push has no target.digest")
    media_type = _unicode_text(target.get("mediaType"))
    if media_type is None:
        raise Unusable("push has no target.mediaType: cannot tell a manifest from a blob")
    tag = _text(target.get("tag"))
    timestamp = _timestamp(event)
    return dict(
        common,
        digest=_checked(validate_digest, digest, "target.digest"),
        tag=_checked(validate_tag, tag, "target.tag") if tag is not None else None,
        media_type=media_type,
        size=_size(target.get("size")) or _size(target.get("length")),
        pushed_at=timestamp.isoformat() if timestamp else None,
    )


def _image_deleted(event: Mapping[str, Any]) -> dict[str, Any]:
    # manifest delete {repository, digest}; tag delete {repository, tag};
    # repository delete {repository}
    common = _common(event)
    target = common.pop("target")
    digest = _text(target.get("digest"))
    tag = _text(target.get("tag"))
    return dict(
        common,
        digest=_checked(validate_digest, digest, "target.digest") if digest is not None else None,
        tag=_checked(validate_tag, tag, "target.tag") if tag is not None else None,
    )


def _common(event: Mapping[str, Any]) -> dict[str, Any]:
    """The fields every dispatched event carries; raises ``Unusable`` when one is missing."""
    source_event_id = _unicode_text(event.get("id"))
    if source_event_id is None:
        raise Unusable("event has no id (a non-empty string)")
    target = event.get("target")
    if not isinstance(target, dict):
        raise Unusable("event has no target object")
    repository = _text(target.get("repository"))
    if repository is None:
        raise Unusable("event has no target.repository")
    namespace, _ = _checked(parse_repository, repository, "target.repository")
    return dict(
        target=target,
        namespace=namespace,
        repository=repository,
        actor=_unicode_text(_object(event, "actor").get("name")),
        request_id=_unicode_text(_object(event, "request").get("id")),
        source_event_id=source_event_id,
    )


def _checked(validate: Callable[[Any], T], value: Any, where: str) -> T:
    try:
        return validate(value)
    except InvalidReference as exc:
        raise Unusable(f"{where}: {exc}") from exc


def _text(value: object) -> str | None:
    """A non-empty string, or None: distribution 3.x sends "" where 2.x leaves a field out."""
    return value if isinstance(value, str) and value else None


def _unicode_text(value: object) -> str | None:
    """``_text`` that is also valid Unicode. JSON may carry a lone UTF-16 surrogate (``"\\ud800"``),
    which no UTF-8 encoder, hash or database takes: such an id, action, media type, actor or
    request id counts as absent. (Names, tags and digests with one break their own rules.)"""
    value = _text(value)
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return value


def _size(value: object) -> int | None:
    """A positive integer, or None: 3.x sends 0 where 2.x leaves the size out."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _object(event: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = event.get(key)
    return value if isinstance(value, dict) else {}


def _timestamp(event: Mapping[str, Any]) -> datetime | None:
    """The registry's time of the event in UTC, or None when it is missing or unreadable."""
    text = _text(event.get("timestamp"))
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)  # 3.11+ reads 'Z' and nanoseconds
        if value.tzinfo is None:  # distribution always sends a zone; a bare time is taken as UTC
            value = value.replace(tzinfo=UTC)
        # A time at the edge of the calendar whose UTC falls outside it (0001-01-01T00:00+05:00,
        # 9999-12-31T23:59-05:00) cannot be converted: unreadable like any other bad time.
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _occurred_at(event: Mapping[str, Any], now: datetime | None) -> str:
    # The registry's time keeps a retried delivery byte-identical to the first one.
    timestamp = _timestamp(event)
    if timestamp is not None:
        return timestamp.isoformat()
    return (now or datetime.now(UTC)).isoformat()
