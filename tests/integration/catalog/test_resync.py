"""Resync over RPC against a real registry whose notifications go nowhere (registry_factory points
them at a dead URL): what it adds, moves and removes, on SQLite and PostgreSQL."""

import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
import sqlalchemy as sa

from shared.contracts.errors import Conflict, InvalidRequest, NotFound
from shared.contracts.events import TAG_INDEXED, TAG_REMOVED
from shared.runtime import db
from tests.integration.catalog.conftest import CREATED, WAIT
from tests.support import delete_manifest, push_image, push_index, wait_until

BIG_REPOSITORIES = 120  # × 2 tags, listed RESYNC_PAGE_SIZE (25, conftest) at a time


def run_pass(rpc, namespace, timeout=60):
    """Start a pass as the CLI does, follow it with get_resync until it ends; its final report."""
    started = rpc.resync(namespace)
    assert (started["status"], started["namespace"], started["trigger"]) == ("running", namespace, "rpc")
    wait_until(
        lambda: rpc.get_resync(started["pass_id"], items=False)["status"] != "running",
        timeout=timeout,
        interval=0.1,
        what=f"resync pass {started['pass_id']} to end",
    )
    return rpc.get_resync(started["pass_id"])


def changes(report, name):
    return sorted((e["repository"], e["tag"], e["digest"]) for e in report[name])


def settle(observed, event_type, count):
    """The events of a kind once ``count`` arrived and a moment passed in which no more came."""
    observed.wait_for(event_type, count)
    time.sleep(0.5)
    return observed.of(event_type)


class TestAddingWhatNotificationsMissed:
    def test_images_pushed_without_notifications_are_indexed_with_their_digests(self, rpc, registry, tenant, observed):
        v1 = push_image(
            registry.url, f"{tenant}/app", "v1", content=b"1" + tenant.encode(), created=CREATED, author="builder"
        )
        v2 = push_image(registry.url, f"{tenant}/app", "v2", content=b"2" + tenant.encode(), created=CREATED)
        multi = push_index(registry.url, f"{tenant}/multi", "1.0", content=tenant.encode())

        report = run_pass(rpc, tenant)

        assert report["status"] == "finished"
        assert changes(report, "added") == sorted(
            [
                (f"{tenant}/app", "v1", v1["digest"]),
                (f"{tenant}/app", "v2", v2["digest"]),
                (f"{tenant}/multi", "1.0", multi["digest"]),
            ]
        )
        assert (report["repositories_total"], report["repositories_scanned"], report["tags_scanned"]) == (2, 2, 3)
        tag = rpc.get_tag(tenant, f"{tenant}/app", "v1")
        assert (tag["digest"], tag["image_id"], tag["creator"], tag["layers"]) == (
            v1["digest"],
            v1["image_id"],
            "builder",
            v1["layers"],
        )
        assert [p["architecture"] for p in rpc.get_tag(tenant, f"{tenant}/multi", "1.0")["platforms"]] == [
            "amd64",
            "arm64",
        ]

    def test_tag_indexed_is_emitted_once_however_many_passes(self, rpc, registry, tenant, observed):
        images = [
            push_image(registry.url, f"{tenant}/app", tag, content=tag.encode() + tenant.encode(), created=CREATED)
            for tag in ("v1", "v2")
        ]

        first = run_pass(rpc, tenant)
        second = run_pass(rpc, tenant)

        assert first["counts"]["added"] == 2
        assert second["counts"] == {"added": 0, "moved": 0, "removed": 0, "pending_removal": 0, "skipped": 0}
        indexed = settle(observed, TAG_INDEXED, 2)
        assert sorted((e["tag"], e["digest"], e["actor"]) for e in indexed) == [
            ("v1", images[0]["digest"], None),
            ("v2", images[1]["digest"], None),
        ]
        assert len({e["event_id"] for e in indexed}) == 2

    def test_a_tag_moved_without_notification_follows_the_registry(self, rpc, registry, webhook, tenant, observed):
        old = push_image(registry.url, f"{tenant}/app", "latest", content=b"old" + tenant.encode(), created=CREATED)
        webhook.push(old)  # this one was notified
        new = push_image(registry.url, f"{tenant}/app", "latest", content=b"new" + tenant.encode(), created=CREATED)

        report = run_pass(rpc, tenant)

        assert report["moved"] == [
            {"repository": f"{tenant}/app", "tag": "latest", "digest": new["digest"], "previous_digest": old["digest"]}
        ]
        assert rpc.get_tag(tenant, f"{tenant}/app", "latest")["digest"] == new["digest"]
        moved = settle(observed, TAG_INDEXED, 2)[-1]
        assert (moved["digest"], moved["previous_digest"]) == (new["digest"], old["digest"])


class TestRemovingWhatTheRegistryLost:
    def test_a_deleted_manifest_is_pending_after_one_pass_and_removed_after_two(
        self, rpc, registry, webhook, tenant, observed
    ):
        repository = f"{tenant}/app"
        keep = push_image(registry.url, repository, "v1", content=b"keep" + tenant.encode(), created=CREATED)
        gone = push_image(registry.url, repository, "v2", content=b"gone" + tenant.encode(), created=CREATED)
        webhook.push(keep)
        webhook.push(gone)
        delete_manifest(registry.url, repository, gone["digest"])  # its notification is lost

        first = run_pass(rpc, tenant)

        assert first["pending_removal"] == [
            {"repository": repository, "tag": "v2", "digest": gone["digest"], "missing_since_pass": first["pass_id"]}
        ]
        assert first["removed"] == []
        assert rpc.get_tag(tenant, repository, "v2")["digest"] == gone["digest"]

        second = run_pass(rpc, tenant)

        assert changes(second, "removed") == [(repository, "v2", gone["digest"])]
        assert second["pending_removal"] == []
        with pytest.raises(NotFound):
            rpc.get_tag(tenant, repository, "v2")
        assert [t["tag"] for t in rpc.list_tags(tenant, repository)["items"]] == ["v1"]
        [removed] = settle(observed, TAG_REMOVED, 1)
        assert (removed["repository"], removed["tag"], removed["digest"]) == (repository, "v2", gone["digest"])
        history = rpc.list_tag_history(tenant, repository, "v2")["items"]
        assert [h["action"] for h in history] == ["removed", "pushed"]


class TestStartingAndFollowing:
    def test_the_rpc_answers_at_once_and_get_resync_follows_the_pass(self, rpc, registry, tenant):
        push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode(), created=CREATED)

        started = rpc.resync(tenant)
        ended = wait_until(
            lambda: (lambda p: p["status"] != "running" and p)(rpc.get_resync(started["pass_id"])),
            timeout=WAIT,
            what="the pass to end",
        )

        assert started["added"] == [] and started["finished_at"] is None
        assert (ended["status"], ended["counts"]["added"]) == ("finished", 1)
        assert rpc.get_resync()["pass_id"] == started["pass_id"]  # the latest
        summary = rpc.get_resync(started["pass_id"], items=False)
        assert (summary["added"], summary["counts"]["added"]) == (None, 1)
        assert datetime.fromisoformat(summary["finished_at"]) <= datetime.now(UTC)

    def test_wait_runs_the_pass_in_the_call(self, rpc, registry, tenant):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode(), created=CREATED)

        report = rpc.resync(tenant, wait=True)

        assert (report["status"], changes(report, "added")) == ("finished", [(f"{tenant}/app", "v1", image["digest"])])

    def test_a_second_pass_while_one_runs_is_a_conflict(self, rpc, catalog_db_url, tenant):
        engine = db.create_engine(catalog_db_url)
        try:  # a pass that holds the lock and showed progress just now (as a running one does)
            with engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "INSERT INTO resync_passes (id, namespace, trigger, status, started_at, repositories_scanned, "
                        "tags_scanned, report) VALUES (41, NULL, 'timer', 'running', :now, 0, 0, '{}')"
                    ),
                    {"now": datetime.now(UTC).replace(tzinfo=None)},
                )
                connection.execute(
                    sa.text("UPDATE resync_lock SET pass_id = 41, heartbeat_at = :now"),
                    {"now": datetime.now(UTC).replace(tzinfo=None)},
                )
        finally:
            engine.dispose()

        with pytest.raises(
            Conflict,
            match=r"resync pass 41 \(the whole registry\) is running since .*"
            r"follow it with get_resync\(41\)",
        ):
            rpc.resync(tenant)

    def test_bad_arguments_are_invalid_requests(self, rpc):
        with pytest.raises(InvalidRequest, match="namespace 'T1' must be lower-case"):
            rpc.resync("T1")
        with pytest.raises(InvalidRequest, match="wait must be true or false"):
            rpc.resync(None, wait="yes")
        with pytest.raises(InvalidRequest, match="pass_id must be an integer"):
            rpc.get_resync("7")
        with pytest.raises(NotFound, match="resync pass 999 not found"):
            rpc.get_resync(999)


@pytest.fixture(scope="module")
def big_namespace(registry):
    """BIG_REPOSITORIES repositories of two tags each in a namespace of their own, pushed once for
    the module (both databases resync the same registry)."""
    namespace = "big" + uuid.uuid4().hex[:8]
    session = requests.Session()
    pushed = {}
    for number in range(BIG_REPOSITORIES):
        repository = f"{namespace}/app{number:03d}"
        for tag in ("v1", "latest"):  # same content: one digest, two tags
            image = push_image(
                registry.url, repository, tag, content=repository.encode(), created=CREATED, session=session
            )
            pushed[repository, tag] = image["digest"]
    return namespace, pushed


class TestALargeRegistry:
    def test_every_page_of_the_catalog_is_read_and_each_tag_indexed_once(
        self, rpc, big_namespace, observed, registry, tenant
    ):
        namespace, pushed = big_namespace
        push_image(registry.url, f"{tenant}/other", "v1", content=tenant.encode())  # another namespace: left alone

        report = run_pass(rpc, namespace)

        assert report["status"] == "finished", report["error"]
        assert (report["repositories_total"], report["repositories_scanned"], report["tags_scanned"]) == (
            BIG_REPOSITORIES,
            BIG_REPOSITORIES,
            2 * BIG_REPOSITORIES,
        )
        assert {(e["repository"], e["tag"]): e["digest"] for e in report["added"]} == pushed
        listed = rpc.list_repositories(namespace, page_size=200)
        assert listed["total"] == BIG_REPOSITORIES
        assert all(r["tag_count"] == 2 for r in listed["items"])
        assert len({e["event_id"] for e in settle(observed, TAG_INDEXED, 2 * BIG_REPOSITORIES)}) == 2 * BIG_REPOSITORIES
        with pytest.raises(NotFound):
            rpc.get_repository(tenant, f"{tenant}/other")

        again = run_pass(rpc, namespace)

        assert again["counts"] == {"added": 0, "moved": 0, "removed": 0, "pending_removal": 0, "skipped": 0}
        assert len(observed.of(TAG_INDEXED)) == 2 * BIG_REPOSITORIES
