"""The token endpoint's answers, once the caller is known. No framework imports.

``GET /token`` is Docker Distribution's token protocol (docs/spec/auth/token.md);
``POST /token`` is its OAuth2 form (docs/spec/auth/oauth.md), which docker uses once it holds
a refresh token. Both answer with a registry token granting what ``auth.grants`` allows for the
requested scopes, and nothing for the rest (the registry then refuses the request).
"""

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from auth.accounts import robot_account_name
from auth.exceptions import UnsupportedGrantType
from auth.grants import REPOSITORY_ACTIONS, ROBOT_DEFAULT_ACTIONS, Principal, grant_all
from auth.scopes import Scope
from auth.tokens import TokenIssuer
from shared.contracts.errors import InvalidRequest

PASSWORD_GRANT, REFRESH_GRANT = "password", "refresh_token"


def check_service(requested: str | None, configured: str) -> None:
    """The ``service`` parameter, when given, must be the registry this service signs for."""
    if requested and requested != configured:
        raise InvalidRequest(f"unknown service {requested!r}: this token service signs for {configured!r}")


def wants_refresh_token(flag: str | None) -> bool:
    """``offline_token=true`` (GET) or ``access_type=offline`` (POST)."""
    return (flag or "").strip().lower() in ("true", "offline")


def check_grant_type(grant_type: str | None, refresh_tokens_enabled: bool) -> None:
    if not grant_type:
        raise InvalidRequest("grant_type is required: 'password' or 'refresh_token'")
    if grant_type == REFRESH_GRANT and not refresh_tokens_enabled:
        raise UnsupportedGrantType(
            "refresh tokens are turned off here (AUTH_REFRESH_TOKEN_TTL=0): "
            "use grant_type 'password' or GET /token with Basic credentials"
        )
    if grant_type not in (PASSWORD_GRANT, REFRESH_GRANT):
        raise UnsupportedGrantType(f"grant_type {grant_type!r} is not supported: use 'password' or 'refresh_token'")


def token_answer(
    issuer: TokenIssuer,
    principal: Principal,
    scopes: Iterable[Scope],
    anonymous_pull: bool,
    now: datetime,
    refresh_token: str | None = None,
    oauth: bool = False,
) -> dict[str, Any]:
    """The JSON body of a successful token request: the registry token (as ``token`` and
    ``access_token``: clients read either), its lifetime, and a refresh token when one was made."""
    access = grant_all(principal, scopes, anonymous_pull)
    token, _claims = issuer.access_token(principal.name, access, now)
    body: dict[str, Any] = {
        "token": token,
        "access_token": token,
        "expires_in": issuer.ttl,
        "issued_at": now.isoformat().replace("+00:00", "Z"),
    }
    if refresh_token:
        body["refresh_token"] = refresh_token
    if oauth:
        body["scope"] = " ".join(_scope_text(entry) for entry in access)
    return body


def _scope_text(entry: Mapping[str, Any]) -> str:
    kind = f"{entry['type']}({entry['class']})" if entry.get("class") else entry["type"]
    return f"{kind}:{entry['name']}:{','.join(entry['actions'])}"


def robot_credential(
    issuer: TokenIssuer, tenant_id: str, name: str, actions: Iterable[str] | None, ttl: int, now: datetime
) -> dict[str, Any]:
    """A short-lived ``username``/``password`` of robot ``<tenant_id>+<name>``."""
    username = robot_account_name(tenant_id, name)
    actions = [a for a in REPOSITORY_ACTIONS if a in set(actions or ROBOT_DEFAULT_ACTIONS)]
    password, expires_at = issuer.robot_credential(username, tenant_id, actions, ttl, now)
    return {
        "username": username,
        "password": password,
        "expires_at": expires_at.isoformat(),
        "tenant_id": tenant_id,
        "actions": actions,
    }
