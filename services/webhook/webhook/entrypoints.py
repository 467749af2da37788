"""nameko's ``@http`` for the webhook (``shared.runtime.http``): errors as ``{"error": message}``,
statuses from the webhook's table (``webhook.exceptions``)."""

from typing import Any

from shared.runtime.http import JsonHttpEntrypoint, json_response, public_message
from webhook.exceptions import http_status_for

__all__ = ["HttpEntrypoint", "http", "json_response"]


class HttpEntrypoint(JsonHttpEntrypoint):
    def error_response(self, exc: BaseException) -> tuple[int, Any]:
        status = http_status_for(exc)
        return status, {"error": public_message(exc, status)}


http = HttpEntrypoint.decorator
