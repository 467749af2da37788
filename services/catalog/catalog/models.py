"""The catalogue's tables (SQLAlchemy 2). The schema itself is built by the Alembic migrations.

Datetimes are stored as naive UTC (the one form SQLite and PostgreSQL agree on) and always come
back aware in UTC, so the rest of the code never meets a naive datetime (``shared.runtime.db.UTCDateTime``).
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from shared.runtime.audit import AuditRecordMixin
from shared.runtime.db import NAMING_CONVENTION, TYPE_ANNOTATION_MAP
from shared.runtime.models import OutboxEventMixin, ProcessedEventMixin

DIGEST_LENGTH = 100  # "sha256:" + 64 hex, with room for longer algorithms
NAME_LENGTH = 255
SHORT_LENGTH = 64  # architecture, os, variant, action, source


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = TYPE_ANNOTATION_MAP


class Repository(Base):
    __tablename__ = "repositories"
    __table_args__ = (sa.UniqueConstraint("namespace", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    is_public: Mapped[bool]
    is_ownbase: Mapped[bool]
    description: Mapped[str] = mapped_column(sa.Text, default="")
    overview: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    @property
    def full_name(self) -> str:
        return f"{self.namespace}/{self.name}"


class Manifest(Base):
    """An image manifest or an index (manifest list), content-addressed within its repository."""

    __tablename__ = "manifests"
    __table_args__ = (sa.UniqueConstraint("repository_id", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(sa.ForeignKey("repositories.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH))
    media_type: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    manifest_size: Mapped[int]
    # Bytes a pull downloads: config + compressed layers. None for an index (see its platforms).
    size: Mapped[int | None] = mapped_column(sa.BigInteger)
    image_id: Mapped[str | None] = mapped_column(sa.String(DIGEST_LENGTH))  # config digest
    created: Mapped[datetime | None]
    creator: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))
    architecture: Mapped[str | None] = mapped_column(sa.String(SHORT_LENGTH))
    os: Mapped[str | None] = mapped_column(sa.String(SHORT_LENGTH))
    variant: Mapped[str | None] = mapped_column(sa.String(SHORT_LENGTH))
    layers: Mapped[list] = mapped_column(default=list)  # layer digests, base first
    # For an index: [{"digest", "architecture", "os", "variant"}]; None for an image manifest.
    platforms: Mapped[list | None]
    indexed_at: Mapped[datetime]

    @property
    def is_index(self) -> bool:
        return self.platforms is not None


class Tag(Base):
    __tablename__ = "tags"
    __table_args__ = (sa.UniqueConstraint("repository_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository_id: Mapped[int] = mapped_column(sa.ForeignKey("repositories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(128))
    manifest_id: Mapped[int] = mapped_column(sa.ForeignKey("manifests.id"), index=True)
    pushed_at: Mapped[datetime]  # when the tag was last pointed at its current digest
    updated_at: Mapped[datetime]

    manifest: Mapped[Manifest] = relationship(lazy="joined")


class TagHistory(Base):
    """What happened to a tag, kept by name so that it outlives the repository rows."""

    __tablename__ = "tag_history"
    __table_args__ = (sa.Index("ix_tag_history_repository_tag", "repository", "tag"),)

    PUSHED, MOVED, REMOVED = "pushed", "moved", "removed"

    id: Mapped[int] = mapped_column(primary_key=True)
    repository: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    tag: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(16))
    digest: Mapped[str | None] = mapped_column(sa.String(DIGEST_LENGTH))
    previous_digest: Mapped[str | None] = mapped_column(sa.String(DIGEST_LENGTH))
    actor: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))
    at: Mapped[datetime]
    event_id: Mapped[str | None] = mapped_column(sa.String(36))


class ProcessedEvent(ProcessedEventMixin, Base):
    """Inserted in the same transaction as an event's changes: the event's idempotency key."""


class SetAsideEvent(Base):
    """An event that could not be used, kept with the reason for an operator."""

    __tablename__ = "set_aside_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(64))  # the service that set it aside
    reason: Mapped[str] = mapped_column(sa.Text)
    source_event_id: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))
    action: Mapped[str | None] = mapped_column(sa.String(64))
    repository: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))
    payload: Mapped[dict | None] = mapped_column(sa.JSON)
    at: Mapped[datetime]
    event_id: Mapped[str | None] = mapped_column(sa.String(36))


class DeadLetter(Base):
    """A message a handler of the suite could not handle, filed from the dead-letter queue
    (``catalog.dead_letters``): parked by its handler with the reason, or dead-lettered by RabbitMQ
    past the delivery limit. One row per (queue, event): a replay that fails again files it again
    here (``deaths`` counts), never a second row."""

    __tablename__ = "dead_letters"
    __table_args__ = (sa.UniqueConstraint("queue", "event_id"),)

    PARKED = "parked"
    REPLAYED = "replayed"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))  # the handler's queue: where a replay goes
    source: Mapped[str | None] = mapped_column(sa.String(SHORT_LENGTH))
    event_type: Mapped[str | None] = mapped_column(sa.String(SHORT_LENGTH))
    # The payload's event_id; for a message that has none, a digest of its body, so it files once.
    event_id: Mapped[str] = mapped_column(sa.String(SHORT_LENGTH + 8))
    reason: Mapped[str] = mapped_column(sa.String(SHORT_LENGTH))  # rejected, delivery_limit, ...
    error: Mapped[str | None] = mapped_column(sa.Text)
    deliveries: Mapped[int | None]
    deaths: Mapped[int] = mapped_column(default=1)
    body: Mapped[str] = mapped_column(sa.Text)  # as it came, decoded as UTF-8 (replaced where not)
    content_type: Mapped[str | None] = mapped_column(sa.String(SHORT_LENGTH))
    headers: Mapped[dict] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default=PARKED)
    first_dead_at: Mapped[datetime]
    last_dead_at: Mapped[datetime]
    replays: Mapped[int] = mapped_column(default=0)
    replayed_at: Mapped[datetime | None]
    replayed_by: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))


class OutboxEvent(OutboxEventMixin, Base):
    """An event to dispatch, written in the transaction of the change it reports (``catalog.outbox``).
    What happened is kept in ``tag_history``."""


class ResyncPass(Base):
    """One reconciliation pass of the catalogue against the registry (``catalog.resync``).

    Its id is the pass number that ``resync_missing`` counts consecutive passes with. The counters
    and ``report`` are saved as the pass goes, so that ``get_resync`` shows its progress.
    """

    __tablename__ = "resync_passes"

    RUNNING, FINISHED, FAILED, INTERRUPTED, ABANDONED = "running", "finished", "failed", "interrupted", "abandoned"

    id: Mapped[int] = mapped_column(primary_key=True)
    namespace: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))  # None: the whole registry
    trigger: Mapped[str] = mapped_column(sa.String(16))  # "rpc" or "timer"
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    repositories_total: Mapped[int | None]  # known once the registry's catalogue is listed
    repositories_scanned: Mapped[int] = mapped_column(default=0)
    tags_scanned: Mapped[int] = mapped_column(default=0)
    # {"added": [...], "moved": [...], "removed": [...], "pending_removal": [...], "skipped": [...]}
    report: Mapped[dict]
    error: Mapped[str | None] = mapped_column(sa.Text)


class ResyncLock(Base):
    """One row (id 1): the pass that holds the right to run, and when it last showed progress.

    Taken with a conditional UPDATE (``catalog.resync.start_pass``), which two callers cannot both
    win on either database; a holder silent for longer than the stale limit may be replaced.
    """

    __tablename__ = "resync_lock"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    pass_id: Mapped[int | None]
    heartbeat_at: Mapped[datetime | None]


class MissingTag(Base):
    """A catalogue tag a pass did not find in the registry: removed only if the next pass that
    looks at it misses it again (on the same digest)."""

    __tablename__ = "resync_missing"
    __table_args__ = (sa.UniqueConstraint("repository", "tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    repository: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    tag: Mapped[str] = mapped_column(sa.String(128))
    digest: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH))  # the catalogue's digest when missed
    first_missing_pass: Mapped[int]
    first_missing_at: Mapped[datetime]


class LibrarySource(Base):
    """An upstream image the public library mirrors (``catalog.mirror``): from ``registry`` and
    ``repository`` into ``library/<name>``, the tags its selectors choose. Managed over RPC by
    platform admins; seeded once from a YAML file (``LIBRARY_SOURCES_FILE``)."""

    __tablename__ = "library_sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_LENGTH), unique=True)  # library/<name>
    # host[:port]; not ``registry``, which every declarative class has (SQLAlchemy's own)
    upstream_registry: Mapped[str] = mapped_column("registry", sa.String(NAME_LENGTH))
    repository: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))  # the upstream's path
    tags: Mapped[list] = mapped_column(default=list)  # exact tags, always taken
    pattern: Mapped[str | None] = mapped_column(sa.String(128))  # a glob
    versions: Mapped[str | None] = mapped_column(sa.String(128))  # a version range
    newest: Mapped[int | None]  # the N highest versions of what the rules above keep
    follow_removals: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    insecure: Mapped[bool] = mapped_column(default=False)  # plain HTTP / no TLS verification
    credential: Mapped[str | None] = mapped_column(sa.String(SHORT_LENGTH))  # a name in the credentials file
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))


class LibrarySync(Base):
    """One sync of the library with its upstreams (``catalog.mirror.sync``): its status, what each
    source listed (``sources``), and one ``LibrarySyncItem`` per tag it looked at."""

    __tablename__ = "library_syncs"

    RUNNING, FINISHED, FAILED, INTERRUPTED, ABANDONED = "running", "finished", "failed", "interrupted", "abandoned"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str | None] = mapped_column(sa.String(NAME_LENGTH))  # None: every enabled source
    trigger: Mapped[str] = mapped_column(sa.String(16))  # "rpc" or "timer"
    status: Mapped[str] = mapped_column(sa.String(16))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # {name: {"status": "listed"|"failed", "upstream_tags": n, "selected": n, "error": str|None}}
    sources: Mapped[dict] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(sa.Text)


class LibrarySyncItem(Base):
    """What a sync did with one tag of one source: ``pending``, ``copying``, then ``copied``,
    ``unchanged``, ``failed`` (after its retries), ``removed`` (gone upstream, followed) or
    ``kept`` (gone upstream, kept here)."""

    __tablename__ = "library_sync_items"
    __table_args__ = (sa.UniqueConstraint("sync_id", "source", "tag"),)

    PENDING, COPYING, COPIED, UNCHANGED, FAILED, REMOVED, KEPT = (
        "pending",
        "copying",
        "copied",
        "unchanged",
        "failed",
        "removed",
        "kept",
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sync_id: Mapped[int] = mapped_column(sa.ForeignKey("library_syncs.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    tag: Mapped[str] = mapped_column(sa.String(128))
    digest: Mapped[str | None] = mapped_column(sa.String(DIGEST_LENGTH))  # the upstream's
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)
    seconds: Mapped[float | None]  # how long its copy took, retries included
    finished_at: Mapped[datetime | None]


class LibrarySyncLock(Base):
    """One row (id 1): the sync that holds the right to run and its heartbeat
    (``shared.runtime.lease``), and when the sources were seeded from the file (once)."""

    __tablename__ = "library_sync_lock"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    sync_id: Mapped[int | None]
    heartbeat_at: Mapped[datetime | None]
    seeded_at: Mapped[datetime | None]


class MirroredTag(Base):
    """A library tag a source put there, and the digest it copied: only these does a source that
    follows removals ever delete (an admin's own pushes to ``library/`` are not its to remove)."""

    __tablename__ = "library_mirrored_tags"
    __table_args__ = (sa.UniqueConstraint("source", "tag"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(NAME_LENGTH))
    tag: Mapped[str] = mapped_column(sa.String(128))
    digest: Mapped[str] = mapped_column(sa.String(DIGEST_LENGTH))
    mirrored_at: Mapped[datetime]


class AuditRecord(AuditRecordMixin, Base):
    """A state-changing call, who made it and how it ended (shared.runtime.audit): append-only."""
