"""nameko's ``@http`` with JSON bodies, errors included, statuses from one table.

Error bodies carry what each client reads: the registry's ``errors`` list and ``details`` (the
docker client prints them), and for the OAuth2 form the RFC 6749 ``error`` code.
"""

import json

from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Response

from auth.exceptions import http_status_for
from shared.contracts.errors import ImagehubError


def json_response(status, body, headers=None):
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def error_body(exc, status, code):
    # A 500 is our bug: the details go to the log (nameko logs it), not to the caller.
    message = str(exc) if status != 500 else "internal error"
    body = {"errors": [{"code": code, "message": message}], "details": message}
    oauth_error = getattr(exc, "oauth_error", None) or ("invalid_request" if status == 400 else None)
    if oauth_error:
        body.update(error=oauth_error, error_description=message)
    return body


class HttpEntrypoint(HttpRequestHandler):
    def response_from_exception(self, exc):
        status, code = http_status_for(exc)
        headers = getattr(exc, "headers", None) if isinstance(exc, ImagehubError) else None
        return json_response(status, error_body(exc, status, code), headers)


http = HttpEntrypoint.decorator
