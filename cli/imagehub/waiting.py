"""Following a deployment until it settles: poll, report each change, stop at an end or a deadline.

The deployer answers an operation at once (status ``pending``) and carries it out in the
background; this module polls ``get_deployment`` until the operation has ended: the status is
no longer an in-progress one and no ``operation`` holds the deployment (the deployer sets both in
one transaction when it finishes; a reconciler's restore runs while the status says
``degraded``).

No click and no RPC here: the caller hands in ``fetch`` and ``report``, and a clock, so tests
run the loop on a clock that only pretends to sleep.
"""

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

POLL_INTERVAL = 0.5  # seconds between two get_deployment calls
DEFAULT_WAIT_TIMEOUT = 300  # a pull over a slow link plus a health check fits in five minutes

# Statuses of an operation still under way (docs/cli.md, "Waiting"); every other one is an end
# once the deployment's ``operation`` is None.
IN_PROGRESS = ("pending", "pulling", "starting", "deleting")
# Ends that mean "done as asked": a rollout or a scale, and a removal.
ROLLED_OUT = ("running", "stopped")  # stopped: scaled to 0 replicas
REMOVED = ("deleted",)


class Clock:
    """Real time. Tests replace ``CLOCK`` with one whose ``sleep`` only moves its ``now``."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


CLOCK = Clock()


@dataclass(frozen=True)
class Outcome:
    deployment: dict[str, Any]  # the last answer of get_deployment
    elapsed: float  # seconds since ``started``
    timed_out: bool

    @property
    def status(self) -> Any:
        return self.deployment.get("status")


def settled(deployment: Mapping[str, Any]) -> bool:
    return deployment.get("status") not in IN_PROGRESS and not deployment.get("operation")


def status_and_reason(deployment: Mapping[str, Any]) -> tuple[Any, Any]:
    return deployment.get("status"), deployment.get("reason")


def watch(
    fetch: Callable[[], dict[str, Any]],
    first: dict[str, Any],
    report: Callable[[float, dict[str, Any]], None],
    timeout: float,
    clock: Clock,
    started: float,
    interval: float = POLL_INTERVAL,
    done: Callable[[dict[str, Any]], bool] = settled,
    state: Callable[[dict[str, Any]], object] = status_and_reason,
) -> Outcome:
    """Poll ``fetch()`` from the answer ``first`` until its operation has ended (``done(answer)``;
    a deployment's by default), or ``timeout`` seconds after ``started`` (a ``clock.now()``
    reading) have passed.

    ``report(elapsed, answer)`` is called for the first answer and for each answer whose
    ``state(answer)`` (status and reason by default) differs from the one before (one line each,
    however long the wait).
    """
    current, shown = first, None
    while True:
        elapsed = clock.now() - started
        change = state(current)
        if change != shown:
            report(elapsed, current)
            shown = change
        if done(current):
            return Outcome(current, elapsed, timed_out=False)
        if elapsed >= timeout:
            return Outcome(current, elapsed, timed_out=True)
        clock.sleep(min(interval, timeout - elapsed))
        current = fetch()
