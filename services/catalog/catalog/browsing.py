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
# A read is one statement where it can be: each round trip to PostgreSQL costs about as much as
# the query behind it, and rows read as plain columns skip the ORM's identity map (the answers are
# dicts anyway). issue 16 and bench/reads.py measure these reads against a bare RPC.

# What a repository's view shows of its row.
REPOSITORY_COLUMNS = (
    Repository.id,
    Repository.namespace,
    Repository.name,
    Repository.is_public,
    Repository.is_ownbase,
    Repository.description,
    Repository.overview,
    Repository.created_at,
    Repository.updated_at,
)


def _tag_summary(repository_id: Any) -> tuple[Any, Any]:
    """``(tag_count, latest_tag)`` of the repository whose id is the column ``repository_id``, as
    two correlated subqueries: ``latest`` if present, else the newest push.

    Each is answered from the index on ``tags (repository_id, name)`` whatever the planner knows:
    a window over the page's tags made PostgreSQL scan the whole tags table (50 ms at a million
    tags) whenever its statistics lagged behind the data, as after a bulk resync."""
    own = Tag.repository_id == repository_id
    count = sa.select(sa.func.count()).where(own).scalar_subquery()
    preference = sa.case((Tag.name == LATEST, 0), else_=1)
    latest = (
        sa.select(Tag.name).where(own).order_by(preference, Tag.pushed_at.desc(), Tag.id.desc()).limit(1)
    ).scalar_subquery()
    return count.label("tag_count"), latest.label("latest_tag")


def _repository_view(repository: Any, tag_count: int, latest_tag: str | None, registry_host: str) -> dict[str, Any]:
    """``repository``: a ``Repository`` or a row of ``REPOSITORY_COLUMNS``."""
    full_name = f"{repository.namespace}/{repository.name}"
    return {
        "repository": full_name,
        "namespace": repository.namespace,
        "name": repository.name,
        "is_public": repository.is_public,
        "is_ownbase": repository.is_ownbase,
        "description": repository.description,
        "overview": repository.overview,
        "tag_count": tag_count,
        "latest_tag": latest_tag if tag_count else None,
        "pull_command": pull_command(registry_host, full_name, latest_tag) if tag_count and latest_tag else None,
        "created_at": repository.created_at,
        "updated_at": repository.updated_at,
    }


def _list_namespace(
    session: Session,
    namespace: str,
    query: str | None,
    page: int,
    page_size: int,
    registry_host: str,
    ownbase: bool | None = None,
) -> dict[str, Any]:
    """One statement: the page of repositories with the whole listing's count beside each row
    (a window), and each page row's tag summary computed over the page only (the outer query)."""
    conditions = [Repository.namespace == namespace]
    if query:
        conditions.append(Repository.name.contains(query.lower(), autoescape=True))
    if ownbase is not None:
        conditions.append(Repository.is_ownbase == ownbase)
    rows_of_page = (
        sa.select(*REPOSITORY_COLUMNS, sa.func.count().over().label("total"))
        .where(*conditions)
        .order_by(Repository.name)
        .limit(page_size)
        .offset((page - 1) * page_size)
        .subquery()
    )
    rows = session.execute(sa.select(rows_of_page, *_tag_summary(rows_of_page.c.id)).order_by(rows_of_page.c.name))
    items, total = [], 0
    for row in rows:
        total = row.total
        items.append(_repository_view(row, row.tag_count, row.latest_tag, registry_host))
    if not items and page > 1:  # past the end: the window saw no row to count
        total = session.scalar(sa.select(sa.func.count()).select_from(Repository).where(*conditions)) or 0
    return listing(items, total, page, page_size)


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


def _not_found(repository: str) -> NotFound:
    return NotFound(f"repository {repository!r} not found")


def _visible_repository(session: Session, tenant_id: str | None, repository: str) -> Repository:
    namespace, name = readable_repository(tenant_id, repository)
    found = store.find_repository(session, namespace, name)
    if found is None:
        raise _not_found(repository)
    return found


def repository_view(session: Session, repository: Repository, registry_host: str) -> dict[str, Any]:
    """One repository as ``get_repository`` shows it."""
    tag_count, latest_tag = session.execute(sa.select(*_tag_summary(repository.id))).one()
    return _repository_view(repository, tag_count, latest_tag, registry_host)


def get_repository(session: Session, tenant_id: str | None, repository: str, registry_host: str) -> dict[str, Any]:
    namespace, name = readable_repository(tenant_id, repository)
    row = session.execute(
        sa.select(*REPOSITORY_COLUMNS, *_tag_summary(Repository.id)).where(
            Repository.namespace == namespace, Repository.name == name
        )
    ).one_or_none()
    if row is None:
        raise _not_found(repository)
    return _repository_view(row, row.tag_count, row.latest_tag, registry_host)


# -- tags --------------------------------------------------------------------------------------

# What a tag's view shows of its row and its manifest's.
TAG_COLUMNS = (
    Tag.id,
    Tag.name,
    Tag.pushed_at,
    Tag.updated_at,
    Tag.manifest_id,
)
MANIFEST_COLUMNS = (
    Manifest.digest,
    Manifest.image_id,
    Manifest.size,
    Manifest.created,
    Manifest.creator,
    Manifest.media_type,
    Manifest.architecture,
    Manifest.os,
    Manifest.variant,
    Manifest.platforms,
)


def _platform_sizes(session: Session, repository_id: int, manifests: list[Any]) -> dict[str, int | None]:
    """``{digest: size}`` of the platform manifests that ``manifests`` (rows of
    ``MANIFEST_COLUMNS``; the indexes among them) list and the catalogue knows."""
    digests = {p["digest"] for m in manifests if m.platforms is not None for p in m.platforms}
    if not digests:
        return {}
    stmt = sa.select(Manifest.digest, Manifest.size).where(
        Manifest.repository_id == repository_id, Manifest.digest.in_(digests)
    )
    return dict(session.execute(stmt).tuples().all())  # a Result has keys(): dict() would take it for a mapping


def _platforms(manifest: Any, known: dict[str, int | None]) -> list[dict[str, Any]]:
    return [
        dict(platform, size=known.get(platform["digest"]))
        for platform in manifest.platforms or []  # called for indexes, which list them
    ]


def _size(manifest: Any, known: dict[str, int | None]) -> int | None:
    """An image's download size; for an index, the sum over the platforms the catalogue knows."""
    if manifest.platforms is None:
        return manifest.size
    sizes = [p["size"] for p in _platforms(manifest, known) if p["size"] is not None]
    return sum(sizes) if sizes else None


def _tag_view(repository: str, row: Any, known: dict[str, int | None], registry_host: str) -> dict[str, Any]:
    """``row``: a tag's ``TAG_COLUMNS`` and its manifest's ``MANIFEST_COLUMNS``."""
    return {
        "repository": repository,
        "tag": row.name,
        "digest": row.digest,
        "image_id": row.image_id,
        "size": _size(row, known),
        "created": row.created,
        "creator": row.creator,
        "pushed_at": row.pushed_at,
        "updated_at": row.updated_at,
        "media_type": row.media_type,
        "architecture": row.architecture,
        "os": row.os,
        "variant": row.variant,
        "pull_command": pull_command(registry_host, repository, row.name),
    }


def list_tags(
    session: Session, tenant_id: str | None, repository: str, page: int, page_size: int, registry_host: str
) -> dict[str, Any]:
    """Tags, most recently pushed first.

    One statement: the repository joined to the page of its tags, with the count of all its tags
    beside each row (a window over the repository's tags, without their manifests), then the page's
    manifests. A repository without tags gives one row without a tag."""
    namespace, name = readable_repository(tenant_id, repository)
    tags_of_page = (
        sa.select(
            Repository.id.label("repository_id"),
            Repository.namespace,
            Repository.name.label("repository_name"),
            *TAG_COLUMNS,
            sa.func.count(Tag.id).over().label("total"),
        )
        .select_from(Repository)
        .outerjoin(Tag, Tag.repository_id == Repository.id)
        .where(Repository.namespace == namespace, Repository.name == name)
        .order_by(Tag.pushed_at.desc(), Tag.id.desc())
        .limit(page_size)
        .offset((page - 1) * page_size)
        .subquery()
    )
    rows = session.execute(
        sa.select(tags_of_page, *MANIFEST_COLUMNS)
        .outerjoin(Manifest, Manifest.id == tags_of_page.c.manifest_id)
        .order_by(tags_of_page.c.pushed_at.desc(), tags_of_page.c.id.desc())
    ).all()
    if not rows:  # past the end of the tags, or no such repository
        found = _visible_repository(session, tenant_id, repository)
        total = session.scalar(sa.select(sa.func.count()).where(Tag.repository_id == found.id)) or 0
        return listing([], total, page, page_size)
    full_name = f"{rows[0].namespace}/{rows[0].repository_name}"
    tags = [row for row in rows if row.id is not None]
    known = _platform_sizes(session, rows[0].repository_id, tags)
    return listing([_tag_view(full_name, row, known, registry_host) for row in tags], rows[0].total, page, page_size)


def get_tag(session: Session, tenant_id: str | None, repository: str, tag: str, registry_host: str) -> dict[str, Any]:
    """One statement: the repository, the tag and its manifest (outer joins, so that a missing
    tag is told from a missing repository), and one row per other tag on the same manifest."""
    validate_tag(tag)
    namespace, name = readable_repository(tenant_id, repository)
    other = sa.orm.aliased(Tag)
    rows = session.execute(
        sa.select(
            Repository.id.label("repository_id"),
            Repository.namespace,
            Repository.name.label("repository_name"),
            *TAG_COLUMNS,
            *MANIFEST_COLUMNS,
            Manifest.layers,
            Manifest.manifest_size,
            other.name.label("other_tag"),
        )
        .select_from(Repository)
        .outerjoin(Tag, sa.and_(Tag.repository_id == Repository.id, Tag.name == tag))
        .outerjoin(Manifest, Manifest.id == Tag.manifest_id)
        .outerjoin(other, sa.and_(other.manifest_id == Tag.manifest_id, other.id != Tag.id))
        .where(Repository.namespace == namespace, Repository.name == name)
        .order_by(other.name)
    ).all()
    if not rows:
        raise _not_found(repository)
    row = rows[0]
    if row.id is None:
        raise NotFound(f"tag {tag!r} not found in {repository!r}")
    known = _platform_sizes(session, row.repository_id, [row])
    view = _tag_view(f"{row.namespace}/{row.repository_name}", row, known, registry_host)
    view.update(
        layers=list(row.layers or []),
        manifest_size=row.manifest_size,
        platforms=_platforms(row, known) if row.platforms is not None else None,
        other_tags=[r.other_tag for r in rows if r.other_tag is not None],
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
