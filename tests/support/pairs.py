"""Two deliveries of one event, in flight at the same moment: a barrier for integration tests.

``PairBarrier(method_name, holds)`` is a nameko dependency provider a test adds to a subclass of
the real service (same name, same queues, same handlers). Its ``worker_setup`` holds the worker of
an event that ``holds(payload)`` picks until the event's other copy has a worker as well, so both
start their handler together, before either has touched the database. It only waits: what each
worker then does is the service's own code. A later delivery of the event (a retry) passes.
"""

import collections
import time
from collections.abc import Callable
from typing import Any

import eventlet
from nameko.extensions import DependencyProvider

COPIES = 2
PAIR_WAIT = 10.0  # seconds a copy waits for its twin; past it, it goes on alone and ``met`` says so


class PairBarrier(DependencyProvider):
    """See the module. Per event ID: ``met`` (whether its first two copies met at the barrier) and
    ``spans`` (``[start, end]`` of each worker; the end taken in ``worker_result``, before nameko's
    ``entrypoint_waiter`` sees the result)."""

    def __init__(self, method_name: str, holds: Callable[[dict[str, Any]], bool] = lambda payload: True) -> None:
        self.method_name = method_name
        self.holds = holds

    def setup(self) -> None:
        self.arrivals: collections.Counter[str] = collections.Counter()
        self.together: dict[str, eventlet.event.Event] = collections.defaultdict(eventlet.event.Event)
        self.met: dict[str, bool] = {}
        self.spans: dict[str, list[list[float | None]]] = collections.defaultdict(list)

    def worker_setup(self, worker_ctx: Any) -> None:
        if worker_ctx.entrypoint.method_name != self.method_name:
            return
        taken = worker_ctx.args[0]  # a batch handler's worker takes a list of payloads
        payloads = [p for p in (taken if isinstance(taken, list) else [taken]) if self.holds(p)]
        span: list[float | None] = [time.monotonic(), None]
        if payloads:
            worker_ctx.data["pair_span"] = span
        waiting = []
        for payload in payloads:
            event_id = payload["event_id"]
            self.spans[event_id].append(span)
            self.arrivals[event_id] += 1
            if self.arrivals[event_id] == COPIES:
                self.together[event_id].send(True)
            elif self.arrivals[event_id] < COPIES:
                waiting.append(event_id)
        for event_id in waiting:  # after counting the whole batch: both copies may be in it
            self.met[event_id] = self.together[event_id].wait(PAIR_WAIT) is True

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        span = worker_ctx.data.get("pair_span")
        if span is not None:
            span[1] = time.monotonic()

    def overlapped(self, event_id: str) -> bool:
        """Whether the first two workers of the event ran at the same time."""
        spans = self.spans.get(event_id, [])[:COPIES]
        if len(spans) < COPIES or any(end is None for _, end in spans):
            return False
        (start_a, end_a), (start_b, end_b) = spans
        return start_a < end_b and start_b < end_a  # type: ignore[operator]


def barrier_of(container: Any) -> PairBarrier:
    """The ``PairBarrier`` of a running nameko container."""
    return next(d for d in container.dependencies if isinstance(d, PairBarrier))
