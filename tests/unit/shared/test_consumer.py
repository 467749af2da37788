"""``shared.runtime.consumer``: how a handler's ending settles its message (no broker: the queue
consumer and the dead-letter publisher are recorded)."""

import json

import pytest

from shared.contracts import topology
from shared.contracts.errors import InvalidRequest, RegistryUnavailable
from shared.runtime import consumer
from shared.runtime.consumer import ConsumingHandler, deliveries_before

QUEUE = "evt-webhook-image_pushed--catalog.handle_image_pushed"


class Message:
    def __init__(self, payload, deliveries_before=None, headers=None):
        self.body = json.dumps(payload).encode()
        self.content_type = "application/json"
        self.content_encoding = "utf-8"
        self.headers = dict(headers or {})
        if deliveries_before is not None:
            self.headers[topology.DELIVERY_COUNT_HEADER] = deliveries_before


class QueueConsumer:
    def __init__(self):
        self.settled = []

    def ack_message(self, message):
        self.settled.append("ack")

    def requeue_message(self, message):
        self.settled.append("requeue")


class Parker:
    def __init__(self, fails=False):
        self.fails = fails
        self.published = []

    def publish(self, body, **kwargs):
        if self.fails:
            raise ConnectionRefusedError("[Errno 111] Connection refused")
        self.published.append((body, kwargs))


@pytest.fixture
def handler(monkeypatch):
    slept = []
    monkeypatch.setattr(consumer.eventlet, "sleep", slept.append)
    built = ConsumingHandler("webhook", "image_pushed", transient=(RegistryUnavailable,))
    built.queue_consumer = QueueConsumer()
    built.parker = Parker()
    built.subscription = topology.subscription("webhook", "image_pushed", "catalog", "handle_image_pushed")
    built.slept = slept
    return built


def failed(exc):
    return (type(exc), exc, None)


def test_a_handled_event_is_acknowledged(handler):
    assert handler._settle(Message({"event_id": "e1"}), None) == "handled"
    assert handler.queue_consumer.settled == ["ack"] and handler.parker.published == []


@pytest.mark.parametrize("before", [0, 1, topology.DELIVERY_LIMIT - 1])
def test_a_transient_failure_goes_back_after_a_growing_pause(handler, before):
    message = Message({"event_id": "e1"}, deliveries_before=before or None)
    assert handler._settle(message, failed(RegistryUnavailable("registry away"))) == "retried"
    assert handler.queue_consumer.settled == ["requeue"]
    assert handler.slept == [topology.retry_delay(before)]
    assert handler.parker.published == []


def test_a_transient_failure_on_the_last_delivery_is_parked_with_its_reason(handler):
    message = Message({"event_id": "e1"}, deliveries_before=topology.DELIVERY_LIMIT)
    assert handler._settle(message, failed(RegistryUnavailable("registry away"))) == "dead_lettered"
    [(body, kwargs)] = handler.parker.published
    assert body == message.body and kwargs["routing_key"] == QUEUE
    headers = kwargs["headers"]
    assert (
        headers[topology.REASON_HEADER],
        headers[topology.ERROR_HEADER],
        headers[topology.QUEUE_HEADER],
        headers[topology.DELIVERIES_HEADER],
        headers[topology.EVENT_TYPE_HEADER],
        headers[topology.SOURCE_HEADER],
    ) == (
        "delivery_limit",
        "RegistryUnavailable: registry away",
        QUEUE,
        topology.DELIVERY_LIMIT + 1,
        "image_pushed",
        "webhook",
    )
    assert handler.queue_consumer.settled == ["ack"] and handler.slept == []


@pytest.mark.parametrize("exc", [InvalidRequest("ImagePushed payload is invalid"), KeyError("a bug")])
def test_any_other_failure_is_parked_at_once_keeping_the_message_as_it_came(handler, exc):
    message = Message({"event_id": "e1"}, headers={"nameko.call_id_stack": ["webhook.x.1"]})
    assert handler._settle(message, failed(exc)) == "dead_lettered"
    [(body, kwargs)] = handler.parker.published
    assert body == message.body
    assert (kwargs["content_type"], kwargs["serializer"]) == ("application/json", None)
    assert kwargs["headers"]["nameko.call_id_stack"] == ["webhook.x.1"]
    assert kwargs["headers"][topology.REASON_HEADER] == "rejected"
    assert kwargs["headers"][topology.ERROR_HEADER].startswith(type(exc).__name__)
    assert handler.queue_consumer.settled == ["ack"]


def test_a_message_that_cannot_be_parked_goes_back_to_its_queue(handler):
    handler.parker.fails = True
    assert handler._settle(Message({"event_id": "e1"}), failed(InvalidRequest("bad"))) == "retried"
    assert handler.queue_consumer.settled == ["requeue"]


@pytest.mark.parametrize(("headers", "count"), [({}, 0), ({"x-delivery-count": 3}, 3), ({"x-delivery-count": "x"}, 0)])
def test_deliveries_before_reads_the_quorum_queues_count(headers, count):
    assert deliveries_before(Message({}, headers=headers)) == count


def test_the_back_off_doubles_up_to_its_ceiling_and_the_limit_is_the_queues():
    delays = [topology.retry_delay(n) for n in range(topology.DELIVERY_LIMIT + 1)]
    assert delays[0] == topology.RETRY_BASE_DELAY and delays[1] == 2 * topology.RETRY_BASE_DELAY
    assert max(delays) == topology.RETRY_MAX_DELAY and delays == sorted(delays)
    assert topology.queue_arguments()["x-delivery-limit"] == topology.DELIVERY_LIMIT
    assert [topology.is_last_delivery(n) for n in (topology.DELIVERY_LIMIT - 1, topology.DELIVERY_LIMIT)] == [
        False,
        True,
    ]
