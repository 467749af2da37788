"""``shared.runtime.consumer.BatchConsumingHandler``: what makes a batch, and how each message of a
batch is settled from its own outcome (no broker: the container, the queue consumer and the
dead-letter publisher are recorded)."""

import pytest

from shared.contracts import topology
from shared.contracts.errors import InvalidRequest, RegistryUnavailable
from shared.runtime import consumer
from shared.runtime.consumer import BatchConsumingHandler
from tests.unit.shared.test_consumer import Message, Parker, QueueConsumer


class Container:
    """Records the workers spawned; runs a managed thread at once."""

    service_name = "catalog"

    def __init__(self, config):
        self.config = config
        self.workers = []

    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        self.workers.append((args[0], handle_result))

    def spawn_managed_thread(self, fn, identifier=None):
        fn()


class Settled(QueueConsumer):
    """Which message was settled how, by event ID."""

    def ack_message(self, message):
        self.settled.append(("ack", _event(message)))

    def requeue_message(self, message):
        self.settled.append(("requeue", _event(message)))


def _event(message):
    return consumer._event_id(message)


@pytest.fixture
def handler(monkeypatch):
    monkeypatch.setattr(consumer.eventlet, "sleep", lambda seconds: None)
    built = BatchConsumingHandler(
        "webhook", "image_pushed", transient=(RegistryUnavailable,), permanent=(InvalidRequest,)
    )
    built.container = Container({consumer.BATCH_SIZE_KEY: 3, consumer.BATCH_WORKERS_KEY: 1})
    built.batch_size, built.workers = 3, 1  # what setup() reads from that config
    built.queue_consumer = Settled()
    built.parker = Parker()
    built.subscription = topology.subscription("webhook", "image_pushed", "catalog", "handle_image_pushed")
    return built


def arrive(handler, *event_ids):
    for event_id in event_ids:
        payload = {"event_id": event_id}
        handler.handle_message(payload, Message(payload))


def finish(handler, index, result=None, exc_info=None):
    """End the ``index``-th worker as its method did: ``result`` (one outcome per payload) or raised."""
    payloads, handle_result = handler.container.workers[index]
    handle_result(None, result, exc_info)
    return [p["event_id"] for p in payloads]


def batches(handler):
    return [[p["event_id"] for p in payloads] for payloads, _ in handler.container.workers]


class TestWhatMakesABatch:
    def test_a_message_with_a_worker_free_goes_at_once_alone(self, handler):
        arrive(handler, "e1")
        assert batches(handler) == [["e1"]]

    def test_messages_arriving_while_the_workers_are_busy_make_the_next_batch_at_most_its_size(self, handler):
        arrive(handler, "e1", "e2", "e3", "e4", "e5")
        assert batches(handler) == [["e1"]]  # one worker, busy: the others wait for it, not for a full batch
        finish(handler, 0, [None])
        assert batches(handler) == [["e1"], ["e2", "e3", "e4"]]
        finish(handler, 1, [None, None, None])
        assert batches(handler) == [["e1"], ["e2", "e3", "e4"], ["e5"]]

    def test_no_batch_starts_once_the_handler_stops(self, handler):
        arrive(handler, "e1", "e2")
        handler.stopping = True
        finish(handler, 0, [None])
        assert batches(handler) == [["e1"]]
        assert handler.queue_consumer.settled == [("ack", "e1")]  # e2 stays unacknowledged: RabbitMQ gives it back


class TestEachMessageSettledByItsOutcome:
    def test_a_failed_event_is_settled_alone_and_its_batch_is_acknowledged(self, handler):
        arrive(handler, "e0", "e1", "e2", "e3")
        finish(handler, 0, [None])
        finish(handler, 1, [None, InvalidRequest("bad name"), RegistryUnavailable("registry away")])
        assert handler.queue_consumer.settled == [
            ("ack", "e0"),
            ("ack", "e1"),
            ("ack", "e2"),  # parked first (published to the dead-letter exchange), then acknowledged
            ("requeue", "e3"),
        ]
        assert [kwargs["headers"][topology.REASON_HEADER] for _, kwargs in handler.parker.published] == ["rejected"]

    def test_a_batch_that_raised_settles_every_message_with_its_error(self, handler):
        arrive(handler, "e0", "e1", "e2")
        finish(handler, 0, [None])
        error = RegistryUnavailable("database away")
        finish(handler, 1, exc_info=(type(error), error, None))
        assert handler.queue_consumer.settled == [("ack", "e0"), ("requeue", "e1"), ("requeue", "e2")]
        assert handler.parker.published == []

    def test_a_result_that_is_not_one_outcome_per_message_parks_them_rather_than_acknowledging_them(self, handler):
        arrive(handler, "e0", "e1", "e2")
        finish(handler, 0, [None])
        finish(handler, 1, [None])  # two messages, one outcome: a bug in the handler
        parked = [kwargs["headers"][topology.ERROR_HEADER] for _, kwargs in handler.parker.published]
        assert len(parked) == 2 and all(p.startswith("TypeError: a batch handler returned") for p in parked)
