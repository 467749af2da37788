"""Tenants, developer accounts and robots: the rules of the RPC API. No framework imports.

Every function takes a SQLAlchemy session (the caller commits), the ``Hasher`` when secrets are
involved, and ``now``. Arguments arrive checked for shape (``auth.schemas``); what needs the
database (existence, conflicts, a disabled tenant) is checked here.

Names:

* a developer account is named freely within ``[a-z0-9._@-]`` (``alice``, ``bob@acme.example``);
* a robot of tenant ``T`` is ``T+<name>``; a platform robot (no tenant) is ``_platform+<name>``.
  ``+`` never appears in an account name and ``_`` never starts a tenant ID, so the three never
  collide, and a robot's tenant can be read from its name.
"""

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from auth.grants import REPOSITORY_ACTIONS, ROBOT, ROBOT_DEFAULT_ACTIONS, USER, user_actions
from auth.models import Account, Tenant
from auth.passwords import Hasher, new_robot_secret
from shared.contracts.errors import Conflict, InvalidRequest, NotFound
from shared.runtime.pagination import listing, page_of

ROBOT_SEPARATOR = "+"
PLATFORM_ROBOT_PREFIX = "_platform"


def robot_account_name(tenant_id: str | None, name: str) -> str:
    return f"{tenant_id or PLATFORM_ROBOT_PREFIX}{ROBOT_SEPARATOR}{name}"


def _page(session: Session, stmt: sa.Select[tuple[Any]], page: int, page_size: int) -> dict[str, Any]:
    rows, total = page_of(session, stmt, page, page_size)
    return listing(rows, total, page, page_size)


# -- tenants -----------------------------------------------------------------------------------


def create_tenant(session: Session, tenant_id: str, display_name: str | None, now: datetime) -> Tenant:
    if session.get(Tenant, tenant_id) is not None:
        raise Conflict(f"tenant {tenant_id!r} already exists")
    tenant = Tenant(id=tenant_id, display_name=display_name or "", created_at=now, updated_at=now)
    session.add(tenant)
    session.flush()
    return tenant


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id!r} does not exist")
    return tenant


def list_tenants(session: Session, page: int, page_size: int) -> dict[str, Any]:
    return _page(session, sa.select(Tenant).order_by(Tenant.id), page, page_size)


def set_tenant_disabled(session: Session, tenant_id: str, disabled: bool, now: datetime) -> Tenant:
    """Disable (or enable again) a tenant: none of its accounts or robots can log in while it
    is disabled, and tokens already issued lapse within AUTH_TOKEN_TTL."""
    tenant = get_tenant(session, tenant_id)
    if disabled != (tenant.disabled_at is not None):
        tenant.disabled_at = now if disabled else None
        tenant.updated_at = now
    return tenant


# -- accounts ----------------------------------------------------------------------------------


def get_usable_tenant(session: Session, tenant_id: str) -> Tenant:
    """The tenant; ``NotFound``, or ``Conflict`` if it is disabled."""
    tenant = get_tenant(session, tenant_id)
    if tenant.disabled_at is not None:
        raise Conflict(f"tenant {tenant_id!r} is disabled: enable it first")
    return tenant


def _new_account(session: Session, name: str, **fields: Any) -> Account:
    if session.scalar(sa.select(Account.id).where(Account.name == name)) is not None:
        raise Conflict(f"account {name!r} already exists")
    account = Account(id=str(uuid.uuid4()), name=name, credential_generation=1, **fields)
    session.add(account)
    session.flush()
    return account


def create_account(
    session: Session,
    hasher: Hasher,
    name: str,
    password: str,
    tenant_id: str | None,
    is_admin: bool,
    can_delete: bool,
    description: str | None,
    now: datetime,
) -> Account:
    """A developer account of ``tenant_id`` (pull and push there, delete if ``can_delete``), or a
    platform admin (``is_admin``; a tenant is optional)."""
    if tenant_id is None and not is_admin:
        raise InvalidRequest("tenant_id is required for an account that is not a platform admin")
    if tenant_id is not None:
        get_usable_tenant(session, tenant_id)
    actions = REPOSITORY_ACTIONS if is_admin else user_actions(can_delete)
    return _new_account(
        session,
        name,
        kind=USER,
        tenant_id=tenant_id,
        is_admin=is_admin,
        actions=list(actions),
        catalog=is_admin,
        description=description or "",
        password_hash=hasher.hash(password),
        created_at=now,
        updated_at=now,
    )


def robot_rights(
    tenant_id: str | None, actions: Iterable[str] | None, catalog: bool, namespaces: Iterable[str] | None
) -> dict[str, Any]:
    """What a robot of ``tenant_id`` may do, checked and in canonical form, as the ``Account``
    columns: ``actions`` (pull only by default) in canonical order, ``catalog``, and
    ``namespaces`` sorted (None: every namespace). Only a platform robot lists ``_catalog`` or is
    restricted to namespaces: a tenant's robot acts in its tenant's namespace alone anyway."""
    if tenant_id is not None:
        if catalog:
            raise InvalidRequest("catalog access is for platform robots only (tenant_id None)")
        if namespaces is not None:
            raise InvalidRequest(
                "namespaces is for platform robots only (tenant_id None): "
                "a tenant's robot acts in its tenant's namespace alone"
            )
    return {
        "actions": [a for a in REPOSITORY_ACTIONS if a in set(actions or ROBOT_DEFAULT_ACTIONS)],
        "catalog": bool(catalog),
        "namespaces": None if namespaces is None else sorted(set(namespaces)),
    }


def create_robot(
    session: Session,
    hasher: Hasher,
    tenant_id: str | None,
    name: str,
    actions: Iterable[str] | None,
    catalog: bool,
    description: str | None,
    now: datetime,
    namespaces: Iterable[str] | None = None,
) -> tuple[Account, str]:
    """``(account, secret)``: a robot of ``tenant_id`` (None: a platform robot, every namespace,
    or only ``namespaces`` when given) that may do ``actions`` (pull only by default). The secret
    is not kept: only its hash."""
    if tenant_id is not None:
        get_usable_tenant(session, tenant_id)
    rights = robot_rights(tenant_id, actions, catalog, namespaces)
    secret = new_robot_secret()
    account = _new_account(
        session,
        robot_account_name(tenant_id, name),
        kind=ROBOT,
        tenant_id=tenant_id,
        is_admin=False,
        description=description or "",
        password_hash=hasher.hash(secret),
        created_at=now,
        updated_at=now,
        **rights,
    )
    return account, secret


def set_robot_rights(
    session: Session,
    name: str,
    actions: Iterable[str] | None,
    catalog: bool,
    namespaces: Iterable[str] | None,
    now: datetime,
) -> Account:
    """Make the robot ``name`` do exactly what ``robot_rights`` says (``auth.manage
    ensure-robot``: its command line is the source of truth, so that adding ``--namespace`` to
    it narrows a robot that exists already). Tokens issued before lapse within AUTH_TOKEN_TTL."""
    account = get_account(session, name)
    if account.kind != ROBOT:
        raise InvalidRequest(f"{name!r} is not a robot")
    rights = robot_rights(account.tenant_id, actions, catalog, namespaces)
    if any(getattr(account, column) != value for column, value in rights.items()):
        for column, value in rights.items():
            setattr(account, column, value)
        account.updated_at = now
    return account


def find_account(session: Session, name: str) -> Account | None:
    """The account named ``name``, or None."""
    return session.scalar(sa.select(Account).where(Account.name == name))


def get_account(session: Session, name: str) -> Account:
    account = find_account(session, name)
    if account is None:
        raise NotFound(f"account {name!r} does not exist")
    return account


def list_accounts(
    session: Session, tenant_id: str | None, kind: str | None, page: int, page_size: int
) -> dict[str, Any]:
    """Accounts by name; only ``tenant_id``'s (NotFound if there is no such tenant) and only of
    ``kind`` (user or robot) when given."""
    stmt = sa.select(Account).order_by(Account.name)
    if tenant_id is not None:
        get_tenant(session, tenant_id)
        stmt = stmt.where(Account.tenant_id == tenant_id)
    if kind is not None:
        stmt = stmt.where(Account.kind == kind)
    return _page(session, stmt, page, page_size)


def set_account_disabled(session: Session, name: str, disabled: bool, now: datetime) -> Account:
    """Disable (or enable again) an account: a disabled one cannot log in, its refresh tokens are
    refused, and tokens already issued lapse within AUTH_TOKEN_TTL."""
    account = get_account(session, name)
    if disabled != (account.disabled_at is not None):
        account.disabled_at = now if disabled else None
        account.updated_at = now
    return account


def set_password(session: Session, hasher: Hasher, name: str, password: str, now: datetime) -> Account:
    """A developer account's new password; every refresh token issued before is void."""
    account = get_account(session, name)
    if account.kind != USER:
        raise InvalidRequest(f"{name!r} is a robot: robots get a new secret from rotate_robot_secret")
    _replace_secret(account, hasher, password, now)
    return account


def rotate_robot_secret(session: Session, hasher: Hasher, name: str, now: datetime) -> tuple[Account, str]:
    """``(account, secret)``: a new secret for a robot; the old one stops working at once."""
    account = get_account(session, name)
    if account.kind != ROBOT:
        raise InvalidRequest(f"{name!r} is not a robot: developer accounts change password with set_password")
    secret = new_robot_secret()
    _replace_secret(account, hasher, secret, now)
    return account, secret


def _replace_secret(account: Account, hasher: Hasher, secret: str, now: datetime) -> None:
    account.password_hash = hasher.hash(secret)
    account.credential_generation += 1
    account.updated_at = now


def is_usable(account: Account) -> bool:
    """An account may log in: it and its tenant (if any) are enabled."""
    return account.disabled_at is None and (account.tenant is None or account.tenant.disabled_at is None)
