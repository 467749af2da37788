"""Checks on an incoming notification request, in the order the webhook applies them.

Plain values in (header strings, bytes, a file-like body), typed errors out; no framework
imports, so every rule is testable without a server. Authentication comes first: a caller
without the token learns nothing about what else is wrong with its request.
"""

import hmac
import json

from shared.contracts.errors import InvalidRequest
from webhook.exceptions import PayloadTooLarge, Unauthorized, UnsupportedMediaType

ACCEPTED_CONTENT_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.events.v1+json",  # distribution 2.x
        "application/vnd.docker.distribution.events.v2+json",  # distribution 3.x
        "application/json",
    }
)

_READ_CHUNK = 64 * 1024


def check_token(authorization, expected_token):
    """``Authorization: Bearer <token>``, compared in constant time."""
    if not authorization:
        raise Unauthorized("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    if not hmac.compare_digest(token.strip().encode(), expected_token.encode()):
        raise Unauthorized("invalid bearer token", 'Bearer error="invalid_token"')


def check_content_type(content_type):
    """A registry notification media type (or plain JSON); parameters such as charset are fine."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {content_type or '(none)'!r} is not a registry notification; expected "
            f"one of {', '.join(sorted(ACCEPTED_CONTENT_TYPES))}"
        )


def read_body(stream, content_length, max_bytes):
    """The body, refused as soon as it is known to exceed ``max_bytes``.

    A declared Content-Length over the limit is refused before anything is read; a body without
    one (chunked) is read no further than one byte past the limit.
    """
    if content_length is not None and content_length > max_bytes:
        raise PayloadTooLarge(f"body of {content_length} bytes exceeds the limit of {max_bytes} bytes")
    chunks, size = [], 0
    while size <= max_bytes:
        try:
            chunk = stream.read(min(_READ_CHUNK, max_bytes + 1 - size))
        except (ValueError, OSError) as exc:
            # The server cannot decode the body: a chunk size that is not hexadecimal (eventlet's
            # ChunkReadError is a ValueError) or a chunked body cut short. The caller's mistake.
            raise InvalidRequest(f"body could not be read: {exc}") from exc
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > max_bytes:
        raise PayloadTooLarge(f"body exceeds the limit of {max_bytes} bytes")
    return b"".join(chunks)


def parse_envelope(body):
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


def _json_type(value):
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
