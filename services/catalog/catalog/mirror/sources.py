"""The library's upstream sources: kept in the database, managed over RPC, seeded once from a file.

The seed file (``LIBRARY_SOURCES_FILE``, YAML: ``name: {registry, repository, tags, ...}``) is read
the first time the catalogue needs its sources; after that the database is the truth, so that a
source an admin removed does not come back at the next start.

Upstream credentials are not kept here: a source names one (``credential``) in the credentials
file (``LIBRARY_CREDENTIALS_FILE``, YAML ``name: {username, password}``; a Kubernetes Secret
mounted as a file), read at each sync so that a rotated secret needs no restart.
"""

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from catalog.mirror.schemas import SourceIn
from catalog.models import LibrarySource, LibrarySyncLock
from shared.contracts.errors import InvalidRequest, NotFound
from shared.contracts.reference import PUBLIC_NAMESPACE
from shared.contracts.schemas import load_args

log = logging.getLogger(__name__)

LOCK_ID = 1  # the one library_sync_lock row, which also says when the sources were seeded
# What set_library_source replaces, every one of them: a source is set whole.
SETTINGS = (
    "registry",
    "repository",
    "tags",
    "pattern",
    "versions",
    "newest",
    "follow_removals",
    "enabled",
    "insecure",
    "credential",
)
COLUMN = {"registry": "upstream_registry"}  # the argument's name where the model's differs


@dataclass(frozen=True)
class Credential:
    username: str
    password: str


def view(source: LibrarySource) -> dict[str, Any]:
    """A source as the RPC shows it (``catalog.mirror.schemas.SourceOut``)."""
    return {
        "name": source.name,
        "library_repository": f"{PUBLIC_NAMESPACE}/{source.name}",
        "registry": source.upstream_registry,
        "repository": source.repository,
        "tags": list(source.tags or []),
        "pattern": source.pattern,
        "versions": source.versions,
        "newest": source.newest,
        "follow_removals": source.follow_removals,
        "enabled": source.enabled,
        "insecure": source.insecure,
        "credential": source.credential,
        "created_at": source.created_at,
        "updated_at": source.updated_at,
        "updated_by": source.updated_by,
    }


def list_sources(session: Session, enabled_only: bool = False) -> list[LibrarySource]:
    query = sa.select(LibrarySource).order_by(LibrarySource.name)
    if enabled_only:
        query = query.where(LibrarySource.enabled.is_(True))
    return list(session.scalars(query))


def get_source(session: Session, name: str) -> LibrarySource:
    source = session.scalar(sa.select(LibrarySource).where(LibrarySource.name == name))
    if source is None:
        raise NotFound(f"no library source {name!r}")
    return source


def set_source(session: Session, values: Mapping[str, Any], actor: str | None, now: datetime) -> LibrarySource:
    """Create the source ``values["name"]`` or replace every setting of it (checked values,
    ``SourceIn``); ``updated_by`` is ``actor``."""
    source = session.scalar(sa.select(LibrarySource).where(LibrarySource.name == values["name"]))
    if source is None:
        source = LibrarySource(name=values["name"], created_at=now)
        session.add(source)
    for key in SETTINGS:
        setattr(source, COLUMN.get(key, key), values[key])
    source.updated_at, source.updated_by = now, actor
    session.flush()
    return source


def remove_source(session: Session, name: str) -> None:
    """Forget the source. What it mirrored stays in the library (an admin deletes it there)."""
    session.delete(get_source(session, name))
    session.flush()


def ensure_seeded(session: Session, path: str | None, now: datetime) -> int:
    """Add the seed file's sources, the first time only (across every catalog process: the
    conditional UPDATE of the lock row lets one of them do it). Returns how many were added; an
    entry that does not check is logged and left out, never a reason not to start."""
    claimed = session.execute(
        sa.update(LibrarySyncLock)
        .where(LibrarySyncLock.id == LOCK_ID, LibrarySyncLock.seeded_at.is_(None))
        .values(seeded_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]  # an UPDATE's CursorResult
    if not claimed or not path:
        return 0
    added = 0
    for name, entry in read_seed_file(path).items():
        try:
            values = load_args(SourceIn, name=name, **(entry if isinstance(entry, dict) else {}))
        except (InvalidRequest, TypeError) as exc:
            log.error("library source %r in %s left out: %s", name, path, exc)
            continue
        if session.scalar(sa.select(LibrarySource.id).where(LibrarySource.name == values["name"])) is None:
            set_source(session, values, actor=f"seed:{os.path.basename(path)}", now=now)
            added += 1
    log.info("library sources seeded from %s: %d added", path, added)
    return added


def read_seed_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        log.error("library sources file %s unreadable, nothing seeded: %s", path, exc)
        return {}
    if not isinstance(data, dict):
        log.error("library sources file %s is not a mapping of names to sources, nothing seeded", path)
        return {}
    return {str(name): entry for name, entry in data.items()}


def read_credentials(path: str | None) -> dict[str, Credential]:
    """The credentials file's entries (empty without a file); ``InvalidRequest`` for one that
    does not parse, so that a sync says why rather than copying anonymously."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidRequest(f"the library credentials file is unreadable: {type(exc).__name__}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("the library credentials file must map names to {username, password}")
    found = {}
    for name, entry in data.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("username"), str) and "password" in entry):
            raise InvalidRequest(f"credential {name!r} in the library credentials file needs a username and a password")
        found[str(name)] = Credential(entry["username"], str(entry["password"]))
    return found


def check_credential(values: Mapping[str, Any], credentials_file: str | None) -> None:
    """``InvalidRequest`` naming ``credential`` when the file has no such entry."""
    name = values.get("credential")
    if name is not None and name not in read_credentials(credentials_file):
        raise InvalidRequest(
            f"credential {name!r} is not in the library credentials file"
            + ("" if credentials_file else " (none is configured: LIBRARY_CREDENTIALS_FILE)")
        )
