"""The lifecycle of a deployment, declared once: which transitions exist, from which statuses
each may start, where it leads and which events it emits. ``deployer.aggregate.Deployment`` checks
every change against it; ``docs/deployer-api.md`` shows it (``lifecycle_table``)."""

from dataclasses import dataclass

from deployer.models import (
    DEGRADED,
    DELETED,
    DELETING,
    FAILED,
    PENDING,
    PULLING,
    ROLLED_BACK,
    ROLLOUT_FAILED,
    RUNNING,
    STARTING,
    STOPPED,
)
from shared.contracts.errors import Conflict
from shared.contracts.events import DEPLOYMENT_STATUS_CHANGED, ROLLOUT_REQUESTED

ROLLOUT, DELETE, RECONCILE = "rollout", "delete", "reconcile"

# Statuses a deployment that is not being removed can have.
LIVE = (PENDING, PULLING, STARTING, RUNNING, FAILED, ROLLOUT_FAILED, ROLLED_BACK, DEGRADED, STOPPED)
OUTCOMES_OF_A_FAILED_ROLLOUT = (FAILED, ROLLOUT_FAILED, ROLLED_BACK, DEGRADED)


class IllegalTransition(Conflict):
    """A transition asked of a deployment in a status it does not start from (a bug, or a race the
    lock should have prevented): nothing is recorded."""


class LockLost(Exception):
    """The operation asking no longer holds the deployment's lock (deleted, or taken over)."""


@dataclass(frozen=True)
class Transition:
    """One row of the lifecycle: what a method may start from, where it leads, what it emits."""

    method: str
    trigger: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    events: tuple[str, ...]
    needs_lock: bool


STATUS = DEPLOYMENT_STATUS_CHANGED
TRANSITIONS: tuple[Transition, ...] = (
    Transition("create", "create_deployment", (), (PENDING,), (STATUS, ROLLOUT_REQUESTED), True),
    Transition(
        "start_revision",
        "update_deployment, rollback_deployment, a push an auto-deploy policy follows",
        LIVE,
        (PENDING,),
        (STATUS, ROLLOUT_REQUESTED),
        True,
    ),
    Transition(
        "refuse_revision",
        "an auto-deploy whose revision cannot start (no room, a port needed twice)",
        LIVE,
        (ROLLED_BACK, FAILED),
        (STATUS,),
        True,
    ),
    Transition("scale", "scale_deployment", LIVE, (PENDING,), (STATUS, ROLLOUT_REQUESTED), True),
    Transition(
        "mark_deleting",
        "delete_deployment (takes the lock by force)",
        LIVE,
        (DELETING,),
        (STATUS, ROLLOUT_REQUESTED),
        True,
    ),
    Transition("progress", "the rollout pulls, then starts instances", LIVE, (PULLING, STARTING), (STATUS,), True),
    Transition("serve", "the rollout's instances are healthy", LIVE, (RUNNING, STOPPED), (STATUS,), True),
    Transition("fail", "the rollout failed", LIVE, OUTCOMES_OF_A_FAILED_ROLLOUT, (STATUS,), True),
    Transition(
        "mark_deleted", "every container of the deployment is removed", (DELETING,), (DELETED,), (STATUS,), True
    ),
    Transition(
        "restore",
        "the reconciler finds fewer instances of the serving revision than replicas",
        LIVE,
        (DEGRADED,),
        (STATUS, ROLLOUT_REQUESTED),
        True,
    ),
    Transition("degrade", "the reconciler finds dead or unreachable instances", LIVE, (DEGRADED,), (STATUS,), True),
    Transition("recover", "the reconciler finds every instance back", (DEGRADED,), (RUNNING, STOPPED), (STATUS,), True),
    Transition(
        "resume",
        "the reconciler takes over an operation whose lock went stale",
        LIVE + (DELETING,),
        ("(unchanged)",),
        (ROLLOUT_REQUESTED,),
        True,
    ),
)
BY_METHOD = {t.method: t for t in TRANSITIONS}


def lifecycle_table() -> str:
    """``TRANSITIONS`` as the Markdown table ``docs/deployer-api.md`` shows (a test keeps them equal)."""
    rows = [
        "| method | when | from | to | events |",
        "| --- | --- | --- | --- | --- |",
    ]
    for t in TRANSITIONS:
        sources = "(new)" if not t.sources else ("any live status" if t.sources == LIVE else ", ".join(t.sources))
        if t.sources == LIVE + (DELETING,):
            sources = "any status but deleted"
        events = ", ".join(f"`{e}`" for e in t.events)
        rows.append(f"| `{t.method}` | {t.trigger} | {sources} | {', '.join(t.targets)} | {events} |")
    return "\n".join(rows)
