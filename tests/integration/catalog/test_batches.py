"""``image_pushed`` taken in batches (``shared.runtime.consumer.BatchConsumingHandler``,
``catalog.indexing.record_pushes``): an event that fails is settled on its own, the rest of its
batch is indexed; and two catalog instances on the same queues and database index every event
exactly once."""

import collections
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from nameko.testing.services import entrypoint_waiter

from catalog.exceptions import NotInRegistry
from catalog.models import ProcessedEvent, Tag, TagHistory
from catalog.service import CatalogService
from shared.contracts.events import IMAGE_PUSHED, TAG_INDEXED, WEBHOOK
from shared.runtime import db
from tests.integration.catalog.conftest import WAIT, Webhook
from tests.integration.catalog.test_events import filed
from tests.support import delete_manifest, push_image, wait_until


def _scalar(url, query):
    engine = db.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(query)
    finally:
        engine.dispose()


def _rows(url, query):
    engine = db.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]
    finally:
        engine.dispose()


@pytest.fixture
def webhook_dispatch(rabbit_config):
    """Sends events as the webhook does, with no catalog started yet (``Webhook.dispatch``)."""
    return Webhook(None, rabbit_config)


class Batches:
    """What each batch worker of ``handle_image_pushed`` took and how each of its events ended."""

    def __init__(self, event_ids):
        self.wanted = set(event_ids)
        self.taken = []  # [[event_id, ...]] per batch
        self.outcomes = {}  # event_id -> None or the exception

    def __call__(self, worker_ctx, result, exc_info):
        ids = [p["event_id"] for p in worker_ctx.args[0]]
        self.taken.append(ids)
        for i, event_id in enumerate(ids):
            self.outcomes.setdefault(event_id, exc_info[1] if exc_info else result[i])
        return self.wanted <= set(self.outcomes)


class TestOneEventFailsInABatch:
    def test_the_failed_event_is_parked_and_the_rest_of_its_batch_indexed(
        self, container_factory, catalog_config, observed, webhook_dispatch, registry, catalog_db_url, tenant
    ):
        repository = f"{tenant}/mixed"
        images = [push_image(registry.url, repository, f"v{i}", content=f"{tenant}-{i}".encode()) for i in range(6)]
        delete_manifest(registry.url, repository, images[3]["digest"])  # gone before the catalog fetches it
        payloads = [webhook_dispatch.pushed(image) for image in images]
        bad = payloads[3]["event_id"]
        for payload in payloads:  # queued before the catalog starts: they arrive together
            webhook_dispatch.dispatch(WEBHOOK, IMAGE_PUSHED, payload)

        catalog = container_factory(CatalogService, catalog_config)
        batches = Batches(p["event_id"] for p in payloads)
        with entrypoint_waiter(catalog, "handle_image_pushed", callback=batches, timeout=WAIT):
            catalog.start()

        assert any(bad in taken and len(taken) > 1 for taken in batches.taken), batches.taken  # the premise
        assert isinstance(batches.outcomes.pop(bad), NotInRegistry)
        assert set(batches.outcomes.values()) == {None}
        assert filed(catalog_db_url, bad).error.startswith("NotInRegistry:")
        indexed = [name for (name,) in _rows(catalog_db_url, sa.select(Tag.name))]  # this test's own database
        assert sorted(indexed) == sorted(image["tag"] for i, image in enumerate(images) if i != 3)
        processed = {row[0] for row in _rows(catalog_db_url, sa.select(ProcessedEvent.event_id))}
        assert processed == {p["event_id"] for p in payloads} - {bad}


EVENTS = 40
REPEATED = 10  # of them, sent twice


class Recorder(DependencyProvider):
    """Each ``handle_image_pushed`` worker's end, as ``(instance, [(event_id, outcome)])``."""

    ended: ClassVar[list[tuple[int, list[tuple[str, Any]]]]] = []

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        if worker_ctx.entrypoint.method_name != "handle_image_pushed":
            return
        ids = [p["event_id"] for p in worker_ctx.args[0]]
        outcomes = [exc_info[1]] * len(ids) if exc_info else result
        self.ended.append((id(self.container), list(zip(ids, outcomes, strict=True))))


class RecordedCatalog(CatalogService):
    recorder = Recorder()


class TestTwoCatalogInstances:
    def test_every_event_is_indexed_exactly_once(
        self, container_factory, catalog_config, observed, webhook_dispatch, registry, catalog_db_url, tenant
    ):
        Recorder.ended = []
        repositories = [f"{tenant}/app{i}" for i in range(4)]  # new: both instances race to make them
        images = [
            push_image(registry.url, repositories[i % 4], f"v{i}", content=f"{tenant}-{i}".encode())
            for i in range(EVENTS)
        ]
        payloads = [webhook_dispatch.pushed(image) for image in images]
        sent = payloads + payloads[:REPEATED]
        for _ in range(2):
            container_factory(RecordedCatalog, catalog_config).start()
        for payload in sent:
            webhook_dispatch.dispatch(WEBHOOK, IMAGE_PUSHED, payload)

        def ended():
            return [(instance, outcome) for instance, events in Recorder.ended for _, outcome in events]

        wait_until(lambda: len(ended()) >= len(sent), timeout=WAIT, what="every copy handled")
        assert [outcome for _, outcome in ended()] == [None] * len(sent)
        assert len({instance for instance, _ in ended()}) == 2, "one instance took no event: nothing was shared"
        ours = {p["event_id"] for p in payloads}
        history = dict(
            _rows(
                catalog_db_url,
                sa.select(TagHistory.event_id, sa.func.count())
                .where(TagHistory.event_id.in_(ours))
                .group_by(TagHistory.event_id),
            )
        )
        assert history == dict.fromkeys(ours, 1)
        assert _scalar(catalog_db_url, sa.select(sa.func.count()).select_from(Tag)) == EVENTS
        observed.wait_for(TAG_INDEXED, EVENTS)
        indexed = collections.Counter(p["tag"] for p in observed.of(TAG_INDEXED))
        assert indexed == {image["tag"]: 1 for image in images}
