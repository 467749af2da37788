"""Fuzzed pushes all the way into the catalogue: the real webhook, on a real RabbitMQ vhost, feeds
the real catalog (SQLite and PostgreSQL, a real registry), and the catalogue must hold no wrong
entry (issue 6, "bad input").

hypothesis generates envelopes mixing real pushes (images that are in the registry, under
generated tags), the same images under hostile repository names and tags, and the mutated events
of ``test_fuzz``. After each envelope, once the catalog has processed every event the webhook
dispatched (each ``event_id`` is in ``processed_events``, or filed as a dead letter), the
catalogue is compared with a model: its repositories are exactly the real ones pushed so far, each
tag points at the digest of its latest push, every event the webhook set aside is stored as set
aside, and every push the catalog could not index is a dead letter with the reason. A hostile
name never becomes a repository.
"""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import example, given
from hypothesis import strategies as st

from tests.integration.catalog.conftest import (  # noqa: F401 (fixtures)
    auth_cert_file,
    catalog,
    catalog_config,
    catalog_db_url,
    observed,
    registry,
)
from tests.integration.webhook.test_fuzz import (
    HOSTILE_NAMES,
    HOSTILE_TAGS,
    NOTIFICATION_V1,
    PUSHED,
    SET_ASIDE,
    dispatched,  # noqa: F401
    fuzz_settings,
    hostile_text,
    post,
    registry_events,
    unseeded_vhost_names,  # noqa: F401  (autouse fixture: importing it is using it)
    valid_repository,
    valid_tags,
)
from tests.support import DOCKER_MANIFEST_V2, push_image, wait_until

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
WAIT = 20


@pytest.fixture
def real_images(registry):
    """Two images in the registry under repositories of a fresh tenant, and one in the library."""
    tenant = "t" + uuid.uuid4().hex[:10]
    images = [
        push_image(registry.url, f"{tenant}/app", "seed", content=tenant.encode() + b"1"),
        push_image(registry.url, f"{tenant}/base_ownbase", "seed", content=tenant.encode() + b"2"),
        push_image(registry.url, f"library/fuzz-{tenant}", "seed", content=tenant.encode() + b"3"),
    ]
    return [(image["repository"], image["digest"]) for image in images]


class Catalogue:
    """The catalog's database, read directly: what it holds is the point."""

    def __init__(self, url):
        self.engine = sa.create_engine(url)

    def rows(self, sql, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()

    def processed(self, event_ids):
        """Every one handled, or parked and filed by the desk (the catalog is its own desk)."""
        found = {row[0] for row in self.rows("SELECT event_id FROM processed_events")}
        return set(event_ids) <= found | set(self.dead_letters())

    def repositories(self):
        return {f"{ns}/{name}" for ns, name in self.rows("SELECT namespace, name FROM repositories")}

    def tags(self):
        return {
            (f"{ns}/{name}", tag): digest
            for ns, name, tag, digest in self.rows(
                "SELECT r.namespace, r.name, t.name, m.digest FROM tags t"
                " JOIN repositories r ON t.repository_id = r.id JOIN manifests m ON t.manifest_id = m.id"
            )
        }

    def set_aside(self):
        return dict(self.rows("SELECT event_id, source FROM set_aside_events"))

    def dead_letters(self):
        return dict(self.rows("SELECT event_id, reason FROM dead_letters"))


@pytest.fixture
def catalogue(catalog_db_url):
    db = Catalogue(catalog_db_url)
    yield db
    db.engine.dispose()


# Who pushed, as the registry's auth names them: anything, the odd and the overlong included.
ODD_ACTORS = ["a" * 300, "al\x00ice", "\u00e9ve", "bob\ud800", "o'brien; DROP TABLE tags", " ", "\U0001f600" * 100]
actors = st.none() | st.text(max_size=12) | st.sampled_from(ODD_ACTORS)


def envelope_parts(real):
    """Each part: ("real", image index, tag), ("hostile", image index, name, tag) or ("fuzz", event)."""
    index = st.integers(0, len(real) - 1)
    return st.lists(
        st.one_of(
            st.tuples(st.just("real"), index, valid_tags, actors),
            st.tuples(
                st.just("hostile"),
                index,
                hostile_text | st.sampled_from(HOSTILE_NAMES),
                valid_tags | st.sampled_from(HOSTILE_TAGS),
            ),
            st.tuples(st.just("fuzz"), registry_events()),
        ),
        min_size=1,
        max_size=6,
    )


@pytest.mark.timeout(240)
def test_fuzzed_pushes_leave_no_wrong_entry_in_the_catalogue(
    webhook,
    dispatched,
    catalog,
    catalogue,
    real_images,
):
    real_repositories = {repository for repository, _ in real_images}
    expected_tags = {}  # (repository, tag) -> digest of its latest push
    clock = iter(range(1, 10**9))  # every push gets a later time than the one before
    stats = {"events": 0, "indexed": 0, "set_aside_by_webhook": 0, "dead_lettered_by_catalog": 0}

    def push_event(repository, digest, tag, actor=None):
        at = (BASE_TIME + timedelta(seconds=next(clock))).isoformat()
        return {
            "id": str(uuid.uuid4()),
            "timestamp": at,
            "action": "push",
            "actor": {"name": actor},
            "target": {
                "repository": repository,
                "digest": digest,
                "tag": tag,
                "mediaType": DOCKER_MANIFEST_V2,
                "size": 500,
            },
        }

    @fuzz_settings(40)
    @given(parts=envelope_parts(real_images))
    @example(parts=[("real", 0, f"odd-actor-{i}", actor) for i, actor in enumerate(ODD_ACTORS)])
    def run(parts):
        events, real_pushes = [], {}
        for part in parts:
            if part[0] == "real":
                (repository, digest), tag = real_images[part[1]], part[2]
                events.append(push_event(repository, digest, tag, part[3]))
                real_pushes[(repository, tag)] = digest
            elif part[0] == "hostile":
                (_, digest), name, tag = real_images[part[1]], part[2], part[3]
                events.append(push_event(name, digest, tag))
            else:
                events.append(part[1])
        dispatched.take_all()
        resp = post(webhook, json.dumps({"events": events}).encode(), NOTIFICATION_V1)
        assert resp.status_code == 200, resp.text
        published = dispatched.take_all()
        wait_until(
            lambda: catalogue.processed(p["event_id"] for _, p in published),
            timeout=WAIT,
            what="the catalog to process every event the webhook dispatched",
        )
        for event in events:  # a real push under a valid name that the webhook took is now expected
            target = event.get("target") if isinstance(event.get("target"), dict) else {}
            key = (target.get("repository"), target.get("tag"))
            if key in real_pushes and any(p["source_event_id"] == event["id"] for k, p in published if k == PUSHED):
                expected_tags[key] = real_pushes[key]

        repositories = catalogue.repositories()
        assert all(valid_repository(r) for r in repositories), repositories
        assert repositories == {r for r, _ in expected_tags}, "a repository nobody pushed a real image to"
        assert repositories <= real_repositories
        assert catalogue.tags() == expected_tags
        set_aside, dead = catalogue.set_aside(), catalogue.dead_letters()
        stats["events"] += len(published)
        for kind, payload in published:
            if kind == SET_ASIDE:  # kept for operators, as the webhook sent it
                assert set_aside.get(payload["event_id"]) == "webhook", payload
                stats["set_aside_by_webhook"] += 1
            elif kind == PUSHED and (payload["repository"], payload["digest"]) not in real_images:
                assert dead.get(payload["event_id"]) == "rejected", payload  # not in the registry
                stats["dead_lettered_by_catalog"] += 1
            elif kind == PUSHED and payload["tag"] is not None:
                stats["indexed"] += 1

    run()
    print(f"\n[fuzz] catalogue fed by the webhook: {stats}, {len(expected_tags)} tags in the catalogue")
    assert stats["indexed"] and stats["set_aside_by_webhook"] and stats["dead_lettered_by_catalog"]
    health = webhook.health()
    assert health.status_code == 200
