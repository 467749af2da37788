"""The same ``image_pushed`` delivered twice at once (issue 13), on the real broker, registry and
both databases: one history row, one ``tag_indexed``, the tag on the pushed digest.

A redelivery after a lost ack, or the webhook's retry of a notification it already handed on,
puts a second copy of an event in the catalog's queue; with several workers the two copies are
handled together. Each copy is dispatched as the webhook dispatches (``event_dispatcher``),
without waiting for the first; ``PairBarrier`` then holds each copy's worker until the other copy
has a worker too (``tests.support.pairs``), so every pair is in flight at the same moment before
either touches the database (the barrier only waits: what each worker does is the catalog's own
code).
"""

import collections
import uuid

import pytest
import sqlalchemy as sa
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from catalog.models import OutboxEvent, TagHistory
from catalog.service import CatalogService
from shared.contracts.events import CATALOG, IMAGE_PUSHED, TAG_INDEXED, WEBHOOK
from shared.runtime import db
from tests.integration.catalog.conftest import CREATED, WAIT
from tests.support import push_image, wait_until
from tests.support.pairs import COPIES, PairBarrier, barrier_of

EVENTS = 10  # distinct events, each delivered twice


class PairedCatalog(CatalogService):
    """The catalog service as it is, plus the test's barrier (the same name, queues and handlers)."""

    pairs = PairBarrier("handle_image_pushed")


@pytest.fixture
def catalog(container_factory, catalog_config, observed):
    container = container_factory(PairedCatalog, catalog_config)
    container.start()
    return container


def drain_observer(rabbit_config, observed):
    """Wait until the observer has taken every ``tag_indexed`` published so far: it has one worker
    and one queue, so a marker sent now arrives after all of them."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    event_dispatcher(rabbit_config)(CATALOG, TAG_INDEXED, {"event_id": str(uuid.uuid4()), "tag": marker})
    wait_until(lambda: any(p.get("tag") == marker for p in observed.of(TAG_INDEXED)), timeout=WAIT, what=marker)


class TestSameEventTwiceAtOnce:
    def test_each_event_is_indexed_once_and_announced_once(
        self, registry, catalog, webhook, observed, rpc, rabbit_config, catalog_db_url, tenant
    ):
        repository = f"{tenant}/twice"
        images = [
            push_image(registry.url, repository, f"v{i}", content=f"{tenant}-{i}".encode(), created=CREATED)
            for i in range(EVENTS)
        ]
        payloads = [webhook.pushed(image) for image in images]
        ours = {p["event_id"] for p in payloads}
        handled, errors = collections.Counter(), []

        def every_copy_handled(worker_ctx, result, exc_info):
            for i, payload in enumerate(worker_ctx.args[0]):  # the batch, one outcome each
                event_id = payload["event_id"]
                if event_id in ours:
                    handled[event_id] += 1
                    outcome = exc_info[1] if exc_info else result[i]
                    if outcome is not None:
                        errors.append((event_id, outcome))
            return sum(handled.values()) >= EVENTS * COPIES

        with entrypoint_waiter(catalog, "handle_image_pushed", callback=every_copy_handled, timeout=30):
            for payload in payloads:
                for _ in range(COPIES):  # the second copy goes out without waiting for the first
                    webhook.dispatch(WEBHOOK, IMAGE_PUSHED, payload)

        assert errors == []
        pairs = barrier_of(catalog)
        overlapping = sum(1 for e in ours if pairs.overlapped(e))

        engine = db.create_engine(catalog_db_url)
        try:
            # Every event's tag_indexed is sent (none left in the outbox for the relay) ...
            wait_until(
                lambda: _count(engine, sa.select(sa.func.count()).select_from(OutboxEvent)) == 0,
                timeout=WAIT,
                what="an empty outbox",
            )
            rows = dict(
                _rows(
                    engine,
                    sa.select(TagHistory.event_id, sa.func.count())
                    .where(TagHistory.event_id.in_(ours))
                    .group_by(TagHistory.event_id),
                )
            )
        finally:
            engine.dispose()
        # ... and the observer has taken every one published.
        drain_observer(rabbit_config, observed)
        indexed = collections.Counter(p["tag"] for p in observed.of(TAG_INDEXED) if p.get("repository") == repository)
        listed = {t["tag"]: t["digest"] for t in rpc.list_tags(tenant, repository, page_size=50)["items"]}

        print(
            f"events sent={len(payloads)} copies each={COPIES} deliveries={sum(handled.values())} "
            f"pairs in flight together={overlapping} history rows={sum(rows.values())} "
            f"tag_indexed={sum(indexed.values())}"
        )
        assert handled == dict.fromkeys(ours, COPIES)
        assert pairs.met == dict.fromkeys(ours, True), "a copy did not meet its twin: the pair was not concurrent"
        assert overlapping == EVENTS
        assert rows == dict.fromkeys(ours, 1)
        assert indexed == {image["tag"]: 1 for image in images}
        assert listed == {image["tag"]: image["digest"] for image in images}


def _count(engine, query):
    with engine.connect() as conn:
        return conn.scalar(query)


def _rows(engine, query):
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(query)]
