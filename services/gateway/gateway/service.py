"""The gateway service: the developers' console and the HTTP API, one nameko service (``@http``).

    nameko run --config services/gateway/config.yml gateway.service

It holds no data: every answer comes from the auth, catalog and deployer services over RPC,
each call made as the signed-in developer (``gateway.sessions``) and bounded by
``GATEWAY_RPC_TIMEOUT`` (then 503 with Retry-After). ``gateway.api`` has the API's routes,
``gateway.console`` the console's pages; docs/gateway-api.md describes both.
"""

import mimetypes
import os

from kombu.entity import TRANSIENT_DELIVERY_MODE as TRANSIENT
from werkzeug.wrappers import Request, Response

from gateway import api, console, openapi
from gateway.problems import MethodNotAllowed
from gateway.templating import STATIC
from gateway.web import ANY_METHOD, API, PAGE, WebProvider, json_answer, route
from shared.contracts.errors import NotFound
from shared.runtime.bounded_rpc import BoundedRpcProxy
from shared.runtime.metrics import Metrics


class GatewayService(api.ApiRoutes, console.ConsolePages):
    name = "gateway"
    metrics = Metrics()

    web = WebProvider()
    # A request is sent transient: a person waits for its answer, so one lost with a broker
    # restart is a 503 after GATEWAY_RPC_TIMEOUT, never worth a disk write per call (a persistent
    # message waits for the broker's fsync before its confirm).
    auth = BoundedRpcProxy("auth", "GATEWAY_RPC_TIMEOUT", delivery_mode=TRANSIENT)
    catalog = BoundedRpcProxy("catalog", "GATEWAY_RPC_TIMEOUT", delivery_mode=TRANSIENT)
    deployer = BoundedRpcProxy("deployer", "GATEWAY_RPC_TIMEOUT", delivery_mode=TRANSIENT)

    @route("GET", "/api/v1/openapi.json")
    def openapi_document(self, request: Request) -> Response:
        """The API's OpenAPI 3.1 document (no session needed)."""
        return json_answer(openapi.document_of(GatewayService))

    @route("GET", "/health")
    def health(self, request: Request) -> Response:
        """200 while the process serves requests (what a load balancer or probe asks)."""
        return json_answer({"status": "ok"})

    @route("GET", "/static/<path:name>", kind=PAGE)
    def static(self, request: Request, name: str) -> Response:
        """The console's CSS, script and images, from the package (nothing outside it)."""
        path = os.path.realpath(os.path.join(STATIC, name))
        if not path.startswith(STATIC + os.sep) or not os.path.isfile(path):
            raise NotFound(f"no file {name!r}")
        with open(path, "rb") as f:
            content = f.read()
        response = Response(content, mimetype=mimetypes.guess_type(path)[0] or "application/octet-stream")
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    @route(ANY_METHOD, "/api/<path:rest>", kind=API)
    def api_not_found(self, request: Request, rest: str) -> Response:
        """Any other request under /api/: 405 naming the methods a path takes, else 404."""
        allowed = allowed_methods(request.path)
        if allowed:
            raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}", allowed)
        raise NotFound(f"no such API path: {request.path} (GET /api/v1/openapi.json lists them)")

    @route(ANY_METHOD, "/<path:rest>", kind=PAGE)
    def page_not_found(self, request: Request, rest: str) -> Response:
        """Any other page: the console's 404 page (never the server's own)."""
        raise NotFound(f"no page at {request.path}")


def allowed_methods(path: str) -> list[str]:
    """The methods the API's documented routes take on ``path`` (none: no such path)."""
    from werkzeug.exceptions import MethodNotAllowed as Mismatch
    from werkzeug.exceptions import NotFound as NoRule
    from werkzeug.routing import Map, Rule

    rules = [Rule(url, methods=method.split(",")) for method, url, _ in openapi.api_routes(GatewayService)]
    rules.append(Rule("/api/v1/openapi.json", methods=["GET"]))
    adapter = Map(rules).bind("gateway")
    try:
        adapter.match(path, method="__none__")
    except Mismatch as exc:
        return sorted(exc.valid_methods or [])
    except NoRule:
        return []
    return []
