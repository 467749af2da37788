"""Developer identities: what ``auth.sign_in`` hands out, and what every service checks on the calls a
person makes through the CLI or the gateway (``shared.runtime.identity``). No framework imports.

An identity is a JWT of the service's signing key, like its other tokens, for the RPC alone: its
audience is ``<issuer>#identity`` and ``token_use`` says ``identity``, so neither a registry token
nor a refresh token nor a robot credential passes for one (``auth.tokens``). It names the
account (``sub``), its tenant (``tenant``, absent for a platform admin without one) and whether it
is a platform admin (``admin``), and lives ``AUTH_IDENTITY_TTL`` seconds; sign-in is asked again
after it (the CLI says so). Each service checks it offline, with the certificate alone, so it stays
short. A session can also end before then: ``auth.sign_out`` records its ``jti``, and a password
change or a disabled account ends every session of the account (the identity carries the
account's credential generation, ``gen``). ``auth.get_session`` says whether an identity's
session is still open; the gateway asks it before acting on a session (issue 14).

Only people sign in: a robot's credentials open the registry, never the RPC.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auth import accounts
from auth.grants import USER, Principal
from auth.models import EndedSession
from shared.contracts.errors import Forbidden, InvalidRequest, Unauthorized
from shared.runtime.clock import iso_from_epoch
from shared.runtime.identity import IDENTITY_USE, Identity, identity_audience

# Where a sign-in comes from, when no gateway vouches for a person's address: the broker user.
RPC_ADDRESS_PREFIX = "rpc:"


def identity_claims(issuer: str, principal: Principal, ttl: int, now: datetime) -> dict[str, Any]:
    """The claims of a developer identity for ``principal``, valid ``ttl`` seconds from ``now``."""
    if principal.kind != USER or not principal.name:
        raise Forbidden("only a person's account signs in to the platform; robots pull and push")
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": principal.name,
        "aud": identity_audience(issuer),
        "token_use": IDENTITY_USE,
        "admin": bool(principal.is_admin),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if principal.generation is not None:
        claims["gen"] = principal.generation
    if principal.tenant_id is not None:
        claims["tenant"] = principal.tenant_id
    return claims


def sign_in_answer(token: str, claims: dict[str, Any]) -> dict[str, Any]:
    """What ``auth.sign_in`` returns: the identity and what it says, so a caller need not decode it."""
    return {
        "identity": token,
        "account": claims["sub"],
        "tenant_id": claims.get("tenant"),
        "is_admin": claims["admin"],
        "expires_in": claims["exp"] - claims["iat"],
        "expires_at": datetime.fromtimestamp(claims["exp"], UTC).isoformat(),
    }


def _session_of(identity: Identity) -> str:
    if identity.is_platform or not identity.session:
        raise InvalidRequest("only a signed-in developer's call has a session (sign in first)")
    return identity.session


def open_session(session: Session, identity: Identity, now: datetime) -> dict[str, Any]:
    """What ``auth.get_session`` answers for ``identity``'s session if it is still open;
    ``Unauthorized`` once signed out, or its account disabled or its password changed."""
    sid = _session_of(identity)
    if session.get(EndedSession, sid) is not None:
        raise Unauthorized("this session has been signed out: sign in again")
    account = accounts.find_account(session, identity.name)
    if account is None or not accounts.is_usable(account):
        raise Unauthorized("the account of this session is disabled or gone: sign in again")
    if identity.generation is not None and identity.generation != account.credential_generation:
        raise Unauthorized("the account's password changed since this session began: sign in again")
    return {
        "account": identity.name,
        "tenant_id": identity.tenant,
        "is_admin": identity.admin,
        "session": sid,
        "expires_at": iso_from_epoch(identity.expires_at),
    }


def end_session(session: Session, identity: Identity, now: datetime) -> dict[str, Any]:
    """Record ``identity``'s session as ended (repeatable), and forget those past their expiry."""
    sid = _session_of(identity)
    expires_at = datetime.fromtimestamp(identity.expires_at or int(now.timestamp()), UTC)
    if session.get(EndedSession, sid) is None:
        session.add(EndedSession(id=sid, account=identity.name, ended_at=now, expires_at=expires_at))
    session.execute(sa.delete(EndedSession).where(EndedSession.expires_at < now))
    session.commit()
    return {"account": identity.name, "session": sid, "ended": True}
