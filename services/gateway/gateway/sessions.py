"""Who is calling the gateway: the signed-in developer's session, from a cookie or a bearer token.

A session *is* the developer identity ``auth.sign_in`` signs (``shared.runtime.identity``): a
signed, expiring token naming the account, its tenant and whether it is a platform admin. The
console keeps it in an ``HttpOnly``, ``SameSite=Lax`` cookie; an API client sends it as
``Authorization: Bearer``. The gateway checks it offline (the auth certificate), then asks the
auth service whether the session is still open (signed out, account disabled, password changed),
trusting the answer ``GATEWAY_SESSION_RECHECK`` seconds. Every RPC the gateway makes for the
request carries it, so each service applies the developer's rights, not the gateway's.

A request authenticated by the cookie that changes state needs the session's CSRF token (in the
``X-CSRF-Token`` header, or the ``csrf_token`` form field): an HMAC of the session's id under
the gateway's key, which another site cannot read or make.
"""

import hashlib
import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request

from shared.contracts.errors import Forbidden, Unauthorized
from shared.runtime.identity import Identity, IdentityVerifier, identity_of

COOKIE = "imagehub_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN_LENGTH = 8192
# Sessions whose "still open" answer is remembered, at most (the oldest are forgotten first).
MAX_REMEMBERED = 10_000


class CsrfRejected(Forbidden):
    """A state-changing request by cookie without the session's CSRF token (403)."""


@dataclass(frozen=True)
class Developer:
    """The signed-in person a request is made for."""

    identity: Identity
    token: str
    by_cookie: bool
    csrf_token: str

    @property
    def account(self) -> str:
        return self.identity.name

    @property
    def tenant(self) -> str | None:
        return self.identity.tenant

    @property
    def admin(self) -> bool:
        return self.identity.admin


def csrf_token(key: bytes, session: str) -> str:
    return hmac.new(key, f"csrf:{session}".encode(), hashlib.sha256).hexdigest()


def token_of(request: Request) -> tuple[str, bool] | None:
    """``(token, by_cookie)`` of a request: its bearer token, else its session cookie."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("the API takes 'Authorization: Bearer <token>' (the token POST /api/v1/session gives)")
        return _bounded(value.strip()), False
    cookie = request.cookies.get(COOKIE)
    return (_bounded(cookie), True) if cookie else None


def _bounded(token: str) -> str:
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("the session token is not one the auth service signed")
    return token


class OpenSessions:
    """Sessions the auth service said were open, and when: ``fresh(sid)`` while within
    ``recheck`` seconds of that; ``forget(sid)`` at sign-out. Bounded, oldest out first."""

    def __init__(self, recheck: float, clock: Any = time.monotonic) -> None:
        self.recheck = recheck
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def fresh(self, session: str) -> bool:
        seen = self._seen.get(session)
        return seen is not None and self.clock() - seen < self.recheck

    def confirmed(self, session: str) -> None:
        self._seen[session] = self.clock()
        self._seen.move_to_end(session)
        while len(self._seen) > MAX_REMEMBERED:
            self._seen.popitem(last=False)

    def forget(self, session: str) -> None:
        self._seen.pop(session, None)


class VerifiedTokens:
    """Tokens whose signature was checked, and the identity each names, until it expires: the
    signature (a fifth of a millisecond) is checked once per token, not once per request.
    Bounded, oldest out first; an expired token is read (and refused) afresh."""

    def __init__(self, verifier: IdentityVerifier, broker_user: str, clock: Any = time.time) -> None:
        self.verifier = verifier
        self.broker_user = broker_user
        self.clock = clock
        self._known: OrderedDict[str, Identity] = OrderedDict()

    def identity(self, token: str) -> Identity:
        known = self._known.get(token)
        if known is not None and (known.expires_at or 0) > self.clock():
            return known
        self._known.pop(token, None)
        identity = identity_of(self.verifier.read(token), self.broker_user)
        self._known[token] = identity
        while len(self._known) > MAX_REMEMBERED:
            self._known.popitem(last=False)
        return identity


def authenticate(request: Request, tokens: VerifiedTokens, csrf_key: bytes) -> Developer:
    """The request's developer, checked offline (signature, expiry, audience) and, for a
    state-changing request by cookie, its CSRF token; ``Unauthorized`` / ``CsrfRejected``.
    Whether the session is still open is the caller's next question (``OpenSessions``)."""
    found = token_of(request)
    if found is None:
        raise Unauthorized("sign in first (POST /api/v1/session, or the console's sign-in page)")
    token, by_cookie = found
    identity = tokens.identity(token)
    if identity.session is None:
        raise Unauthorized("the session token names no session: sign in again")
    developer = Developer(identity, token, by_cookie, csrf_token(csrf_key, identity.session))
    if by_cookie and request.method not in SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER) or _form_token(request)
        if not given or not hmac.compare_digest(given, developer.csrf_token):
            raise CsrfRejected(f"a change made with the session cookie needs its CSRF token ({CSRF_HEADER} header)")
    return developer


def _form_token(request: Request) -> str:
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return str(request.form.get(CSRF_FIELD, ""))
    return ""


def session_cookie(token: str, max_age: int, secure: bool) -> dict[str, Any]:
    """``Response.set_cookie`` arguments of the session cookie."""
    return dict(key=COOKIE, value=token, max_age=max_age, path="/", httponly=True, samesite="Lax", secure=secure)
