"""Logins: who the credentials of a token request belong to. No framework imports.

Three kinds of credentials open an account:

* a developer account's password, or a stored robot's secret (Argon2id hashes);
* a robot credential (``issue_robot_credential``): a short-lived JWT of this service, used as
  the password of ``<tenant>+<name>``;
* a refresh token (``docker login`` stores one instead of the password), on ``POST /token``.

A failed login is one answer whatever the reason (unknown name, wrong password, disabled account
or tenant), costs the same time (an unknown name is checked against a dummy hash), and counts in
``login_failures`` (``auth.settings.LoginPolicy``) twice: against the *submitted name from that
client address*, and against the *address* over every name. Past the free failures of either,
attempts are refused unchecked until the delay is over. Nobody at another address can lock an
account out (the catalogue's robot, an admin): a flood of guesses slows its sender down only. The
failure is recorded in the caller's transaction, which must commit it before raising: so
``authenticate`` returns a ``LoginOutcome`` rather than raising.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from auth.accounts import ROBOT_SEPARATOR, find_account, is_usable
from auth.exceptions import TooManyAttempts, Unauthorized
from auth.grants import REPOSITORY_ACTIONS, ROBOT, Principal
from auth.models import LOGIN_NAME_LENGTH, Account, LoginFailure, Tenant
from auth.passwords import MAX_PASSWORD_LENGTH, Hasher
from auth.settings import LoginPolicy
from auth.tokens import REFRESH, BadToken, TokenIssuer, looks_like_jwt
from auth.tokens import ROBOT as ROBOT_CREDENTIAL

MAX_CREDENTIAL_LENGTH = 32 * 1024  # a robot credential with a long certificate chain


@dataclass(frozen=True)
class LoginOutcome:
    principal: Principal | None = None
    error: Exception | None = None

    def principal_or_raise(self) -> Principal:
        if self.error is not None:
            raise self.error
        # authenticate() sets exactly one of the two; a bare LoginOutcome() would give None.
        return cast(Principal, self.principal)


def principal_of(account: Account) -> Principal:
    return Principal(
        kind=account.kind,
        name=account.name,
        tenant_id=account.tenant_id,
        is_admin=account.is_admin,
        actions=frozenset(account.actions),
        catalog=account.catalog,
        namespaces=frozenset(account.namespaces) if account.namespaces is not None else None,
        generation=account.credential_generation,
    )


def failure_keys(address: str | None, username: str | None) -> tuple[str, str]:
    """``(per name from that address, per address)``: the ``login_failures`` rows a failure counts
    in. A user name holds no control character, so neither key can be made to look like the other."""
    address = (address or "")[:64]
    return f"{address}\x1f{username or ''}"[:LOGIN_NAME_LENGTH], f"{address}\x1e"


def authenticate(
    session: Session,
    hasher: Hasher,
    issuer: TokenIssuer,
    policy: LoginPolicy,
    username: str | None,
    password: str | None,
    now: datetime,
    address: str = "",
) -> LoginOutcome:
    """The ``LoginOutcome`` of a user name and password (or robot secret, or robot credential),
    sent from client ``address``."""
    name_key, address_key = failure_keys(address, username)
    blocked_for = max(_blocked_for(session, name_key, now), _blocked_for(session, address_key, now))
    if blocked_for:
        return LoginOutcome(error=TooManyAttempts(blocked_for))
    principal = _check(session, hasher, issuer, username or "", password or "", now)
    if principal is None:
        _record_failure(session, name_key, policy, now)
        _record_failure(session, address_key, policy.for_address(), now)
        return LoginOutcome(error=Unauthorized())
    session.execute(sa.delete(LoginFailure).where(LoginFailure.name == name_key))
    return LoginOutcome(principal=principal)


def _check(
    session: Session, hasher: Hasher, issuer: TokenIssuer, username: str, password: str, now: datetime
) -> Principal | None:
    if ROBOT_SEPARATOR in username and looks_like_jwt(password):
        # A JWT carries the certificate chain: longer than any password, and no hash to check.
        if len(password) > MAX_CREDENTIAL_LENGTH:
            return None
        return _robot_credential(session, issuer, username, password, now)
    if len(password) > MAX_PASSWORD_LENGTH:
        hasher.verify(None, "")  # same cost as any other refusal
        return None
    account = find_account(session, username) if username else None
    if not hasher.verify(account.password_hash if account is not None else None, password):
        return None
    if account is None or not is_usable(account):
        return None
    if hasher.needs_rehash(account.password_hash):  # the parameters were raised since
        account.password_hash = hasher.hash(password)
    return principal_of(account)


def _robot_credential(
    session: Session, issuer: TokenIssuer, username: str, password: str, now: datetime
) -> Principal | None:
    try:
        claims = issuer.read(password, ROBOT_CREDENTIAL, now)
    except BadToken:
        return None
    tenant_id = claims.get("tenant")
    if claims["sub"] != username or not isinstance(tenant_id, str):
        return None
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or tenant.disabled_at is not None:
        return None
    stored = find_account(session, username)
    if stored is not None and not is_usable(stored):  # a disabled robot of that name stays shut
        return None
    # A list: mypy does not carry the isinstance() over to the second get().
    actions = cast(list[Any], claims.get("actions") if isinstance(claims.get("actions"), list) else [])
    return Principal(
        kind=ROBOT, name=username, tenant_id=tenant_id, actions=frozenset(a for a in actions if a in REPOSITORY_ACTIONS)
    )


def refresh(session: Session, issuer: TokenIssuer, refresh_token: str | None, now: datetime) -> Principal:
    """The principal a refresh token stands for; ``Unauthorized`` if it is not ours, expired,
    older than the account's last password change, or the account cannot log in any more."""
    try:
        claims = issuer.read(refresh_token or "", REFRESH, now)
    except BadToken:
        raise Unauthorized("invalid or expired refresh token: log in again") from None
    account = find_account(session, claims["sub"])
    if account is None or not is_usable(account) or claims.get("gen") != account.credential_generation:
        raise Unauthorized("invalid or expired refresh token: log in again")
    return principal_of(account)


# -- slowing down repeated failures -------------------------------------------------------------


def _blocked_for(session: Session, key: str, now: datetime) -> int:
    """Seconds before an attempt for ``key`` is checked again (0: now)."""
    blocked_until = session.scalar(sa.select(LoginFailure.blocked_until).where(LoginFailure.name == key))
    if blocked_until is None or blocked_until <= now:
        return 0
    return math.ceil((blocked_until - now).total_seconds())


def _record_failure(session: Session, key: str, policy: LoginPolicy, now: datetime) -> None:
    window_start = now - timedelta(seconds=policy.window)
    # Forget keys whose last failure left the window (keeps a flood of made-up names bounded).
    session.execute(sa.delete(LoginFailure).where(LoginFailure.last_failed_at < window_start, LoginFailure.name != key))
    table = LoginFailure.__table__
    insert = _insert_for(session)(table).values(name=key, failures=1, last_failed_at=now, blocked_until=None)
    # One statement, so that two failures at once both count (no lost update, no duplicate key).
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[table.c.name],
            set_={
                "failures": sa.case((table.c.last_failed_at < window_start, 1), else_=table.c.failures + 1),
                "last_failed_at": now,
            },
        )
    )
    # Not None: the row was just inserted or updated in this transaction.
    failures = cast(int, session.scalar(sa.select(LoginFailure.failures).where(LoginFailure.name == key)))
    delay = policy.delay_after(failures)
    session.execute(
        sa.update(LoginFailure)
        .where(LoginFailure.name == key)
        .values(blocked_until=now + timedelta(seconds=delay) if delay else None)
    )


def _insert_for(session: Session) -> Callable[[Any], postgresql.Insert | sqlite.Insert]:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise NotImplementedError(f"login failures are counted on SQLite and PostgreSQL, not {dialect}")
