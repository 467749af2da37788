"""nameko's ``@http`` with JSON bodies, errors included, statuses from one table."""

import json

from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from shared.contracts.errors import ImagehubError
from webhook.exceptions import http_status_for


def json_response(status, body, headers=None):
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


class HttpEntrypoint(HttpRequestHandler):
    def response_from_exception(self, exc):
        status = http_status_for(exc)
        # A 500 is our bug: the details go to the log (nameko logs it), not to the caller.
        message = str(exc) if status != 500 else "internal error"
        headers = getattr(exc, "headers", None) if isinstance(exc, ImagehubError) else None
        return json_response(status, {"error": message}, headers)


http = HttpEntrypoint.decorator
