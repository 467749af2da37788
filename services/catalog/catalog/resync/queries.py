"""The catalogue reads a pass compares the registry with, and its marks of missing tags."""

import sqlalchemy as sa

from catalog.models import Manifest, MissingTag, Repository, Tag, TagHistory


def catalogue_tags(session, namespace, name):
    """``{tag: digest}`` of a catalogue repository (empty if there is none)."""
    return dict(
        session.execute(
            sa.select(Tag.name, Manifest.digest)
            .join(Tag.manifest)
            .join(Repository, Tag.repository_id == Repository.id)
            .where(Repository.namespace == namespace, Repository.name == name)
        ).all()
    )


def marks(session, repository):
    return {
        m.tag: {"digest": m.digest, "pass": m.first_missing_pass, "at": m.first_missing_at}
        for m in session.scalars(sa.select(MissingTag).where(MissingTag.repository == repository))
    }


def drop_mark(session, repository, tag):
    session.execute(
        sa.delete(MissingTag)
        .where(MissingTag.repository == repository, MissingTag.tag == tag)
        .execution_options(synchronize_session=False)
    )


def touched_since(session, repository, tag, since):
    """Whether an event (or anything else) changed ``repository:tag`` at or after ``since``."""
    return session.scalar(
        sa.select(sa.exists().where(TagHistory.repository == repository, TagHistory.tag == tag, TagHistory.at >= since))
    )


def last_history_id(session, repository, tag):
    return (
        session.scalar(
            sa.select(sa.func.max(TagHistory.id)).where(TagHistory.repository == repository, TagHistory.tag == tag)
        )
        or 0
    )
