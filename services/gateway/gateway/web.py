"""The gateway's HTTP edge: one ``@route`` entrypoint for its API and console, the answers' headers,
and ``Web``, what a worker knows of its request (the developer, the session, the settings).

* ``route(method, url, kind="api", doc=...)``: an API route answers errors as RFC 9457 problems
  (``gateway.problems``); a console page (``kind="page"``) as a page, and a request without a
  session is sent to the sign-in page. ``doc`` (``RouteDoc``) is what the OpenAPI document says
  of an API route (``gateway.openapi``).
* Every answer carries a strict Content-Security-Policy (nothing but the gateway's own scripts,
  styles and images; no framing), ``nosniff``, a ``Referrer-Policy``, ``no-store`` and
  ``X-Request-Id``.
"""

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from marshmallow import Schema, ValidationError
from nameko.containers import WorkerContext
from nameko.extensions import DependencyProvider
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from gateway import problems, sessions
from gateway.settings import Settings, load_settings
from shared.contracts.errors import ImagehubError, Unauthorized
from shared.runtime.http import REQUEST_ID_ENVIRON_KEY, JsonHttpEntrypoint, PayloadTooLarge, client_address
from shared.runtime.identity import IDENTITY_KEY, Identity, IdentityVerifier, broker_user
from shared.runtime.settings import settings_of

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
API, PAGE = "api", "page"
ANY_METHOD = "*"
EXPECTED: tuple[type[BaseException], ...] = (ImagehubError, HTTPException)


@dataclass(frozen=True)
class RouteDoc:
    """What the OpenAPI document says of an API route."""

    summary: str
    tag: str
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    response: Any = None  # a Schema class, a Schema instance (many=True), or None (no body)
    status: int = 200
    errors: tuple[int, ...] = (400, 401, 503)
    public: bool = False  # no session needed
    description: str = ""


def json_answer(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=dict(headers or {}), mimetype="application/json")


class GatewayRoute(JsonHttpEntrypoint):
    """nameko's ``@http`` for the gateway: problems for the API, pages for the console."""

    def __init__(
        self, method: str, url: str, expected_exceptions: tuple[type[BaseException], ...] = (), **options: Any
    ) -> None:
        # A caller's mistake or a service's typed refusal is expected: nameko logs it as such,
        # not as a crash with a traceback (a bug still is one).
        super().__init__(method, url, expected_exceptions=expected_exceptions or EXPECTED)
        self.kind: str = options.get("kind", API)
        self.doc: RouteDoc | None = options.get("doc")

    def body_limit(self) -> int | None:
        return settings_of(self.container, load_settings).max_body_bytes

    def get_url_rule(self) -> Rule:
        """``ANY_METHOD`` matches every method, even one no route declares (TRACE, PROPFIND): so
        the catch-all answers it as a problem, never nameko's HTML page."""
        return Rule(self.url, methods=None if self.method == ANY_METHOD else self.method.split(","))

    def handle_request(self, request: Request) -> Response:
        response = super().handle_request(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def error_answer(self, exc: BaseException, request: Request) -> Response:
        if isinstance(exc, RequestEntityTooLarge):
            exc = PayloadTooLarge(f"body exceeds the limit of {self.body_limit()} bytes")
        if problems.status_of(exc) == 500:
            log.error("%s %s failed: %r", request.method, request.path, exc, exc_info=exc)
        if self.kind == PAGE:
            return page_error(exc, request)
        return problem_answer(exc, request)


route = GatewayRoute.decorator


def problem_answer(exc: BaseException, request: Request) -> Response:
    instance, request_id = request.path, str(request.environ.get(REQUEST_ID_ENVIRON_KEY, ""))
    status, body, headers = problems.problem(exc, instance, request_id)
    return Response(json.dumps(body), status=status, headers=headers, mimetype=problems.PROBLEM_JSON)


def page_error(exc: BaseException, request: Request) -> Response:
    """A console page's error: to the sign-in page without a session, else the error page."""
    status = problems.status_of(exc)
    if status == 401 and request.method in sessions.SAFE_METHODS:
        response = Response(status=303, headers={"Location": f"/signin?next={quote(request.full_path.rstrip('?'))}"})
        if isinstance(exc, Unauthorized) and request.cookies.get(sessions.COOKIE):
            response.delete_cookie(sessions.COOKIE, path="/")
        return response
    from gateway.templating import render_error  # the console's templates (imported when first needed)

    return render_error(exc, status, request)


class GatewayRoutes:
    """What the API's and the console's routes share, mixed into ``GatewayService``, which gives
    ``web`` and the three RPC proxies."""

    web: "Web"
    auth: Any
    catalog: Any
    deployer: Any

    def _developer(self, request: Request) -> sessions.Developer:
        """The request's signed-in developer (``Web.developer``): call it first."""
        return self.web.developer(request, self.auth)


class WebProvider(DependencyProvider):
    """``web = WebProvider()`` on the gateway: a worker's ``Web``."""

    def setup(self) -> None:
        self.settings: Settings = settings_of(self.container, load_settings)
        try:
            self.verifier = IdentityVerifier.from_certificate_file(
                self.settings.auth_cert_file, self.settings.auth_issuer
            )
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"AUTH_CERT_FILE: not a usable certificate of the auth service ({exc})") from None
        self.open_sessions = sessions.OpenSessions(self.settings.session_recheck)
        self.broker_user = broker_user(self.container.config.get("AMQP_URI") or "")
        self.tokens = sessions.VerifiedTokens(self.verifier, self.broker_user)

    def get_dependency(self, worker_ctx: WorkerContext) -> "Web":
        return Web(worker_ctx, self)


@dataclass
class Web:
    worker_ctx: WorkerContext
    provider: WebProvider
    developer_: sessions.Developer | None = field(default=None)

    @property
    def settings(self) -> Settings:
        return self.provider.settings

    def developer(self, request: Request, auth: Any) -> sessions.Developer:
        """The request's signed-in developer, whose identity every later call of this worker
        carries; ``Unauthorized`` (no, bad, expired or ended session), ``CsrfRejected``."""
        provider = self.provider
        developer = sessions.authenticate(request, provider.tokens, self.settings.csrf_key)
        self.act_as(developer.token)
        sid = developer.identity.session or ""
        if not provider.open_sessions.fresh(sid):
            try:
                auth.get_session()
            except Unauthorized:
                provider.open_sessions.forget(sid)
                raise
            provider.open_sessions.confirmed(sid)
        self.developer_ = developer
        return developer

    def read_identity(self, token: str) -> Identity:
        """The identity a token the auth service just signed names (checked all the same)."""
        return self.provider.tokens.identity(token)

    def act_as(self, token: str) -> None:
        self.worker_ctx.data[IDENTITY_KEY] = token  # context_data is a copy; data is what calls carry

    def ended(self, developer: sessions.Developer) -> None:
        self.provider.open_sessions.forget(developer.identity.session or "")

    def client_address(self, request: Request) -> str:
        return client_address(request, self.settings.trusted_proxies)


def load_query(request: Request, schema: type[Schema]) -> dict[str, Any]:
    """The query string through ``schema``; a parameter given twice, unknown or bad is a 400
    naming it."""
    args = request.args
    repeated = sorted(k for k in args if len(args.getlist(k)) > 1)
    if repeated:
        raise problems.FieldProblems(
            f"{repeated[0]} is given more than once",
            [{"field": k, "message": "is given more than once"} for k in repeated],
        )
    return _load(schema, dict(args.items()))


def load_json(request: Request, schema: type[Schema]) -> dict[str, Any]:
    """The JSON body through ``schema``: 415 for another media type, 400 naming what is wrong."""
    if request.mimetype != "application/json":
        raise problems.UnsupportedMediaType(f"send the body as application/json, not {request.mimetype or 'nothing'}")
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise problems.FieldProblems(
            f"the body is not JSON: {exc}", [{"field": "", "message": "is not JSON"}]
        ) from None
    if not isinstance(data, dict):
        raise problems.FieldProblems("the body must be a JSON object", [{"field": "", "message": "must be an object"}])
    return _load(schema, data)


def _load(schema: type[Schema], data: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema().load(data)
    except ValidationError as exc:
        found = [
            {"field": str(name), "message": str(message)}
            for name, messages in sorted(exc.normalized_messages().items(), key=lambda kv: str(kv[0]))
            for message in _flatten(messages)
        ]
        raise problems.FieldProblems("; ".join(f"{e['field']} {e['message']}" for e in found), found) from None
    return loaded


def _flatten(messages: Any) -> list[str]:
    if isinstance(messages, list):
        return [str(m) for m in messages]
    if isinstance(messages, dict):
        return [f"{k}: {m}" for k, v in messages.items() for m in _flatten(v)]
    return [str(messages)]
