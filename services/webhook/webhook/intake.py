"""Checks on an incoming notification request, in the order the webhook applies them.

Plain values in (header strings, bytes, a file-like body), typed errors out; no framework
imports, so every rule is testable without a server. Authentication comes first: a caller
without the token learns nothing about what else is wrong with its request.
"""

import hmac
import json
from typing import Any

from shared.contracts.errors import InvalidRequest
from shared.runtime.http import read_body
from webhook.exceptions import Unauthorized, UnsupportedMediaType

__all__ = ["check_content_type", "check_token", "parse_envelope", "read_body"]

ACCEPTED_CONTENT_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.events.v1+json",  # distribution 2.x
        "application/vnd.docker.distribution.events.v2+json",  # distribution 3.x
        "application/json",
    }
)


def check_token(authorization: str | None, expected_token: str) -> None:
    """``Authorization: Bearer <token>``, compared in constant time."""
    if not authorization:
        raise Unauthorized("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    if not hmac.compare_digest(token.strip().encode(), expected_token.encode()):
        raise Unauthorized("invalid bearer token", 'Bearer error="invalid_token"')


def check_content_type(content_type: str | None) -> None:
    """A registry notification media type (or plain JSON); parameters such as charset are fine."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'!r} is not a registry notification; expected "
            f"one of {', '.join(sorted(ACCEPTED_CONTENT_TYPES))}"
        )


def parse_envelope(body: bytes) -> list[dict[str, Any]]:
    """The ``events`` list of a notification envelope ``{"events": [{...}, ...]}``."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise InvalidRequest(f"body must be a JSON object with an 'events' list, not {_json_type(envelope)}")
    if "events" not in envelope:
        raise InvalidRequest("body has no 'events' list")
    events = envelope["events"]
    if not isinstance(events, list):
        raise InvalidRequest(f"'events' must be a list, not {_json_type(events)}")
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidRequest(f"events[{index}] must be an object, not {_json_type(event)}")
    return events


def _json_type(value: object) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)
