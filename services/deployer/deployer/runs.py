"""What a rollout and a teardown share: the run's view of instances (``Live``), its lock-checked
transactions on the Deployment aggregate, and removing containers."""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from deployer import outbox
from deployer.aggregate import Deployment, LockLost
from deployer.engine import EngineError
from deployer.models import Instance
from deployer.runtime import Runtime
from deployer.settings import Pool

log = logging.getLogger(__name__)

# The run lost its lock (the deployment was deleted, or another run took over): stop.
Aborted = LockLost


class RolloutFailed(Exception):
    """The revision cannot be brought up; the message is the reason callers see."""


@dataclass
class Live:
    """An instance as a run tracks it (a plain copy of its row)."""

    id: str
    revision: int
    host: str
    container_name: str
    container_id: str | None
    state: str
    ports: list
    cpu: float
    memory: int
    started: float = 0.0  # monotonic time the container was started

    @classmethod
    def of(cls, row: Instance) -> "Live":
        return cls(
            id=row.id,
            revision=row.revision,
            host=row.host,
            container_name=row.container_name,
            container_id=row.container_id,
            state=row.state,
            ports=[dict(p) for p in row.ports],
            cpu=row.cpu,
            memory=row.memory,
        )


@dataclass
class Target:
    number: int
    pull_ref: str
    runtime: dict
    image: str = ""
    trigger: str = ""


@dataclass
class Step:
    host: str
    old: Live | None = None  # the instance this one replaces


@dataclass
class Plan:
    steps: list = field(default_factory=list)
    removals: list = field(default_factory=list)


def container_name(tenant_id: str, name: str, revision: int, instance_id: str) -> str:
    """Readable and unique: ``ih-<tenant>-<name>-r<revision>-<instance id prefix>``."""
    return f"ih-{tenant_id[:40]}-{name}-r{revision}-{instance_id[:8]}"


class Run:
    def __init__(self, rt: Runtime, deployment_id: str, operation_id: str) -> None:
        self.rt = rt
        self.settings = rt.settings
        self.deployment_id = deployment_id
        self.operation_id = operation_id

    @contextmanager
    def locked(self) -> Iterator[tuple[Session, Deployment]]:
        """A transaction in which the deployment is still ours (``Aborted`` otherwise), as the
        aggregate; also this run's heartbeat."""
        with self.rt.transaction() as session:
            yield session, Deployment.locked_by(session, self.deployment_id, self.operation_id, self.rt.now())

    @contextmanager
    def claimed(self) -> Iterator[tuple[Session, Deployment]]:
        """The run's first transaction: the request's lock passed to this run
        (``Deployment.claim_for_run``); ``Aborted`` when the request is stale or another delivery
        of it claimed it first."""
        with self.rt.transaction() as session:
            deployment = Deployment.locked_by(session, self.deployment_id, self.operation_id, self.rt.now())
            claimed = deployment.claim_for_run()
            yield session, deployment
        self.operation_id = claimed

    def claim_removal(self) -> Pool | None:
        """A removal's first step (either kind of pool): the request claimed (``claimed``) and the
        deployment's pool; None when the request is stale or another delivery claimed it."""
        try:
            with self.claimed() as (_, deployment):
                return self.settings.pools[deployment.row.pool]
        except Aborted:
            log.info(
                "delete of %s (operation %s) is stale or already under way: dropped",
                self.deployment_id,
                self.operation_id,
            )
            return None

    def heartbeat(self) -> None:
        """Prove the lock is still this run's, renewing it (``Aborted`` otherwise)."""
        with self.locked():
            pass

    def finish_removal(self, reason: str | None) -> None:
        """A removal's last step: ``deleted`` (``reason``: what may remain), unless it lost the lock."""
        try:
            with self.locked() as (_, deployment):
                events = deployment.mark_deleted(self.operation_id, self.rt.now(), reason)
        except Aborted:
            return
        self.publish(*events)

    def publish(self, *events: Any) -> None:
        """Send a committed transaction's events from the outbox (what fails is the relay's)."""
        outbox.send(self.rt, events)

    def remove_containers(self, lives: Iterable[Live]) -> None:
        """Stop and remove each instance's container (all at once); failures are logged, not raised:
        a container left behind has no row and is removed by the reconciler."""

        def remove(live: Live) -> None:
            try:
                self.rt.engine(live.host).remove(live.container_id or live.container_name, self.settings.stop_timeout)
            except EngineError as exc:
                log.warning("could not remove %s on %s (the reconciler will): %s", live.container_name, live.host, exc)

        self.rt.run_all(remove, list(lives))

    def forget(self, lives: Iterable[Live]) -> None:
        """Forget the instances' rows (their containers are removed)."""
        with self.locked() as (_, deployment):
            deployment.forget_instances(live.id for live in lives)
