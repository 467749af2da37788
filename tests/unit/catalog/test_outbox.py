"""The transactional outbox: events are written with the change they report, and sent after it."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import deleting, indexing, outbox
from catalog.models import OutboxEvent, Tag
from shared.contracts.events import TAG_INDEXED, TAG_REMOVED, TagRemoved
from shared.runtime import db
from tests.unit.catalog.conftest import at, deleted, pushed

MIN_AGE = timedelta(seconds=2)


@pytest.fixture
def observer(session):
    """A second connection to the test database: sees only what the session has committed."""
    engine = db.create_engine(session.get_bind().url)
    with Session(engine) as other:
        yield other
    engine.dispose()


def committed(observer, what):
    observer.rollback()  # a fresh snapshot
    return observer.scalars(sa.select(what)).all()


def pending(session):
    return [(row.event_type, row.event_id) for row in session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id))]


def outbox_of(outgoing):
    return [(event_type, payload["event_id"]) for event_type, payload in outgoing]


class Dispatcher:
    """Records what it was given; raises for the calls numbered in ``fail_on`` (1-based)."""

    def __init__(self, fail_on=()):
        self.fail_on = set(fail_on)
        self.calls = 0
        self.sent = []

    def __call__(self, event_type, payload):
        self.calls += 1
        if self.calls in self.fail_on:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        self.sent.append((event_type, payload["event_id"]))


@pytest.fixture
def image(registry):
    return registry.add_image("t1/app", "a")


class TestEventsAreWrittenWithTheChange:
    def test_a_push_commits_its_tag_indexed_with_the_tag(self, session, registry, image, observer):
        outgoing = indexing.record_push(session, registry, pushed("t1/app", image["digest"], tag="v1"))
        assert committed(observer, Tag) == [] and committed(observer, OutboxEvent) == []

        session.commit()
        [tag] = committed(observer, Tag)
        [row] = committed(observer, OutboxEvent)
        [(event_type, payload)] = outgoing
        assert (tag.name, row.event_type, row.event_id, row.payload) == (
            "v1",
            TAG_INDEXED,
            payload["event_id"],
            payload,
        )
        assert row.created_at.tzinfo is UTC

    def test_a_rolled_back_change_leaves_no_event(self, session, registry, image):
        indexing.record_push(session, registry, pushed("t1/app", image["digest"], tag="v1"))
        session.rollback()
        assert pending(session) == []
        assert session.scalars(sa.select(Tag)).all() == []

    def test_a_digest_delete_writes_a_tag_removed_per_tag(self, session, registry, image):
        for tag in ("v1", "stable"):
            indexing.record_push(session, registry, pushed("t1/app", image["digest"], tag=tag))
        session.commit()
        session.execute(sa.delete(OutboxEvent))

        outgoing = indexing.record_delete(session, registry, deleted("t1/app", digest=image["digest"]))
        session.commit()
        assert sorted(p["tag"] for _, p in outgoing) == ["stable", "v1"]
        assert pending(session) == outbox_of(outgoing)
        assert {event_type for event_type, _ in outgoing} == {TAG_REMOVED}

    def test_delete_tag_writes_its_tag_removed(self, session, registry, image):
        indexing.record_push(session, registry, pushed("t1/app", image["digest"], tag="v1"))
        session.commit()
        session.execute(sa.delete(OutboxEvent))

        _, outgoing = deleting.delete_tag(session, registry, "t1", "t1/app", "v1", force=False)
        session.commit()
        assert [p["tag"] for _, p in outgoing] == ["v1"]
        assert pending(session) == outbox_of(outgoing)


class TestANoOpWritesNoEvent:
    @pytest.fixture
    def indexed(self, session, registry, image):
        """t1/app:v1 on the image, pushed at 10 s (and so in the registry), with the outbox emptied
        afterwards."""
        registry.tags["t1/app"] = {"v1": image["digest"]}
        event = pushed("t1/app", image["digest"], tag="v1", pushed_at=at(10))
        indexing.record_push(session, registry, event)
        session.commit()
        session.execute(sa.delete(OutboxEvent))
        session.commit()
        return event

    @pytest.mark.parametrize(
        "change",
        [
            "the same event again",
            "a re-push of the same digest",
            "a push by digest without a tag",
            "a late push of another digest",
            "a delete of a missing tag",
            "a tag delete for another digest",
            "a delete in an unknown repository",
        ],
    )
    def test_nothing_is_written(self, session, registry, indexed, change):
        other = registry.add_image("t1/app", "b")["digest"]
        apply = {
            "the same event again": lambda: indexing.record_push(session, registry, indexed),
            "a re-push of the same digest": lambda: indexing.record_push(
                session, registry, pushed("t1/app", indexed["digest"], tag="v1", pushed_at=at(20))
            ),
            "a push by digest without a tag": lambda: indexing.record_push(session, registry, pushed("t1/app", other)),
            "a late push of another digest": lambda: indexing.record_push(
                session, registry, pushed("t1/app", other, tag="v1", pushed_at=at(5))
            ),
            "a delete of a missing tag": lambda: indexing.record_delete(session, registry, deleted("t1/app", tag="v9")),
            "a tag delete for another digest": lambda: indexing.record_delete(
                session, registry, deleted("t1/app", tag="v1", digest=other)
            ),
            "a delete in an unknown repository": lambda: indexing.record_delete(session, registry, deleted("t1/nope")),
        }[change]
        assert apply() == []
        session.commit()
        assert pending(session) == []

    def test_a_set_aside_event_writes_nothing(self, session):
        indexing.set_aside(
            session,
            source="catalog",
            reason="NotInRegistry: gone",
            payload={"id": "x"},
            event_id="6f1b0c4e-8d0a-4a57-9d0e-3f1b2c4d5e6f",
        )
        session.commit()
        assert pending(session) == []


def add_events(session, count):
    """``count`` tag_removed events in the outbox, committed; returns their event_ids in order."""
    outgoing = [
        outbox.emit(
            session,
            TAG_REMOVED,
            TagRemoved,
            namespace="t1",
            repository="t1/app",
            tag=f"v{i}",
            digest="sha256:" + "a" * 64,
        )
        for i in range(count)
    ]
    session.commit()
    return [payload["event_id"] for _, payload in outgoing]


def later(seconds=10):
    return datetime.now(UTC) + timedelta(seconds=seconds)


class TestSend:
    def test_sends_only_the_given_events_and_deletes_them(self, session):
        first, second, third = add_events(session, 3)
        dispatch = Dispatcher()
        assert outbox.send(session, dispatch, [third, first]) == 2
        session.commit()
        assert dispatch.sent == [(TAG_REMOVED, first), (TAG_REMOVED, third)]
        assert pending(session) == [(TAG_REMOVED, second)]

    def test_a_dispatch_failure_keeps_that_event_and_the_ones_after_it(self, session):
        ids = add_events(session, 3)
        dispatch = Dispatcher(fail_on={2})
        assert outbox.send(session, dispatch, ids) == 1
        session.commit()
        assert dispatch.sent == [(TAG_REMOVED, ids[0])]
        assert pending(session) == [(TAG_REMOVED, i) for i in ids[1:]]

    def test_nothing_to_send_reads_nothing(self, session):
        assert outbox.send(session, Dispatcher(), []) == 0


class TestRelay:
    def test_events_younger_than_the_minimum_age_are_left_to_the_normal_path(self, session):
        add_events(session, 2)
        dispatch = Dispatcher()
        assert outbox.relay(session, dispatch, MIN_AGE) == 0
        assert dispatch.calls == 0 and len(pending(session)) == 2

    def test_oldest_first_stopping_at_the_first_failure_and_resuming_there(self, session):
        ids = add_events(session, 4)
        dispatch = Dispatcher(fail_on={2})
        assert outbox.relay(session, dispatch, MIN_AGE, now=later()) == 1
        session.commit()
        assert dispatch.sent == [(TAG_REMOVED, ids[0])]
        assert dispatch.calls == 2  # the third and fourth were not tried after the second failed
        assert [event_id for _, event_id in pending(session)] == ids[1:]
        failed = session.scalars(sa.select(OutboxEvent).where(OutboxEvent.event_id == ids[1])).one()
        assert failed.attempts == 1 and failed.next_attempt_at > later()  # backing off
        assert outbox.relay(session, dispatch, MIN_AGE, now=later()) == 0  # and nothing overtakes it
        assert dispatch.calls == 2

        assert outbox.relay(session, dispatch, MIN_AGE, now=later(30)) == 3
        session.commit()
        assert [event_id for _, event_id in dispatch.sent] == ids
        assert pending(session) == []

    def test_a_re_sent_event_keeps_its_payload_and_event_id(self, session):
        [event_id] = add_events(session, 1)
        stored = session.scalar(sa.select(OutboxEvent.payload))
        received = []
        outbox.relay(session, lambda event_type, payload: received.append(payload), MIN_AGE, now=later())
        assert received == [stored] and stored["event_id"] == event_id

    def test_at_most_one_batch_per_call(self, session):
        ids = add_events(session, 3)
        dispatch = Dispatcher()
        assert outbox.relay(session, dispatch, MIN_AGE, limit=2, now=later()) == 2
        session.commit()
        assert [event_id for _, event_id in pending(session)] == ids[2:]
