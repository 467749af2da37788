"""Deliveries counted on a queue the test binds itself, never inferred from sleeping.

``EventQueue`` declares a queue of the test's own on a service's events exchange
(``<source>.events``), bound under the event types the test counts: RabbitMQ routes every such
event to it as well as to the suite's consumers, once per publish. ``drain`` reads what arrived
so far; ``counted`` says how often each event id was delivered, duplicates included.

How a test knows it has everything: the services publish with publisher confirms and delete an
outbox row only after the broker confirmed it (``shared.runtime.outbox``), so once a test has seen
the outbox empty (and every event id it expects delivered), every publish that will ever happen
has already been routed to this queue, and one more ``drain`` is the complete count. The queue is
durable, so it outlives a broker restart in the middle of a test.
"""

import time
import uuid
from collections import Counter

from kombu import Connection, Exchange, Queue, binding

from tests.support import wait_until


class EventQueue:
    def __init__(self, amqp_uri, source, event_types, name=None):
        self.amqp_uri = amqp_uri
        # passive: the exchange is the suite's (shared.ops.broker_topology declares it); a typo
        # fails here rather than binding to a new exchange nothing publishes to.
        exchange = Exchange(f"{source}.events", type="topic", durable=True, passive=True)
        self.name = name or f"test-{source}-{uuid.uuid4().hex[:8]}"
        self.queue = Queue(
            self.name,
            bindings=[binding(exchange, routing_key=event_type) for event_type in event_types],
            durable=True,
            auto_delete=False,
        )
        self.deliveries = []  # (event type, payload) in arrival order, every delivery
        with Connection(amqp_uri) as connection:
            self.queue(connection.default_channel).declare()

    def drain(self):
        """Every delivery so far (read to the queue's end). A fresh connection each time: the broker
        may have been restarted since the last call; an error five times in a row fails loudly."""
        last = None
        for _ in range(5):
            try:
                with Connection(self.amqp_uri) as connection:
                    simple = connection.SimpleQueue(self.queue)
                    while True:
                        try:
                            message = simple.get(block=False)
                        except simple.Empty:
                            break
                        self.deliveries.append((message.delivery_info["routing_key"], message.payload))
                        message.ack()
                    simple.close()
                return self.deliveries
            except Exception as exc:  # the broker not back yet: try again, then fail
                last = exc
                time.sleep(1)
        raise AssertionError(f"could not read queue {self.name}: {last!r}")

    def payloads(self, event_type=None, **fields):
        """The payloads delivered so far (drained now) of ``event_type`` whose ``fields`` match."""
        return [
            payload
            for kind, payload in self.drain()
            if (event_type is None or kind == event_type) and all(payload.get(k) == v for k, v in fields.items())
        ]

    def counted(self, event_type=None, **fields):
        """``Counter`` of event id -> deliveries, of the payloads ``payloads`` selects."""
        return Counter(payload["event_id"] for payload in self.payloads(event_type, **fields))

    def wait_for_ids(self, event_ids, timeout, event_type=None):
        """Wait until each of ``event_ids`` was delivered at least once; the counts then."""
        wanted = set(event_ids)
        wait_until(
            lambda: wanted <= set(self.counted(event_type)),
            timeout=timeout,
            interval=0.1,
            what=f"{len(wanted)} event(s) delivered to {self.name}",
        )
        return self.counted(event_type)

    def close(self):
        with Connection(self.amqp_uri) as connection:
            self.queue(connection.default_channel).delete()


def twice(counts):
    """Deliveries beyond the first of each event id in ``counts`` (a ``Counter``): 0 when none came twice."""
    return sum(n - 1 for n in counts.values() if n > 1)
