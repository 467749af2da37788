"""Registry events through the real broker into the catalog, against a real registry."""

import json
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog.exceptions import NotInRegistry
from catalog.models import DeadLetter
from shared.contracts.errors import InvalidReference, InvalidRequest
from shared.contracts.events import EVENT_SET_ASIDE, IMAGE_PUSHED, TAG_INDEXED, TAG_REMOVED, EventSetAside, make_event
from tests.integration.catalog.conftest import WAIT
from tests.support import delete_manifest, push_image, push_index, wait_until


def parsed(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def without_envelope(payload):
    return {k: v for k, v in payload.items() if k not in ("event_id", "occurred_at")}


class TestPushIsIndexed:
    def test_tag_detail_matches_what_was_pushed(self, registry, webhook, rpc, tenant):
        image = push_image(
            registry.url,
            f"{tenant}/app",
            "v1",
            content=tenant.encode(),
            author="builder",
            architecture="arm64",
            created="2025-06-07T08:09:10Z",
        )
        webhook.push(image, actor="alice")

        tag = rpc.get_tag(tenant, f"{tenant}/app", "v1")
        assert (tag["repository"], tag["tag"], tag["digest"], tag["image_id"]) == (
            f"{tenant}/app",
            "v1",
            image["digest"],
            image["image_id"],
        )
        assert parsed(tag["created"]) == parsed(image["created"])
        assert (tag["creator"], tag["architecture"], tag["os"], tag["layers"]) == (
            "alice",
            "arm64",
            "linux",
            image["layers"],
        )
        assert (tag["media_type"], tag["manifest_size"], tag["platforms"], tag["other_tags"]) == (
            image["media_type"],
            image["size"],
            None,
            [],
        )
        assert tag["pull_command"] == f"docker pull {registry.host}/{tenant}/app:v1"

    def test_creator_falls_back_to_the_image_author(self, registry, webhook, rpc, tenant):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode(), author="builder")
        webhook.push(image, actor="")
        assert rpc.get_tag(tenant, f"{tenant}/app", "v1")["creator"] == "builder"

    def test_tag_indexed_payload_is_exact(self, registry, webhook, observed, tenant):
        image = push_image(registry.url, f"{tenant}/java_ownbase", "1.0", content=tenant.encode())
        sent = webhook.push(image, actor="alice")

        [payload] = observed.wait_for(TAG_INDEXED)
        assert without_envelope(payload) == {
            "namespace": tenant,
            "repository": f"{tenant}/java_ownbase",
            "tag": "1.0",
            "digest": image["digest"],
            "previous_digest": None,
            "image_id": image["image_id"],
            "pushed_at": sent["pushed_at"],
            "is_ownbase": True,
            "actor": "alice",
            "trigger": "push",
        }

    def test_same_event_twice_makes_one_history_row_and_one_tag_indexed(self, registry, webhook, observed, rpc, tenant):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        payload = webhook.pushed(image)
        webhook.send(IMAGE_PUSHED, payload)
        webhook.send(IMAGE_PUSHED, payload)
        # A later push proves the observer has received everything dispatched before it.
        marker = push_image(registry.url, f"{tenant}/app", "marker", content=b"marker" + tenant.encode())
        webhook.push(marker)

        indexed = observed.wait_for(TAG_INDEXED, 2)
        assert sorted(p["tag"] for p in indexed) == ["marker", "v1"]
        history = rpc.list_tag_history(tenant, f"{tenant}/app", "v1")
        assert [(h["action"], h["digest"], h["event_id"]) for h in history["items"]] == [
            ("pushed", image["digest"], payload["event_id"])
        ]

    def test_a_replayed_event_is_not_applied_again_after_later_changes(self, registry, webhook, observed, rpc, tenant):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        payload = webhook.pushed(image)
        webhook.send(IMAGE_PUSHED, payload)
        webhook.delete(f"{tenant}/app", tag="v1")
        webhook.send(IMAGE_PUSHED, payload)  # the registry's retry, after the tag was deleted

        assert rpc.list_tags(tenant, f"{tenant}/app")["total"] == 0
        history = rpc.list_tag_history(tenant, f"{tenant}/app", "v1")["items"]
        assert [h["action"] for h in history] == ["removed", "pushed"]
        observed.wait_for(TAG_REMOVED)
        assert len(observed.of(TAG_INDEXED)) == 1

    def test_retag_moves_the_tag_and_reports_the_previous_digest(self, registry, webhook, observed, rpc, tenant):
        old = push_image(registry.url, f"{tenant}/app", "latest", content=b"old" + tenant.encode())
        webhook.push(old)
        new = push_image(registry.url, f"{tenant}/app", "latest", content=b"new" + tenant.encode())
        webhook.push(new)

        moved = observed.wait_for(TAG_INDEXED, 2)[1]
        assert (moved["digest"], moved["previous_digest"], moved["image_id"]) == (
            new["digest"],
            old["digest"],
            new["image_id"],
        )
        assert rpc.get_tag(tenant, f"{tenant}/app", "latest")["digest"] == new["digest"]
        history = rpc.list_tag_history(tenant, f"{tenant}/app")["items"]
        assert [(h["action"], h["previous_digest"]) for h in history] == [("moved", old["digest"]), ("pushed", None)]

    def test_multi_arch_index_is_one_version_listing_its_platforms(self, registry, webhook, observed, rpc, tenant):
        index = push_index(registry.url, f"{tenant}/multi", "2.0", content=tenant.encode())
        for child in index["children"]:
            webhook.push(child)  # by digest, no tag: stored, not a version
        webhook.push(index)

        tag = rpc.get_tag(tenant, f"{tenant}/multi", "2.0")
        assert (tag["digest"], tag["media_type"], tag["image_id"]) == (index["digest"], index["media_type"], None)
        assert [(p["digest"], p["architecture"], p["os"]) for p in tag["platforms"]] == [
            (c["digest"], c["architecture"], c["os"]) for c in index["children"]
        ]
        assert all(p["size"] > 0 for p in tag["platforms"])
        assert [t["tag"] for t in rpc.list_tags(tenant, f"{tenant}/multi")["items"]] == ["2.0"]
        [payload] = observed.wait_for(TAG_INDEXED)
        assert (payload["tag"], payload["digest"], payload["image_id"]) == ("2.0", index["digest"], None)


class TestDeletes:
    def tags(self, rpc, tenant, repository):
        return sorted(t["tag"] for t in rpc.list_tags(tenant, repository)["items"])

    def test_tag_delete_removes_only_that_tag(self, app, webhook, observed, rpc, tenant):
        repository, a, _ = app
        webhook.delete(repository, tag="v1")
        assert self.tags(rpc, tenant, repository) == ["stable", "v2"]
        [removed] = observed.wait_for(TAG_REMOVED)
        assert without_envelope(removed) == {"namespace": tenant, "repository": repository, "tag": "v1", "digest": a}

    def test_manifest_delete_removes_every_tag_on_the_digest(self, app, registry, webhook, observed, rpc, tenant):
        repository, a, b = app
        delete_manifest(registry.url, repository, a)
        webhook.delete(repository, digest=a)
        assert self.tags(rpc, tenant, repository) == ["v2"]
        assert sorted(p["tag"] for p in observed.wait_for(TAG_REMOVED, 2)) == ["stable", "v1"]
        webhook.delete(repository, tag="v1")  # the registry's per-tag notification: already gone
        assert self.tags(rpc, tenant, repository) == ["v2"]

    def test_repository_delete_removes_the_repository(self, app, webhook, observed, rpc, tenant):
        repository = app[0]
        webhook.delete(repository)
        assert rpc.list_repositories(tenant)["total"] == 0
        assert sorted(p["tag"] for p in observed.wait_for(TAG_REMOVED, 3)) == ["stable", "v1", "v2"]


def filed(db_url, event_id):
    """The dead letter of ``event_id``, once the desk has filed it (it is parked, then filed)."""
    engine = sa.create_engine(db_url)
    try:

        def find():
            with Session(engine) as session:
                return session.scalars(sa.select(DeadLetter).where(DeadLetter.event_id == event_id)).one_or_none()

        return wait_until(find, timeout=WAIT, what=f"the dead letter of {event_id}")
    finally:
        engine.dispose()


class TestDeadLetters:
    """An event the catalog cannot use is parked as a dead letter with its reason, and its desk
    (the same catalog) files it: one row, in the database the RPC reads."""

    def test_manifest_deleted_meanwhile_is_parked_with_the_reason(self, registry, webhook, rpc, tenant, catalog_db_url):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        delete_manifest(registry.url, f"{tenant}/app", image["digest"])
        payload = webhook.pushed(image)
        with pytest.raises(NotInRegistry):
            webhook.send(IMAGE_PUSHED, payload)

        letter = filed(catalog_db_url, payload["event_id"])
        assert (letter.queue, letter.source, letter.event_type, letter.reason, letter.deliveries, letter.deaths) == (
            "evt-webhook-image_pushed--catalog.handle_image_pushed",
            "webhook",
            IMAGE_PUSHED,
            "rejected",
            1,
            1,
        )
        assert letter.error.startswith("NotInRegistry:")
        assert json.loads(letter.body) == payload
        assert rpc.list_repositories(tenant)["total"] == 0

    def test_payload_failing_the_schema_is_parked(self, webhook, catalog_db_url):
        payload = {"event_id": "not-a-uuid", "repository": "x/y"}
        with pytest.raises(InvalidRequest):
            webhook.send(IMAGE_PUSHED, payload)
        letter = filed(catalog_db_url, "not-a-uuid")
        assert letter.error.startswith("InvalidRequest: ImagePushed payload is invalid")
        assert json.loads(letter.body) == payload

    def test_repository_name_breaking_the_rules_is_parked(self, registry, webhook, tenant, catalog_db_url):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        payload = webhook.pushed(dict(image, repository=f"{tenant}/App"))
        with pytest.raises(InvalidReference):
            webhook.send(IMAGE_PUSHED, payload)
        assert "lower-case" in filed(catalog_db_url, payload["event_id"]).error

    def test_the_webhooks_set_aside_events_are_kept(self, webhook, rpc):
        payload = make_event(
            EventSetAside,
            source="webhook",
            reason="blob push is not an image",
            source_event_id="reg-1",
            action="push",
            repository="t1/app",
            payload={"id": "reg-1"},
        )
        webhook.send(EVENT_SET_ASIDE, payload)
        webhook.send(EVENT_SET_ASIDE, payload)
        kept = [e for e in rpc.list_set_aside_events()["items"] if e["event_id"] == payload["event_id"]]
        assert [(e["source"], e["reason"], e["payload"]) for e in kept] == [
            ("webhook", "blob push is not an image", {"id": "reg-1"})
        ]
