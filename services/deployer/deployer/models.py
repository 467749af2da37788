"""The deployer's tables (SQLAlchemy 2); the schema itself is built by the Alembic migration.

A deployment has numbered revisions (each an image pinned by digest plus the runtime spec) and
instances (one container each, on one host). The deployment row is also the lock that keeps
one operation at a time per deployment (``operation``/``operation_id``/``operation_at``).

Datetimes are stored naive in UTC and come back aware (``shared.runtime.db.UTCDateTime``).
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.runtime.audit import AuditRecordMixin
from shared.runtime.db import NAMING_CONVENTION, TYPE_ANNOTATION_MAP
from shared.runtime.models import OrderedOutboxEventMixin, ProcessedEventMixin

ID_LENGTH = 36  # uuid4 as text
NAME_LENGTH = 255
DIGEST_LENGTH = 100


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


# Deployment statuses. The first four trace a rollout of ``Deployment.revision``; the rest are
# where it ends up. ``rollout_failed``: the newest revision failed, an older one still serves.
# ``rolled_back``: the same for a revision an auto-deploy policy made: the deployer undid it by
# itself, and the revision that served before serves again.
PENDING, PULLING, STARTING, RUNNING = "pending", "pulling", "starting", "running"
FAILED, ROLLOUT_FAILED, DEGRADED, STOPPED = "failed", "rollout_failed", "degraded", "stopped"
ROLLED_BACK = "rolled_back"
DELETING, DELETED = "deleting", "deleted"
IN_PROGRESS = (PENDING, PULLING, STARTING)

# Revision statuses: the rollout statuses, then ``superseded`` once a newer one took over.
SUPERSEDED = "superseded"

# Revision triggers: create, update, rollback, and a push that an auto-deploy policy followed.
AUTO_DEPLOY = "auto-deploy"

# Instance states.
CREATING = "creating"  # recorded, container being created (the row comes first)
# STARTING, RUNNING as above; an instance is RUNNING once its health check passed.
UNKNOWN = "unknown"  # its host cannot be reached: kept, not replaced


class Deployment(Base):
    __tablename__ = "deployments"
    __table_args__ = (
        # A name is unique among a tenant's live deployments; a deleted one frees its name.
        sa.Index(
            "uq_deployments_tenant_id_name_live",
            "tenant_id",
            "name",
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), index=True)
    name: Mapped[str] = mapped_column(sa.String(63))
    pool: Mapped[str] = mapped_column(sa.String(63))
    replicas: Mapped[int]
    revision: Mapped[int]  # the newest revision, the one the status is about
    serving_revision: Mapped[int | None]  # the revision whose instances serve; None before any did
    status: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    auto_deploy: Mapped[dict]
    # A push the policy follows, waiting for the operation in progress to end (``autodeploy``):
    # the tag_indexed fields it needs, one at a time (a better push replaces a waiting one).
    pending_push: Mapped[dict | None]
    # ``pushed_at`` of the newest push the deployment was moved to (by a policy, or a create or
    # update that resolved a tag): a tag_indexed pushed before it is stale.
    last_pushed_at: Mapped[datetime | None]
    # The per-deployment lock: what runs now, its id (carried by its rollout_requested event)
    # and its last sign of life (a lock older than OPERATION_STALE_AFTER may be taken over).
    operation: Mapped[str | None] = mapped_column(sa.String(32))
    operation_id: Mapped[str | None] = mapped_column(sa.String(ID_LENGTH))
    operation_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class Revision(Base):
    __tablename__ = "revisions"
    __table_args__ = (sa.UniqueConstraint("deployment_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[str] = mapped_column(sa.ForeignKey("deployments.id", ondelete="CASCADE"))
    number: Mapped[int]
    image: Mapped[str] = mapped_column(sa.String(512))  # "<ns>/<name>:<tag>", as resolved
    repository: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    tag: Mapped[str] = mapped_column(sa.String(128))
    digest: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH))
    pull_ref: Mapped[str] = mapped_column(sa.String(512))  # "<pull host>/<ns>/<name>@<digest>"
    spec: Mapped[dict]  # the runtime spec: env, command, ports, cpu, memory, restart_policy, health
    status: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    trigger: Mapped[str] = mapped_column(sa.String(32))  # create | update | rollback | auto-deploy
    rollback_to: Mapped[int | None]  # for a rollback: the revision whose spec it reuses
    # For an auto-deploy: the push it follows (tag, digest, actor, pushed_at, event_id, policy).
    push: Mapped[dict | None]
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class Instance(Base):
    """One container of a deployment. The row is written before the container is created and
    deleted after it is removed, so every container the deployer makes has a row meanwhile."""

    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(sa.String(ID_LENGTH), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(sa.ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int]
    pool: Mapped[str] = mapped_column(sa.String(63))
    host: Mapped[str] = mapped_column(sa.String(63), index=True)
    container_name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    container_id: Mapped[str | None] = mapped_column(sa.String(80))
    state: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    ports: Mapped[list]  # [{"container_port", "host_port"}], host ports as allocated
    port_domain: Mapped[str] = mapped_column(sa.String(130))  # where its host ports collide
    # Where its ports answer when the pool reports it (a swarm node's address); None: its host's
    # configured address.
    address: Mapped[str | None] = mapped_column(sa.String(255))
    cpu: Mapped[float]
    memory: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]


class ProcessedEvent(ProcessedEventMixin, Base):
    """An event already acted on (tag_indexed), inserted in the same transaction as what it
    decided: a redelivery finds it and changes nothing."""

    event_type: Mapped[str] = mapped_column(sa.String(64))


class OutboxEvent(OrderedOutboxEventMixin, Base):
    """An event to dispatch (``deployment_status_changed``, ``rollout_requested``), written in the
    transaction of the change it reports (``deployer.outbox``, ``shared.runtime.outbox``).

    The catalog's outbox table, plus ``ordering_key``: the deployment the event is about, so that
    one deployment's events go out in the order they were committed. Deleted once the broker has
    taken it: the table holds only what is still pending. Its ``ordering_key`` is the deployment ID.
    """


class AuditRecord(AuditRecordMixin, Base):
    """A state-changing call, who made it and how it ended (shared.runtime.audit): append-only."""
