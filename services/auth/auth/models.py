"""The auth service's tables (SQLAlchemy 2); the schema itself is built by the Alembic migration.

* ``tenants``: one per namespace (the tenant ID); a disabled tenant's accounts cannot log in.
* ``accounts``: developer accounts (``kind`` user) and robots (``kind`` robot), each with an
  Argon2id hash of its password or secret. ``credential_generation`` grows with every password
  change, which voids the refresh tokens issued before it.
* ``login_failures``: recent failed logins per *submitted* user name, existing or not, so that
  repeated failures are slowed down the same way for every name (nothing tells an unknown name
  from a wrong password).
* ``ended_sessions``: developer identities ended before they expire (``auth.sign_out``), by their
  ``jti``, kept until they would have expired anyway (``auth.get_session`` says they are over).

Datetimes are stored naive in UTC and come back aware (``shared.runtime.db.UTCDateTime``).
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.contracts.schemas import MAX_TENANT_ID_LENGTH
from shared.runtime.audit import AuditRecordMixin
from shared.runtime.db import NAMING_CONVENTION, TYPE_ANNOTATION_MAP

ID_LENGTH = 36  # uuid4 as text
ACCOUNT_NAME_LENGTH = 200  # "<tenant ID>+<robot name>" at most 128 + 1 + 64
LOGIN_NAME_LENGTH = 255  # a submitted user name is cut to this before it keys login_failures


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(sa.String(MAX_TENANT_ID_LENGTH), primary_key=True)
    display_name: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(ACCOUNT_NAME_LENGTH), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # "user" or "robot"
    # None: a platform admin with no tenant, or a platform robot (every namespace).
    tenant_id: Mapped[str | None] = mapped_column(
        sa.String(MAX_TENANT_ID_LENGTH), sa.ForeignKey("tenants.id"), index=True
    )
    is_admin: Mapped[bool] = mapped_column(default=False)
    # Repository actions in its own namespace(s) ("pull", "push", "delete").
    actions: Mapped[list] = mapped_column(default=list)
    # Platform robots only: may list the registry's _catalog.
    catalog: Mapped[bool] = mapped_column(default=False)
    # Platform robots only: the namespaces its actions apply in; None: every namespace. The
    # library robot's is ["library"]: it pushes what the library mirror copies, and nothing else.
    namespaces: Mapped[list | None] = mapped_column(sa.JSON)
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    credential_generation: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]

    tenant: Mapped[Tenant | None] = relationship(lazy="joined")


class LoginFailure(Base):
    __tablename__ = "login_failures"

    name: Mapped[str] = mapped_column(sa.String(LOGIN_NAME_LENGTH), primary_key=True)
    failures: Mapped[int]
    last_failed_at: Mapped[datetime] = mapped_column(index=True)
    # No attempt for this name is checked before then: answered 429 at once.
    blocked_until: Mapped[datetime | None]


class EndedSession(Base):
    __tablename__ = "ended_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # the identity's jti
    account: Mapped[str] = mapped_column(sa.String(ACCOUNT_NAME_LENGTH))
    ended_at: Mapped[datetime]
    # When the identity lapses by itself: the row is of no use after that and is purged.
    expires_at: Mapped[datetime] = mapped_column(index=True)


class AuditRecord(AuditRecordMixin, Base):
    """A state-changing call, who made it and how it ended (shared.runtime.audit): append-only."""
