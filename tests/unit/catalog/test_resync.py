"""Reconciliation passes against the fake registry: what a pass adds, moves, marks and removes,
and how it yields to events that land while it runs."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import indexing, resync
from catalog.models import Manifest, MissingTag, OutboxEvent, Repository, ResyncLock, ResyncPass, Tag, TagHistory
from shared.contracts.errors import Conflict, NotFound
from shared.contracts.events import TAG_INDEXED, TAG_REMOVED, TagIndexed, load_event
from tests.unit.catalog.conftest import deleted, pushed


@pytest.fixture
def transaction(session):
    """``work(session)`` in a session of its own, committed: what the service's ``_transaction`` does."""
    engine = session.get_bind()

    def run(work):
        with Session(engine) as own:
            result = work(own)
            own.commit()
            return result

    return run


class Passes:
    """Runs passes as the service does, and keeps every event they hand over for dispatch."""

    def __init__(self, transaction, registry):
        self.transaction = transaction
        self.registry = registry
        self.sent = []

    def run(self, namespace=None, page_size=100, cancelled=None, **options):
        pass_id = self.transaction(lambda session: resync.start_pass(session, namespace, resync.RPC))
        return resync.Pass(
            pass_id,
            self.transaction,
            self.registry,
            self.sent.extend,
            page_size=page_size,
            cancelled=cancelled,
            **options,
        ).run()

    def of(self, event_type):
        return [payload for kind, payload in self.sent if kind == event_type]


@pytest.fixture
def passes(transaction, registry):
    return Passes(transaction, registry)


def index(transaction, registry, repository, tag, digest, actor=None):
    """The webhook's path: an ``image_pushed`` applied now (a notification that was not lost)."""
    return transaction(
        lambda session: indexing.record_push(
            session, registry, pushed(repository, digest, tag=tag, actor=actor, pushed_at=datetime.now(UTC))
        )
    )


def delete(transaction, registry, repository, tag):
    return transaction(lambda session: indexing.record_delete(session, registry, deleted(repository, tag=tag)))


def tags_of(session, repository):
    session.expire_all()
    namespace, name = repository.split("/")
    return dict(
        session.execute(
            sa.select(Tag.name, Manifest.digest)
            .join(Tag.manifest)
            .join(Repository, Tag.repository_id == Repository.id)
            .where(Repository.namespace == namespace, Repository.name == name)
        ).all()
    )


def entries(report, name):
    return sorted((e["repository"], e["tag"], e.get("digest")) for e in report[name])


def during_pass(registry, call, action):
    """Run ``action()`` once, when the pass makes the registry call ``call``: an event landing mid-pass."""

    def hook(made):
        if made == call:
            registry.on_call = None
            action()

    registry.on_call = hook


class TestAddingWhatIsMissing:
    def test_a_tag_pushed_without_notification_is_indexed_with_its_digest(self, passes, registry, session):
        image = registry.push("t1/app", "v1", author="builder@example.com")

        report = passes.run()

        assert report["status"] == "finished"
        assert entries(report, "added") == [("t1/app", "v1", image["digest"])]
        assert tags_of(session, "t1/app") == {"v1": image["digest"]}
        manifest = session.scalar(sa.select(Manifest))
        assert (manifest.image_id, manifest.creator, manifest.layers) == (
            image["image_id"],
            "builder@example.com",
            image["layers"],
        )
        assert [(h.tag, h.action, h.digest, h.actor) for h in session.scalars(sa.select(TagHistory))] == [
            ("v1", "pushed", image["digest"], None)
        ]

    def test_tag_indexed_goes_through_the_outbox_with_a_deterministic_id(self, passes, registry, session):
        image = registry.push("t1/java_ownbase", "1.0")

        passes.run()

        [payload] = passes.of(TAG_INDEXED)
        loaded = load_event(TagIndexed, payload)
        assert (
            loaded["repository"],
            loaded["tag"],
            loaded["digest"],
            loaded["previous_digest"],
            loaded["image_id"],
            loaded["is_ownbase"],
            loaded["actor"],
        ) == ("t1/java_ownbase", "1.0", image["digest"], None, image["image_id"], True, None)
        assert loaded["trigger"] == "resync"
        change = resync.resync_event_id("t1/java_ownbase", "1.0", image["digest"], 0)
        assert payload["event_id"] == resync.derived_event_id(change, TAG_INDEXED)
        assert session.scalars(sa.select(OutboxEvent.event_id)).all() == [payload["event_id"]]
        assert session.scalar(sa.select(TagHistory.event_id)) == change

    def test_a_second_pass_finds_nothing_to_do_and_emits_nothing(self, passes, registry):
        registry.push("t1/app", "v1")
        registry.push("t1/app", "v2")
        passes.run()

        again = passes.run()

        assert (again["counts"], again["tags_scanned"]) == (
            {"added": 0, "moved": 0, "removed": 0, "pending_removal": 0, "skipped": 0},
            2,
        )
        assert len(passes.of(TAG_INDEXED)) == 2

    def test_a_tag_already_indexed_by_its_notification_is_left_alone(self, passes, registry, transaction, session):
        image = registry.push("t1/app", "v1")
        index(transaction, registry, "t1/app", "v1", image["digest"], actor="alice")

        report = passes.run()

        assert report["counts"]["added"] == 0
        assert passes.sent == []
        assert session.scalar(sa.select(Manifest.creator)) == "alice"

    def test_a_multi_arch_index_is_indexed_as_the_tag(self, passes, registry, session):
        children = [
            registry.add_image("t1/multi", content=arch, architecture=arch) | {"architecture": arch}
            for arch in ("amd64", "arm64")
        ]
        digest = registry.add_index("t1/multi", children)
        registry.tags["t1/multi"] = {"1.0": digest}

        report = passes.run()

        assert entries(report, "added") == [("t1/multi", "1.0", digest)]
        assert session.scalar(sa.select(Manifest.platforms).where(Manifest.digest == digest)) == [
            {"digest": c["digest"], "architecture": c["architecture"], "os": "linux", "variant": None} for c in children
        ]


class TestMovingWhatChanged:
    def test_a_tag_moved_without_notification_follows_the_registry(self, passes, registry, transaction, session):
        old = registry.push("t1/app", "latest", content="old")
        index(transaction, registry, "t1/app", "latest", old["digest"])
        new = registry.push("t1/app", "latest", content="new")

        report = passes.run()

        assert report["moved"] == [
            {"repository": "t1/app", "tag": "latest", "digest": new["digest"], "previous_digest": old["digest"]}
        ]
        assert tags_of(session, "t1/app") == {"latest": new["digest"]}
        [payload] = passes.of(TAG_INDEXED)
        assert (payload["digest"], payload["previous_digest"]) == (new["digest"], old["digest"])

    def test_a_late_notification_of_the_older_push_does_not_move_it_back(self, passes, registry, transaction, session):
        old = registry.push("t1/app", "latest", content="old")
        new = registry.push("t1/app", "latest", content="new")
        passes.run()

        late = pushed("t1/app", old["digest"], tag="latest", pushed_at=datetime.now(UTC) - timedelta(hours=1))
        assert transaction(lambda s: indexing.record_push(s, registry, late)) == []
        assert tags_of(session, "t1/app") == {"latest": new["digest"]}


class TestRemovingWhatVanished:
    def test_a_vanished_tag_is_only_pending_after_the_first_pass(self, passes, registry, transaction, session):
        keep = registry.push("t1/app", "v1")
        gone = registry.push("t1/app", "v2")
        index(transaction, registry, "t1/app", "v1", keep["digest"])
        index(transaction, registry, "t1/app", "v2", gone["digest"])
        registry.untag("t1/app", "v2")

        first = passes.run()

        assert first["pending_removal"] == [
            {"repository": "t1/app", "tag": "v2", "digest": gone["digest"], "missing_since_pass": first["pass_id"]}
        ]
        assert first["removed"] == []
        assert tags_of(session, "t1/app") == {"v1": keep["digest"], "v2": gone["digest"]}
        assert passes.of(TAG_REMOVED) == []

    def test_the_second_consecutive_miss_removes_it(self, passes, registry, transaction, session):
        gone = registry.push("t1/app", "v2")
        index(transaction, registry, "t1/app", "v2", gone["digest"])
        registry.untag("t1/app", "v2")
        passes.run()

        second = passes.run()

        assert entries(second, "removed") == [("t1/app", "v2", gone["digest"])]
        assert second["pending_removal"] == []
        assert tags_of(session, "t1/app") == {}
        [payload] = passes.of(TAG_REMOVED)
        assert (payload["repository"], payload["tag"], payload["digest"]) == ("t1/app", "v2", gone["digest"])
        assert session.scalar(sa.select(sa.func.count()).select_from(MissingTag)) == 0
        assert session.scalar(sa.select(TagHistory.action).order_by(TagHistory.id.desc()).limit(1)) == "removed"

    def test_a_tag_back_in_the_registry_between_passes_starts_counting_again(
        self, passes, registry, transaction, session
    ):
        image = registry.push("t1/app", "v1")
        index(transaction, registry, "t1/app", "v1", image["digest"])
        registry.untag("t1/app", "v1")
        passes.run()
        registry.tags["t1/app"]["v1"] = image["digest"]  # back (a registry restored from a backup)
        passes.run()
        registry.untag("t1/app", "v1")

        third = passes.run()

        assert entries(third, "pending_removal") == [("t1/app", "v1", image["digest"])]
        assert tags_of(session, "t1/app") == {"v1": image["digest"]}

    def test_a_repository_the_registry_no_longer_lists_loses_its_tags_in_two_passes(
        self, passes, registry, transaction, session
    ):
        image = registry.push("t1/old", "v1")
        index(transaction, registry, "t1/old", "v1", image["digest"])
        del registry.tags["t1/old"]

        first, second = passes.run(), passes.run()

        assert (first["repositories_total"], first["repositories_scanned"]) == (1, 1)
        assert entries(first, "pending_removal") == [("t1/old", "v1", image["digest"])]
        assert entries(second, "removed") == [("t1/old", "v1", image["digest"])]
        assert session.scalar(sa.select(Repository.name)) == "old"  # repositories stay, as after a delete

    def test_a_tag_moved_by_an_event_between_the_passes_starts_counting_again(
        self, passes, registry, transaction, session
    ):
        old = registry.push("t1/app", "v1", content="old")
        index(transaction, registry, "t1/app", "v1", old["digest"])
        registry.untag("t1/app", "v1")
        passes.run()
        new = registry.add_image("t1/app", content="new")
        index(transaction, registry, "t1/app", "v1", new["digest"])  # its registry tag is deleted again since

        second = passes.run()

        assert (second["removed"], second["skipped"]) == ([], [])
        assert entries(second, "pending_removal") == [("t1/app", "v1", new["digest"])]
        assert tags_of(session, "t1/app") == {"v1": new["digest"]}

    def test_a_pass_over_another_namespace_in_between_does_not_break_the_run(
        self, passes, registry, transaction, session
    ):
        image = registry.push("t1/app", "v1")
        registry.push("t2/app", "v1")
        index(transaction, registry, "t1/app", "v1", image["digest"])
        registry.untag("t1/app", "v1")
        passes.run(namespace="t1")
        passes.run(namespace="t2")

        third = passes.run(namespace="t1")

        assert entries(third, "removed") == [("t1/app", "v1", image["digest"])]


class TestRemovalGuard:
    """A registry that suddenly lists far fewer repositories than the catalogue holds is on the
    wrong (or an empty) storage: two passes must not empty the catalogue."""

    def catalogue_of(self, passes, registry, transaction, count):
        images = {}
        for n in range(count):
            images[f"t1/app{n:02d}"] = registry.push(f"t1/app{n:02d}", "v1")
            index(transaction, registry, f"t1/app{n:02d}", "v1", images[f"t1/app{n:02d}"]["digest"])
        return images

    def test_more_than_half_missing_removes_and_marks_nothing_but_still_adds(
        self, passes, registry, transaction, session
    ):
        images = self.catalogue_of(passes, registry, transaction, 12)
        for n in range(7):
            del registry.tags[f"t1/app{n:02d}"]
        new = registry.push("t1/fresh", "v1")

        first, second = passes.run(), passes.run()

        for report, total in ((first, 12), (second, 13)):  # t1/fresh was added by the first
            assert (report["counts"]["removed"], report["counts"]["pending_removal"]) == (0, 0)
            [held] = [e for e in report["skipped"] if e["reason"].startswith("removals held")]
            assert held["reason"].startswith(f"removals held: 7 of the catalogue's {total} repositories are missing")
        assert entries(first, "added") == [("t1/fresh", "v1", new["digest"])]
        assert all(tags_of(session, name) == {"v1": image["digest"]} for name, image in images.items())

    def test_half_missing_is_removed_in_two_passes_as_usual(self, passes, registry, transaction, session):
        self.catalogue_of(passes, registry, transaction, 12)
        for n in range(6):
            del registry.tags[f"t1/app{n:02d}"]
        passes.run()
        second = passes.run()
        assert second["counts"]["removed"] == 6
        assert not [e for e in second["skipped"] if e["reason"].startswith("removals held")]

    def test_a_small_catalogue_may_be_emptied(self, passes, registry, transaction, session):
        self.catalogue_of(passes, registry, transaction, 9)
        registry.tags.clear()
        passes.run()
        assert passes.run()["counts"]["removed"] == 9

    def test_a_fraction_of_one_turns_the_guard_off(self, passes, registry, transaction, session):
        self.catalogue_of(passes, registry, transaction, 12)
        registry.tags.clear()
        passes.run(max_removal_fraction=1)
        assert passes.run(max_removal_fraction=1)["counts"]["removed"] == 12

    @pytest.mark.parametrize(
        "in_catalogue, missing, fraction, held",
        [
            (10, 6, 0.5, True),
            (10, 5, 0.5, False),
            (9, 9, 0.5, False),
            (100, 11, 0.1, True),
            (100, 100, 1.0, False),
        ],
    )
    def test_the_rule(self, in_catalogue, missing, fraction, held):
        assert (resync.removal_guard(in_catalogue, missing, fraction) is not None) is held


class TestEventsDuringThePass:
    def test_a_push_landing_before_the_removal_keeps_the_tag(self, passes, registry, transaction, session):
        old = registry.push("t1/app", "v1", content="old")
        index(transaction, registry, "t1/app", "v1", old["digest"])
        registry.untag("t1/app", "v1")
        passes.run()
        new = registry.add_image("t1/app", content="new")

        def push_v1():  # pushed again (and notified) just as the pass re-checks the tag to remove it
            registry.tags["t1/app"]["v1"] = new["digest"]
            index(transaction, registry, "t1/app", "v1", new["digest"])

        during_pass(registry, ("tag_digest", "t1/app", "v1"), push_v1)

        second = passes.run()

        assert second["removed"] == []
        assert tags_of(session, "t1/app") == {"v1": new["digest"]}
        assert passes.of(TAG_REMOVED) == []

    def test_a_push_registered_only_in_the_registry_before_the_removal_keeps_the_tag(
        self, passes, registry, transaction, session
    ):
        image = registry.push("t1/app", "v1")
        index(transaction, registry, "t1/app", "v1", image["digest"])
        registry.untag("t1/app", "v1")
        passes.run()
        during_pass(
            registry, ("tag_digest", "t1/app", "v1"), lambda: registry.tags["t1/app"].update(v1=image["digest"])
        )

        second = passes.run()

        assert [(s["tag"], s["reason"]) for s in second["skipped"]] == [("v1", "back in the registry")]
        assert tags_of(session, "t1/app") == {"v1": image["digest"]}
        assert session.scalar(sa.select(sa.func.count()).select_from(MissingTag)) == 0

    def test_a_delete_landing_before_the_write_is_not_undone(self, passes, registry, transaction, session):
        image = registry.push("t1/app", "v1")  # its notification was lost
        calls = []

        def hook(call):  # the second look at v1 is the re-check inside the write's transaction
            calls.append(call)
            if calls.count(("tag_digest", "t1/app", "v1")) == 2:
                registry.on_call = None
                registry.untag("t1/app", "v1")
                delete(transaction, registry, "t1/app", "v1")

        registry.on_call = hook

        report = passes.run()

        assert report["added"] == []
        assert [(s["tag"], s["reason"]) for s in report["skipped"]] == [
            ("v1", "changed in the registry during the pass")
        ]
        assert tags_of(session, "t1/app") == {}
        assert passes.of(TAG_INDEXED) == []
        assert image["digest"] not in list(registry.tags["t1/app"].values())

    def test_a_tag_deleted_by_an_event_during_the_pass_is_not_readded(self, passes, registry, transaction, session):
        old = registry.push("t1/app", "a", content="old")
        index(transaction, registry, "t1/app", "a", old["digest"])
        new = registry.push("t1/app", "a", content="new")  # moved: notification lost
        registry.push("t1/app", "b")
        # After the pass listed `a` on the new digest: a delete of `a` (notified), and a re-push of
        # the same image whose notification is still on its way.
        during_pass(registry, ("tag_digest", "t1/app", "b"), lambda: delete(transaction, registry, "t1/app", "a"))

        report = passes.run()

        assert [(s["tag"], s["reason"]) for s in report["skipped"]] == [("a", "changed by an event during the pass")]
        assert "a" not in tags_of(session, "t1/app")
        assert [p["tag"] for p in passes.of(TAG_INDEXED)] == ["b"]
        assert registry.tags["t1/app"]["a"] == new["digest"]  # the next pass (or the push's event) adds it

    def test_a_tag_moved_by_an_event_during_the_pass_is_left_to_the_event(self, passes, registry, transaction, session):
        first = registry.push("t1/app", "a", content="first")
        index(transaction, registry, "t1/app", "a", first["digest"])
        registry.push("t1/app", "a", content="second")  # moved: notification lost
        registry.push("t1/app", "b")
        third = registry.add_image("t1/app", content="third")

        def push_third():
            registry.tags["t1/app"]["a"] = third["digest"]
            index(transaction, registry, "t1/app", "a", third["digest"])

        during_pass(registry, ("tag_digest", "t1/app", "b"), push_third)

        report = passes.run()

        assert report["moved"] == []
        assert [(s["tag"], s["reason"]) for s in report["skipped"]] == [("a", "changed by an event during the pass")]
        assert tags_of(session, "t1/app")["a"] == third["digest"]

    def test_a_tag_created_by_an_event_during_the_pass_is_not_marked_missing(
        self, passes, registry, transaction, session
    ):
        registry.push("t1/app", "a")
        late = registry.add_image("t1/app", content="late")
        # Pushed after the pass listed the tags: the registry listing has no `late`, the catalogue has.
        during_pass(
            registry,
            ("tag_digest", "t1/app", "a"),
            lambda: (
                registry.tags["t1/app"].update(late=late["digest"]),
                index(transaction, registry, "t1/app", "late", late["digest"]),
            ),
        )

        report = passes.run()

        assert report["pending_removal"] == []
        assert tags_of(session, "t1/app")["late"] == late["digest"]
        assert session.scalar(sa.select(sa.func.count()).select_from(MissingTag)) == 0


class TestScope:
    def test_a_namespace_pass_looks_only_at_that_namespace(self, passes, registry, transaction, session):
        mine = registry.push("t1/app", "v1")
        registry.push("t2/app", "v1")
        registry.push("t10/app", "v1")
        theirs = registry.push("t2/old", "v1")
        index(transaction, registry, "t2/old", "v1", theirs["digest"])
        del registry.tags["t2/old"]

        report = passes.run(namespace="t1")

        assert (report["namespace"], report["repositories_total"], report["tags_scanned"]) == ("t1", 1, 1)
        assert entries(report, "added") == [("t1/app", "v1", mine["digest"])]
        assert report["pending_removal"] == []
        assert tags_of(session, "t2/app") == {}
        assert tags_of(session, "t2/old") == {"v1": theirs["digest"]}

    def test_every_page_of_the_catalog_and_of_the_tags_is_read(self, passes, registry, session):
        for number in range(5):
            for tag in ("v1", "v2", "v3"):
                registry.push(f"t1/app{number}", tag)

        report = passes.run(page_size=2)

        assert (report["repositories_total"], report["repositories_scanned"], report["tags_scanned"]) == (5, 5, 15)
        assert report["counts"]["added"] == 15
        assert [c for c in registry.calls if c[0] == "repository_page"] == [
            ("repository_page", "t1/app0"),
            ("repository_page", "t1/app2"),
            ("repository_page", "t1/app4"),
        ]
        assert [c for c in registry.calls if c[:2] == ("tag_page", "t1/app0")] == [
            ("tag_page", "t1/app0", "v1"),
            ("tag_page", "t1/app0", "v3"),
        ]
        assert all(len(tags_of(session, f"t1/app{number}")) == 3 for number in range(5))

    def test_names_the_catalogue_cannot_take_are_reported_not_indexed(self, passes, registry, session):
        registry.push("noslash", "v1")
        registry.push("a/b/c", "v1")
        registry.push("t1/app", "v1")

        report = passes.run()

        assert [(s["repository"], s["tag"]) for s in report["skipped"]] == [("a/b/c", None), ("noslash", None)]
        assert report["skipped"][1]["reason"].startswith("not indexed: repository 'noslash' must be")
        assert session.scalars(sa.select(Repository.name)).all() == ["app"]

    def test_a_tag_whose_manifest_cannot_be_read_is_skipped_and_the_rest_indexed(self, passes, registry, session):
        registry.push("t1/app", "v1")
        registry.tags["t1/app"]["broken"] = "sha256:" + "0" * 64  # listed, but its manifest is gone

        report = passes.run()

        assert [(s["tag"], s["reason"].split(":")[0]) for s in report["skipped"]] == [("broken", "NotInRegistry")]
        assert list(tags_of(session, "t1/app")) == ["v1"]


class TestOnePassAtATime:
    def test_a_second_pass_while_one_runs_is_a_conflict(self, transaction):
        first = transaction(lambda session: resync.start_pass(session, None, resync.RPC))

        with pytest.raises(Conflict, match=f"resync pass {first} \\(the whole registry\\) is running since"):
            transaction(lambda session: resync.start_pass(session, "t1", resync.RPC))

    def test_the_lock_is_free_again_once_a_pass_ends(self, passes, registry, transaction, session):
        passes.run()
        registry.unavailable = True
        failed = passes.run()
        registry.unavailable = False

        assert (failed["status"], failed["error"]) == (
            "failed",
            "RegistryUnavailable: registry http://fake unreachable",
        )
        assert passes.run()["status"] == "finished"
        assert session.scalar(sa.select(ResyncLock.pass_id)) is None

    def test_a_pass_silent_for_too_long_is_taken_over_and_marked_abandoned(self, transaction, session):
        long_ago = datetime.now(UTC) - resync.LOCK_STALE_AFTER - timedelta(seconds=1)
        dead = transaction(lambda s: resync.start_pass(s, None, resync.TIMER, now=long_ago))

        fresh = transaction(lambda s: resync.start_pass(s, None, resync.RPC))

        session.expire_all()
        assert session.get(ResyncPass, dead).status == "abandoned"
        assert session.get(ResyncPass, dead).error.endswith(f"taken over by pass {fresh}")
        assert session.get(ResyncLock, 1).pass_id == fresh

    def test_a_pass_whose_lock_was_taken_over_stops(self, passes, registry, transaction, session, monkeypatch):
        registry.push("t1/a", "v1")
        registry.push("t1/b", "v1")

        def take_over():
            transaction(
                lambda s: s.execute(
                    sa.update(ResyncLock).values(heartbeat_at=datetime.now(UTC) - resync.LOCK_STALE_AFTER * 2)
                )
            )
            transaction(lambda s: resync.start_pass(s, None, resync.RPC))

        during_pass(registry, ("tag_digest", "t1/a", "v1"), take_over)
        monkeypatch.setattr(resync.scan, "PROGRESS_EVERY", timedelta(0))  # save (and find the lock gone) at every step

        report = passes.run()

        assert report["status"] == "abandoned"
        assert tags_of(session, "t1/b") == {}

    def test_a_stopping_service_interrupts_the_pass_between_repositories(self, passes, registry, session):
        registry.push("t1/a", "v1")
        registry.push("t1/b", "v1")
        scanned = []

        report = passes.run(cancelled=lambda: scanned.append(1) or len(scanned) > 1)

        assert (report["status"], report["repositories_scanned"]) == ("interrupted", 1)
        assert report["error"] == "the catalog service stopped during the pass"
        assert session.scalar(sa.select(ResyncLock.pass_id)) is None


class TestPeriodicPass:
    def test_skipped_when_a_whole_pass_started_within_half_an_interval(self, passes, transaction):
        passes.run()
        assert transaction(lambda s: resync.start_periodic_pass(s, interval=300)) is None

    def test_runs_when_the_last_whole_pass_is_old_enough(self, transaction):
        long_ago = datetime.now(UTC) - timedelta(seconds=200)
        first = transaction(lambda s: resync.start_pass(s, None, resync.TIMER, now=long_ago))
        transaction(lambda s: s.execute(sa.update(ResyncLock).values(pass_id=None)))

        assert transaction(lambda s: resync.start_periodic_pass(s, interval=300)) == first + 1

    def test_skipped_quietly_while_a_pass_runs(self, transaction):
        transaction(lambda s: resync.start_pass(s, "t1", resync.RPC))
        assert transaction(lambda s: resync.start_periodic_pass(s, interval=300)) is None


class TestLookingAtPasses:
    def test_the_latest_pass_with_or_without_its_items(self, passes, registry, transaction):
        registry.push("t1/app", "v1")
        done = passes.run()

        latest = transaction(lambda s: resync.get_pass(s))
        summary = transaction(lambda s: resync.get_pass(s, done["pass_id"], items=False))

        assert latest == done
        assert (summary["counts"]["added"], summary["added"], summary["trigger"]) == (1, None, "rpc")
        assert summary["finished_at"] >= summary["started_at"]

    def test_unknown_pass_and_no_pass_yet_are_not_found(self, transaction):
        with pytest.raises(NotFound, match="no resync pass has run yet"):
            transaction(lambda s: resync.get_pass(s))
        with pytest.raises(NotFound, match="resync pass 7 not found"):
            transaction(lambda s: resync.get_pass(s, 7))


class TestEventIds:
    def test_the_same_repair_gets_the_same_id_and_a_later_one_another(self):
        same = resync.resync_event_id("t1/app", "v1", "sha256:" + "a" * 64, 0)
        assert same == resync.resync_event_id("t1/app", "v1", "sha256:" + "a" * 64, 0)
        assert same != resync.resync_event_id("t1/app", "v1", "sha256:" + "a" * 64, 3)

    def test_the_same_image_pushed_again_after_a_delete_is_added_again(self, passes, registry, transaction, session):
        image = registry.push("t1/app", "v1")
        passes.run()
        delete(transaction, registry, "t1/app", "v1")  # then pushed again, same content, notification lost

        report = passes.run()

        assert entries(report, "added") == [("t1/app", "v1", image["digest"])]
        assert len({p["event_id"] for p in passes.of(TAG_INDEXED)}) == 2
