"""The HTTP edge of a service, written once: nameko's ``@http`` answering JSON, errors included.

* ``JsonHttpEntrypoint``: a service subclasses it with its ``error_response(exc) -> (status, body)``
  (one table per service maps its typed errors to statuses); a 500 tells the caller nothing of the
  bug (nameko logs it). Headers an error carries (``WWW-Authenticate``, ``Retry-After``) are sent.
* Every answer carries ``X-Request-Id``: the caller's, if it sent a well-formed one, else a new
  one, so that a request can be followed through the logs.
* ``read_body``: a request body read no further than a limit, ``PayloadTooLarge`` (413) past it;
  ``max_body_bytes`` (a service's ``<PREFIX>_MAX_BODY_BYTES``) bounds what Werkzeug reads for
  ``request.form`` and ``get_data`` the same way.
* Slow clients time out: a connection that sends nothing for ``WEB_SOCKET_TIMEOUT`` seconds (10
  by default) is closed, so a client trickling its request cannot hold a worker for ever.
"""

import io
import json
import re
import uuid
from functools import partial
from typing import Any, BinaryIO

import eventlet
from eventlet.event import Event
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from shared.contracts.errors import ImagehubError, InvalidRequest

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID_ENVIRON_KEY = "imagehub.request_id"
_WELL_FORMED_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_READ_CHUNK = 64 * 1024
SOCKET_TIMEOUT_KEY = "WEB_SOCKET_TIMEOUT"
DEFAULT_SOCKET_TIMEOUT = 10.0


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


def client_address(request: Request, trusted_proxies: frozenset[str] | set[str]) -> str:
    """The client's address: the peer's, or, from a trusted proxy, the last hop its
    ``X-Forwarded-For`` names that is not a trusted proxy itself."""
    address = request.remote_addr or ""
    if address in trusted_proxies:
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
        untrusted = [h for h in hops if h not in trusted_proxies]
        address = untrusted[-1] if untrusted else address
    return address


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


def _with_body(request: Request, body: bytes, limit: int) -> Request:
    """The request again, its chunked body read into memory and declared by a Content-Length."""
    environ = request.environ
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    again = type(request)(environ)
    # What the web server put on the request (nameko's path_values, the URL rule), not what
    # werkzeug derived from the body or headers that changed.
    derived = {"environ", "content_length", "stream", "form", "files", "_cached_data", "headers"}
    for key, value in vars(request).items():
        if key not in derived:
            vars(again).setdefault(key, value)
    again.max_content_length = again.max_form_memory_size = limit
    return again


class BoundedWebServer(WebServer):
    """nameko's web server, whose client sockets time out after ``WEB_SOCKET_TIMEOUT`` seconds,
    and which owns its port alone.

    nameko listens with ``eventlet.listen``, which sets ``SO_REUSEPORT``: a second process bound
    to a port already in use starts without a word and the kernel shares the connections between
    the two (seen in the suite: a token request reached another stack's gateway and got its 404).
    Here a taken port fails the start, as with any other server."""

    def start(self) -> None:
        if not getattr(self, "_starting", False):
            self._starting = True
            self._sock = eventlet.listen(self.bind_addr, reuse_port=False)
            self._sock.settimeout(None)  # nameko's own work-around (kombu issue 838)
            self._serv = self.get_wsgi_server(self._sock, self.get_wsgi_app())
            self._gt = self.container.spawn_managed_thread(self.run)

    def get_wsgi_server(self, sock: Any, wsgi_app: Any, protocol: Any = HttpOnlyProtocol, debug: bool = False) -> Any:
        server = super().get_wsgi_server(sock, wsgi_app, protocol=protocol, debug=debug)
        timeout = float(self.container.config.get(SOCKET_TIMEOUT_KEY) or DEFAULT_SOCKET_TIMEOUT)
        if timeout <= 0:
            raise ValueError(f"{SOCKET_TIMEOUT_KEY} must be a positive number of seconds, got {timeout}")
        server.socket_timeout = timeout
        return server


class JsonHttpEntrypoint(HttpRequestHandler):
    """nameko's ``@http``: JSON error bodies from the service's ``error_response``, and the request
    id on every answer (also in ``request.environ[REQUEST_ID_ENVIRON_KEY]`` for the worker).

    ``max_body_bytes``: what a service takes at most in a body (None: no bound of this class's).
    A body over it is a ``PayloadTooLarge`` (413), refused as soon as it is known to be over."""

    server = BoundedWebServer()
    max_body_bytes: int | None = None

    def handle_request(self, request: Request) -> Response:
        request_id = request_id_of(request)
        request.environ[REQUEST_ID_ENVIRON_KEY] = request_id
        limit = self.body_limit()
        if limit is not None:
            request.max_content_length = limit
            request.max_form_memory_size = limit
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if limit is not None and chunked and request.content_length is None:
            # Werkzeug would read no byte of it (eventlet sets no wsgi.input_terminated) and answer
            # as if the body were empty. Go clients (skopeo, podman, containerd) post forms this
            # way: read it here, no further than one byte past the limit, and hand it on whole.
            try:
                body = read_body(request.environ["wsgi.input"], None, limit)
            except (PayloadTooLarge, InvalidRequest) as exc:
                response = self.error_answer(exc, request)
            else:
                request = _with_body(request, body, limit)
                response = self._run_worker(request)
        else:
            response = self._run_worker(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response

    def _run_worker(self, request: Request) -> Response:
        """nameko's ``HttpRequestHandler.handle_request``, with the request at hand for the error."""
        request.shallow = False
        try:
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(
                self, args, kwargs, context_data={}, handle_result=partial(self.handle_result, event)
            )
            return self.response_from_result(event.wait())
        except Exception as exc:  # noqa: BLE001 - as nameko's: every failure gets an answer
            return self.error_answer(exc, request)

    def error_answer(self, exc: BaseException, request: Request) -> Response:
        """The answer to a request that failed with ``exc`` (by default ``response_from_exception``)."""
        return self.response_from_exception(exc)

    def body_limit(self) -> int | None:
        return self.max_body_bytes

    def response_from_exception(self, exc: BaseException) -> Response:
        if isinstance(exc, RequestEntityTooLarge):
            exc = PayloadTooLarge(f"body exceeds the limit of {self.body_limit()} bytes")
        status, body = self.error_response(exc)
        headers = getattr(exc, "headers", None) if isinstance(exc, ImagehubError) else None
        return json_response(status, body, headers)

    def error_response(self, exc: BaseException) -> tuple[int, Any]:
        """``(status, JSON body)`` for an error; each service says how."""
        raise NotImplementedError
