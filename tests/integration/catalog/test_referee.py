"""The registry as referee, against the real registry: a notification stamped by a replica with a
slow clock is settled by what the registry's tag points at now, not by its timestamp."""

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.models import Manifest, Repository, Tag, TagHistory
from shared.contracts.events import TAG_INDEXED, TAG_REMOVED
from tests.integration.catalog.conftest import CREATED
from tests.support import delete_manifest, push_image

SLOW = timedelta(hours=1)  # how far behind the slow replica's clock is


class Catalogue:
    """The rows of one repository in the catalog's database, read directly."""

    def __init__(self, db_url, repository):
        self.engine = sa.create_engine(db_url)
        self.namespace, self.name = repository.split("/")
        self.repository = repository

    def tags(self):
        """``{tag: digest}``"""
        with Session(self.engine) as session:
            return dict(
                session.execute(
                    sa.select(Tag.name, Manifest.digest)
                    .join(Tag.manifest)
                    .join(Repository, Repository.id == Tag.repository_id)
                    .where(Repository.namespace == self.namespace, Repository.name == self.name)
                ).all()
            )

    def history(self, tag):
        """``[(action, digest, previous_digest, event_id)]``, oldest first."""
        with Session(self.engine) as session:
            rows = session.execute(
                sa.select(TagHistory.action, TagHistory.digest, TagHistory.previous_digest, TagHistory.event_id)
                .where(TagHistory.repository == self.repository, TagHistory.tag == tag)
                .order_by(TagHistory.id)
            ).all()
        return [tuple(row) for row in rows]

    def close(self):
        self.engine.dispose()


@pytest.fixture
def repository(tenant):
    return f"{tenant}/app"


@pytest.fixture
def catalogue(catalog_db_url, repository):
    catalogue = Catalogue(catalog_db_url, repository)
    yield catalogue
    catalogue.close()


class TestALatePushTheRegistryConfirms:
    def test_it_is_indexed_with_one_tag_indexed_and_a_history_row(
        self, registry, webhook, observed, repository, tenant, catalogue, rpc
    ):
        first = push_image(registry.url, repository, "v1", content=b"first" + tenant.encode(), created=CREATED)
        stored = webhook.push(first)
        # A newer push of v1, handled by a replica whose clock is an hour slow: stamped earlier.
        newer = push_image(registry.url, repository, "v1", content=b"newer" + tenant.encode(), created=CREATED)
        stamped = datetime.fromisoformat(stored["pushed_at"]) - SLOW
        late = webhook.push(newer, pushed_at=stamped.isoformat())

        assert registry.manifest_digest(repository, "v1") == newer["digest"]
        assert catalogue.tags() == {"v1": newer["digest"]}
        assert rpc.get_tag(tenant, repository, "v1")["digest"] == newer["digest"]
        assert catalogue.history("v1") == [
            ("pushed", first["digest"], None, stored["event_id"]),
            ("moved", newer["digest"], first["digest"], late["event_id"]),
        ]
        indexed = wait_for_marker(registry, webhook, observed, repository, tenant, TAG_INDEXED, 3)
        assert [(p["tag"], p["digest"], p["previous_digest"]) for p in indexed[:-1]] == [
            ("v1", first["digest"], None),
            ("v1", newer["digest"], first["digest"]),
        ]
        # The later of the two stamps: the move does not put the tag back in time.
        assert indexed[1]["pushed_at"] == stored["pushed_at"]
        assert rpc.get_tag(tenant, repository, "v1")["pushed_at"] == stored["pushed_at"]


class TestALatePushTheRegistryContradicts:
    def test_it_is_ignored(self, registry, webhook, observed, repository, tenant, catalogue):
        older = push_image(registry.url, repository, "v1", content=b"older" + tenant.encode(), created=CREATED)
        newer = push_image(registry.url, repository, "v1", content=b"newer" + tenant.encode(), created=CREATED)
        stored = webhook.push(newer)
        # The older push's notification, delayed, stamped before the newer one: the registry has v1
        # on the newer digest, so the catalogue keeps it.
        stamped = datetime.fromisoformat(stored["pushed_at"]) - timedelta(seconds=5)
        webhook.push(older, pushed_at=stamped.isoformat())

        assert registry.manifest_digest(repository, "v1") == newer["digest"]
        assert catalogue.tags() == {"v1": newer["digest"]}
        assert catalogue.history("v1") == [("pushed", newer["digest"], None, stored["event_id"])]
        indexed = wait_for_marker(registry, webhook, observed, repository, tenant, TAG_INDEXED, 2)
        assert [(p["tag"], p["digest"]) for p in indexed[:-1]] == [("v1", newer["digest"])]


class TestALateDeleteOfATagTheRegistryNoLongerHas:
    def test_it_removes_the_tag(self, registry, webhook, observed, repository, tenant, catalogue):
        image = push_image(registry.url, repository, "v1", content=b"gone" + tenant.encode(), created=CREATED)
        stored = webhook.push(image)
        delete_manifest(registry.url, repository, image["digest"])
        # The tag delete's notification, from a replica whose clock is an hour slow.
        stamped = datetime.fromisoformat(stored["pushed_at"]) - SLOW
        removal = webhook.delete(repository, tag="v1", occurred_at=stamped.isoformat())

        assert registry.tags(repository) == []
        assert catalogue.tags() == {}
        assert catalogue.history("v1") == [
            ("pushed", image["digest"], None, stored["event_id"]),
            ("removed", image["digest"], None, removal["event_id"]),
        ]
        [removed] = observed.wait_for(TAG_REMOVED)
        assert (removed["tag"], removed["digest"]) == ("v1", image["digest"])
        indexed = wait_for_marker(registry, webhook, observed, repository, tenant, TAG_INDEXED, 2)
        assert [p["tag"] for p in indexed[:-1]] == ["v1"]
        assert len(observed.of(TAG_REMOVED)) == 1


def wait_for_marker(registry, webhook, observed, repository, tenant, event_type, count):
    """Push a marker tag and wait for ``count`` events of ``event_type``, the last the marker's:
    the observer (one worker) has then everything the catalog sent before it, so a count is final.
    Returns them all, the marker's last."""
    marker = push_image(registry.url, repository, "marker", content=b"marker" + tenant.encode(), created=CREATED)
    webhook.push(marker)
    events = observed.wait_for(event_type, count)
    assert events[-1]["tag"] == "marker" and len(events) == count, events
    return events
