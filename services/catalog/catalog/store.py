"""Lookups and removals shared by indexing, browsing, deleting, resync and the library mirror.
Plain functions on a session."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, lazyload

from catalog import outbox
from catalog.models import Manifest, ProcessedEvent, Repository, Tag, TagHistory
from shared.contracts.errors import NotFound
from shared.contracts.events import TAG_REMOVED, TagRemoved


def find_repository(session: Session, namespace: str, name: str, for_update: bool = False) -> Repository | None:
    stmt = sa.select(Repository).where(Repository.namespace == namespace, Repository.name == name)
    if for_update:
        # PostgreSQL: deletes and reconciliation's writes of one repository take turns (see
        # catalog.resync). SQLite ignores it.
        stmt = stmt.with_for_update(of=Repository)
    return session.scalar(stmt)


def latest_or_get(session: Session, model: Any, row_id: int | None, none_yet: str, not_found: str) -> Any:
    """The row ``row_id`` of ``model``, or its latest (highest id) when ``row_id`` is None: a
    resync pass, a library sync. ``NotFound(none_yet)`` when there is none at all,
    ``NotFound(not_found)`` when that one does not exist."""
    if row_id is None:
        row = session.scalar(sa.select(model).order_by(model.id.desc()).limit(1))
        if row is None:
            raise NotFound(none_yet)
        return row
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(not_found)
    return row


def find_manifest(session: Session, repository_id: int, digest: str) -> Manifest | None:
    return session.scalar(sa.select(Manifest).where(Manifest.repository_id == repository_id, Manifest.digest == digest))


def find_tag(session: Session, repository_id: int, name: str, for_update: bool = False) -> Tag | None:
    stmt = sa.select(Tag).where(Tag.repository_id == repository_id, Tag.name == name)
    if for_update:
        # PostgreSQL: a concurrent push to the same tag waits here and then reads the winner's
        # digest as its previous one. SQLite ignores it (one writer at a time anyway). The manifest
        # is loaded afterwards, by a statement of its own: joined to the locked row, it would be
        # read in the snapshot from before the wait, where the winner's new manifest is not yet
        # (the tag would come back with no manifest).
        stmt = stmt.with_for_update(of=Tag).options(lazyload(Tag.manifest))
    return session.scalar(stmt)


def tags_on_digest(session: Session, repository_id: int, digest: str) -> list[Tag]:
    return list(
        session.scalars(
            sa.select(Tag)
            .join(Tag.manifest)
            .where(Tag.repository_id == repository_id, Manifest.digest == digest)
            .order_by(Tag.name)
        )
    )


def tags_of_repository(session: Session, repository_id: int) -> list[Tag]:
    return list(session.scalars(sa.select(Tag).where(Tag.repository_id == repository_id).order_by(Tag.name)))


def already_processed(session: Session, event_id: str) -> bool:
    return session.get(ProcessedEvent, event_id) is not None


def mark_processed(session: Session, event_id: str, now: datetime) -> None:
    """Record the event as handled; a concurrent duplicate fails on the primary key at commit."""
    session.add(ProcessedEvent(event_id=event_id, processed_at=now))


def processed_among(session: Session, event_ids: list[str]) -> set[str]:
    """Which of ``event_ids`` were processed already (one query: a batch's idempotency check)."""
    if not event_ids:
        return set()
    stmt = sa.select(ProcessedEvent.event_id).where(ProcessedEvent.event_id.in_(event_ids))
    return set(session.scalars(stmt))


def repositories_named(session: Session, names: set[tuple[str, str]]) -> dict[tuple[str, str], Repository]:
    """The repositories of ``(namespace, name)`` pairs that exist, by pair (one query)."""
    if not names:
        return {}
    stmt = sa.select(Repository).where(sa.tuple_(Repository.namespace, Repository.name).in_(sorted(names)))
    return {(r.namespace, r.name): r for r in session.scalars(stmt)}


def manifests_of(session: Session, keys: set[tuple[int, str]]) -> dict[tuple[int, str], Manifest]:
    """The manifests of ``(repository_id, digest)`` pairs that exist, by pair (one query)."""
    if not keys:
        return {}
    stmt = sa.select(Manifest).where(sa.tuple_(Manifest.repository_id, Manifest.digest).in_(sorted(keys)))
    return {(m.repository_id, m.digest): m for m in session.scalars(stmt)}


def tags_named(session: Session, keys: set[tuple[int, str]], for_update: bool = False) -> dict[tuple[int, str], Tag]:
    """The tags of ``(repository_id, name)`` pairs that exist, by pair (one query); locked as
    ``find_tag`` locks one, in id order (two batches lock shared tags in the same order)."""
    if not keys:
        return {}
    stmt = sa.select(Tag).where(sa.tuple_(Tag.repository_id, Tag.name).in_(sorted(keys))).order_by(Tag.id)
    stmt = stmt.with_for_update(of=Tag).options(lazyload(Tag.manifest)) if for_update else stmt
    return {(t.repository_id, t.name): t for t in session.scalars(stmt)}


def remove_tags(
    session: Session, repository: Repository, tags: list[Tag], actor: str | None, event_id: str | None, now: datetime
) -> list[Any]:
    """Delete ``tags`` of ``repository`` with a history row each and a ``tag_removed`` in the outbox;
    returns those events."""
    outgoing = []
    for tag in tags:
        digest = tag.manifest.digest
        session.add(
            TagHistory(
                repository=repository.full_name,
                tag=tag.name,
                action=TagHistory.REMOVED,
                digest=digest,
                previous_digest=None,
                actor=actor,
                at=now,
                event_id=event_id,
            )
        )
        outgoing.append(
            outbox.emit(
                session,
                TAG_REMOVED,
                TagRemoved,
                namespace=repository.namespace,
                repository=repository.full_name,
                tag=tag.name,
                digest=digest,
            )
        )
    if tags:
        session.execute(sa.delete(Tag).where(Tag.id.in_([tag.id for tag in tags])))
        repository.updated_at = now
    return outgoing


def delete_manifest(session: Session, repository_id: int, digest: str) -> None:
    session.execute(sa.delete(Manifest).where(Manifest.repository_id == repository_id, Manifest.digest == digest))


def delete_repository(session: Session, repository: Repository) -> None:
    """Delete a repository whose tags are already removed, with its manifests."""
    session.execute(sa.delete(Manifest).where(Manifest.repository_id == repository.id))
    session.execute(sa.delete(Repository).where(Repository.id == repository.id))
