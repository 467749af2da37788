"""The registry's token service (HTTP) and the accounts API (RPC).

Docker Distribution delegates authentication here (``auth.token`` in its config): a client that
the registry answers 401 asks ``GET /token`` (or ``POST /token``, the OAuth2 form) for a token
covering the scopes it needs, with its credentials, and presents it to the registry. Other
platform components manage tenants, accounts and robots over RPC.

Entrypoints only translate: parse the request or load the arguments, run the rules
(``auth.logins``, ``auth.issuing``, ``auth.accounts``) in one session, answer.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Request, Response

from auth import accounts, identities, issuing, logins, schemas
from auth.dependencies import AuthDatabase, Credentials, CredentialTools
from auth.entrypoints import http, json_response
from auth.exceptions import EXPECTED_ERRORS, TooManyAttempts, Unauthorized
from auth.grants import ANONYMOUS_PRINCIPAL, Principal
from auth.models import AuditRecord, Base
from auth.scopes import parse_scopes
from shared.contracts import errors
from shared.contracts.errors import USER_ERRORS, Conflict, InvalidRequest, RateLimited
from shared.runtime import audit  # the module, not its classes: `nameko run` takes every class here
from shared.runtime.audit import AuditTrail, target_from
from shared.runtime.clock import utcnow
from shared.runtime.http import client_address
from shared.runtime.identity import Caller, role_of, rpc
from shared.runtime.metrics import Metrics

log = logging.getLogger(__name__)

DEFAULT_ROBOT_CREDENTIAL_TTL = 600

T = TypeVar("T")


class AuthService(audit.AuditListing):
    name = "auth"
    metrics = Metrics()

    db = AuthDatabase(Base)
    tools: Credentials = CredentialTools()  # a worker sees the provider's Credentials
    caller = Caller()
    audit_model = AuditRecord
    audit_trail = AuditTrail(
        AuditRecord,
        {
            "sign_in": target_from("name"),
            "sign_out": target_from(),
            "create_tenant": target_from("tenant_id"),
            "disable_tenant": target_from("tenant_id"),
            "enable_tenant": target_from("tenant_id"),
            "create_account": target_from("name"),
            "disable_account": target_from("name"),
            "enable_account": target_from("name"),
            "set_password": target_from("name"),
            "create_robot": target_from("tenant_id", "name"),
            "rotate_robot_secret": target_from("name"),
            "issue_robot_credential": target_from("tenant_id", "name"),
        },
    )

    # -- the registry's token endpoint ---------------------------------------------------------

    @http("GET", "/token", expected_exceptions=EXPECTED_ERRORS)
    def get_token(self, request: Request) -> Response:
        """Distribution's token protocol: Basic credentials (or none: anonymous) and one
        ``scope`` parameter per resource; ``offline_token=true`` adds a refresh token."""
        settings = self.tools.settings
        issuing.check_service(request.args.get("service"), settings.service)
        scopes = parse_scopes(request.args.getlist("scope"))
        principal = self._caller(request)
        refresh_token = None
        if issuing.wants_refresh_token(request.args.get("offline_token")):
            refresh_token = self._refresh_token_for(principal)
        return json_response(
            200,
            issuing.token_answer(
                self.tools.issuer, principal, scopes, settings.anonymous_pull, utcnow(), refresh_token
            ),
        )

    @http("POST", "/token", expected_exceptions=EXPECTED_ERRORS)
    def post_token(self, request: Request) -> Response:
        """The OAuth2 form: ``grant_type=password`` (``username``, ``password``;
        ``access_type=offline`` adds a refresh token) or ``grant_type=refresh_token``."""
        settings = self.tools.settings
        form = request.form
        issuing.check_service(form.get("service"), settings.service)
        grant_type = form.get("grant_type")
        issuing.check_grant_type(grant_type, settings.refresh_token_ttl > 0)
        scopes = parse_scopes(form.getlist("scope"))
        refresh_token = None
        if grant_type == issuing.PASSWORD_GRANT:
            if not form.get("username") or not form.get("password"):
                raise InvalidRequest("grant_type 'password' needs username and password")
            principal = self._login(form["username"], form["password"], self._address(request))
            if issuing.wants_refresh_token(form.get("access_type")):
                refresh_token = self._refresh_token_for(principal)
        else:
            with self.db.get_session(close_on_exit=True) as session:
                principal = logins.refresh(session, self.tools.issuer, form.get("refresh_token"), utcnow())
        return json_response(
            200,
            issuing.token_answer(
                self.tools.issuer, principal, scopes, settings.anonymous_pull, utcnow(), refresh_token, oauth=True
            ),
        )

    @http("GET", "/health")
    def health(self, request: Request) -> Response:
        """Always 200 while the service runs; ``database`` says whether it answered just now."""
        try:
            with self.db.get_session(close_on_exit=True) as session:
                session.execute(sa.text("SELECT 1"))
            database: dict[str, Any] = {"reachable": True, "error": None}
        except DBAPIError as exc:
            database = {"reachable": False, "error": str(exc).splitlines()[0]}
        key = self.tools.issuer.key
        return json_response(
            200,
            {
                "status": "ok",
                "database": database,
                "issuer": self.tools.settings.issuer,
                "service": self.tools.settings.service,
                "algorithm": key.algorithm,
                "kid": key.kid,
                "certificate_expires_at": key.certificates[0].not_valid_after_utc.isoformat(),
            },
        )

    def _caller(self, request: Request) -> Principal:
        if not request.headers.get("Authorization"):
            return ANONYMOUS_PRINCIPAL
        credentials = request.authorization
        if credentials is None or credentials.type != "basic":
            raise Unauthorized("the token service takes HTTP Basic credentials (or none, for anonymous access)")
        return self._login(credentials.username, credentials.password, self._address(request))

    def _address(self, request: Request) -> str:
        return client_address(request, self.tools.settings.trusted_proxies)

    def _login(self, username: str | None, password: str | None, address: str) -> Principal:
        tools = self.tools
        with self.db.get_session(close_on_exit=True) as session:
            outcome = logins.authenticate(
                session, tools.hasher, tools.issuer, tools.settings.login, username, password, utcnow(), address
            )
        if outcome.error is not None:  # raised only now: the failure is committed
            log.info("login refused for %r: %s", (username or "")[:64], outcome.error)
        return outcome.principal_or_raise()

    def _refresh_token_for(self, principal: Principal) -> str | None:
        if principal.generation is None or self.tools.settings.refresh_token_ttl <= 0:
            return None  # anonymous, a short-lived robot credential, or turned off
        return self.tools.issuer.refresh_token(principal.name, principal.generation, utcnow())

    # -- RPC: signing in -----------------------------------------------------------------------

    @rpc(expected_exceptions=USER_ERRORS + (RateLimited,))
    def sign_in(self, name: str, password: str, client_address: str | None = None) -> dict[str, Any]:
        """A developer identity for the account ``name`` (a person's, not a robot's) and its
        password: ``{"identity", "account", "tenant_id", "is_admin", "expires_in", "expires_at"}``.
        The CLI and the gateway pass ``identity`` with every later call (shared.runtime.identity).

        Failures are counted like the token endpoint's, per name and address: the address is
        ``client_address`` when the gateway (which saw the person's) gives it, else the caller's
        broker user. ``Unauthorized`` (one answer for every reason), ``RateLimited`` (with the
        seconds to wait), ``Forbidden`` (a robot)."""
        caller = self.caller.broker_user
        if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
            raise InvalidRequest("name and password are required strings")
        address = f"{identities.RPC_ADDRESS_PREFIX}{caller}"
        if role_of(caller) == "gateway" and isinstance(client_address, str) and client_address:
            address = client_address[:64]
        try:
            principal = self._login(name, password, address)
        except TooManyAttempts as exc:
            raise RateLimited(str(exc), exc.retry_after) from None
        except Unauthorized as exc:
            raise errors.Unauthorized(str(exc)) from None
        issuer = self.tools.issuer
        claims = identities.identity_claims(issuer.issuer, principal, self.tools.settings.identity_ttl, utcnow())
        return identities.sign_in_answer(issuer.sign(claims), claims)

    @rpc(expected_exceptions=USER_ERRORS)
    def get_session(self) -> dict[str, Any]:
        """The calling developer's session, if still open: ``{"account", "tenant_id", "is_admin",
        "session", "expires_at"}``. ``Unauthorized`` once it was signed out, its account disabled
        or its password changed (the identity itself stays valid until it expires: services check
        it offline; the gateway asks this before acting on a session)."""
        identity = self.caller.identity
        with self.db.get_session(close_on_exit=True) as session:
            return identities.open_session(session, identity, utcnow())

    @rpc(expected_exceptions=USER_ERRORS)
    def sign_out(self) -> dict[str, Any]:
        """End the calling developer's session (``get_session`` refuses it from now on);
        repeatable. ``{"account", "session", "ended": true}``."""
        identity = self.caller.identity
        return self._write(lambda session, now: identities.end_session(session, identity, now))

    # -- RPC: tenants --------------------------------------------------------------------------

    @rpc(expected_exceptions=USER_ERRORS)
    def create_tenant(self, tenant_id: str, display_name: str | None = None) -> dict[str, Any]:
        """Add a tenant (its namespace is ``tenant_id``). Returns the tenant;
        ``Conflict`` if it exists, ``InvalidRequest`` for a bad ID."""
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.NewTenant, tenant_id=tenant_id, display_name=display_name)
        return self._write(
            lambda session, now: schemas.TenantOut().dump(accounts.create_tenant(session, now=now, **args))
        )

    @rpc(expected_exceptions=USER_ERRORS)
    def get_tenant(self, tenant_id: str) -> dict[str, Any]:
        """The tenant; ``NotFound``."""
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.TenantRef, tenant_id=tenant_id)
        with self.db.get_session(close_on_exit=True) as session:
            return schemas.TenantOut().dump(accounts.get_tenant(session, **args))

    @rpc(expected_exceptions=USER_ERRORS)
    def list_tenants(self, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        """Tenants by ID: ``{"items", "total", "page", "page_size"}``."""
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.TenantPage, page=page, page_size=page_size)
        with self.db.get_session(close_on_exit=True) as session:
            return schemas.dump_page(schemas.TenantOut, accounts.list_tenants(session, **args))

    @rpc(expected_exceptions=USER_ERRORS)
    def disable_tenant(self, tenant_id: str) -> dict[str, Any]:
        """No account or robot of the tenant logs in any more (tokens already issued lapse
        within AUTH_TOKEN_TTL). Returns the tenant; ``NotFound``. Repeating it changes nothing."""
        self.caller.platform_or_admin()
        return self._set_tenant_disabled(tenant_id, True)

    @rpc(expected_exceptions=USER_ERRORS)
    def enable_tenant(self, tenant_id: str) -> dict[str, Any]:
        """Undo ``disable_tenant``. Returns the tenant; ``NotFound``."""
        self.caller.platform_or_admin()
        return self._set_tenant_disabled(tenant_id, False)

    def _set_tenant_disabled(self, tenant_id: str, disabled: bool) -> dict[str, Any]:
        args = schemas.load_args(schemas.TenantRef, tenant_id=tenant_id)
        return self._write(
            lambda session, now: schemas.TenantOut().dump(
                accounts.set_tenant_disabled(session, disabled=disabled, now=now, **args)
            )
        )

    # -- RPC: accounts -------------------------------------------------------------------------

    @rpc(expected_exceptions=USER_ERRORS)
    def create_account(
        self,
        name: str,
        password: str,
        tenant_id: str | None = None,
        is_admin: bool = False,
        can_delete: bool = False,
        description: str | None = None,
    ) -> dict[str, Any]:
        """A developer account of ``tenant_id`` (pulls and pushes there; deletes too with
        ``can_delete``), or a platform admin (``is_admin``: everything, everywhere). Returns the
        account; ``NotFound`` for an unknown tenant, ``Conflict`` for a taken name or a disabled
        tenant, ``InvalidRequest`` for a bad name, a password of under 8 characters, or no
        tenant for a non-admin."""
        self.caller.platform_or_admin()
        args = schemas.load_args(
            schemas.NewAccount,
            name=name,
            password=password,
            tenant_id=tenant_id,
            is_admin=is_admin,
            can_delete=can_delete,
            description=description,
        )
        return self._write(
            lambda session, now: schemas.AccountOut().dump(
                accounts.create_account(session, self.tools.hasher, now=now, **args)
            )
        )

    @rpc(expected_exceptions=USER_ERRORS)
    def get_account(self, name: str) -> dict[str, Any]:
        """The account (user or robot), never its secret; ``NotFound``."""
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.AccountRef, name=name)
        with self.db.get_session(close_on_exit=True) as session:
            return schemas.AccountOut().dump(accounts.get_account(session, **args))

    @rpc(expected_exceptions=USER_ERRORS)
    def list_accounts(
        self, tenant_id: str | None = None, kind: str | None = None, page: int = 1, page_size: int = 50
    ) -> dict[str, Any]:
        """Accounts by name, of one tenant and/or one kind (``user``, ``robot``) if given:
        ``{"items", "total", "page", "page_size"}``; ``NotFound`` for an unknown tenant."""
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.AccountQuery, tenant_id=tenant_id, kind=kind, page=page, page_size=page_size)
        with self.db.get_session(close_on_exit=True) as session:
            return schemas.dump_page(schemas.AccountOut, accounts.list_accounts(session, **args))

    @rpc(expected_exceptions=USER_ERRORS)
    def disable_account(self, name: str) -> dict[str, Any]:
        """The account (user or robot) cannot log in any more, its refresh tokens are refused,
        tokens already issued lapse within AUTH_TOKEN_TTL. Returns it; ``NotFound``."""
        self.caller.platform_or_admin()
        return self._set_account_disabled(name, True)

    @rpc(expected_exceptions=USER_ERRORS)
    def enable_account(self, name: str) -> dict[str, Any]:
        """Undo ``disable_account``. Returns the account; ``NotFound``."""
        self.caller.platform_or_admin()
        return self._set_account_disabled(name, False)

    def _set_account_disabled(self, name: str, disabled: bool) -> dict[str, Any]:
        args = schemas.load_args(schemas.AccountRef, name=name)
        return self._write(
            lambda session, now: schemas.AccountOut().dump(
                accounts.set_account_disabled(session, disabled=disabled, now=now, **args)
            )
        )

    @rpc(expected_exceptions=USER_ERRORS)
    def set_password(self, name: str, password: str) -> dict[str, Any]:
        """A developer account's new password; every refresh token issued before stops working.
        Returns the account; ``NotFound``, ``InvalidRequest`` (a robot, a short password)."""
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.NewPassword, name=name, password=password)
        return self._write(
            lambda session, now: schemas.AccountOut().dump(
                accounts.set_password(session, self.tools.hasher, now=now, **args)
            )
        )

    # -- RPC: robots ---------------------------------------------------------------------------

    @rpc(expected_exceptions=USER_ERRORS)
    def create_robot(
        self,
        tenant_id: str | None,
        name: str,
        actions: list[str] | None = None,
        catalog: bool = False,
        description: str | None = None,
        namespaces: list[str] | None = None,
    ) -> dict[str, Any]:
        """A machine account ``<tenant_id>+<name>`` that may do ``actions`` (default
        ``["pull"]``) in its tenant's namespace (and pull ``library``); with ``tenant_id=None``,
        a platform robot ``_platform+<name>`` whose actions apply to every namespace, or to
        ``namespaces`` alone when given (the library robot: ``["library"]``), and which may list
        the registry's ``_catalog`` if ``catalog``.

        Returns ``{"account", "username", "secret"}``: the secret is shown this once (only its
        hash is kept). ``NotFound`` (tenant), ``Conflict`` (name taken, tenant disabled),
        ``InvalidRequest`` (``catalog`` or ``namespaces`` for a tenant's robot, a bad name,
        action or namespace)."""
        self.caller.platform_or_admin()
        args = schemas.load_args(
            schemas.NewRobot,
            tenant_id=tenant_id,
            name=name,
            actions=actions,
            catalog=catalog,
            namespaces=namespaces,
            description=description,
        )
        return self._write(
            lambda session, now: schemas.dump_robot(*accounts.create_robot(session, self.tools.hasher, now=now, **args))
        )

    @rpc(expected_exceptions=USER_ERRORS)
    def rotate_robot_secret(self, name: str) -> dict[str, Any]:
        """A new secret for the robot ``name`` (the full ``<tenant>+<name>``); the old one stops
        working at once. Returns ``{"account", "username", "secret"}``; ``NotFound``,
        ``InvalidRequest`` (not a robot)."""
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.AccountRef, name=name)
        return self._write(
            lambda session, now: schemas.dump_robot(
                *accounts.rotate_robot_secret(session, self.tools.hasher, now=now, **args)
            )
        )

    @rpc(expected_exceptions=USER_ERRORS)
    def issue_robot_credential(
        self, tenant_id: str, name: str = "deployer", actions: list[str] | None = None, ttl: int | None = None
    ) -> dict[str, Any]:
        """A short-lived credential of a robot of ``tenant_id``, nothing stored: a docker
        ``username``/``password`` pair (``<tenant_id>+<name>``) that may do ``actions`` (default
        ``["pull"]``) in the tenant's namespace (and pull ``library``) until ``expires_at``
        (``ttl`` seconds, 600 by default, at most AUTH_ROBOT_CREDENTIAL_MAX_TTL).

        Returns ``{"username", "password", "expires_at", "tenant_id", "actions"}``.
        ``NotFound`` (tenant), ``Conflict`` (tenant disabled), ``InvalidRequest``."""
        self.caller.platform_or_admin()
        args = schemas.load_args(
            schemas.RobotCredentialRequest, tenant_id=tenant_id, name=name, actions=actions, ttl=ttl
        )
        settings = self.tools.settings
        ttl = args["ttl"] or min(DEFAULT_ROBOT_CREDENTIAL_TTL, settings.robot_credential_max_ttl)
        if ttl > settings.robot_credential_max_ttl:
            raise InvalidRequest(f"ttl must be at most {settings.robot_credential_max_ttl} seconds, got {ttl}")
        with self.db.get_session(close_on_exit=True) as session:
            accounts.get_usable_tenant(session, args["tenant_id"])
        return issuing.robot_credential(
            self.tools.issuer, args["tenant_id"], args["name"], args["actions"], ttl, utcnow()
        )

    # -- helpers -------------------------------------------------------------------------------

    def _write(self, work: Callable[[Session, datetime], T]) -> T:
        """``work(session, now)`` in one transaction; a unique key lost to a concurrent call is
        the same ``Conflict`` as one found taken."""
        try:
            with self.db.get_session(close_on_exit=True) as session:
                return work(session, utcnow())
        except IntegrityError as exc:
            raise Conflict(f"already exists (made by a concurrent call): {str(exc.orig).splitlines()[0]}") from None
