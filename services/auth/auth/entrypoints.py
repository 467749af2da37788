"""nameko's ``@http`` for the auth service (``shared.runtime.http``), statuses from its table.

Error bodies carry what each client reads: the registry's ``errors`` list and ``details`` (the
docker client prints them), and for the OAuth2 form the RFC 6749 ``error`` code.
"""

from typing import Any

from auth.exceptions import http_status_for
from shared.runtime.http import JsonHttpEntrypoint, PayloadTooLarge, json_response, public_message

__all__ = ["HttpEntrypoint", "error_body", "http", "json_response"]


def error_body(exc: BaseException, status: int, code: str) -> dict[str, Any]:
    message = public_message(exc, status)
    body = {"errors": [{"code": code, "message": message}], "details": message}
    oauth_error = getattr(exc, "oauth_error", None) or ("invalid_request" if status == 400 else None)
    if oauth_error:
        body.update(error=oauth_error, error_description=message)
    return body


# The token endpoint takes a short form (grant type, user name, password, scopes): a few KiB.
MAX_BODY_BYTES_KEY, DEFAULT_MAX_BODY_BYTES = "AUTH_MAX_BODY_BYTES", 16384


class HttpEntrypoint(JsonHttpEntrypoint):
    def body_limit(self) -> int:
        return int(self.container.config.get(MAX_BODY_BYTES_KEY) or DEFAULT_MAX_BODY_BYTES)

    def error_response(self, exc: BaseException) -> tuple[int, Any]:
        if isinstance(exc, PayloadTooLarge):
            return 413, error_body(exc, 413, "SIZE_INVALID")
        status, code = http_status_for(exc)
        return status, error_body(exc, status, code)


http = HttpEntrypoint.decorator
