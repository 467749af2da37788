"""Who makes an RPC call, and on whose behalf: checked by the callee on every call.

Two facts travel with every request, and neither is the caller's say-so:

* **The broker user** that published it. Every caller of the suite sets the AMQP ``user_id``
  property to the user it is connected as (``rpc_options``; ``IdentityRpcProxy`` and the CLI do),
  and RabbitMQ refuses a message whose ``user_id`` is not the connection's own user (the
  validated-user-ID extension), so the callee's ``rpc`` entrypoint copies it into the worker's
  context data, over anything a header claimed. The user's role is the part after its last ``-``
  (``imagehub-deployer`` → ``deployer``; only the broker operator makes users, deploy/broker/access.yml
  says which). The suite's own services and the ``platform`` user are **platform identities**:
  they may name any tenant. ``gateway`` and ``admin`` are not: they call on behalf of a person
  and must carry that person's signed identity.
* **A developer identity**: a token the auth service signs (``auth.sign_in``) naming the account,
  its tenant and whether it is a platform admin, valid ``AUTH_IDENTITY_TTL`` seconds, carried in the
  context data under ``imagehub_identity``. nameko forwards context data to the calls a worker makes,
  so a service that acts on a developer's request (the deployer reading the catalogue) acts with
  that developer's rights, not its own. The callee checks it against the auth service's
  certificate (``AUTH_CERT_FILE``) and ``AUTH_ISSUER``.

``Caller`` (a dependency provider) gives a worker the ``CallerContext``: ``identity`` is the
verified ``Identity`` (``Unauthorized`` when it is missing, forged or expired), ``for_tenant``
also checks that it may act in the tenant a call names (``Forbidden`` otherwise), ``admin``
that it is a platform admin's.
"""

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from kombu.message import Message
from nameko.containers import WorkerContext
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, RpcProxy, ServiceProxy
from nameko.standalone.rpc import ClusterProxy, ClusterRpcProxy, ServiceRpcProxy

from shared.contracts.errors import Forbidden, Unauthorized

IDENTITY_KEY = "imagehub_identity"  # the developer's signed token, in context data
BROKER_USER_KEY = "imagehub_broker_user"  # set by the callee from the message, never by a caller
IDENTITY_USE = "identity"
# Broker roles that are the platform itself: may act in any tenant.
PLATFORM_ROLES = frozenset({"auth", "catalog", "deployer", "webhook", "platform", "operator"})
# Broker roles that act for a person: only with that person's signed identity.
ON_BEHALF_ROLES = frozenset({"admin", "gateway"})
# The algorithm an identity is signed with follows from the auth service's key (auth.tokens).
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def algorithms_for(public_key: Any) -> list[str]:
    """The one algorithm a token of this key may name: a token naming another is refused, never
    read with the key as another kind of key."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return ["RS256"]
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in EC_ALGORITHMS:
        return [EC_ALGORITHMS[public_key.curve.name]]
    raise ValueError(f"the auth certificate's key ({type(public_key).__name__}) signs no identity this service reads")


def identity_audience(issuer: str) -> str:
    return f"{issuer}#{IDENTITY_USE}"


def broker_user(amqp_uri: str) -> str:
    """The user an ``amqp://user:pass@host/vhost`` URI connects as."""
    return unquote(urlsplit(amqp_uri.split(";")[0].strip()).username or "")


def rpc_options(amqp_uri: str) -> dict[str, str]:
    """Options for a nameko RPC proxy on ``amqp_uri`` (``ClusterRpcProxy(config, **rpc_options(uri))``):
    every request says which broker user sent it, as the callee requires."""
    return {"user_id": broker_user(amqp_uri)}


def role_of(user: str) -> str:
    return user.rsplit("-", 1)[-1]


@dataclass(frozen=True)
class Identity:
    kind: str  # "platform" or "developer"
    name: str  # the broker role (platform) or the account (developer)
    broker_user: str
    tenant: str | None = None
    admin: bool = False
    # A developer identity's session (its jti), expiry (epoch seconds) and the account's
    # credential generation when it was signed (auth.get_session checks them).
    session: str | None = None
    expires_at: int | None = None
    generation: int | None = None

    @property
    def is_platform(self) -> bool:
        return self.kind == "platform"

    def may_act_in(self, tenant_id: str | None) -> bool:
        return self.is_platform or self.admin or (tenant_id is not None and tenant_id == self.tenant)

    def describe(self) -> str:
        if self.is_platform:
            return f"platform:{self.name}"
        who = f"{self.name}@{self.tenant}" if self.tenant else self.name
        return who + (" (admin)" if self.admin else "")


class IdentityVerifier:
    """Reads developer identities signed by the auth service's key, pinned to its certificate."""

    # Signatures already verified, by token: a token is immutable and the key pinned, so its
    # signature holds for as long as this verifier lives; the time checks run at every read. A
    # client sends the same identity with each call, and checking its signature was about 4 % of
    # the catalog's busy time under bench.reads.
    VERIFIED_CACHE = 1024

    def __init__(self, public_key: Any, issuer: str) -> None:
        self.public_key = public_key
        self.issuer = issuer
        self.algorithms = algorithms_for(public_key)
        self.verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    @classmethod
    def from_certificate_file(cls, path: str, issuer: str) -> "IdentityVerifier":
        with open(path, "rb") as f:
            leaf = x509.load_pem_x509_certificates(f.read())[0]
        return cls(leaf.public_key(), issuer)

    def read(self, token: Any, now: datetime | None = None) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise Unauthorized("the identity is not a token")
        claims = self.verified_claims(token)
        moment = int((now or datetime.now(UTC)).timestamp())
        if claims.get("token_use") != IDENTITY_USE:
            raise Unauthorized("the token is not an identity")
        if not isinstance(claims["exp"], int) or claims["exp"] <= moment:
            raise Unauthorized("the identity has expired: sign in again")
        tenant = claims.get("tenant")
        if not isinstance(claims["sub"], str) or not claims["sub"] or not (tenant is None or isinstance(tenant, str)):
            raise Unauthorized("the identity names no account")
        return dict(claims)

    def verified_claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, audience and issuer are checked (``Unauthorized``
        if not); from the cache when this token was checked before."""
        cached = self.verified.get(token)
        if cached is not None:
            self.verified.move_to_end(token)
            return cached
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.public_key,
                algorithms=self.algorithms,
                audience=identity_audience(self.issuer),
                issuer=self.issuer,
                options={"verify_exp": False, "require": ["exp", "sub", "aud", "iss"]},
            )
        except (jwt.PyJWTError, TypeError, ValueError) as exc:
            raise Unauthorized(f"the identity is not one the auth service signed: {exc}") from None
        self.verified[token] = claims
        if len(self.verified) > self.VERIFIED_CACHE:
            self.verified.popitem(last=False)
        return claims


def identity_of(claims: Mapping[str, Any], broker_user: str) -> Identity:
    """The developer ``Identity`` that verified ``claims`` name (``IdentityVerifier.read``)."""
    jti, generation = claims.get("jti"), claims.get("gen")
    return Identity(
        "developer",
        claims["sub"],
        broker_user,
        claims.get("tenant"),
        claims.get("admin") is True,
        session=jti if isinstance(jti, str) and jti else None,
        expires_at=claims["exp"],
        generation=generation if isinstance(generation, int) and not isinstance(generation, bool) else None,
    )


def identify(context_data: Mapping[str, Any], verifier: IdentityVerifier | None) -> Identity:
    """The verified identity of a call, from its context data (see the module's docstring)."""
    user = context_data.get(BROKER_USER_KEY)
    if not isinstance(user, str) or not user:
        raise Unauthorized("the call carries no broker user (user_id): the callee cannot tell who sent it")
    role = role_of(user)
    token = context_data.get(IDENTITY_KEY)
    if token is not None:
        if verifier is None:
            raise Unauthorized("this service checks no developer identities (AUTH_CERT_FILE is not set)")
        claims = verifier.read(token)
        return identity_of(claims, user)
    if role in PLATFORM_ROLES:
        return Identity("platform", role, user)
    if role in ON_BEHALF_ROLES:
        raise Unauthorized(f"a call by {role} needs the identity of the person it acts for: sign in first")
    raise Unauthorized(f"broker user {user!r} is no caller this service knows")


class CallerContext:
    """What a worker knows of its caller; each check raises the typed error a caller sees."""

    def __init__(self, context_data: Mapping[str, Any], verifier: IdentityVerifier | None) -> None:
        self._context_data = context_data
        self.verifier = verifier
        self._identity: Identity | None = None

    @property
    def broker_user(self) -> str:
        """The broker user that sent the call (validated by RabbitMQ), before any identity check."""
        user = self._context_data.get(BROKER_USER_KEY)
        if not isinstance(user, str) or not user:
            raise Unauthorized("the call carries no broker user (user_id): the callee cannot tell who sent it")
        return user

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = identify(self._context_data, self.verifier)
        return self._identity

    def for_tenant(self, tenant_id: Any) -> Identity:
        """The identity, if it may act in ``tenant_id``; ``Forbidden`` if it names another tenant."""
        identity = self.identity
        if not identity.may_act_in(tenant_id if isinstance(tenant_id, str) else None):
            raise Forbidden(f"{identity.describe()} may not act in tenant {tenant_id!r}")
        return identity

    def admin(self) -> Identity:
        """The identity, if it is a platform admin's (a person's, never a service's)."""
        identity = self.identity
        if not identity.admin:
            raise Forbidden(f"{identity.describe()} is not a platform admin")
        return identity

    def platform_or_admin(self) -> Identity:
        identity = self.identity
        if not (identity.is_platform or identity.admin):
            raise Forbidden(f"{identity.describe()} is neither the platform nor a platform admin")
        return identity


class Caller(DependencyProvider):
    """``caller = Caller()`` on a service: the worker's ``CallerContext``. Reads ``AUTH_CERT_FILE``
    (the auth service's certificate; empty: no developer identity is accepted) and ``AUTH_ISSUER``."""

    def setup(self) -> None:
        config = self.container.config
        path, issuer = config.get("AUTH_CERT_FILE") or "", str(config.get("AUTH_ISSUER") or "imagehub-auth")
        try:
            self.verifier = IdentityVerifier.from_certificate_file(path, issuer) if path else None
        except (OSError, ValueError) as exc:  # the service must not start unable to check anyone
            raise RuntimeError(
                f"AUTH_CERT_FILE={path!r}: not a usable certificate of the auth service ({exc})"
            ) from None

    def get_dependency(self, worker_ctx: WorkerContext) -> CallerContext:
        return CallerContext(worker_ctx.context_data, self.verifier)


class IdentityRpc(Rpc):
    """nameko's ``rpc`` entrypoint that also records which broker user published the request
    (the AMQP ``user_id``, validated by RabbitMQ), over whatever a header claimed."""

    def unpack_message_headers(self, message: Message) -> dict[str, Any]:
        data: dict[str, Any] = super().unpack_message_headers(message)
        data.pop(BROKER_USER_KEY, None)
        user = (message.properties or {}).get("user_id")
        if user:
            data[BROKER_USER_KEY] = user
        return data


rpc = IdentityRpc.decorator


class IdentityRpcProxy(RpcProxy):
    """nameko's ``RpcProxy`` whose requests carry the service's broker user (``user_id``)."""

    def setup(self) -> None:
        user = broker_user(self.container.config.get("AMQP_URI") or "")
        if user:
            self.options.setdefault("user_id", user)
        super().setup()


class _ClusterProxyWithOptions(ClusterProxy):
    def __init__(self, worker_ctx: WorkerContext, reply_listener: Any, options: dict[str, str]) -> None:
        super().__init__(worker_ctx, reply_listener)
        self._options = options

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._proxies:
            self._proxies[name] = ServiceProxy(self._worker_ctx, name, self._reply_listener, **self._options)
        return self._proxies[name]


class IdentifiedClusterRpcProxy(ClusterRpcProxy):
    """nameko's standalone ``ClusterRpcProxy`` (which takes no publish options) whose requests say
    which broker user sends them, from ``config["AMQP_URI"]``: what every client outside a service
    (the CLI, tests, benches, the deployer's credential issuer) calls with."""

    def __init__(self, config: dict[str, Any], context_data: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(config, context_data=context_data, **kwargs)
        self._proxy = _ClusterProxyWithOptions(self._worker_ctx, self._reply_listener, rpc_options(config["AMQP_URI"]))


class IdentifiedServiceRpcProxy(ServiceRpcProxy):
    """``IdentifiedClusterRpcProxy``'s counterpart for one service."""

    def __init__(self, service_name: str, config: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(service_name, config, **kwargs)
        self._proxy = ServiceProxy(
            self._worker_ctx, service_name, self._reply_listener, **rpc_options(config["AMQP_URI"])
        )


class EventDispatcherWithoutIdentity(EventDispatcher):
    """nameko's ``EventDispatcher`` that does not pass the caller's identity on: an event outlives
    the call that caused it (a consumer may run it minutes later, or for everyone), so it carries
    no developer identity and no claimed broker user, only nameko's own context (call ids)."""

    def get_message_headers(self, worker_ctx: WorkerContext) -> dict[str, Any]:
        headers: dict[str, Any] = super().get_message_headers(worker_ctx)
        for key in (IDENTITY_KEY, BROKER_USER_KEY):
            headers.pop(self._get_header_name(key), None)
        return headers
