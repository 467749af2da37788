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
