"""A pass reads the registry ``concurrency`` requests at a time and writes added tags in batches:
every tag still gets its own result, and a batch still yields to events and to a taken-over lock."""

import eventlet
import sqlalchemy as sa

from catalog.models import OutboxEvent, TagHistory
from shared.contracts.events import TAG_INDEXED
from tests.unit.catalog.test_resync import (  # noqa: F401  fixtures
    during_pass,
    entries,
    index,
    passes,
    tags_of,
    transaction,
)


class Sent(list):
    """The events handed over for dispatch, and how many at each call."""

    def __init__(self):
        super().__init__()
        self.sends = []

    def extend(self, outgoing):
        self.sends.append(len(outgoing))
        super().extend(outgoing)


def push_many(registry, repositories, tags):
    expected = {}
    for r in range(repositories):
        for t in range(tags):
            repository, tag = f"t{r % 3}/app{r:03d}", f"v{t}"
            expected[repository, tag] = registry.push(repository, tag)["digest"]
    return expected


class TestBatches:
    def test_a_first_pass_adds_every_tag_in_batches_each_with_its_own_result(self, passes, registry, session):
        expected = push_many(registry, 30, 9)  # 270 tags: more than a batch, more than a chunk's repositories
        passes.sent = Sent()

        report = passes.run()

        assert report["status"] == "finished"
        assert report["counts"] == {"added": 270, "moved": 0, "removed": 0, "pending_removal": 0, "skipped": 0}
        assert entries(report, "added") == sorted((r, t, d) for (r, t), d in expected.items())
        assert (report["repositories_scanned"], report["tags_scanned"]) == (30, 270)
        for repository in {r for r, _ in expected}:
            assert tags_of(session, repository) == {t: d for (r, t), d in expected.items() if r == repository}
        indexed = [payload for kind, payload in passes.sent if kind == TAG_INDEXED]
        assert sorted((p["repository"], p["tag"]) for p in indexed) == sorted(expected)
        assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent)) == 270
        assert session.scalar(sa.select(sa.func.count()).select_from(TagHistory)) == 270
        assert max(passes.sent.sends) > 1  # several tags' events sent at once: written in one transaction
        assert len(passes.sent.sends) < 270

    def test_an_unusable_image_is_skipped_alone_and_the_rest_of_its_batch_is_added(self, passes, registry, session):
        registry.push("t1/a", "good")
        bad = registry.push("t1/a", "bad")
        registry.manifests["t1/a", bad["digest"]] = ("application/vnd.docker.distribution.manifest.v2+json", b"{")
        registry.push("t1/b", "good")

        report = passes.run()

        assert entries(report, "added") == [
            ("t1/a", "good", registry.tags["t1/a"]["good"]),
            ("t1/b", "good", registry.tags["t1/b"]["good"]),
        ]
        assert [(e["repository"], e["tag"]) for e in report["skipped"]] == [("t1/a", "bad")]
        assert "bad" not in tags_of(session, "t1/a")

    def test_a_tag_an_event_indexes_while_the_batch_rechecks_is_left_to_the_event(
        self, passes, registry, transaction, session
    ):
        registry.push("t1/a", "v1")
        registry.push("t1/a", "v2")
        newer = registry.add_image("t1/a", content="newer")["digest"]
        calls = []

        def hook(made):  # the second HEAD of v2 is the batch's re-check: a push moves it just before
            if made == ("tag_digest", "t1/a", "v2"):
                calls.append(made)
                if len(calls) == 2:
                    registry.on_call = None
                    registry.tags["t1/a"]["v2"] = newer
                    index(transaction, registry, "t1/a", "v2", newer)

        registry.on_call = hook
        report = passes.run()

        assert entries(report, "added") == [("t1/a", "v1", registry.tags["t1/a"]["v1"])]
        skipped = [(e["tag"], e["reason"]) for e in report["skipped"]]
        assert skipped == [("v2", "changed in the registry during the pass")]
        assert tags_of(session, "t1/a")["v2"] == newer

    def test_registry_requests_run_concurrently_but_never_more_than_the_concurrency(self, passes, registry):
        push_many(registry, 12, 4)
        in_flight, most = [0], [0]
        tag_digest = registry.tag_digest

        def slow_tag_digest(repository, tag, manifest=False):
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            eventlet.sleep(0.001)
            in_flight[0] -= 1
            return tag_digest(repository, tag, manifest)

        registry.tag_digest = slow_tag_digest

        report = passes.run(concurrency=3)

        assert report["counts"]["added"] == 48
        assert most[0] == 3

    def test_a_second_pass_over_many_tags_changes_nothing(self, passes, registry):
        push_many(registry, 30, 9)
        passes.run()
        passes.sent.clear()

        report = passes.run()

        assert report["counts"] == {"added": 0, "moved": 0, "removed": 0, "pending_removal": 0, "skipped": 0}
        assert (report["repositories_scanned"], report["tags_scanned"]) == (30, 270)
        assert passes.sent == []
        assert not [c for c in registry.calls[-300:] if c[0] in ("get_manifest", "get_blob")]
