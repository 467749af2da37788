"""The catalogue reads a pass compares the registry with, and its marks of missing tags."""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Manifest, MissingTag, Repository, Tag, TagHistory


def catalogue_tags(session: Session, namespace: str, name: str) -> dict[str, str]:
    """``{tag: digest}`` of a catalogue repository (empty if there is none)."""
    rows = session.execute(
        sa.select(Tag.name, Manifest.digest)
        .join(Tag.manifest)
        .join(Repository, Tag.repository_id == Repository.id)
        .where(Repository.namespace == namespace, Repository.name == name)
    )
    return dict(rows.tuples().all())


def marks(session: Session, repository: str) -> dict[str, dict[str, Any]]:
    return {
        m.tag: {"digest": m.digest, "pass": m.first_missing_pass, "at": m.first_missing_at}
        for m in session.scalars(sa.select(MissingTag).where(MissingTag.repository == repository))
    }


def drop_mark(session: Session, repository: str, tag: str) -> None:
    session.execute(
        sa.delete(MissingTag)
        .where(MissingTag.repository == repository, MissingTag.tag == tag)
        .execution_options(synchronize_session=False)
    )


def touched_since(session: Session, repository: str, tag: str, since: datetime) -> bool:
    """Whether an event (or anything else) changed ``repository:tag`` at or after ``since``."""
    return bool(
        session.scalar(
            sa.select(
                sa.exists().where(TagHistory.repository == repository, TagHistory.tag == tag, TagHistory.at >= since)
            )
        )
    )


def last_history_id(session: Session, repository: str, tag: str) -> int:
    return (
        session.scalar(
            sa.select(sa.func.max(TagHistory.id)).where(TagHistory.repository == repository, TagHistory.tag == tag)
        )
        or 0
    )


# -- the same reads for many repositories or tags at once (a pass works in chunks) ----------------


def catalogue_tags_of(session: Session, repositories: list[tuple[str, str]]) -> dict[str, dict[str, str]]:
    """``{"namespace/name": {tag: digest}}`` of each of ``repositories`` (``(namespace, name)``);
    a repository the catalogue lacks, or has no tags of, maps to ``{}``."""
    found: dict[str, dict[str, str]] = {f"{namespace}/{name}": {} for namespace, name in repositories}
    names = {name for _, name in repositories}
    rows = session.execute(
        sa.select(Repository.namespace, Repository.name, Tag.name, Manifest.digest)
        .join(Tag, Tag.repository_id == Repository.id)
        .join(Manifest, Tag.manifest_id == Manifest.id)
        .where(Repository.namespace.in_({namespace for namespace, _ in repositories}), Repository.name.in_(names))
    )
    for namespace, name, tag, digest in rows:
        tags = found.get(f"{namespace}/{name}")
        if tags is not None:  # (namespace, name) pairs not asked for come back too: left out
            tags[tag] = digest
    return found


def marks_of(session: Session, repositories: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """``marks`` of each of ``repositories`` (full names): ``{repository: {tag: mark}}``."""
    found: dict[str, dict[str, dict[str, Any]]] = {repository: {} for repository in repositories}
    for m in session.scalars(sa.select(MissingTag).where(MissingTag.repository.in_(repositories))):
        found[m.repository][m.tag] = {"digest": m.digest, "pass": m.first_missing_pass, "at": m.first_missing_at}
    return found


def known_manifests(session: Session, wanted: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Which of ``wanted`` (``(namespace, name, digest)``) the catalogue has the manifest of."""
    if not wanted:
        return set()
    rows = session.execute(
        sa.select(Repository.namespace, Repository.name, Manifest.digest)
        .join(Manifest, Manifest.repository_id == Repository.id)
        .where(
            Repository.namespace.in_({w[0] for w in wanted}),
            Repository.name.in_({w[1] for w in wanted}),
            Manifest.digest.in_({w[2] for w in wanted}),
        )
    )
    return set(rows.tuples()) & set(wanted)


def tags_in_catalogue(session: Session, wanted: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    """The digest of each of ``wanted`` (``(namespace, name, tag)``) the catalogue has, as it is now."""
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(Repository.namespace, Repository.name, Tag.name, Manifest.digest)
        .join(Tag, Tag.repository_id == Repository.id)
        .join(Manifest, Tag.manifest_id == Manifest.id)
        .where(
            Repository.namespace.in_({w[0] for w in wanted}),
            Repository.name.in_({w[1] for w in wanted}),
            Tag.name.in_({w[2] for w in wanted}),
        )
    )
    asked = set(wanted)
    return {(ns, name, tag): digest for ns, name, tag, digest in rows if (ns, name, tag) in asked}


def history_of(
    session: Session, wanted: list[tuple[str, str]], since: datetime
) -> tuple[set[tuple[str, str]], dict[tuple[str, str], int]]:
    """For ``wanted`` (``(repository, tag)``): those changed at or after ``since`` (``touched_since``)
    and the last history row id of each (``last_history_id``; 0: none), in one query."""
    if not wanted:
        return set(), {}
    rows = session.execute(
        sa.select(
            TagHistory.repository,
            TagHistory.tag,
            sa.func.max(TagHistory.id),
            sa.func.max(sa.case((TagHistory.at >= since, 1), else_=0)),
        )
        .where(TagHistory.repository.in_({w[0] for w in wanted}), TagHistory.tag.in_({w[1] for w in wanted}))
        .group_by(TagHistory.repository, TagHistory.tag)
    )
    asked = set(wanted)
    touched, last = set(), {}
    for repository, tag, last_id, recent in rows:
        if (repository, tag) in asked:
            last[(repository, tag)] = last_id
            if recent:
                touched.add((repository, tag))
    return touched, last


def drop_marks(session: Session, repository: str, tags: list[str]) -> None:
    session.execute(
        sa.delete(MissingTag)
        .where(MissingTag.repository == repository, MissingTag.tag.in_(tags))
        .execution_options(synchronize_session=False)
    )
