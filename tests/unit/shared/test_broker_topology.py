"""``shared.ops.broker_topology``: what the set-up declares, and how it treats a queue already there
(against a recording management API; tests/integration/broker declares it on the real broker)."""

import pytest

from shared.contracts import topology
from shared.ops import broker_topology


class Management:
    def __init__(self, existing=None):
        self.existing = dict(existing or {})
        self.calls = []

    def get(self, path):
        return self.existing.get(path)

    def put(self, path, body):
        self.calls.append(("PUT", path, body))

    def post(self, path, body):
        self.calls.append(("POST", path, body))

    def delete(self, path):
        self.calls.append(("DELETE", path, None))


def test_every_handler_gets_a_quorum_queue_bound_to_its_source_and_to_the_replay_exchange():
    declared = broker_topology.declarations("v")
    queues = {q["name"]: q["arguments"] for q in declared["queues"]}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in declared["bindings"]}
    for s in topology.SUBSCRIPTIONS:
        assert queues[s.queue] == {
            "x-queue-type": "quorum",
            "x-delivery-limit": topology.DELIVERY_LIMIT,
            "x-dead-letter-exchange": topology.DEAD_LETTER_EXCHANGE,
        }
        assert {(s.exchange, s.queue, s.event_type), (topology.REPLAY_EXCHANGE, s.queue, s.queue)} <= bindings
    assert (topology.DEAD_LETTER_EXCHANGE, topology.DEAD_LETTER_QUEUE, "#") in bindings
    assert len(declared["queues"]) == len(topology.SUBSCRIPTIONS) + 1


def test_an_empty_classic_queue_of_an_older_set_up_is_replaced():
    path = f"queues/v/{topology.SUBSCRIPTIONS[0].queue}"
    management = Management({path: {"arguments": {}, "durable": True, "auto_delete": False, "messages": 0}})
    broker_topology.declare(management, "v")
    assert [c[:2] for c in management.calls if c[1] == path] == [("DELETE", path), ("PUT", path)]


def test_a_queue_holding_messages_is_never_deleted():
    path = f"queues/v/{topology.SUBSCRIPTIONS[0].queue}"
    management = Management({path: {"arguments": {}, "durable": True, "auto_delete": False, "messages": 3}})
    with pytest.raises(broker_topology.TopologyConflict, match="holds 3 message"):
        broker_topology.declare(management, "v")
    assert not [c for c in management.calls if c[0] == "DELETE"]


def test_a_queue_as_wanted_is_left_alone():
    wanted = {q["name"]: q for q in broker_topology.declarations("v")["queues"]}
    existing = {
        f"queues/v/{name}": {"arguments": q["arguments"], "durable": True, "auto_delete": False, "messages": 5}
        for name, q in wanted.items()
    }
    management = Management(existing)
    broker_topology.declare(management, "v")
    assert not [c for c in management.calls if c[0] == "DELETE"]
