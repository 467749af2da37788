"""Applying the webhook's events to the catalogue.

Each ``record_*`` function runs inside one session (one transaction), writes the events it makes
to the outbox in that same transaction (``catalog.outbox``), and returns them as
``[(event_type, payload)]`` for the service to send once the transaction has committed.

Order inside a function matters: every read and every registry call comes before the first
write. On SQLite a write takes the database lock until commit, and the lock wait blocks the
whole eventlet process; a worker that yielded (on HTTP) while holding it would stall every
other worker. Writes are therefore done in one stretch with no I/O but the database's. That
includes the registry's ruling on a notification the catalogue disagrees with (``catalog.referee``):
it is asked for in the reading stretch, and applied only if the tag is still what it was about.
"""

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from catalog import outbox, referee, store
from catalog.exceptions import NotInRegistry, UnusableManifest
from catalog.library import curation_for
from catalog.manifests import MANIFEST_TYPES, ImageConfig, ParsedManifest, parse_image_config, parse_manifest
from catalog.models import NAME_LENGTH, SHORT_LENGTH, Manifest, Repository, SetAsideEvent, Tag, TagHistory
from shared.contracts.errors import InvalidReference
from shared.contracts.events import TAG_INDEXED, TagIndexed
from shared.contracts.reference import PUBLIC_NAMESPACE, is_ownbase, parse_repository, validate_digest, validate_tag
from shared.runtime.clock import utcnow

log = logging.getLogger(__name__)

CATALOG_SOURCE = "catalog"


@dataclass
class FetchedImage:
    manifest: ParsedManifest
    config: ImageConfig | None


def _event_repository(event: dict[str, Any]) -> tuple[str, str]:
    """The event's repository as ``(namespace, name)``; ``InvalidReference`` if it breaks the rules."""
    namespace, name = parse_repository(event["repository"])
    if event.get("namespace") not in (None, namespace):
        raise InvalidReference(f"namespace {event['namespace']!r} does not match repository {event['repository']!r}")
    return namespace, name


MAX_CONFIG_BYTES = 4 * 1024 * 1024


def fetch_image(registry: Any, repository: str, digest: str) -> FetchedImage:
    """Manifest (and image config) by digest: the push event fires before the tag is linked."""
    media_type, body = registry.get_manifest(repository, digest)
    actual = "sha256:" + hashlib.sha256(body).hexdigest()
    if digest.startswith("sha256:") and actual != digest:
        raise UnusableManifest(f"registry returned a manifest with digest {actual} for {digest}")
    manifest = parse_manifest(media_type, body)
    config = None
    if manifest.wants_config and manifest.config is not None:  # wants_config: it names one
        # An image config is a few KiB; a manifest may name any blob the tenant uploaded as its
        # config, and reading a huge one would take the catalog down (and again on redelivery).
        if manifest.config.size > MAX_CONFIG_BYTES:
            raise UnusableManifest(
                f"image config {manifest.config.digest} is {manifest.config.size} bytes, "
                f"more than the {MAX_CONFIG_BYTES} an image config may have"
            )
        config = parse_image_config(registry.get_blob(repository, manifest.config.digest, max_bytes=MAX_CONFIG_BYTES))
    return FetchedImage(manifest=manifest, config=config)


def _new_repository(session: Session, namespace: str, name: str, now: datetime) -> Repository:
    curation = curation_for(name) if namespace == PUBLIC_NAMESPACE else {"description": "", "overview": ""}
    repository = Repository(
        namespace=namespace,
        name=name,
        is_public=namespace == PUBLIC_NAMESPACE,
        is_ownbase=is_ownbase(name),
        created_at=now,
        updated_at=now,
        **curation,
    )
    session.add(repository)
    session.flush()  # its id, and the unique (namespace, name) check now rather than at commit
    return repository


def _new_manifest(
    session: Session, repository: Repository, digest: str, fetched: FetchedImage, actor: str | None, now: datetime
) -> Manifest:
    parsed, config = fetched.manifest, fetched.config or ImageConfig()
    # The image config is the tenant's own text: an overlong author or os, or one with a NUL
    # character, must not cost the image its place in the catalogue (PostgreSQL refuses both).
    manifest = Manifest(
        repository_id=repository.id,
        digest=digest,
        media_type=parsed.media_type,
        manifest_size=parsed.manifest_size,
        size=parsed.size,
        image_id=parsed.config.digest if parsed.config else None,
        created=config.created,
        creator=_clip(actor or config.author, NAME_LENGTH),
        architecture=_clip(config.architecture, SHORT_LENGTH),
        os=_clip(config.os, SHORT_LENGTH),
        variant=_clip(config.variant, SHORT_LENGTH),
        layers=[layer.digest for layer in parsed.layers],
        platforms=parsed.platforms,
        indexed_at=now,
    )
    session.add(manifest)
    session.flush()
    return manifest


def record_push(
    session: Session,
    registry: Any,
    event: dict[str, Any],
    now: datetime | None = None,
    fetched: FetchedImage | None = None,
    indexed_event_id: str | None = None,
    trigger: str = "push",
) -> list[Any]:
    """Index an ``image_pushed`` event; point its tag (if any) at the pushed digest.

    Returns (and puts in the outbox) ``[(TAG_INDEXED, payload)]`` when a tag was created or moved,
    else ``[]``. A push stamped earlier than the tag's stored push, naming another digest, is
    settled by the registry (``catalog.referee``). ``fetched`` is the image if the caller has
    already fetched it (reconciliation does, before its transaction); ``indexed_event_id`` fixes
    the ``tag_indexed``'s event_id. Raises ``InvalidReference``/``UnusableManifest``/
    ``NotInRegistry`` (permanent) and ``RegistryUnavailable`` (transient).
    """
    now = now or utcnow()
    namespace, name = _event_repository(event)
    full_name = f"{namespace}/{name}"
    digest = validate_digest(event["digest"])
    tag_name = validate_tag(event["tag"]) if event.get("tag") else None
    if event.get("media_type") and event["media_type"] not in MANIFEST_TYPES:
        raise UnusableManifest(f"media type {event['media_type']!r} is not an image manifest or index")
    event_id = str(event["event_id"])
    if store.already_processed(session, event_id):
        return []

    repository = store.find_repository(session, namespace, name)
    manifest = store.find_manifest(session, repository.id, digest) if repository else None
    fetched = None if manifest else (fetched or fetch_image(registry, full_name, digest))
    pushed_at = event.get("pushed_at") or event["occurred_at"]
    consulted = (
        _consult_registry(session, registry, repository, tag_name, referee.PUSH, event_id, digest, pushed_at)
        if tag_name is not None
        else None
    )

    # Writes from here on: no more network I/O.
    store.mark_processed(session, event_id, now)
    repository = repository or _new_repository(session, namespace, name, now)
    actor = _actor(event)
    if manifest is None:
        assert fetched is not None  # fetched above, since the manifest was not known
        manifest = _new_manifest(session, repository, digest, fetched, actor, now)
    if tag_name is None:
        return []
    move = _Move(repository, tag_name, event_id, now, indexed_event_id, trigger)
    tag = store.find_tag(session, repository.id, tag_name, for_update=True)
    if tag is None:
        return move.point(session, None, manifest, pushed_at, actor)
    if tag.manifest_id == manifest.id:
        return []  # a re-push of what the tag already points at
    if tag.pushed_at <= pushed_at:
        return move.point(session, tag, manifest, pushed_at, actor)
    return _settle(session, move, referee.PUSH, tag, consulted, manifest, actor)


@dataclass
class PushBatch:
    """What ``record_pushes`` did: the events it emitted (in the outbox), the events that failed
    before any write (by event ID: an invalid name, an unusable manifest, the registry away), and
    those left to be applied alone (the registry may have to rule on them, which is asked for
    outside the batch's write stretch)."""

    outgoing: list[Any] = field(default_factory=list)
    failed: dict[str, Exception] = field(default_factory=dict)
    alone: list[dict[str, Any]] = field(default_factory=list)


def record_pushes(
    session: Session, registry: Any, events: list[dict[str, Any]], now: datetime | None = None
) -> PushBatch:
    """Index several ``image_pushed`` events (distinct event IDs) in one transaction, each as
    ``record_push`` would, each with its own processed-event row, in a few queries for them all.

    First the reads and the registry fetches (a manifest fetched once for the batch); an event
    that fails there is left out (``PushBatch.failed``). An event whose tag the catalogue holds on
    another digest pushed later (the registry must rule: ``record_push`` asks it), or whose tag an
    earlier event of the batch writes, is left for ``record_push`` alone (``PushBatch.alone``).
    Then the writes of the others in one stretch, with no network I/O. A database error
    propagates: the batch is the caller's to retry or to apply event by event.
    """
    now = now or utcnow()
    batch = PushBatch()
    checked: list[tuple[dict[str, Any], tuple[str, str], str, str | None]] = []
    for event in events:
        try:
            namespace, name = _event_repository(event)
            digest = validate_digest(event["digest"])
            tag_name = validate_tag(event["tag"]) if event.get("tag") else None
            if event.get("media_type") and event["media_type"] not in MANIFEST_TYPES:
                raise UnusableManifest(f"media type {event['media_type']!r} is not an image manifest or index")
        except Exception as exc:  # noqa: BLE001 - the event's own failure, settled by the caller
            batch.failed[str(event.get("event_id"))] = exc
            continue
        checked.append((event, (namespace, name), digest, tag_name))
    processed = store.processed_among(session, [str(event["event_id"]) for event, *_ in checked])
    checked = [c for c in checked if str(c[0]["event_id"]) not in processed]
    repositories = store.repositories_named(session, {names for _, names, _, _ in checked})
    known = {(repositories[n].id, d) for _, n, d, _ in checked if n in repositories}
    manifests = store.manifests_of(session, known)
    tag_keys = {(repositories[n].id, t) for _, n, _, t in checked if n in repositories and t is not None}
    tags = store.tags_named(session, tag_keys)
    stored = {key: (tag.manifest.digest, tag.pushed_at) for key, tag in tags.items()}
    fetched: dict[tuple[str, str], FetchedImage] = {}
    ready = []
    tags_written: set[tuple[tuple[str, str], str]] = set()
    for event, names, digest, tag_name in checked:
        repository = repositories.get(names)
        full_name = f"{names[0]}/{names[1]}"
        if (repository is None or (repository.id, digest) not in manifests) and (full_name, digest) not in fetched:
            try:
                fetched[(full_name, digest)] = fetch_image(registry, full_name, digest)
            except Exception as exc:  # noqa: BLE001 - the registry away, an unusable manifest: this event's
                batch.failed[str(event["event_id"])] = exc
                continue
        if tag_name is not None:
            if (names, tag_name) in tags_written or _disagrees(event, digest, stored, repository, tag_name):
                batch.alone.append(event)
                continue
            tags_written.add((names, tag_name))
        ready.append((event, names, digest, tag_name))

    # Writes from here on: no more network I/O. The tags are read again, locked (PostgreSQL), in
    # case a concurrent worker wrote them since: one it moved so that the event now disagrees is
    # left for record_push too.
    for tag in tags.values():  # else the session would hand back the attributes read above
        session.expire(tag)
    locked = store.tags_named(session, tag_keys, for_update=True)
    for event, names, digest, tag_name in ready:
        event_id = str(event["event_id"])
        repository = repositories.get(names)
        current = locked.get((repository.id, tag_name)) if repository is not None and tag_name else None
        pushed_at = event.get("pushed_at") or event["occurred_at"]
        if current is not None and referee.disagrees(
            referee.PUSH, digest, pushed_at, current.manifest.digest, current.pushed_at
        ):
            batch.alone.append(event)
            continue
        store.mark_processed(session, event_id, now)
        if repository is None:
            repository = repositories[names] = _new_repository(session, names[0], names[1], now)
        actor = _actor(event)
        manifest = manifests.get((repository.id, digest))
        if manifest is None:
            image = fetched[(repository.full_name, digest)]
            manifest = manifests[(repository.id, digest)] = _new_manifest(
                session, repository, digest, image, actor, now
            )
        if tag_name is None or (current is not None and current.manifest_id == manifest.id):
            continue  # no tag, or a re-push of what the tag already points at
        move = _Move(repository, tag_name, event_id, now)
        batch.outgoing.extend(move.point(session, current, manifest, pushed_at, actor))
    return batch


def _disagrees(
    event: dict[str, Any],
    digest: str,
    stored: dict[tuple[int, str], tuple[str, datetime]],
    repository: Repository | None,
    tag_name: str,
) -> bool:
    """Whether the catalogue's tag is on another digest pushed after the event (see ``referee``)."""
    found = stored.get((repository.id, tag_name)) if repository is not None else None
    pushed_at = event.get("pushed_at") or event["occurred_at"]
    return found is not None and referee.disagrees(referee.PUSH, digest, pushed_at, found[0], found[1])


@dataclass
class _Consulted:
    """A ruling (``catalog.referee``), with the image of the digest it moves the tag to when the
    catalogue lacks it and the event did not bring it (fetched like a push's, before any write)."""

    ruling: referee.Ruling
    fetched: FetchedImage | None


def _consult_registry(
    session: Session,
    registry: Any,
    repository: Repository | None,
    tag_name: str,
    action: str,
    event_id: str,
    event_digest: str | None,
    event_at: datetime,
) -> _Consulted | None:
    """Before any write: the registry's ruling when the event disagrees with the catalogue's tag
    (``referee.disagrees``), else None. Also None when the digest the registry names cannot be
    indexed (gone again, or not an image): the event then falls back on the time rule, and the
    registry's own next notification (or resync) brings the tag up to date."""
    tag = store.find_tag(session, repository.id, tag_name) if repository is not None else None
    if tag is None:
        return None
    assert repository is not None
    stored_digest, stored_at = tag.manifest.digest, tag.pushed_at
    # The tag is read again, locked, before it is written: expired, so that the locked read
    # refreshes it instead of handing back what was read here (SQLAlchemy keeps the attributes of
    # an object the session still holds).
    session.expire(tag)
    if not referee.disagrees(action, event_digest, event_at, stored_digest, stored_at):
        return None
    ruling = referee.ask(
        registry, action, repository.full_name, tag_name, event_id, event_digest, event_at, stored_digest, stored_at
    )
    target = ruling.moves_to
    brought = action == referee.PUSH and target == event_digest  # record_push has it already
    if target is None or brought or store.find_manifest(session, repository.id, target) is not None:
        return _Consulted(ruling, None)
    try:
        return _Consulted(ruling, fetch_image(registry, repository.full_name, target))
    except (NotInRegistry, UnusableManifest) as exc:
        log.warning(
            "referee: cannot index %s:%s -> %s as the registry says (%s); %s event %s falls back on the time rule",
            repository.full_name,
            tag_name,
            target,
            exc,
            action,
            event_id,
        )
        return None


def _settle(
    session: Session,
    move: "_Move",
    action: str,
    tag: Tag,
    consulted: _Consulted | None,
    event_manifest: Manifest | None,
    actor: str | None,
) -> list[Any]:
    """Apply the registry's ruling to ``tag``, an event's tag it disagrees with (read locked,
    after the ruling): remove it, move it to the registry's digest, or leave it. Without a ruling
    that still stands for the tag as it is now (a concurrent worker changed it since the registry
    was asked, or the registry's digest cannot be indexed), the event is ignored, as the time rule
    says: the registry's own next notification, or the next resync, brings the tag up to date."""
    if consulted is not None and consulted.ruling.stands_for(tag.manifest.digest):
        ruling = consulted.ruling
        if ruling.removes:
            return store.remove_tags(session, move.repository, [tag], actor, move.event_id, move.now)
        if ruling.moves_to is None:
            return []  # the registry keeps the stored digest, or a push found no tag there (logged)
        if event_manifest is not None and ruling.moves_to == event_manifest.digest:
            return move.point(session, tag, event_manifest, ruling.pushed_at, actor)
        # A digest the event did not name: its pusher is unknown, and its tag_indexed says why.
        manifest = store.find_manifest(session, move.repository.id, ruling.moves_to)
        if manifest is None and consulted.fetched is not None:
            manifest = _new_manifest(session, move.repository, ruling.moves_to, consulted.fetched, None, move.now)
        if manifest is not None:  # else deleted by a concurrent worker since it was looked up
            return move.point(session, tag, manifest, ruling.pushed_at, None, trigger=referee.REFEREE)
    log.info(
        "ignoring a late %s of %s:%s (event %s): the tag is on %s, pushed at %s, and the registry"
        " has no ruling on it as it is now",
        action,
        move.repository.full_name,
        tag.name,
        move.event_id,
        tag.manifest.digest,
        tag.pushed_at,
    )
    return []


@dataclass
class _Move:
    """Pointing one tag at a manifest on behalf of one event: the tag row, its history row (with
    the event's id) and its ``tag_indexed`` in the outbox, written the same way whatever decided
    the move (a push, or the registry's ruling)."""

    repository: Repository
    tag_name: str
    event_id: str
    now: datetime
    indexed_event_id: str | None = None
    trigger: str = "push"

    def point(
        self,
        session: Session,
        tag: Tag | None,
        manifest: Manifest,
        pushed_at: datetime,
        actor: str | None,
        trigger: str | None = None,
    ) -> list[Any]:
        """Create the tag (``tag`` None) or move it; returns the ``tag_indexed`` it emitted."""
        repository, now = self.repository, self.now
        previous_digest = None
        if tag is not None:
            previous_digest = tag.manifest.digest
            tag.manifest, tag.pushed_at, tag.updated_at = manifest, pushed_at, now
        else:
            session.add(
                Tag(
                    repository_id=repository.id,
                    name=self.tag_name,
                    manifest=manifest,
                    pushed_at=pushed_at,
                    updated_at=now,
                )
            )
        repository.updated_at = now
        session.add(
            TagHistory(
                repository=repository.full_name,
                tag=self.tag_name,
                action=TagHistory.MOVED if previous_digest else TagHistory.PUSHED,
                digest=manifest.digest,
                previous_digest=previous_digest,
                actor=actor,
                at=now,
                event_id=self.event_id,
            )
        )
        fixed_id = {"event_id": self.indexed_event_id} if self.indexed_event_id else {}
        return [
            outbox.emit(
                session,
                TAG_INDEXED,
                TagIndexed,
                namespace=repository.namespace,
                repository=repository.full_name,
                tag=self.tag_name,
                digest=manifest.digest,
                previous_digest=previous_digest,
                image_id=manifest.image_id,
                pushed_at=pushed_at.isoformat(),
                is_ownbase=repository.is_ownbase,
                actor=actor,
                trigger=trigger or self.trigger,
                **fixed_id,
            )
        ]


def record_delete(session: Session, registry: Any, event: dict[str, Any], now: datetime | None = None) -> list[Any]:
    """Apply an ``image_deleted`` event; returns a ``tag_removed`` event per tag removed (or the
    ``tag_indexed`` of a tag the registry says was moved rather than deleted).

    ``{repository, tag}`` removes that tag only; when the catalogue disagrees (the tag was pushed
    after the delete's stamp, or the delete names a digest the tag does not point at), the
    registry settles it (``catalog.referee``). ``{repository, digest}`` removes the manifest and
    every tag on it; ``{repository}`` removes the repository; both spare a tag pushed after the
    delete's stamp. What is already gone is a no-op. ``RegistryUnavailable`` (transient) when the
    registry is asked and cannot answer.
    """
    now = now or utcnow()
    namespace, name = _event_repository(event)
    digest = validate_digest(event["digest"]) if event.get("digest") else None
    tag_name = validate_tag(event["tag"]) if event.get("tag") else None
    event_id = str(event["event_id"])
    if store.already_processed(session, event_id):
        return []
    # A delete the registry made before a tag was (re-)pushed must not remove it, when the catalog
    # sees the two out of order: Distribution's tag delete names no digest, so the times tell, and
    # for a tag delete the registry has the last word (see catalog.referee).
    deleted_at = event["occurred_at"]
    consulted = None
    if tag_name is not None:
        known = store.find_repository(session, namespace, name)
        consulted = _consult_registry(session, registry, known, tag_name, referee.DELETE, event_id, digest, deleted_at)

    # Writes from here on: no more network I/O.
    store.mark_processed(session, event_id, now)
    # Locked so that a reconciliation pass adding a tag waits for this delete, or this delete
    # for it (and then removes what it added): see catalog.resync.
    repository = store.find_repository(session, namespace, name, for_update=True)
    if repository is None:
        return []
    actor = _actor(event)

    if tag_name is not None:
        tag = store.find_tag(session, repository.id, tag_name, for_update=True)
        if tag is None:
            return []
        if not referee.disagrees(referee.DELETE, digest, deleted_at, tag.manifest.digest, tag.pushed_at):
            return store.remove_tags(session, repository, [tag], actor, event_id, now)
        move = _Move(repository, tag_name, event_id, now)
        return _settle(session, move, referee.DELETE, tag, consulted, None, actor)
    if digest is not None:
        on_digest = store.tags_on_digest(session, repository.id, digest)
        doomed = _older(on_digest, deleted_at)
        outgoing = store.remove_tags(session, repository, doomed, actor, event_id, now)
        if len(doomed) == len(on_digest):
            store.delete_manifest(session, repository.id, digest)
        return outgoing
    return _remove_repository(session, repository, actor, event_id, now, deleted_at)


def _actor(event: dict[str, Any]) -> str | None:
    """Who pushed or deleted, as the registry's auth names them: descriptive text, stored (and
    passed on in ``tag_indexed``) clipped to its column, never a reason to refuse the event."""
    return _clip(event.get("actor") or None, NAME_LENGTH)


def _older(tags: list[Tag], deleted_at: datetime) -> list[Tag]:
    """The tags last pushed before the delete happened; the others were pushed after it."""
    kept = [tag for tag in tags if tag.pushed_at > deleted_at]
    for tag in kept:
        log.info(
            "ignoring a late delete of %s (deleted %s): it was pushed again at %s", tag.name, deleted_at, tag.pushed_at
        )
    return [tag for tag in tags if tag.pushed_at <= deleted_at]


def _remove_repository(
    session: Session,
    repository: Repository,
    actor: str | None,
    event_id: str | None,
    now: datetime,
    deleted_at: datetime,
) -> list[Any]:
    tags = store.tags_of_repository(session, repository.id)
    doomed = _older(tags, deleted_at)
    outgoing = store.remove_tags(session, repository, doomed, actor, event_id, now)
    if len(doomed) == len(tags):
        store.delete_repository(session, repository)
    return outgoing


def record_set_aside(session: Session, event: dict[str, Any], now: datetime | None = None) -> list[Any]:
    """Keep an ``event_set_aside`` from another service for operators."""
    event_id = str(event["event_id"])
    set_aside(
        session,
        source=event["source"],
        reason=event["reason"],
        payload=event["payload"],
        source_event_id=event.get("source_event_id"),
        action=event.get("action"),
        repository=event.get("repository"),
        event_id=event_id,
        now=now,
    )
    return []


def set_aside(
    session: Session,
    source: str,
    reason: str,
    payload: Any,
    source_event_id: str | None = None,
    action: str | None = None,
    repository: str | None = None,
    event_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Store an event that cannot be used, and mark it processed so a duplicate is not stored twice.

    Returns False (storing nothing) when ``event_id`` was already processed.
    """
    now = now or utcnow()
    if event_id is not None:
        if store.already_processed(session, event_id):
            return False
        store.mark_processed(session, event_id, now)
    # What cannot be used is often what cannot be stored as it is either (an overlong id, NaN, a NUL
    # character PostgreSQL refuses): a set-aside that failed to store would be retried for ever.
    session.add(
        SetAsideEvent(
            source=_clip(source, 64),
            reason=_clip(reason, None),
            payload=_storable(payload),
            source_event_id=_clip(source_event_id, NAME_LENGTH),
            action=_clip(action, 64),
            repository=_clip(repository, NAME_LENGTH),
            event_id=event_id,
            at=now,
        )
    )
    return True


MAX_UNSTORABLE_CHARS = 65536


def _clip(value: Any, length: int | None) -> str | None:
    """A string any database stores: no NUL characters, no unpaired surrogates (both escaped as
    text), at most ``length`` characters."""
    if value is None:
        return None
    value = str(value).replace("\x00", "\\x00")
    value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value if length is None else value[:length]


def _storable(payload: Any) -> Any:
    """The payload as JSON every database takes: NUL characters escaped, and anything that is not
    JSON (NaN, Infinity, non-string keys) kept as its text instead."""
    try:
        json.dumps(payload, allow_nan=False)
    except (TypeError, ValueError):
        return {"unstorable_payload": _clip(repr(payload), MAX_UNSTORABLE_CHARS)}
    return _without_nul(payload)


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return _clip(value, None)
    if isinstance(value, dict):
        return {_clip(key, None): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value
