"""Running a pass: the registry walked, the catalogue compared and repaired (see ``catalog.resync``)."""

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from eventlet.greenpool import GreenPool
from eventlet.semaphore import Semaphore
from sqlalchemy.orm import Session

from catalog import indexing, store
from catalog.exceptions import UnusableEvent
from catalog.models import MissingTag, Repository, ResyncPass, Tag
from catalog.resync import queries
from catalog.resync.lease import LEASE, LOCK_ID
from catalog.resync.report import empty_report, get_pass, pass_view, saved_report
from shared.contracts.errors import InvalidReference, RegistryUnavailable
from shared.contracts.reference import parse_repository, validate_tag
from shared.runtime.clock import utcnow

log = logging.getLogger(__name__)

# ``transaction(work)``: ``work(session)`` in one transaction, retrying lost races (the service's).
Transact = Callable[[Callable[[Session], Any]], Any]

# A running pass renews the lock at least this often (and saves its progress).
PROGRESS_EVERY = timedelta(seconds=1)

# Registry requests a pass has under way at once (tags/list, HEADs, manifests and configs), unless
# the registry client says how many its connection pool is sized for (``concurrency``).
DEFAULT_CONCURRENCY = 8
# Repositories compared with the catalogue in one read (and their changes written in batches of
# WRITE_BATCH tags a transaction): about CHUNK_TAGS tags, at most CHUNK_REPOSITORIES repositories.
# A batch's events are sent after its commit: a small batch keeps them younger than the outbox
# relay's OUTBOX_RELAY_MIN_AGE, which on SQLite (no row locks) would send them a second time.
CHUNK_TAGS = 500
CHUNK_REPOSITORIES = 100
WRITE_BATCH = 25

# A pass finding more than this share of the catalogue's repositories (in its scope) missing
# from the registry's listing removes nothing: that is a registry on the wrong or an empty
# storage, a wrong REGISTRY_URL, not deletes (RESYNC_MAX_REMOVAL_FRACTION; 1 turns it off) ...
DEFAULT_MAX_REMOVAL_FRACTION = 0.5
# ... once the catalogue has this many repositories there (a small one may really be emptied).
REMOVAL_GUARD_MIN_REPOSITORIES = 10


def removal_guard(in_catalogue: int, missing: int, max_fraction: float) -> str | None:
    """Why a pass must not remove anything, or None."""
    if max_fraction >= 1 or in_catalogue < REMOVAL_GUARD_MIN_REPOSITORIES or missing <= max_fraction * in_catalogue:
        return None
    return (
        f"removals held: {missing} of the catalogue's {in_catalogue} repositories are missing from the "
        f"registry's listing, more than {max_fraction:.0%} (RESYNC_MAX_REMOVAL_FRACTION); is the registry "
        f"on the right storage? Nothing is marked or removed while this holds; adds and moves go on"
    )


# uuid5 namespace of reconciliation's event ids (a fixed, random value).
EVENT_ID_NAMESPACE = uuid.UUID("6b0d7c4e-2f1a-4c55-9a43-0d2f3e5b8c71")


def resync_event_id(repository: str, tag: str, change: str, after_history_id: int) -> str:
    """The id of the change a pass makes to ``repository:tag`` (``change``: the digest it points the
    tag at, or ``removed <digest>``) in the state after the tag's history row ``after_history_id``
    (0: none). The same repair gets the same id; the same digest pushed again after a delete does not."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{repository}:{tag}@{change}#{after_history_id}"))


def derived_event_id(event_id: str, event_type: str) -> str:
    """The id of the ``event_type`` a reconciliation change emits: fixed by the change's own id."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{event_type}:{event_id}"))


@dataclass
class Observed:
    """What the registry said of one repository: its tags' digests now, and what to skip."""

    full_name: str
    namespace: str | None = None  # None: a name the catalogue cannot index (see ``skips``)
    name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    listed: int = 0  # tags listed (tags_scanned)
    skips: list[tuple[str | None, str]] = field(default_factory=list)  # (tag, reason), in order
    unusable: str | None = None  # an answer the pass cannot read: the repository is left as it is
    in_registry: bool = True  # False: only in the catalogue (every tag of it missing)


@dataclass
class Change:
    """A tag to add or move: ``previous`` is the catalogue's digest when the chunk was read."""

    observed: Observed
    tag: str
    digest: str
    previous: str | None

    @property
    def key(self) -> tuple[str, str, str]:
        assert self.observed.namespace is not None and self.observed.name is not None
        return (self.observed.namespace, self.observed.name, self.tag)


class PassEnded(Exception):
    """The pass stops early: ``status`` says why."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class Pass:
    """One pass, run by ``run``. See the module's docstring for the rules."""

    def __init__(
        self,
        pass_id: int,
        transaction: Transact,
        registry: Any,  # catalog.dependencies.RegistryClient, or a test's fake of it
        send: Callable[[list[Any]], Any],
        page_size: int = 100,
        cancelled: Callable[[], bool] | None = None,
        clock: Callable[[], datetime] | None = None,
        max_removal_fraction: float = DEFAULT_MAX_REMOVAL_FRACTION,
        concurrency: int | None = None,
    ) -> None:
        self.id = pass_id
        self.concurrency = max(1, concurrency or getattr(registry, "concurrency", None) or DEFAULT_CONCURRENCY)
        # Every registry request of the pass takes a slot: at most ``concurrency`` under way.
        self.slots = Semaphore(self.concurrency)
        self.max_removal_fraction = max_removal_fraction
        self.removals_held: str | None = None  # the reason, when this pass removes nothing (see _scan)
        self.transaction = transaction
        self.registry = registry
        self.send = send
        self.page_size = page_size
        self.cancelled = cancelled or (lambda: False)
        self.clock = clock or utcnow
        self.report = empty_report()
        self.repositories_total: int | None = None
        self.repositories_scanned = 0
        self.tags_scanned = 0
        self.saved_at: datetime | None = None
        self.known_repositories: set[str] = set()

    def run(self) -> dict[str, Any]:
        """Run the pass to its end; returns its ``pass_view``. Never raises for the registry:
        a pass it could not finish ends ``failed``, with what it did so far."""
        self.namespace, self.started_at = self.transaction(
            lambda session: session.execute(
                sa.select(ResyncPass.namespace, ResyncPass.started_at).where(ResyncPass.id == self.id)
            ).one()
        )
        try:
            self._scan()
        except PassEnded as exc:
            return self._finish(exc.status, str(exc))
        except (RegistryUnavailable, UnusableEvent) as exc:
            log.warning("resync pass %d failed: %s", self.id, exc)
            return self._finish(ResyncPass.FAILED, f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            log.exception("resync pass %d failed unexpectedly", self.id)
            try:
                self._finish(ResyncPass.FAILED, f"{type(exc).__name__}: {exc}")
            except Exception:  # (the database is away too): the lock goes stale instead
                log.exception("resync pass %d: could not record its failure", self.id)
            raise
        return self._finish(ResyncPass.FINISHED, None)

    def _scan(self) -> None:
        listed = self._registry_repositories()
        in_catalogue = self.transaction(self._catalogue_repositories)
        only_in_catalogue = sorted(set(in_catalogue) - set(listed))
        self.removals_held = removal_guard(len(in_catalogue), len(only_in_catalogue), self.max_removal_fraction)
        if self.removals_held:
            log.warning("resync pass %d: %s", self.id, self.removals_held)
            self._skip(self.namespace or "*", None, self.removals_held)
        # A repository the catalogue lacks has its tags read by GET (digest and manifest at once:
        # each is added); the others by HEAD (digest alone: most are unchanged).
        self.known_repositories = set(in_catalogue)
        self.repositories_total = len(listed) + len(only_in_catalogue)
        self._progress(force=True)
        # The registry's repositories are read ``concurrency`` at a time, in the listing's order;
        # the catalogue is compared and repaired a chunk of them at a time, in that order.
        pool = GreenPool(self.concurrency)
        observed = pool.imap(self._observe_repository, listed)
        missing = (self._only_in_catalogue(name) for name in only_in_catalogue)
        chunk: list[Observed] = []
        tags = 0
        for seen in _chain(observed, missing):
            if self.cancelled():  # between two repositories: those read so far are compared first
                self._compare_chunk(chunk)
                self._check_stop()
            chunk.append(seen)
            tags += len(seen.tags) or 1
            if tags >= CHUNK_TAGS or len(chunk) >= CHUNK_REPOSITORIES:
                self._compare_chunk(chunk)
                chunk, tags = [], 0
        self._compare_chunk(chunk)
        self.transaction(self._forget_marks_of_vanished_tags)

    def _check_stop(self) -> None:
        if self.cancelled():
            raise PassEnded(ResyncPass.INTERRUPTED, "the catalog service stopped during the pass")

    def _in_scope(self, repository: str) -> bool:
        return self.namespace is None or repository.split("/", 1)[0] == self.namespace

    def _registry_repositories(self) -> list[str]:
        names: list[str] = []
        for page in self.registry.repository_pages(self.page_size):
            names.extend(name for name in page if self._in_scope(name))
            self._progress()
        return names

    def _catalogue_repositories(self, session: Session) -> list[str]:
        stmt = sa.select(Repository.namespace, Repository.name).where(
            sa.exists().where(Tag.repository_id == Repository.id)
        )
        if self.namespace is not None:
            stmt = stmt.where(Repository.namespace == self.namespace)
        return [f"{namespace}/{name}" for namespace, name in session.execute(stmt)]

    # -- reading the registry (green threads: registry requests only, never the database) --------

    def _registry_call(self, call: Callable[..., Any], *args: Any) -> Any:
        with self.slots:
            return call(*args)

    def _observe_repository(self, full_name: str) -> Observed:
        """The repository's tags and each one's digest (a ``HEAD`` each, ``concurrency`` at a time)."""
        try:
            namespace, name = parse_repository(full_name)
        except InvalidReference as exc:
            return Observed(full_name, skips=[(None, f"not indexed: {exc}")])
        seen = Observed(full_name, namespace, name)
        fetch = full_name not in self.known_repositories
        try:
            pages = self.registry.tag_pages(full_name, self.page_size)
            while True:
                page = self._registry_call(next, pages, None)
                if page is None:
                    break
                valid = []
                for tag in page:
                    seen.listed += 1
                    try:
                        valid.append(validate_tag(tag))
                    except InvalidReference as exc:
                        seen.skips.append((tag, f"not indexed: {exc}"))
                heads = GreenPool(self.concurrency).imap(
                    lambda tag: (tag, self._registry_call(self.registry.tag_digest, full_name, tag, fetch)), valid
                )
                # None: deleted since it was listed
                seen.tags.update((tag, digest) for tag, digest in heads if digest is not None)
        except UnusableEvent as exc:  # an answer the pass cannot read: leave the repository as it is
            return Observed(full_name, namespace, name, listed=seen.listed, unusable=f"{type(exc).__name__}: {exc}")
        return seen

    def _only_in_catalogue(self, full_name: str) -> Observed:
        namespace, name = parse_repository(full_name)
        return Observed(full_name, namespace, name, in_registry=False)

    # -- comparing a chunk of repositories ---------------------------------------------------------

    def _compare_chunk(self, chunk: list[Observed]) -> None:
        """Compare ``chunk`` with the catalogue (one read), repair it, and save the progress."""
        if not chunk:
            return
        comparable = [o for o in chunk if o.namespace is not None and o.name is not None and o.unusable is None]
        pairs = [(o.namespace or "", o.name or "") for o in comparable]
        catalogue, marks = self.transaction(
            lambda session: (
                queries.catalogue_tags_of(session, pairs),
                queries.marks_of(session, [o.full_name for o in comparable]),
            )
        )
        changes: list[Change] = []
        for seen in chunk:
            if seen.in_registry:
                self.tags_scanned += seen.listed
            for tag, reason in seen.skips:
                self._skip(seen.full_name, tag, reason)
            if seen.unusable is not None:
                self._skip(seen.full_name, None, seen.unusable)
            if seen.full_name in catalogue:  # comparable
                in_catalogue = catalogue[seen.full_name]
                changes.extend(
                    Change(seen, tag, digest, in_catalogue.get(tag))
                    for tag, digest in sorted(seen.tags.items())
                    if in_catalogue.get(tag) != digest
                )
        self._index_all(changes)
        for seen in comparable:
            self._compare_missing(seen, catalogue[seen.full_name], marks[seen.full_name])
        self.repositories_scanned += len(chunk)
        self._progress()

    def _compare_missing(self, seen: Observed, catalogue: dict[str, str], marks: dict[str, dict[str, Any]]) -> None:
        """Remove, mark or unmark the catalogue's tags ``seen`` lacks (``catalogue``, ``marks``: as
        the chunk read them)."""
        assert seen.namespace is not None and seen.name is not None
        full_name, namespace, name, observed = seen.full_name, seen.namespace, seen.name, seen.tags
        if self.removals_held:
            return  # adds and moves only: no removal, and no new marks that would lead to one
        for tag in sorted(set(catalogue) - set(observed)):
            mark = marks.get(tag)
            if mark is not None and mark["pass"] < self.id and mark["digest"] == catalogue[tag]:
                self._remove(full_name, namespace, name, tag, mark)
        if marks or set(catalogue) - set(observed):
            self.transaction(
                lambda session: self._update_marks(session, full_name, namespace, name, observed, catalogue, marks)
            )

    # -- adding and moving ---------------------------------------------------------------------

    def _index_all(self, changes: list[Change]) -> None:
        """Adds in batches of ``WRITE_BATCH`` tags a transaction; moves (and adds a batch found
        taken by an event meanwhile) one transaction each, as an event's."""
        adds = [c for c in changes if c.previous is None]
        singles = [c for c in changes if c.previous is not None]
        for start in range(0, len(adds), WRITE_BATCH):
            singles.extend(self._index_batch(adds[start : start + WRITE_BATCH]))
        for change in singles:
            seen = change.observed
            assert seen.namespace is not None and seen.name is not None
            self._index(seen.full_name, seen.namespace, seen.name, change.tag, change.digest)

    def _index_batch(self, batch: list[Change]) -> list[Change]:
        """Index ``batch`` (tags the catalogue lacked) in one transaction: the images fetched first,
        ``concurrency`` at a time, outside it. Returns the changes left for one transaction each."""
        if not batch:
            return []
        wanted = sorted({(c.key[0], c.key[1], c.digest) for c in batch})
        known = self.transaction(lambda session: queries.known_manifests(session, wanted))
        to_fetch = [w for w in wanted if w not in known]
        fetched: dict[tuple[str, str, str], Any] = {}
        for key, image in GreenPool(self.concurrency).imap(self._fetch_image, to_fetch):
            fetched[key] = image
        ready = []
        for change in batch:
            image = fetched.get((change.key[0], change.key[1], change.digest))
            if isinstance(image, UnusableEvent):
                self._skip(change.observed.full_name, change.tag, f"{type(image).__name__}: {image}")
            else:
                ready.append((change, image))
        try:
            outcomes = self.transaction(lambda session: self._index_batch_in(session, ready))
        except UnusableEvent as exc:  # one of them: each is tried again on its own, to say which
            log.info("resync pass %d: a batch of %d tags failed (%s); one by one", self.id, len(ready), exc)
            return [change for change, _ in ready]
        outgoing = [event for kind, detail in outcomes if kind == "added" for event in detail]
        if outgoing:
            self.send(outgoing)
        singles = []
        for (change, _), (kind, detail) in zip(ready, outcomes, strict=True):
            if kind == "added":
                self.report["added"].append(
                    {"repository": change.observed.full_name, "tag": change.tag, "digest": change.digest}
                )
            elif kind == "skipped":
                self._skip(change.observed.full_name, change.tag, detail)
            elif kind == "single":
                singles.append(change)
        return singles

    def _fetch_image(self, key: tuple[str, str, str]) -> tuple[tuple[str, str, str], Any]:
        """``(key, image)`` of ``(namespace, name, digest)``; the image is the ``UnusableEvent`` that
        says why it cannot be indexed, if so (``RegistryUnavailable`` ends the pass)."""
        namespace, name, digest = key
        try:
            return key, self._registry_call(indexing.fetch_image, self.registry, f"{namespace}/{name}", digest)
        except UnusableEvent as exc:
            return key, exc

    def _record_tag(
        self,
        session: Session,
        namespace: str,
        full_name: str,
        tag: str,
        digest: str,
        after: int,
        now: datetime,
        fetched: Any,
    ) -> list[Any]:
        """Point ``tag`` at ``digest`` as a push the pass found would have (``indexing.record_push``):
        its event ID derived from the tag, the digest and its history so far (``after``), so that
        another pass finding the same thing repeats nothing."""
        event_id = resync_event_id(full_name, tag, digest, after)
        event = {
            "event_id": event_id,
            "namespace": namespace,
            "repository": full_name,
            "tag": tag,
            "digest": digest,
            "media_type": None,
            "actor": None,
            "occurred_at": now,
            "pushed_at": now,
        }
        return indexing.record_push(
            session,
            self.registry,
            event,
            now=now,
            fetched=fetched,
            indexed_event_id=derived_event_id(event_id, "tag_indexed"),
            trigger="resync",
        )

    def _index_batch_in(self, session: Session, ready: list[tuple[Change, Any]]) -> list[tuple[str, Any]]:
        """In one transaction: every read and registry request first (the repositories locked, the
        tags as they are now, their history, the registry's digest of each now), then the writes."""
        for namespace, name in sorted({c.key[:2] for c, _ in ready}):
            store.find_repository(session, namespace, name, for_update=True)
        now_in_catalogue = queries.tags_in_catalogue(session, [c.key for c, _ in ready])
        touched, after = queries.history_of(session, [(c.observed.full_name, c.tag) for c, _ in ready], self.started_at)
        # The last reads before writing: the registry's digest of each tag now.
        digests_now = dict(
            GreenPool(self.concurrency).imap(
                lambda c: (c.key, self._registry_call(self.registry.tag_digest, c.observed.full_name, c.tag)),
                [c for c, _ in ready],
            )
        )
        # Writes from here on: no more network I/O. The first: the lock renewed, so that a pass
        # whose lock was taken over (while it read the registry) writes nothing more.
        now = self.clock()
        if not LEASE.renew(session, LOCK_ID, self.id, now):
            raise PassEnded(ResyncPass.ABANDONED, "the lock was taken over by another pass")
        outcomes: list[tuple[str, Any]] = []
        dropped: dict[str, list[str]] = {}
        for change, image in ready:
            full_name, tag, digest = change.observed.full_name, change.tag, change.digest
            present = now_in_catalogue.get(change.key)
            if present == digest:
                outcomes.append(("done", None))  # an event got there first
                continue
            if (full_name, tag) in touched:
                outcomes.append(("skipped", "changed by an event during the pass"))
                continue
            if present is not None:  # an event's tag arrived since the chunk was read: a move now
                outcomes.append(("single", None))
                continue
            if digests_now[change.key] != digest:
                outcomes.append(("skipped", "changed in the registry during the pass"))
                continue
            outgoing = self._record_tag(
                session, change.key[0], full_name, tag, digest, after.get((full_name, tag), 0), now, image
            )
            if not outgoing:
                outcomes.append(("skipped", "already repaired by an earlier pass"))
                continue
            dropped.setdefault(full_name, []).append(tag)
            outcomes.append(("added", outgoing))
        for full_name, tags in dropped.items():
            queries.drop_marks(session, full_name, tags)
        return outcomes

    def _index(self, full_name: str, namespace: str, name: str, tag: str, digest: str) -> None:
        try:
            fetched = self.transaction(lambda session: self._fetch_unless_known(session, namespace, name, digest))
            outcome = self.transaction(
                lambda session: self._index_in(session, full_name, namespace, name, tag, digest, fetched)
            )
        except UnusableEvent as exc:
            self._skip(full_name, tag, f"{type(exc).__name__}: {exc}")
            return
        kind, detail = outcome
        if kind == "skipped":
            self._skip(full_name, tag, detail)
        elif kind in ("added", "moved"):
            outgoing, previous = detail
            self.send(outgoing)
            entry = {"repository": full_name, "tag": tag, "digest": digest}
            if kind == "moved":
                entry["previous_digest"] = previous
            self.report[kind].append(entry)

    def _fetch_unless_known(self, session: Session, namespace: str, name: str, digest: str) -> Any:
        repository = store.find_repository(session, namespace, name)
        if repository is not None and store.find_manifest(session, repository.id, digest) is not None:
            return None
        return indexing.fetch_image(self.registry, f"{namespace}/{name}", digest)

    def _index_in(
        self, session: Session, full_name: str, namespace: str, name: str, tag: str, digest: str, fetched: Any
    ) -> tuple[str, Any]:
        repository = store.find_repository(session, namespace, name, for_update=True)
        row = store.find_tag(session, repository.id, tag, for_update=True) if repository else None
        previous = row.manifest.digest if row else None
        if previous == digest:
            return "done", None  # an event got there first
        if queries.touched_since(session, full_name, tag, self.started_at):
            return "skipped", "changed by an event during the pass"
        after = queries.last_history_id(session, full_name, tag)
        if self.registry.tag_digest(full_name, tag) != digest:  # the last read before writing
            return "skipped", "changed in the registry during the pass"
        now = self.clock()
        outgoing = self._record_tag(session, namespace, full_name, tag, digest, after, now, fetched)
        if not outgoing:
            return "skipped", (
                "already repaired by an earlier pass"
                if previous is None
                else "the catalogue's tag was pushed later than the pass saw the registry"
            )
        queries.drop_mark(session, full_name, tag)
        return ("added" if previous is None else "moved"), (outgoing, previous)

    # -- removing ------------------------------------------------------------------------------

    def _remove(self, full_name: str, namespace: str, name: str, tag: str, mark: dict[str, Any]) -> None:
        try:
            outcome, detail = self.transaction(
                lambda session: self._remove_in(session, full_name, namespace, name, tag, mark)
            )
        except UnusableEvent as exc:  # the registry's answer about the tag could not be read
            self._skip(full_name, tag, f"{type(exc).__name__}: {exc}")
            return
        if outcome == "removed":
            self.send(detail)
            self.report["removed"].append({"repository": full_name, "tag": tag, "digest": mark["digest"]})
        elif outcome == "skipped":
            self._skip(full_name, tag, detail)

    def _remove_in(
        self, session: Session, full_name: str, namespace: str, name: str, tag: str, mark: dict[str, Any]
    ) -> tuple[str, Any]:
        repository = store.find_repository(session, namespace, name, for_update=True)
        row = store.find_tag(session, repository.id, tag, for_update=True) if repository else None
        if row is None:
            queries.drop_mark(session, full_name, tag)
            return "done", None  # an event removed it
        if (
            queries.touched_since(session, full_name, tag, min(self.started_at, mark["at"]))
            or row.manifest.digest != mark["digest"]
        ):
            queries.drop_mark(session, full_name, tag)
            return "skipped", "changed by an event since it was found missing; looked at again next pass"
        if self.registry.tag_digest(full_name, tag) is not None:  # the last read before writing
            queries.drop_mark(session, full_name, tag)
            return "skipped", "back in the registry"
        now = self.clock()
        event_id = resync_event_id(
            full_name, tag, f"removed {mark['digest']}", queries.last_history_id(session, full_name, tag)
        )
        assert repository is not None  # row was found in it
        outgoing = store.remove_tags(session, repository, [row], actor=None, event_id=event_id, now=now)
        queries.drop_mark(session, full_name, tag)
        return "removed", outgoing

    # -- missing marks ---------------------------------------------------------------------------

    def _update_marks(
        self,
        session: Session,
        full_name: str,
        namespace: str,
        name: str,
        observed: dict[str, str],
        catalogue: dict[str, str],
        marks: dict[str, dict[str, Any]],
    ) -> None:
        """Mark the catalogue's tags the registry lacks (a first miss, or one on another digest);
        drop the marks of tags found present or no longer in the catalogue."""
        now = self.clock()
        current = queries.catalogue_tags(session, namespace, name)  # as it is now: removals just done
        for tag, digest in sorted(current.items()):
            if tag in observed or tag not in catalogue:
                continue  # present, or arrived during the pass (an event's)
            mark = marks.get(tag)
            if mark is not None and mark["pass"] < self.id and mark["digest"] == digest:
                continue  # kept by a removal skipped above: it drops its mark itself when it must
            if queries.touched_since(session, full_name, tag, self.started_at):
                continue  # an event's tag: not the pass's to judge
            row = session.scalar(sa.select(MissingTag).where(MissingTag.repository == full_name, MissingTag.tag == tag))
            if row is None:
                session.add(
                    MissingTag(
                        repository=full_name, tag=tag, digest=digest, first_missing_pass=self.id, first_missing_at=now
                    )
                )
            else:
                row.digest, row.first_missing_pass, row.first_missing_at = digest, self.id, now
            self.report["pending_removal"].append(
                {"repository": full_name, "tag": tag, "digest": digest, "missing_since_pass": self.id}
            )
        for tag in marks:
            if tag in observed or tag not in current:
                queries.drop_mark(session, full_name, tag)

    def _forget_marks_of_vanished_tags(self, session: Session) -> None:
        """Marks whose tag is no longer in the catalogue at all (its repository was not visited)."""
        in_catalogue = (
            sa.select(Tag.id)
            .join(Repository, Tag.repository_id == Repository.id)
            .where(Repository.namespace + "/" + Repository.name == MissingTag.repository, Tag.name == MissingTag.tag)
        )
        stmt = sa.delete(MissingTag).where(~sa.exists(in_catalogue))
        if self.namespace is not None:
            stmt = stmt.where(MissingTag.repository.startswith(f"{self.namespace}/", autoescape=True))
        session.execute(stmt.execution_options(synchronize_session=False))

    # -- report and progress -------------------------------------------------------------------

    def _skip(self, repository: str, tag: str | None, reason: str) -> None:
        log.info("resync pass %d skipped %s%s: %s", self.id, repository, f":{tag}" if tag else "", reason)
        self.report["skipped"].append({"repository": repository, "tag": tag, "reason": reason})

    def _progress(self, force: bool = False) -> None:
        """Save the counters and the report so far, and refresh the lock, at most every
        ``PROGRESS_EVERY``; ``PassEnded`` if another pass has taken the lock over."""
        now = self.clock()
        if not force and self.saved_at is not None and now - self.saved_at < PROGRESS_EVERY:
            return
        self.transaction(lambda session: self._save(session, now))
        self.saved_at = now

    def _save(
        self, session: Session, now: datetime, status: str | None = None, error: str | None = None
    ) -> dict[str, Any]:
        if status:  # the pass ends: the lock is free again
            held = LEASE.release(session, LOCK_ID, self.id, heartbeat_at=now)
        else:
            held = LEASE.renew(session, LOCK_ID, self.id, now)
        if not held:
            raise PassEnded(ResyncPass.ABANDONED, "the lock was taken over by another pass")
        values: dict[str, Any] = {
            "repositories_total": self.repositories_total,
            "repositories_scanned": self.repositories_scanned,
            "tags_scanned": self.tags_scanned,
            "report": saved_report(self.report),
        }
        if status:
            values.update(status=status, finished_at=now, error=error)
        # An UPDATE, not the row loaded and changed: loading it would read the report saved last
        # time back in (tens of thousands of entries on a first pass), once a second.
        session.execute(
            sa.update(ResyncPass).where(ResyncPass.id == self.id).values(**values),
            execution_options={"synchronize_session": False},
        )
        if not status:
            return {}
        row = session.get(ResyncPass, self.id)
        assert row is not None  # the pass's own row, written when it started
        return pass_view(row)

    def _finish(self, status: str, error: str | None) -> dict[str, Any]:
        now = self.clock()
        try:
            if status == ResyncPass.ABANDONED:
                raise PassEnded(status, str(error))
            view = self.transaction(lambda session: self._save(session, now, status, error))
        except PassEnded as exc:  # not ours any more: the pass that took over marked it abandoned
            log.warning("resync pass %d stopped: %s", self.id, exc)
            return self.transaction(lambda session: get_pass(session, self.id))
        counts = view["counts"]
        log.info(
            "resync pass %d %s: %d added, %d moved, %d removed, %d pending removal, %d skipped "
            "(%d repositories, %d tags)",
            self.id,
            status,
            counts["added"],
            counts["moved"],
            counts["removed"],
            counts["pending_removal"],
            counts["skipped"],
            self.repositories_scanned,
            self.tags_scanned,
        )
        return view


def _chain(*parts: Iterable[Observed]) -> Iterator[Observed]:
    for part in parts:
        yield from part
