"""The console: server-rendered pages over the same RPC as the API (a first cut; see docs/console.md)."""

from typing import Any

from werkzeug.wrappers import Request, Response

from gateway.web import PAGE

__all__ = ["PAGE", "ConsolePages"]


class ConsolePages:
    web: Any
    auth: Any
    catalog: Any
    deployer: Any

    def _page_stub(self, request: Request) -> Response:  # pragma: no cover - replaced by the console
        return Response("console", mimetype="text/plain")
