"""The outbox on the real broker and both databases: events survive a failed dispatch after the commit.

Deliveries are counted on a queue each test binds to ``catalog.events`` itself
(``tests.support.deliveries``), once the outbox is empty: every publish has been confirmed by
then, so the count is complete without waiting for "long enough".
"""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from kombu.exceptions import OperationalError
from nameko.events import EventDispatcher
from nameko.testing.utils import get_extension
from sqlalchemy.orm import Session

from catalog import outbox
from catalog.migrate import upgrade
from catalog.models import OutboxEvent
from shared.contracts.events import CATALOG, TAG_INDEXED, TAG_REMOVED, TagRemoved
from shared.runtime import db
from tests.integration.catalog.conftest import WAIT
from tests.support import push_image, wait_until
from tests.support.deliveries import EventQueue

MIN_AGE = timedelta(seconds=0.5)


@pytest.fixture
def catalog_config(catalog_config):
    """A short relay age and interval, so that a left-over event goes out within a second."""
    return dict(catalog_config, OUTBOX_RELAY_INTERVAL=0.1, OUTBOX_RELAY_MIN_AGE=MIN_AGE.total_seconds())


class Broker:
    """The catalog's event publisher, failing as a broker that is away does while ``down`` is set.

    This is the one fault injected in these tests: the EventDispatcher's ``publisher.publish``
    (the call that reaches RabbitMQ) is wrapped; everything else, RabbitMQ included, is real.
    """

    def __init__(self, publisher):
        self.real_publish = publisher.publish
        self.down = False
        self.attempts = []  # (event_id, sent, when)

    def publish(self, payload, **kwargs):
        when = datetime.now(UTC)
        if self.down:
            self.attempts.append((payload["event_id"], False, when))
            raise OperationalError("[Errno 111] Connection refused (injected: broker down)")
        self.real_publish(payload, **kwargs)
        self.attempts.append((payload["event_id"], True, when))

    def outcomes(self, event_id):
        return [sent for attempted, sent, _ in self.attempts if attempted == event_id]

    def failures_after(self, event_id, moment):
        return [when for attempted, sent, when in self.attempts if attempted == event_id and not sent and when > moment]


@pytest.fixture
def broker(catalog, monkeypatch):
    publisher = get_extension(catalog, EventDispatcher).publisher
    broker = Broker(publisher)
    monkeypatch.setattr(publisher, "publish", broker.publish)
    return broker


@pytest.fixture
def pending(catalog_db_url):
    """Reads the outbox (oldest first) on a connection of its own."""
    engine = db.create_engine(catalog_db_url)

    def rows():
        with Session(engine) as session:
            return session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id)).all()

    yield rows
    engine.dispose()


@pytest.fixture
def delivered(rabbit_config):
    """Every tag_indexed and tag_removed the catalog publishes, on a queue of the test's own."""
    queue = EventQueue(rabbit_config["AMQP_URI"], CATALOG, [TAG_INDEXED, TAG_REMOVED])
    yield queue
    queue.close()


def delivered_once(delivered, pending, event_ids):
    """Wait until the outbox is empty and each of ``event_ids`` was delivered; then assert that
    exactly those were, once each. The payloads, in arrival order."""
    wait_until(lambda: pending() == [], timeout=WAIT, what="the outbox emptied")
    assert delivered.wait_for_ids(event_ids, timeout=WAIT) == Counter(dict.fromkeys(event_ids, 1))
    return [payload for _, payload in delivered.deliveries]


class TestNormalPath:
    def test_each_event_is_dispatched_once_and_nothing_stays_pending(
        self, registry, webhook, rpc, broker, pending, delivered, tenant
    ):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        webhook.push(image)  # returns once the handler is done: its commit and its send
        assert pending() == []
        rpc.delete_tag(tenant, f"{tenant}/app", "v1")
        assert pending() == []

        sent = [event_id for event_id, ok, _ in broker.attempts if ok]
        received = delivered_once(delivered, pending, sent)
        assert [(p["tag"], p["digest"]) for p in received] == [("v1", image["digest"])] * 2
        assert [delivered.counted(kind) for kind in (TAG_INDEXED, TAG_REMOVED)] == [Counter({s: 1}) for s in sent]
        # Each was published once, and only once: a deleted row cannot be sent again.
        assert [broker.outcomes(s) for s in sent] == [[True], [True]]


class TestDispatchFailsAfterTheCommit:
    def test_the_event_stays_pending_and_the_relay_sends_it_with_the_same_event_id(
        self, registry, webhook, rpc, broker, pending, delivered, tenant
    ):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        broker.down = True
        webhook.push(image)  # the handler succeeds all the same: nothing to redeliver

        assert rpc.get_tag(tenant, f"{tenant}/app", "v1")["digest"] == image["digest"]
        [row] = pending()
        assert (row.event_type, row.payload["tag"], row.payload["digest"]) == (TAG_INDEXED, "v1", image["digest"])
        # The relay keeps trying on later ticks while the broker is away, and the row stays.
        wait_until(
            lambda: len(broker.failures_after(row.event_id, row.created_at + MIN_AGE)) >= 2,
            timeout=WAIT,
            what="two relay attempts while the broker is away",
        )
        assert [r.event_id for r in pending()] == [row.event_id]
        assert delivered.drain() == []

        broker.down = False
        assert delivered_once(delivered, pending, [row.event_id]) == [row.payload]  # event_id included
        assert broker.outcomes(row.event_id)[-1] is True and broker.outcomes(row.event_id).count(True) == 1

    def test_a_delete_tag_answers_and_its_tag_removed_follows(
        self, registry, webhook, rpc, broker, pending, delivered, tenant
    ):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        webhook.push(image)
        broker.down = True
        assert rpc.delete_tag(tenant, f"{tenant}/app", "v1")["deleted_tags"] == ["v1"]
        [row] = pending()
        assert (row.event_type, row.payload["tag"]) == (TAG_REMOVED, "v1")

        broker.down = False
        indexed = [event_id for event_id, ok, _ in broker.attempts if ok]
        assert delivered_once(delivered, pending, [*indexed, row.event_id])[-1] == row.payload


class TestRelayOrder:
    def test_left_over_events_go_out_oldest_first(self, registry, webhook, broker, pending, delivered, tenant):
        repository = f"{tenant}/app"
        broker.down = True
        pushed = []
        for tag, content in (("latest", "a"), ("latest", "b"), ("v3", "c")):
            image = push_image(registry.url, repository, tag, content=f"{content}{tenant}".encode())
            webhook.push(image)
            pushed.append((tag, image["digest"]))
        rows = pending()
        assert [(r.payload["tag"], r.payload["digest"]) for r in rows] == pushed
        assert rows[1].payload["previous_digest"] == pushed[0][1]

        # Two relay attempts after every row was old enough (the second tick's query surely ran
        # after that): each tried the oldest row only and stopped at its failure.
        oldest, newest = rows[0], rows[-1]
        wait_until(
            lambda: len(broker.failures_after(oldest.event_id, newest.created_at + MIN_AGE)) >= 2,
            timeout=WAIT,
            what="two relay attempts with every row due",
        )
        assert [len(broker.outcomes(r.event_id)) for r in rows[1:]] == [1, 1]  # their own normal path only

        broker.down = False
        assert delivered_once(delivered, pending, [r.event_id for r in rows]) == [r.payload for r in rows]


class TestSeveralInstances:
    @pytest.mark.postgres
    def test_a_row_one_relay_is_sending_is_skipped_by_another(self, pg_url):
        """PostgreSQL only: SQLite has no row locks, and serves a single catalog instance."""
        upgrade(pg_url)
        engine = db.create_engine(pg_url)
        later = datetime.now(UTC) + timedelta(seconds=10)
        try:
            with Session(engine) as session:
                ids = [
                    outbox.emit(
                        session,
                        TAG_REMOVED,
                        TagRemoved,
                        namespace="t1",
                        repository="t1/app",
                        tag=f"v{i}",
                        digest="sha256:" + "a" * 64,
                    )[1]["event_id"]
                    for i in range(3)
                ]
                session.commit()
            with Session(engine) as first, Session(engine) as second:
                # Had the relay waited for the lock instead of skipping, fail here rather than hang.
                second.execute(sa.text("SET lock_timeout = '5s'"))
                by_first, by_second = [], []

                def first_dispatch(event_type, payload):
                    if not by_first:  # while the first relay holds its two rows
                        outbox.relay(second, lambda t, p: by_second.append(p["event_id"]), MIN_AGE, now=later)
                        second.commit()
                    by_first.append(payload["event_id"])

                assert outbox.relay(first, first_dispatch, MIN_AGE, limit=2, now=later) == 2
                first.commit()
            assert (by_first, by_second) == (ids[:2], ids[2:])
            with Session(engine) as session:
                assert session.scalars(sa.select(OutboxEvent)).all() == []
        finally:
            engine.dispose()
