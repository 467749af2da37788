"""The HTTP edge of a service, written once: nameko's ``@http`` answering JSON, errors included.

* ``JsonHttpEntrypoint``: a service subclasses it with its ``error_response(exc) -> (status, body)``
  (one table per service maps its typed errors to statuses); a 500 tells the caller nothing of the
  bug (nameko logs it). Headers an error carries (``WWW-Authenticate``, ``Retry-After``) are sent.
* Every answer carries ``X-Request-Id``: the caller's, if it sent a well-formed one, else a new
  one, so that a request can be followed through the logs.
* ``read_body``: a request body read no further than a limit, ``PayloadTooLarge`` (413) past it.
"""

import json
import re
import uuid
from typing import Any, BinaryIO

from nameko.web.handlers import HttpRequestHandler
from werkzeug.wrappers import Request, Response

from shared.contracts.errors import ImagehubError, InvalidRequest

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_ENVIRON_KEY = "imagehub.request_id"
_WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_READ_CHUNK = 64 * 1024


class PayloadTooLarge(ImagehubError):
    """The request body is larger than the service takes (413)."""


def json_response(status: int, body: Any, headers: Any = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def public_message(exc: BaseException, status: int) -> str:
    """What a caller is told of an error: its message, or nothing of a bug (a 500)."""
    return str(exc) if status != 500 else "internal error"


def request_id_of(request: Request) -> str:
    """The request's id: the caller's ``X-Request-Id`` if well-formed, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _WELL_FORMED_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def read_body(stream: BinaryIO, content_length: int | None, max_bytes: int) -> bytes:
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


class JsonHttpEntrypoint(HttpRequestHandler):
    """nameko's ``@http``: JSON error bodies from the service's ``error_response``, and the request
    id on every answer (also in ``request.environ[REQUEST_ID_ENVIRON_KEY]`` for the worker)."""

    def handle_request(self, request: Request) -> Response:
        request_id = request_id_of(request)
        request.environ[REQUEST_ID_ENVIRON_KEY] = request_id
        response = super().handle_request(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    def response_from_exception(self, exc: BaseException) -> Response:
        status, body = self.error_response(exc)
        headers = getattr(exc, "headers", None) if isinstance(exc, ImagehubError) else None
        return json_response(status, body, headers)

    def error_response(self, exc: BaseException) -> tuple[int, Any]:
        """``(status, JSON body)`` for an error; each service says how."""
        raise NotImplementedError
