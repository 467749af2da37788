"""Unit-test fixtures: a migrated SQLite database per test and a fake registry in memory."""

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from catalog.exceptions import NotInRegistry, UnusableManifest
from catalog.manifests import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST
from catalog.migrate import upgrade
from shared.contracts.errors import RegistryUnavailable
from shared.contracts.events import ImageDeleted, ImagePushed, load_event, make_event
from shared.runtime import db
from tests.support import migrated_sqlite_template, sqlite_copy

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def at(seconds):
    """A point in time ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


class FakeRegistry:
    """Stands in for ``catalog.dependencies.RegistryClient``: same methods, same errors."""

    def __init__(self):
        self.manifests = {}  # (repository, digest) -> (content_type, body)
        self.blobs = {}  # (repository, digest) -> body
        self.tags = {}  # repository -> {tag: digest}; a repository with no tags is still listed
        self.deleted = []
        self.calls = []
        self.unavailable = False
        self.on_call = None  # on_call(call): runs before each answer (an event landing mid-pass)

    def _check(self, call):
        self.calls.append(call)
        if self.on_call is not None:
            self.on_call(call)
        if self.unavailable:
            raise RegistryUnavailable("registry http://fake unreachable")

    def get_manifest(self, repository, digest):
        self._check(("get_manifest", repository, digest))
        if (repository, digest) not in self.manifests:
            raise NotInRegistry(f"manifest {repository}@{digest} is not in the registry")
        return self.manifests[repository, digest]

    def get_blob(self, repository, digest, max_bytes=None):
        self._check(("get_blob", repository, digest))
        if (repository, digest) not in self.blobs:
            raise NotInRegistry(f"blob {repository}@{digest} is not in the registry")
        if max_bytes and len(self.blobs[repository, digest]) > max_bytes:
            raise UnusableManifest(f"blob {repository}@{digest} is larger than {max_bytes} bytes")
        return self.blobs[repository, digest]

    def delete_manifest(self, repository, digest):
        self._check(("delete_manifest", repository, digest))
        if self.manifests.pop((repository, digest), None) is None:
            return False
        self.deleted.append((repository, digest))
        self.tags[repository] = {t: d for t, d in self.tags.get(repository, {}).items() if d != digest}
        return True

    def tag_digest(self, repository, tag, manifest=False):
        self._check(("tag_digest", repository, tag))
        return self.tags.get(repository, {}).get(tag)

    def repository_pages(self, page_size):
        """Pages as Distribution's ``_catalog`` gives them: sorted, ``page_size`` a page."""
        names = sorted(self.tags)
        for start in range(0, max(len(names), 1), page_size):
            self._check(("repository_page", names[start] if names else None))
            yield names[start : start + page_size]

    def tag_pages(self, repository, page_size):
        if repository not in self.tags:
            return
        tags = sorted(self.tags[repository])
        for start in range(0, max(len(tags), 1), page_size):
            self._check(("tag_page", repository, tags[start] if tags else None))
            yield tags[start : start + page_size]

    # -- building content ------------------------------------------------------------------
    def push(self, repository, tag, content=None, **image):
        """An image pushed with ``tag`` (content: the tag's name unless given); returns add_image's dict."""
        added = self.add_image(repository, content=content or f"{repository}:{tag}", **image)
        self.tags.setdefault(repository, {})[tag] = added["digest"]
        return added

    def untag(self, repository, tag):
        self.tags[repository].pop(tag)

    def add_image(
        self,
        repository,
        content="hello",
        architecture="amd64",
        os_name="linux",
        created="2025-12-31T23:59:58Z",
        author=None,
        layer_size=1000,
    ):
        config = {
            "architecture": architecture,
            "os": os_name,
            "created": created,
            "rootfs": {"type": "layers", "diff_ids": [sha256(content.encode())]},
        }
        if author:
            config["author"] = author
        config_body = json.dumps(config).encode()
        self.blobs[repository, sha256(config_body)] = config_body
        layer_digest = sha256(b"layer:" + content.encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "size": len(config_body), "digest": sha256(config_body)},
            "layers": [{"mediaType": DOCKER_LAYER, "size": layer_size, "digest": layer_digest}],
        }
        digest = self.add_manifest(repository, DOCKER_MANIFEST, manifest)
        return {
            "digest": digest,
            "image_id": sha256(config_body),
            "layers": [layer_digest],
            "size": len(config_body) + layer_size,
        }

    def add_index(self, repository, children):
        index = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "size": 500,
                    "digest": c["digest"],
                    "platform": {"architecture": c["architecture"], "os": "linux"},
                }
                for c in children
            ],
        }
        return self.add_manifest(repository, DOCKER_MANIFEST_LIST, index)

    def add_manifest(self, repository, content_type, manifest):
        body = json.dumps(manifest).encode()
        self.manifests[repository, sha256(body)] = (content_type, body)
        return sha256(body)


@pytest.fixture
def registry():
    return FakeRegistry()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    """The schema is built by the migration once; each test gets a copy of the file."""
    return migrated_sqlite_template(tmp_path_factory, "catalog", upgrade)


@pytest.fixture
def session(migrated_template, tmp_path):
    engine = db.create_engine(sqlite_copy(migrated_template, tmp_path))
    with Session(engine) as session:
        yield session
    engine.dispose()


def pushed(repository, digest, tag=None, actor=None, pushed_at=None, event_id=None, media_type=DOCKER_MANIFEST):
    """An ``image_pushed`` event as the service loads it."""
    payload = make_event(
        ImagePushed,
        event_id=event_id or str(uuid.uuid4()),
        namespace=repository.split("/")[0],
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=media_type,
        size=500,
        actor=actor,
        source_event_id=str(uuid.uuid4()),
        pushed_at=(pushed_at or T0).isoformat(),
    )
    return load_event(ImagePushed, payload)


def deleted(repository, digest=None, tag=None, event_id=None, occurred_at=None):
    """An ``image_deleted`` event as the service loads it; ``occurred_at`` is the registry's time."""
    stamp = {"occurred_at": occurred_at.isoformat()} if occurred_at else {}
    payload = make_event(
        ImageDeleted,
        event_id=event_id or str(uuid.uuid4()),
        namespace=repository.split("/")[0],
        repository=repository,
        digest=digest,
        tag=tag,
        source_event_id=str(uuid.uuid4()),
        **stamp,
    )
    return load_event(ImageDeleted, payload)
