"""A sync of the public library with its upstreams: list, select, compare by digest, copy.

For each source (every enabled one, or the one asked for) a sync

1. lists the upstream's tags (``skopeo list-tags``) and keeps those the source selects
   (``catalog.mirror.selection``), recording one ``pending`` item per tag;
2. for each tag, at most ``concurrency`` at a time, reads the upstream's digest (``skopeo inspect
   --raw``, hashed) and the library's (``HEAD`` on our registry): the same digest is
   ``unchanged`` and nothing is sent; otherwise ``skopeo copy --all --preserve-digests`` of that
   digest to ``library/<name>:<tag>``, then the library's tag must name the upstream's digest;
3. for a tag it mirrored earlier that the upstream no longer has: ``removed`` from the library if
   the source follows removals (and no other tag shares its digest: the registry deletes by
   digest), ``kept`` otherwise.

A failed step is tried again after ``retry_delay`` seconds, doubled each time, ``attempts`` times in
all; then the item is ``failed`` with the error, the others go on, and the next sync tries it
again. What was copied reaches the catalogue the usual way: the registry notifies the webhook of
the push. The registry takes a tag only with the last manifest of a copy, so a copy cut short
(the upstream gone, the process killed) leaves no tag, and no catalogue entry, behind.

One sync at a time: the ``library_sync_lock`` row is a ``shared.runtime.lease.RowLease``, renewed
as items finish; one silent for ``LOCK_STALE_AFTER`` (its process died) is taken over and its sync
marked ``abandoned``.
"""

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import eventlet
import requests
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import store
from catalog.deleting import remove_tag
from catalog.mirror import sources as source_store
from catalog.mirror.selection import select_tags
from catalog.mirror.settings import MirrorSettings
from catalog.mirror.skopeo import Endpoint, Skopeo, SkopeoError
from catalog.models import LibrarySync, LibrarySyncItem, LibrarySyncLock, MirroredTag
from shared.contracts.errors import Conflict, InvalidRequest, NotFound, RegistryUnavailable
from shared.contracts.reference import PUBLIC_NAMESPACE
from shared.runtime.clock import utcnow
from shared.runtime.lease import RowLease
from shared.runtime.registry_auth import RegistryAuthError, RegistryTokenAuth

log = logging.getLogger(__name__)

T = TypeVar("T")

RPC, TIMER = "rpc", "timer"
LOCK_ID = source_store.LOCK_ID
LOCK_STALE_AFTER = timedelta(seconds=300)  # longer than one copy's silence: a sync renews per item
LEASE = RowLease(LibrarySyncLock.id, LibrarySyncLock.sync_id, LibrarySyncLock.heartbeat_at, LOCK_STALE_AFTER)
Item = LibrarySyncItem
DONE = (Item.COPIED, Item.UNCHANGED, Item.FAILED, Item.REMOVED, Item.KEPT)
RETRYABLE = (SkopeoError, RegistryUnavailable)


def robot_refresh_token(settings: MirrorSettings) -> str | None:
    """A refresh token of the library robot from our registry's token service (None when the
    registry asks for no token, or without a robot): what skopeo logs in with, so that the token
    service checks the robot's password once per sync rather than once per copy."""
    if not settings.username:
        return None
    auth = RegistryTokenAuth(settings.username, settings.password, timeout=settings.timeout)
    with requests.Session() as session:
        session.auth = auth
        try:  # any path the robot may pull: the registry's challenge brings the login
            session.get(
                f"{settings.registry_url}/v2/{PUBLIC_NAMESPACE}/imagehub-login/tags/list", timeout=settings.timeout
            )
        except (requests.RequestException, RegistryAuthError) as exc:
            log.warning("library robot: no refresh token (%s); skopeo logs in with the password", exc)
            return None
    return auth.refresh_token


# -- starting and reading syncs ----------------------------------------------------------------


def start_sync(session: Session, source: str | None, trigger: str, now: datetime | None = None) -> int:
    """Take the lock and record a running sync (of ``source`` only, if given); returns its id.
    ``NotFound`` for an unknown source; ``Conflict`` naming the running sync."""
    now = now or utcnow()
    if source is not None:
        source_store.get_source(session, source)
    row = LibrarySync(source=source, trigger=trigger, status=LibrarySync.RUNNING, started_at=now, sources={})

    def abandon(stale: LibrarySync, heartbeat: datetime | None) -> None:
        log.warning("library sync %d showed no progress: abandoned, sync %d takes over", stale.id, row.id)
        stale.status, stale.finished_at = LibrarySync.ABANDONED, now
        stale.error = f"no progress for {LOCK_STALE_AFTER.total_seconds():g} s; taken over by sync {row.id}"

    LEASE.start_job(session, LOCK_ID, row, now, _running_message, abandon)
    return row.id


def start_periodic_sync(session: Session, interval: float, now: datetime | None = None) -> int | None:
    """A sync of every enabled source for the timer, unless one runs or one of them all started
    less than half an ``interval`` ago (another catalog process's timer). Its id, or None."""
    now = now or utcnow()
    latest = session.scalar(
        sa.select(LibrarySync.started_at).where(LibrarySync.source.is_(None)).order_by(LibrarySync.id.desc()).limit(1)
    )
    if latest is not None and latest > now - timedelta(seconds=interval / 2):
        return None
    try:
        return start_sync(session, None, TIMER, now)
    except Conflict as exc:
        log.info("periodic library sync skipped: %s", exc)
        return None


def _running_message(running: LibrarySync | None) -> str:
    if running is None:
        return "another library sync was starting at the same time"
    what = f"of source {running.source!r}" if running.source else "of every source"
    return (
        f"library sync {running.id} ({what}) is running since {running.started_at.isoformat()}; "
        f"one at a time: follow it with get_library_sync({running.id})"
    )


def get_sync(session: Session, sync_id: int | None = None, items: bool = True) -> dict[str, Any]:
    """A sync as ``get_library_sync`` shows it (the latest if ``sync_id`` is None): its status,
    each source's listing, ``counts`` by item status and, with ``items``, every item."""
    row = store.latest_or_get(
        session, LibrarySync, sync_id, "no library sync has run yet", f"no library sync {sync_id}"
    )
    counts = dict.fromkeys((Item.PENDING, Item.COPYING, *DONE), 0)
    for status, count in session.execute(
        sa.select(Item.status, sa.func.count()).where(Item.sync_id == row.id).group_by(Item.status)
    ):
        counts[status] = count
    listed = None
    if items:
        listed = [
            {
                "source": item.source,
                "tag": item.tag,
                "digest": item.digest,
                "status": item.status,
                "attempts": item.attempts,
                "error": item.error,
                "seconds": item.seconds,
                "finished_at": item.finished_at,
            }
            for item in session.scalars(sa.select(Item).where(Item.sync_id == row.id).order_by(Item.id))
        ]
    return {
        "sync_id": row.id,
        "source": row.source,
        "trigger": row.trigger,
        "status": row.status,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "sources": row.sources,
        "counts": counts,
        "items": listed,
        "error": row.error,
    }


def latest_ended(session: Session) -> tuple[dict[str, int], datetime] | None:
    """The items by status of the latest sync that ended, and when it ended (the metrics)."""
    row = session.scalar(
        sa.select(LibrarySync)
        .where(LibrarySync.status != LibrarySync.RUNNING, LibrarySync.finished_at.is_not(None))
        .order_by(LibrarySync.id.desc())
        .limit(1)
    )
    if row is None or row.finished_at is None:
        return None
    return get_sync(session, row.id, items=False)["counts"], row.finished_at


# -- running one -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """What a sync needs of a source, read once (no ORM object crosses green threads)."""

    name: str
    registry: str
    repository: str
    tags: tuple[str, ...]
    pattern: str | None
    versions: str | None
    newest: int | None
    follow_removals: bool
    insecure: bool
    credential: str | None

    @property
    def library_repository(self) -> str:
        return f"{PUBLIC_NAMESPACE}/{self.name}"


class SyncRun:
    """Runs the sync ``sync_id`` that ``start_sync`` recorded, to its end; ``run()`` returns it as
    ``get_sync`` shows it. ``transaction(work)`` runs ``work(session)`` in one transaction;
    ``registry`` is the catalog's client of our registry (digests, deletes)."""

    def __init__(
        self,
        sync_id: int,
        transaction: Callable[[Callable[[Session], Any]], Any],
        registry: Any,
        settings: MirrorSettings,
        send_outbox: Callable[[Any], None],
        cancelled: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], Any] = eventlet.sleep,
        skopeo: Callable[..., Any] = Skopeo,
    ) -> None:
        self.sync_id = sync_id
        self.transaction = transaction
        self.registry = registry
        self.settings = settings
        self.send_outbox = send_outbox
        self.cancelled = cancelled
        self.sleep = sleep
        self.skopeo = skopeo  # Skopeo(endpoints, command, timeout=, copy_timeout=): a context manager
        self.lost_lock = False

    def run(self) -> dict[str, Any]:
        status, error = LibrarySync.FINISHED, None
        try:
            for source in self.transaction(self._load_sources):
                if self._stopping():
                    break
                self._sync_source(source)
        except Exception as exc:  # recorded on the sync for its reader, and logged in full
            log.exception("library sync %d failed", self.sync_id)
            status, error = LibrarySync.FAILED, f"{type(exc).__name__}: {exc}"
        if self._stopping() and status == LibrarySync.FINISHED:
            status = LibrarySync.INTERRUPTED
            error = "another sync took the lock over" if self.lost_lock else "the catalog was stopping"
        return self.transaction(lambda session: self._finish(session, status, error))

    def _stopping(self) -> bool:
        return self.lost_lock or self.cancelled()

    def _load_sources(self, session: Session) -> list[_Source]:
        row = session.get_one(LibrarySync, self.sync_id)
        if row.source is not None:
            chosen = [source_store.get_source(session, row.source)]
        else:
            chosen = source_store.list_sources(session, enabled_only=True)
        return [
            _Source(
                s.name,
                s.upstream_registry,
                s.repository,
                tuple(s.tags or ()),
                s.pattern,
                s.versions,
                s.newest,
                s.follow_removals,
                s.insecure,
                s.credential,
            )
            for s in chosen
        ]

    def _finish(self, session: Session, status: str, error: str | None) -> dict[str, Any]:
        row = session.get_one(LibrarySync, self.sync_id)
        # Items a stopped sync never reached stay visible as such.
        session.execute(
            sa.update(Item)
            .where(Item.sync_id == self.sync_id, Item.status.in_((Item.PENDING, Item.COPYING)))
            .values(status=Item.FAILED, error="not done: the sync ended first")
            .execution_options(synchronize_session=False)
        )
        row.status, row.error, row.finished_at = status, error, utcnow()
        LEASE.release(session, LOCK_ID, self.sync_id)
        session.flush()
        result = get_sync(session, self.sync_id, items=False)
        log.info("library sync %d %s: %s", self.sync_id, status, result["counts"])
        return result

    # -- one source ------------------------------------------------------------------------------

    def _sync_source(self, source: _Source) -> None:
        try:
            endpoints = [self._our_endpoint(), self._upstream_endpoint(source)]
        except InvalidRequest as exc:
            self._note_source(source, {"status": "failed", "error": str(exc)})
            return
        with self.skopeo(
            endpoints, self.settings.skopeo, timeout=self.settings.timeout, copy_timeout=self.settings.copy_timeout
        ) as skopeo:
            try:
                upstream_tags = self._with_retries(lambda: skopeo.list_tags(source.registry, source.repository))
            except RETRYABLE as exc:
                self._note_source(source, {"status": "failed", "error": str(exc)})
                return
            selected = select_tags(upstream_tags, source.tags, source.pattern, source.versions, source.newest)
            self._note_source(
                source,
                {"status": "listed", "upstream_tags": len(upstream_tags), "selected": len(selected), "error": None},
            )
            self.transaction(lambda session: self._add_items(session, source, selected))
            pool = eventlet.GreenPool(self.settings.concurrency)
            for tag in selected:
                pool.spawn_n(self._sync_tag, skopeo, source, tag)
            pool.waitall()
        if not self._stopping():
            self._follow_removals(source, set(upstream_tags))

    @functools.cached_property
    def _robot_token(self) -> str | None:
        """Asked once per sync, at the first source that needs our registry."""
        return robot_refresh_token(self.settings)

    def _our_endpoint(self) -> Endpoint:
        s = self.settings
        return Endpoint(s.registry_host, s.registry_insecure, s.username, s.password, self._robot_token)

    def _upstream_endpoint(self, source: _Source) -> Endpoint:
        if source.registry == self.settings.registry_host:
            raise InvalidRequest(f"source {source.name!r} names our own registry as its upstream")
        if source.credential is None:
            return Endpoint(source.registry, source.insecure)
        credential = source_store.read_credentials(self.settings.credentials_file).get(source.credential)
        if credential is None:
            raise InvalidRequest(f"credential {source.credential!r} is not in the library credentials file")
        return Endpoint(source.registry, source.insecure, credential.username, credential.password)

    def _note_source(self, source: _Source, note: dict[str, Any]) -> None:
        if note.get("status") == "failed":
            log.warning("library sync %d: source %r not listed: %s", self.sync_id, source.name, note["error"])

        def note_it(session: Session) -> None:
            row = session.get_one(LibrarySync, self.sync_id)
            row.sources = dict(row.sources or {}, **{source.name: note})  # a new dict: JSON columns track assignment

        self.transaction(note_it)

    def _add_items(self, session: Session, source: _Source, tags: list[str]) -> None:
        for tag in tags:
            session.add(Item(sync_id=self.sync_id, source=source.name, tag=tag, status=Item.PENDING, attempts=0))

    # -- one tag ---------------------------------------------------------------------------------

    def _sync_tag(self, skopeo: Skopeo, source: _Source, tag: str) -> None:
        if self._stopping():
            return
        started = time.monotonic()
        attempts = 0

        def attempt() -> tuple[str, str]:
            nonlocal attempts
            attempts += 1
            digest = skopeo.digest(source.registry, source.repository, tag)
            if self.registry.tag_digest(source.library_repository, tag) == digest:
                return Item.UNCHANGED, digest
            self._update_item(source, tag, status=Item.COPYING, digest=digest, attempts=attempts)
            skopeo.copy(
                (source.registry, source.repository, digest),
                (self.settings.registry_host, source.library_repository, tag),
            )
            landed = self.registry.tag_digest(source.library_repository, tag)
            if landed != digest:
                raise SkopeoError(f"after the copy {source.library_repository}:{tag} names {landed}, not {digest}")
            return Item.COPIED, digest

        try:
            status, digest = self._with_retries(attempt)
        except RETRYABLE as exc:
            log.warning(
                "library sync %d: %s:%s failed after %d attempt(s): %s", self.sync_id, source.name, tag, attempts, exc
            )
            self._update_item(
                source, tag, status=Item.FAILED, attempts=attempts, error=str(exc), seconds=time.monotonic() - started
            )
        else:
            self._update_item(
                source,
                tag,
                status=status,
                digest=digest,
                attempts=attempts,
                error=None,
                seconds=time.monotonic() - started,
                mirrored=digest,
            )

    def _with_retries(self, step: Callable[[], T]) -> T:
        delay = self.settings.retry_delay
        for attempt in range(1, self.settings.attempts + 1):
            try:
                return step()
            except RETRYABLE:
                if attempt == self.settings.attempts or self._stopping():
                    raise
                self.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _update_item(self, source: _Source, tag: str, mirrored: str | None = None, **values: Any) -> None:
        now = utcnow()
        if values.get("status") in DONE:
            values["finished_at"] = now

        def update(session: Session) -> None:
            session.execute(
                sa.update(Item)
                .where(Item.sync_id == self.sync_id, Item.source == source.name, Item.tag == tag)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if mirrored is not None:
                _remember(session, source.name, tag, mirrored, now)
            if not LEASE.renew(session, LOCK_ID, self.sync_id, now):
                self.lost_lock = True

        self.transaction(update)

    # -- removals --------------------------------------------------------------------------------

    def _follow_removals(self, source: _Source, upstream_tags: set[str]) -> None:
        gone = self.transaction(
            lambda session: [
                (row.tag, row.digest)
                for row in session.scalars(
                    sa.select(MirroredTag).where(MirroredTag.source == source.name).order_by(MirroredTag.tag)
                )
                if row.tag not in upstream_tags
            ]
        )
        for tag, digest in gone:
            if not source.follow_removals:
                self._record(
                    source, tag, digest, Item.KEPT, "gone upstream; kept (the source does not follow removals)"
                )
                continue
            try:
                outgoing = self.transaction(functools.partial(self._remove, source=source, tag=tag, digest=digest))
            except (Conflict, RegistryUnavailable) as exc:
                self._record(source, tag, digest, Item.KEPT, f"gone upstream; not removed: {exc}")
                continue
            self.send_outbox(outgoing)
            self._record(source, tag, digest, Item.REMOVED, None)

    def _remove(self, session: Session, source: _Source, tag: str, digest: str) -> list[Any]:
        """Delete the library's ``tag`` if it still names what the source copied; forget it."""
        session.execute(sa.delete(MirroredTag).where(MirroredTag.source == source.name, MirroredTag.tag == tag))
        if self.registry.tag_digest(source.library_repository, tag) != digest:
            return []  # moved or deleted here since: not the mirror's to remove
        try:
            _, outgoing = remove_tag(
                session,
                self.registry,
                PUBLIC_NAMESPACE,
                source.name,
                tag,
                force=False,
                actor=f"library-sync:{source.name}",
            )
        except NotFound:  # in the registry, not (yet) in the catalogue: the registry alone
            self.registry.delete_manifest(source.library_repository, digest)
            return []
        return outgoing

    def _record(self, source: _Source, tag: str, digest: str, status: str, error: str | None) -> None:
        def record(session: Session) -> None:
            session.add(
                Item(
                    sync_id=self.sync_id,
                    source=source.name,
                    tag=tag,
                    digest=digest,
                    status=status,
                    attempts=1,
                    error=error,
                    finished_at=utcnow(),
                )
            )

        self.transaction(record)


def _remember(session: Session, source: str, tag: str, digest: str, now: datetime) -> None:
    row = session.scalar(sa.select(MirroredTag).where(MirroredTag.source == source, MirroredTag.tag == tag))
    if row is None:
        session.add(MirroredTag(source=source, tag=tag, digest=digest, mirrored_at=now))
    elif row.digest != digest:
        row.digest, row.mirrored_at = digest, now
