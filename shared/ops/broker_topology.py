"""The suite's exchanges, queues and bindings, declared before any service starts.

What ``shared.contracts.topology`` describes, in RabbitMQ's definitions format (``declarations``):

* every events exchange (``<source>.events``, topic, durable: as nameko declares it);
* every handler's queue, a quorum queue with the delivery limit and dead-letter exchange of
  ``queue_arguments``, bound to its source's exchange under its event type and to the replay
  exchange under its own name;
* the dead-letter exchange (topic) and its queue (quorum, no limit), bound with ``#``;
* the replay exchange (direct).

``declare`` makes them through the management API (``broker_access.apply`` calls it: ``make up``
and the tests' stack); ``broker_access.definitions`` puts the same lists in the definitions file
of a broker configured before it starts. A handler's queue that already exists with other
arguments (a classic queue of a suite set up before quorum queues) is replaced when it is empty,
and refused with what to do when it holds messages: nothing is deleted that holds an event.
"""

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

from shared.contracts.topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUE,
    REPLAY_EXCHANGE,
    SUBSCRIPTIONS,
    queue_arguments,
)


class ManagementApi(Protocol):
    def get(self, path: str) -> Any: ...
    def put(self, path: str, body: Mapping[str, Any]) -> None: ...
    def post(self, path: str, body: Mapping[str, Any]) -> None: ...
    def delete(self, path: str) -> None: ...


class TopologyConflict(RuntimeError):
    """A queue of the suite exists with other arguments and still holds messages."""


def _exchange(vhost: str, name: str, kind: str) -> dict[str, Any]:
    return {
        "name": name,
        "vhost": vhost,
        "type": kind,
        "durable": True,
        "auto_delete": False,
        "internal": False,
        "arguments": {},
    }


def _queue(vhost: str, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": name, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": dict(arguments)}


def _binding(vhost: str, exchange: str, queue: str, routing_key: str) -> dict[str, Any]:
    return {
        "source": exchange,
        "vhost": vhost,
        "destination": queue,
        "destination_type": "queue",
        "routing_key": routing_key,
        "arguments": {},
    }


def declarations(vhost: str) -> dict[str, list[dict[str, Any]]]:
    """``{"exchanges", "queues", "bindings"}`` of the suite on ``vhost``, as in a definitions file."""
    sources = sorted({s.exchange for s in SUBSCRIPTIONS})
    exchanges = [_exchange(vhost, name, "topic") for name in sources]
    exchanges += [_exchange(vhost, DEAD_LETTER_EXCHANGE, "topic"), _exchange(vhost, REPLAY_EXCHANGE, "direct")]
    queues = [_queue(vhost, s.queue, queue_arguments()) for s in SUBSCRIPTIONS]
    queues.append(_queue(vhost, DEAD_LETTER_QUEUE, {"x-queue-type": "quorum"}))
    bindings = [_binding(vhost, s.exchange, s.queue, s.event_type) for s in SUBSCRIPTIONS]
    bindings += [_binding(vhost, REPLAY_EXCHANGE, s.queue, s.queue) for s in SUBSCRIPTIONS]
    bindings.append(_binding(vhost, DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, "#"))
    return {"exchanges": exchanges, "queues": queues, "bindings": bindings}


def declare(management: ManagementApi, vhost: str) -> dict[str, list[dict[str, Any]]]:
    """Make every exchange, queue and binding of ``declarations(vhost)``; idempotent. Returns them."""
    v = quote(vhost, safe="")
    wanted = declarations(vhost)
    for exchange in wanted["exchanges"]:
        body = {k: exchange[k] for k in ("type", "durable", "auto_delete", "internal", "arguments")}
        management.put(f"exchanges/{v}/{quote(exchange['name'], safe='')}", body)
    for queue in wanted["queues"]:
        path = f"queues/{v}/{quote(queue['name'], safe='')}"
        existing = management.get(path)
        if existing is not None and _differs(existing, queue):
            if existing.get("messages"):
                raise TopologyConflict(
                    f"queue {queue['name']} on vhost {vhost} exists with arguments {existing.get('arguments')} "
                    f"and holds {existing['messages']} message(s); the suite needs {queue['arguments']}: stop "
                    f"its publishers, let its consumer drain it, then run the set-up again"
                )
            management.delete(path)
        management.put(path, {k: queue[k] for k in ("durable", "auto_delete", "arguments")})
    for binding in wanted["bindings"]:
        source, destination = quote(binding["source"], safe=""), quote(binding["destination"], safe="")
        management.post(
            f"bindings/{v}/e/{source}/q/{destination}",
            {"routing_key": binding["routing_key"], "arguments": {}},
        )
    return wanted


def _differs(existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    arguments = dict(existing.get("arguments") or {})
    # RabbitMQ reports the type of a queue declared without one ("classic") in its own field.
    arguments.setdefault("x-queue-type", existing.get("type", "classic"))
    return bool(
        arguments != wanted["arguments"]
        or existing.get("durable") is not True
        or existing.get("auto_delete") is not False
        or existing.get("exclusive")
    )
