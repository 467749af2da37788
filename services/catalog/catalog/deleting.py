"""Deleting a version (tag) on a caller's request, in the registry and in the catalogue at once."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from catalog import store
from catalog.access import writable_repository
from shared.contracts.errors import Conflict, NotFound
from shared.contracts.reference import validate_tag
from shared.runtime.clock import utcnow


def delete_tag(
    session: Session,
    registry: Any,
    tenant_id: str | None,
    repository: str,
    tag: str,
    force: bool,
    now: datetime | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """Delete ``tag``'s manifest from the registry, then its tags from the catalogue.

    Docker Distribution 2.8 deletes manifests by digest only, which removes every tag on that
    digest: without ``force``, sibling tags are a ``Conflict`` naming them. The registry call
    comes before any write (see ``catalog.indexing``); if it fails (``RegistryUnavailable``)
    the catalogue is left as it was. A manifest the registry no longer has is removed from the
    catalogue all the same (its notifications were lost).

    Returns ``(result, outgoing_events)``; the events are in the outbox, in the same transaction.
    """
    validate_tag(tag)
    namespace, name = writable_repository(tenant_id, repository)
    return remove_tag(session, registry, namespace, name, tag, force, actor=tenant_id, now=now)


def remove_tag(
    session: Session,
    registry: Any,
    namespace: str,
    name: str,
    tag: str,
    force: bool,
    actor: str | None,
    now: datetime | None = None,
) -> tuple[dict[str, Any], list[Any]]:
    """``delete_tag`` once the caller's right to change ``namespace/name`` is settled: also the
    library mirror's, for a tag its upstream removed (``catalog.mirror.sync``)."""
    now = now or utcnow()
    repository = f"{namespace}/{name}"
    found = store.find_repository(session, namespace, name)
    if found is None:
        raise NotFound(f"repository {repository!r} not found")
    row = store.find_tag(session, found.id, tag)
    if row is None:
        raise NotFound(f"tag {tag!r} not found in {repository!r}")
    digest = row.manifest.digest
    siblings = [t.name for t in store.tags_on_digest(session, found.id, digest) if t.name != tag]
    if siblings and not force:
        raise Conflict(
            f"tag {tag!r} shares digest {digest} with {', '.join(map(repr, siblings))}; the "
            f"registry deletes by digest, so deleting it removes those too: pass force=True",
            {"sibling_tags": siblings},
        )

    seen = {tag, *siblings}

    registry.delete_manifest(found.full_name, digest)

    # The registry now sends its own delete notification, whose handler (record_delete) locks the
    # repository row and then the tags. Take the locks in that same order — repository first —
    # or the two deadlock on PostgreSQL (this transaction holding the tag rows, the handler the
    # repository). If the handler got there first, the tags are already gone: nothing to do.
    found = store.find_repository(session, namespace, name, for_update=True)
    doomed = store.tags_on_digest(session, found.id, digest) if found is not None else []
    # The registry removed every tag on the digest, including any pushed since the check above.
    outgoing = (
        store.remove_tags(session, found, doomed, actor=actor, event_id=None, now=now)
        if found is not None and doomed
        else []
    )
    if found is not None:
        store.delete_manifest(session, found.id, digest)
    result = {
        "repository": f"{namespace}/{name}",
        "tag": tag,
        "digest": digest,
        "deleted_tags": sorted(seen | {t.name for t in doomed}),
    }
    return result, outgoing
