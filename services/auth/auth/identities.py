"""Developer identities: what ``auth.sign_in`` hands out, and what every service checks on the calls a
person makes through the CLI or the gateway (``shared.runtime.identity``). No framework imports.

An identity is a JWT of the service's signing key, like its other tokens, for the RPC alone: its
audience is ``<issuer>#identity`` and ``token_use`` says ``identity``, so neither a registry token
nor a refresh token nor a robot credential passes for one (``auth.tokens``). It names the
account (``sub``), its tenant (``tenant``, absent for a platform admin without one) and whether it
is a platform admin (``admin``), and lives ``AUTH_IDENTITY_TTL`` seconds: it cannot be revoked, so
it is short, and sign-in is asked again after it (the CLI says so).

Only people sign in: a robot's credentials open the registry, never the RPC.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from auth.grants import USER, Principal
from shared.contracts.errors import Forbidden
from shared.runtime.identity import IDENTITY_USE, identity_audience

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
