"""Applying push, delete and set-aside events: resulting catalogue state and outgoing events."""

import json
import uuid

import pytest
import sqlalchemy as sa

from catalog import indexing
from catalog.exceptions import NotInRegistry, UnusableManifest
from catalog.models import Manifest, ProcessedEvent, Repository, SetAsideEvent, Tag, TagHistory
from shared.contracts.errors import InvalidReference, RegistryUnavailable
from shared.contracts.events import TAG_INDEXED, TAG_REMOVED, EventSetAside, TagIndexed, load_event, make_event
from tests.unit.catalog.conftest import T0, at, deleted, pushed


def push(session, registry, *args, **kwargs):
    outgoing = indexing.record_push(session, registry, pushed(*args, **kwargs), now=kwargs.get("pushed_at"))
    session.commit()
    return outgoing


def delete(session, registry, *args, **kwargs):
    outgoing = indexing.record_delete(session, registry, deleted(*args, **kwargs))
    session.commit()
    return outgoing


def tags_of(session, repository):
    namespace, name = repository.split("/")
    return dict(
        session.execute(
            sa.select(Tag.name, Manifest.digest)
            .join(Tag.manifest)
            .join(Repository, Tag.repository_id == Repository.id)
            .where(Repository.namespace == namespace, Repository.name == name)
        ).all()
    )


def history(session):
    return [
        (h.repository, h.tag, h.action, h.digest, h.previous_digest)
        for h in session.scalars(sa.select(TagHistory).order_by(TagHistory.id))
    ]


class TestPushIndexesTheImage:
    def test_manifest_fields_come_from_the_registry_by_digest(self, session, registry):
        image = registry.add_image("t1/app", author="builder@example.com", architecture="arm64")
        push(session, registry, "t1/app", image["digest"], tag="v1")

        manifest = session.scalar(sa.select(Manifest))
        assert (manifest.digest, manifest.image_id, manifest.layers) == (
            image["digest"],
            image["image_id"],
            image["layers"],
        )
        assert (manifest.architecture, manifest.os, manifest.size) == ("arm64", "linux", image["size"])
        assert manifest.created.isoformat() == "2025-12-31T23:59:58+00:00"
        assert manifest.creator == "builder@example.com"
        assert ("get_manifest", "t1/app", image["digest"]) in registry.calls

    def test_actor_is_the_creator_when_the_event_names_one(self, session, registry):
        image = registry.add_image("t1/app", author="builder@example.com")
        push(session, registry, "t1/app", image["digest"], tag="v1", actor="alice")
        assert session.scalar(sa.select(Manifest.creator)) == "alice"

    def test_no_actor_and_no_author_leaves_creator_empty(self, session, registry):
        image = registry.add_image("t1/app")
        push(session, registry, "t1/app", image["digest"], tag="v1")
        assert session.scalar(sa.select(Manifest.creator)) is None

    def test_new_tag_emits_tag_indexed_with_the_exact_payload(self, session, registry):
        image = registry.add_image("t1/java_ownbase")
        event = pushed("t1/java_ownbase", image["digest"], tag="1.0", actor="alice", pushed_at=at(10))
        outgoing = indexing.record_push(session, registry, event)
        session.commit()

        [(event_type, payload)] = outgoing
        assert event_type == TAG_INDEXED
        loaded = load_event(TagIndexed, payload)
        assert {k: v for k, v in payload.items() if k not in ("event_id", "occurred_at")} == {
            "namespace": "t1",
            "repository": "t1/java_ownbase",
            "tag": "1.0",
            "digest": image["digest"],
            "previous_digest": None,
            "image_id": image["image_id"],
            "pushed_at": at(10).isoformat(),
            "is_ownbase": True,
            "actor": "alice",
            "trigger": "push",
        }
        assert loaded["event_id"] != event["event_id"]
        assert history(session) == [("t1/java_ownbase", "1.0", "pushed", image["digest"], None)]

    def test_repository_flags_follow_the_name(self, session, registry):
        image = registry.add_image("t1/java_ownbase")
        push(session, registry, "t1/java_ownbase", image["digest"], tag="1.0")
        repository = session.scalar(sa.select(Repository))
        assert (repository.namespace, repository.name, repository.is_public, repository.is_ownbase) == (
            "t1",
            "java_ownbase",
            False,
            True,
        )

    def test_library_repository_gets_its_curated_description(self, session, registry):
        for name in ("nginx", "unheard-of"):
            image = registry.add_image(f"library/{name}")
            push(session, registry, f"library/{name}", image["digest"], tag="latest")
        curated = {r.name: (r.is_public, r.description, r.overview) for r in session.scalars(sa.select(Repository))}
        assert curated["nginx"][0] is True
        assert "HTTP server" in curated["nginx"][1] and "nginx" in curated["nginx"][2]
        assert curated["unheard-of"] == (True, "", "")

    def test_push_without_tag_stores_the_manifest_only(self, session, registry):
        image = registry.add_image("t1/app")
        assert push(session, registry, "t1/app", image["digest"]) == []
        assert session.scalar(sa.select(sa.func.count()).select_from(Manifest)) == 1
        assert tags_of(session, "t1/app") == {}


class TestRetagging:
    def test_same_digest_to_the_same_tag_changes_nothing(self, session, registry):
        image = registry.add_image("t1/app")
        push(session, registry, "t1/app", image["digest"], tag="v1")
        assert push(session, registry, "t1/app", image["digest"], tag="v1", pushed_at=at(5)) == []
        assert len(history(session)) == 1
        assert session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent)) == 2

    def test_known_digest_is_not_fetched_again(self, session, registry):
        image = registry.add_image("t1/app")
        push(session, registry, "t1/app", image["digest"], tag="v1")
        calls = len(registry.calls)
        push(session, registry, "t1/app", image["digest"], tag="stable")
        assert len(registry.calls) == calls
        assert tags_of(session, "t1/app") == {"v1": image["digest"], "stable": image["digest"]}

    def test_moving_a_tag_reports_the_previous_digest(self, session, registry):
        old, new = registry.add_image("t1/app", "old"), registry.add_image("t1/app", "new")
        push(session, registry, "t1/app", old["digest"], tag="latest", pushed_at=at(1))
        [(_, payload)] = push(session, registry, "t1/app", new["digest"], tag="latest", pushed_at=at(2))
        assert (payload["digest"], payload["previous_digest"]) == (new["digest"], old["digest"])
        assert tags_of(session, "t1/app") == {"latest": new["digest"]}
        assert history(session)[-1] == ("t1/app", "latest", "moved", new["digest"], old["digest"])

    def test_a_late_push_does_not_move_the_tag_back(self, session, registry):
        old, new = registry.add_image("t1/app", "old"), registry.add_image("t1/app", "new")
        push(session, registry, "t1/app", new["digest"], tag="latest", pushed_at=at(2))
        assert push(session, registry, "t1/app", old["digest"], tag="latest", pushed_at=at(1)) == []
        assert tags_of(session, "t1/app") == {"latest": new["digest"]}


class TestIdempotency:
    def test_the_same_event_twice_is_applied_once(self, session, registry):
        image = registry.add_image("t1/app")
        event = pushed("t1/app", image["digest"], tag="v1")
        first = indexing.record_push(session, registry, event)
        session.commit()
        second = indexing.record_push(session, registry, event)
        session.commit()
        assert (len(first), second) == (1, [])
        assert len(history(session)) == 1

    def test_a_duplicate_is_recognised_before_the_registry_is_asked(self, session, registry):
        image = registry.add_image("t1/app")
        event = pushed("t1/app", image["digest"], tag="v1")
        indexing.record_push(session, registry, event)
        session.commit()
        registry.unavailable = True  # would raise if the duplicate went to the registry
        assert indexing.record_push(session, registry, event) == []

    def test_a_duplicate_delete_is_applied_once(self, session, registry):
        image = registry.add_image("t1/app")
        push(session, registry, "t1/app", image["digest"], tag="v1")
        event = deleted("t1/app", tag="v1")
        assert len(indexing.record_delete(session, registry, event)) == 1
        session.commit()
        push(session, registry, "t1/app", image["digest"], tag="v1")  # pushed again since
        assert indexing.record_delete(session, registry, event) == []
        assert tags_of(session, "t1/app") == {"v1": image["digest"]}


class TestMultiArch:
    def test_platform_manifests_then_index_make_one_version_with_platforms(self, session, registry):
        children = [
            dict(registry.add_image("t1/multi", arch, architecture=arch), architecture=arch)
            for arch in ("amd64", "arm64")
        ]
        index = registry.add_index("t1/multi", children)
        for child in children:
            assert push(session, registry, "t1/multi", child["digest"]) == []
        [(_, payload)] = push(session, registry, "t1/multi", index, tag="1.0")

        assert tags_of(session, "t1/multi") == {"1.0": index}
        stored = session.scalar(sa.select(Manifest).where(Manifest.digest == index))
        assert stored.platforms == [
            {"digest": children[0]["digest"], "architecture": "amd64", "os": "linux", "variant": None},
            {"digest": children[1]["digest"], "architecture": "arm64", "os": "linux", "variant": None},
        ]
        assert (stored.image_id, stored.architecture, payload["image_id"]) == (None, None, None)
        assert session.scalar(sa.select(sa.func.count()).select_from(Manifest)) == 3


class TestDeletes:
    @pytest.fixture
    def two_digests(self, session, registry):
        """v1 and stable on one digest, v2 on another, in the registry and the catalogue."""
        a, b = registry.push("t1/app", "v1", content="a"), registry.push("t1/app", "v2", content="b")
        registry.tags["t1/app"]["stable"] = a["digest"]
        push(session, registry, "t1/app", a["digest"], tag="v1")
        push(session, registry, "t1/app", a["digest"], tag="stable")
        push(session, registry, "t1/app", b["digest"], tag="v2")
        return a["digest"], b["digest"]

    def test_tag_delete_removes_that_tag_only(self, session, registry, two_digests):
        outgoing = delete(session, registry, "t1/app", tag="v1")
        assert tags_of(session, "t1/app") == {"stable": two_digests[0], "v2": two_digests[1]}
        assert [(t, p["tag"], p["digest"]) for t, p in outgoing] == [(TAG_REMOVED, "v1", two_digests[0])]
        assert history(session)[-1] == ("t1/app", "v1", "removed", two_digests[0], None)

    def test_tag_delete_with_a_digest_spares_a_tag_that_moved_on(self, session, registry, two_digests):
        assert delete(session, registry, "t1/app", tag="v2", digest=two_digests[0]) == []
        assert "v2" in tags_of(session, "t1/app")

    def test_manifest_delete_removes_every_tag_on_the_digest_and_the_manifest(self, session, registry, two_digests):
        outgoing = delete(session, registry, "t1/app", digest=two_digests[0])
        assert tags_of(session, "t1/app") == {"v2": two_digests[1]}
        assert sorted(p["tag"] for _, p in outgoing) == ["stable", "v1"]
        assert session.scalars(sa.select(Manifest.digest)).all() == [two_digests[1]]

    def test_repository_delete_removes_everything(self, session, registry, two_digests):
        outgoing = delete(session, registry, "t1/app")
        assert sorted(p["tag"] for _, p in outgoing) == ["stable", "v1", "v2"]
        assert session.scalar(sa.select(sa.func.count()).select_from(Repository)) == 0
        assert session.scalar(sa.select(sa.func.count()).select_from(Manifest)) == 0
        assert len([h for h in history(session) if h[2] == "removed"]) == 3

    def test_a_late_tag_delete_spares_the_tag_pushed_again_after_it(self, session, registry):
        """Registry order: delete v1 (at 10 s), push v1 again (at 20 s); the catalog sees the push
        first (another worker, or the delete was requeued). Distribution's tag delete carries no
        digest, so only the times tell that the delete is older than what the tag now is."""
        again = registry.push("t1/app", "v1", content="again")
        push(session, registry, "t1/app", again["digest"], tag="v1", pushed_at=at(20))
        assert delete(session, registry, "t1/app", tag="v1", occurred_at=at(10)) == []
        assert tags_of(session, "t1/app") == {"v1": again["digest"]}

    def test_a_late_manifest_delete_spares_a_tag_re_pushed_on_that_digest(self, session, registry):
        image = registry.add_image("t1/app", "same")
        push(session, registry, "t1/app", image["digest"], tag="old", pushed_at=at(5))
        push(session, registry, "t1/app", image["digest"], tag="new", pushed_at=at(20))
        outgoing = delete(session, registry, "t1/app", digest=image["digest"], occurred_at=at(10))
        assert [p["tag"] for _, p in outgoing] == ["old"]
        assert tags_of(session, "t1/app") == {"new": image["digest"]}
        assert session.scalars(sa.select(Manifest.digest)).all() == [image["digest"]]

    def test_a_late_repository_delete_spares_tags_pushed_after_it(self, session, registry):
        a, b = registry.add_image("t1/app", "a"), registry.add_image("t1/app", "b")
        push(session, registry, "t1/app", a["digest"], tag="before", pushed_at=at(5))
        push(session, registry, "t1/app", b["digest"], tag="after", pushed_at=at(20))
        outgoing = delete(session, registry, "t1/app", occurred_at=at(10))
        assert [p["tag"] for _, p in outgoing] == ["before"]
        assert tags_of(session, "t1/app") == {"after": b["digest"]}

    @pytest.mark.parametrize("target", [dict(tag="gone"), dict(digest="sha256:" + "f" * 64), {}])
    def test_deleting_what_is_gone_is_a_no_op(self, session, registry, target):
        assert delete(session, registry, "t1/nothing", **target) == []
        assert session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent)) == 1


class TestUnusableEvents:
    def test_manifest_gone_from_the_registry_is_not_in_registry(self, session, registry):
        with pytest.raises(NotInRegistry):
            indexing.record_push(session, registry, pushed("t1/app", "sha256:" + "a" * 64, tag="v1"))

    def test_registry_away_is_registry_unavailable_and_changes_nothing(self, session, registry):
        image = registry.add_image("t1/app")
        registry.unavailable = True
        with pytest.raises(RegistryUnavailable):
            indexing.record_push(session, registry, pushed("t1/app", image["digest"], tag="v1"))
        session.rollback()
        assert session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent)) == 0

    def test_body_not_matching_its_digest_is_unusable(self, session, registry):
        image = registry.add_image("t1/app")
        content_type, body = registry.manifests["t1/app", image["digest"]]
        registry.manifests["t1/app", image["digest"]] = (content_type, body + b" ")
        with pytest.raises(UnusableManifest, match="digest"):
            indexing.record_push(session, registry, pushed("t1/app", image["digest"], tag="v1"))

    def test_a_blob_is_not_taken_for_a_manifest(self, session, registry):
        event = pushed("t1/app", "sha256:" + "a" * 64, media_type="application/octet-stream")
        with pytest.raises(UnusableManifest, match="'application/octet-stream' is not an image manifest"):
            indexing.record_push(session, registry, event)
        assert registry.calls == []

    @pytest.mark.parametrize("repository", ["T1/App", "t1/app/extra", "t1/-app"])
    def test_repository_breaking_the_naming_rules_is_an_invalid_reference(self, session, registry, repository):
        with pytest.raises(InvalidReference):
            indexing.record_push(session, registry, pushed(repository, "sha256:" + "a" * 64, tag="v1"))

    def test_set_aside_is_stored_once_per_event(self, session):
        event_id = str(uuid.uuid4())
        assert indexing.set_aside(
            session, "catalog", "NotInRegistry: gone", {"x": 1}, action="push", event_id=event_id, now=T0
        )
        assert not indexing.set_aside(session, "catalog", "NotInRegistry: gone", {"x": 1}, event_id=event_id)
        session.commit()
        [row] = session.scalars(sa.select(SetAsideEvent)).all()
        assert (row.source, row.reason, row.payload, row.action, row.at) == (
            "catalog",
            "NotInRegistry: gone",
            {"x": 1},
            "push",
            T0,
        )

    def test_webhook_set_aside_event_is_kept(self, session):
        payload = make_event(
            EventSetAside,
            source="webhook",
            reason="not a manifest",
            source_event_id="r-1",
            action="push",
            repository="t1/app",
            payload={"id": "r-1"},
        )
        event = load_event(EventSetAside, payload)
        indexing.record_set_aside(session, event)
        indexing.record_set_aside(session, event)
        session.commit()
        [row] = session.scalars(sa.select(SetAsideEvent)).all()
        assert (row.source, row.reason, row.source_event_id, row.repository, row.payload, row.event_id) == (
            "webhook",
            "not a manifest",
            "r-1",
            "t1/app",
            {"id": "r-1"},
            payload["event_id"],
        )


class TestOversizedConfig:
    def test_a_manifest_naming_a_huge_config_is_unusable_without_fetching_it(self, session, registry):
        image = registry.add_image("t1/app", "x")
        content_type, body = registry.manifests["t1/app", image["digest"]]
        manifest = json.loads(body)
        manifest["config"]["size"] = indexing.MAX_CONFIG_BYTES + 1
        digest = registry.add_manifest("t1/app", content_type, manifest)
        with pytest.raises(UnusableManifest, match="more than the 4194304 an image config may have"):
            indexing.record_push(session, registry, pushed("t1/app", digest, tag="v1"))
        assert ("get_blob", "t1/app", image["image_id"]) not in registry.calls


class TestSetAsideStorage:
    """What cannot be used is often what cannot be stored as it is: storing it must not fail, or the
    event would be retried for ever instead of set aside."""

    def test_overlong_fields_nul_characters_and_nan_are_stored_safely(self, session):
        payload = {"id": "x" * 300, "action": "push\x00", "target": {"size": float("nan")}}
        assert indexing.set_aside(
            session,
            source="webhook",
            reason="bad\x00reason",
            payload=payload,
            source_event_id="x" * 300,
            action="a" * 100,
            repository="t1/app\x00",
        )
        session.commit()
        row = session.scalars(sa.select(SetAsideEvent)).one()
        assert (len(row.source_event_id), len(row.action)) == (255, 64)
        assert row.repository == "t1/app\\x00"
        assert row.reason == "bad\\x00reason"
        assert row.payload["unstorable_payload"].startswith("{'id': 'xxx")
        assert "nan" in row.payload["unstorable_payload"]

    def test_a_json_payload_keeps_its_shape_with_nul_characters_escaped(self, session):
        payload = {"events": [{"id": "e\x00", "n": 1, "ok": True, "none": None}], "k\x00": "v"}
        indexing.set_aside(session, source="webhook", reason="r", payload=payload)
        session.commit()
        row = session.scalars(sa.select(SetAsideEvent)).one()
        assert row.payload == {"events": [{"id": "e\\x00", "n": 1, "ok": True, "none": None}], "k\\x00": "v"}
