"""Errors as HTTP answers: each typed error has one status, and the body is an RFC 9457 problem
(``application/problem+json``) that names the field at fault where there is one.

``problem(exc, instance, request_id)`` → ``(status, body, headers)``; nothing else decides a status.
A bug is a 500 that says nothing of itself (nameko logs it).
"""

import re
from http import HTTPStatus
from typing import Any

from werkzeug.exceptions import HTTPException

from shared.contracts.errors import (
    Conflict,
    Forbidden,
    ImagehubError,
    InvalidReference,
    InvalidRequest,
    NotFound,
    RateLimited,
    RegistryUnavailable,
    ServiceUnavailable,
    Unauthorized,
)
from shared.runtime.http import PayloadTooLarge

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:imagehub:problem:"
# A transient failure asks to come back after this many seconds.
RETRY_AFTER_SECONDS = 5

STATUSES: tuple[tuple[type[ImagehubError], int], ...] = (
    (InvalidRequest, 400),
    (InvalidReference, 400),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (RateLimited, 429),
    (ServiceUnavailable, 503),
    (RegistryUnavailable, 503),
)


class MethodNotAllowed(ImagehubError):
    """``MethodNotAllowed(message, allowed_methods)``: 405 with ``Allow``."""


class UnsupportedMediaType(ImagehubError):
    """A body that is not JSON where the API takes JSON (415)."""


GATEWAY_STATUSES: tuple[tuple[type[ImagehubError], int], ...] = (
    (MethodNotAllowed, 405),
    (UnsupportedMediaType, 415),
)

# "field message; other.field message": how every service's InvalidRequest names its fields.
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?)*) (.+)$", re.S)


def status_of(exc: BaseException) -> int:
    if isinstance(exc, HTTPException) and exc.code:
        return exc.code
    for cls, status in GATEWAY_STATUSES + STATUSES:
        if isinstance(exc, cls):
            return status
    return 500


def slug(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")


def field_errors(message: str) -> list[dict[str, str]]:
    """``[{"field", "message"}]`` from an ``InvalidRequest`` message, one per ``; ``-separated part
    that starts with a field name (a part that does not is under the field ``""``)."""
    errors = []
    for part in (p.strip() for p in message.split("; ")):
        if not part:
            continue
        found = _FIELD.match(part)
        errors.append({"field": found.group(1), "message": found.group(2)} if found else {"field": "", "message": part})
    return errors


def problem(
    exc: BaseException, instance: str, request_id: str, extra: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    status = status_of(exc)
    headers: dict[str, str] = {}
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug(status),
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": _detail(exc, status),
        "instance": instance,
        "request_id": request_id,
    }
    if status in (400,) and isinstance(exc, ImagehubError):
        body["errors"] = getattr(exc, "field_errors", None) or field_errors(str(exc))
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        body["retry_after"] = exc.retry_after
    elif status == 503:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        body["retry_after"] = RETRY_AFTER_SECONDS
    elif status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="imagehub"'
    elif isinstance(exc, MethodNotAllowed) and len(exc.args) > 1:
        headers["Allow"] = ", ".join(exc.args[1])
    if isinstance(exc, Conflict):
        body.update(exc.details)
    body.update(extra or {})
    return status, body, headers


def _detail(exc: BaseException, status: int) -> str:
    if status == 500:
        return "internal error (the gateway's log has it under this request id)"
    if isinstance(exc, HTTPException):
        return exc.description or HTTPStatus(status).phrase
    return str(exc)


class FieldProblems(InvalidRequest):
    """An ``InvalidRequest`` whose fields are already known (the gateway's own validation):
    ``FieldProblems(message, [{"field", "message"}])``."""

    @property
    def field_errors(self) -> list[dict[str, str]]:
        return list(self.args[1]) if len(self.args) > 1 else field_errors(str(self))
