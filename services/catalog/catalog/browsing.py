"""Read side of the catalogue: repositories, tags, history and set-aside events as plain dicts.

Each function checks the caller's access (``catalog.access``) and returns values a schema in
``catalog.schemas`` dumps for RPC (datetimes stay datetimes until then).
"""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import store
from catalog.access import readable_repository
from catalog.models import Manifest, Repository, SetAsideEvent, Tag, TagHistory
from shared.contracts.errors import NotFound
from shared.contracts.reference import PUBLIC_NAMESPACE, pull_command, validate_tag
from shared.runtime.pagination import listing, page_of

LATEST = "latest"


# -- repositories ------------------------------------------------------------------------------


def _tag_summaries(session: Session, repository_ids: list[int]) -> dict[int, tuple[int, str]]:
    """``{repository_id: (tag_count, latest_tag)}``: ``latest`` if present, else the newest push.

    Two correlated subqueries per repository of the page, each answered from the index on
    ``tags (repository_id, name)`` whatever the planner knows: a window over the page's tags made
    PostgreSQL scan the whole tags table (50 ms at a million tags) whenever its statistics lagged
    behind the data, as after a bulk resync."""
    if not repository_ids:
        return {}
    own = Tag.repository_id == Repository.id
    count = sa.select(sa.func.count()).where(own).correlate(Repository).scalar_subquery()
    preference = sa.case((Tag.name == LATEST, 0), else_=1)
    latest = (
        sa.select(Tag.name)
        .where(own)
        .order_by(preference, Tag.pushed_at.desc(), Tag.id.desc())
        .limit(1)
        .correlate(Repository)
        .scalar_subquery()
    )
    rows = session.execute(sa.select(Repository.id, count, latest).where(Repository.id.in_(repository_ids)))
    return {repository_id: (tags, name) for repository_id, tags, name in rows if tags}


def _repository_views(session: Session, repositories: list[Repository], registry_host: str) -> list[dict[str, Any]]:
    summaries = _tag_summaries(session, [r.id for r in repositories])
    views = []
    for repository in repositories:
        tag_count, latest_tag = summaries.get(repository.id, (0, None))
        pull = pull_command(registry_host, repository.full_name, latest_tag) if latest_tag else None
        views.append(
            {
                "repository": repository.full_name,
                "namespace": repository.namespace,
                "name": repository.name,
                "is_public": repository.is_public,
                "is_ownbase": repository.is_ownbase,
                "description": repository.description,
                "overview": repository.overview,
                "tag_count": tag_count,
                "latest_tag": latest_tag,
                "pull_command": pull,
                "created_at": repository.created_at,
                "updated_at": repository.updated_at,
            }
        )
    return views


def _list_namespace(
    session: Session,
    namespace: str,
    query: str | None,
    page: int,
    page_size: int,
    registry_host: str,
    ownbase: bool | None = None,
) -> dict[str, Any]:
    stmt = sa.select(Repository).where(Repository.namespace == namespace).order_by(Repository.name)
    if query:
        stmt = stmt.where(Repository.name.contains(query.lower(), autoescape=True))
    if ownbase is not None:
        stmt = stmt.where(Repository.is_ownbase == ownbase)
    repositories, total = page_of(session, stmt, page, page_size)
    return listing(_repository_views(session, repositories, registry_host), total, page, page_size)


def list_public_repositories(
    session: Session, query: str | None, page: int, page_size: int, registry_host: str
) -> dict[str, Any]:
    return _list_namespace(session, PUBLIC_NAMESPACE, query, page, page_size, registry_host)


def list_repositories(
    session: Session,
    tenant_id: str,
    query: str | None,
    page: int,
    page_size: int,
    ownbase: bool | None,
    registry_host: str,
) -> dict[str, Any]:
    return _list_namespace(session, tenant_id, query, page, page_size, registry_host, ownbase=ownbase)


def _visible_repository(session: Session, tenant_id: str | None, repository: str) -> Repository:
    namespace, name = readable_repository(tenant_id, repository)
    found = store.find_repository(session, namespace, name)
    if found is None:
        raise NotFound(f"repository {repository!r} not found")
    return found


def repository_view(session: Session, repository: Repository, registry_host: str) -> dict[str, Any]:
    """One repository as ``get_repository`` shows it."""
    return _repository_views(session, [repository], registry_host)[0]


def get_repository(session: Session, tenant_id: str | None, repository: str, registry_host: str) -> dict[str, Any]:
    return repository_view(session, _visible_repository(session, tenant_id, repository), registry_host)


# -- tags --------------------------------------------------------------------------------------


def _platform_manifests(session: Session, repository_id: int, manifests: list[Manifest]) -> dict[str, Manifest]:
    """``{digest: Manifest}`` of the platform manifests that ``manifests`` (indexes) list."""
    digests = {p["digest"] for m in manifests if m.is_index for p in m.platforms or []}
    if not digests:
        return {}
    return {
        m.digest: m
        for m in session.scalars(
            sa.select(Manifest).where(Manifest.repository_id == repository_id, Manifest.digest.in_(digests))
        )
    }


def _platforms(manifest: Manifest, known: dict[str, Manifest]) -> list[dict[str, Any]]:
    return [
        dict(platform, size=known[platform["digest"]].size if platform["digest"] in known else None)
        for platform in manifest.platforms or []  # called for indexes, which list them
    ]


def _size(manifest: Manifest, known: dict[str, Manifest]) -> int | None:
    """An image's download size; for an index, the sum over the platforms the catalogue knows."""
    if not manifest.is_index:
        return manifest.size
    sizes = [p["size"] for p in _platforms(manifest, known) if p["size"] is not None]
    return sum(sizes) if sizes else None


def _tag_view(repository: Repository, tag: Tag, known: dict[str, Manifest], registry_host: str) -> dict[str, Any]:
    manifest = tag.manifest
    return {
        "repository": repository.full_name,
        "tag": tag.name,
        "digest": manifest.digest,
        "image_id": manifest.image_id,
        "size": _size(manifest, known),
        "created": manifest.created,
        "creator": manifest.creator,
        "pushed_at": tag.pushed_at,
        "updated_at": tag.updated_at,
        "media_type": manifest.media_type,
        "architecture": manifest.architecture,
        "os": manifest.os,
        "variant": manifest.variant,
        "pull_command": pull_command(registry_host, repository.full_name, tag.name),
    }


def list_tags(
    session: Session, tenant_id: str | None, repository: str, page: int, page_size: int, registry_host: str
) -> dict[str, Any]:
    """Tags, most recently pushed first."""
    found = _visible_repository(session, tenant_id, repository)
    stmt = sa.select(Tag).where(Tag.repository_id == found.id).order_by(Tag.pushed_at.desc(), Tag.id.desc())
    tags, total = page_of(session, stmt, page, page_size)
    known = _platform_manifests(session, found.id, [t.manifest for t in tags])
    return listing([_tag_view(found, t, known, registry_host) for t in tags], total, page, page_size)


def get_tag(session: Session, tenant_id: str | None, repository: str, tag: str, registry_host: str) -> dict[str, Any]:
    validate_tag(tag)
    found = _visible_repository(session, tenant_id, repository)
    row = store.find_tag(session, found.id, tag)
    if row is None:
        raise NotFound(f"tag {tag!r} not found in {repository!r}")
    manifest = row.manifest
    known = _platform_manifests(session, found.id, [manifest])
    view = _tag_view(found, row, known, registry_host)
    view.update(
        layers=list(manifest.layers or []),
        manifest_size=manifest.manifest_size,
        platforms=_platforms(manifest, known) if manifest.is_index else None,
        other_tags=[t.name for t in store.tags_on_digest(session, found.id, manifest.digest) if t.name != row.name],
    )
    return view


def list_tag_history(
    session: Session, tenant_id: str | None, repository: str, tag: str | None, page: int, page_size: int
) -> dict[str, Any]:
    """What happened to the repository's tags (or one tag), newest first; outlives deletions."""
    if tag is not None:  # a malformed argument is reported before access, as get_tag does
        validate_tag(tag)
    readable_repository(tenant_id, repository)
    stmt = sa.select(TagHistory).where(TagHistory.repository == repository)
    if tag is not None:
        stmt = stmt.where(TagHistory.tag == tag)
    rows, total = page_of(session, stmt.order_by(TagHistory.id.desc()), page, page_size)
    items = [
        {
            "repository": r.repository,
            "tag": r.tag,
            "action": r.action,
            "digest": r.digest,
            "previous_digest": r.previous_digest,
            "actor": r.actor,
            "at": r.at,
            "event_id": r.event_id,
        }
        for r in rows
    ]
    return listing(items, total, page, page_size)


def list_set_aside_events(session: Session, page: int, page_size: int) -> dict[str, Any]:
    stmt = sa.select(SetAsideEvent).order_by(SetAsideEvent.id.desc())
    rows, total = page_of(session, stmt, page, page_size)
    items = [
        {
            "id": r.id,
            "source": r.source,
            "reason": r.reason,
            "source_event_id": r.source_event_id,
            "action": r.action,
            "repository": r.repository,
            "payload": r.payload,
            "at": r.at,
            "event_id": r.event_id,
        }
        for r in rows
    ]
    return listing(items, total, page, page_size)
