"""What the deployer needs from a Docker Swarm, without naming Docker: the ``swarm`` kind of pool.

``deployer.dependencies.DockerSwarm`` implements it over the docker SDK (through a manager's
Engine API); unit tests use a fake with the same methods. Every method may raise
``EngineUnavailable`` (no manager answers) or ``EngineError`` (the manager refused the request,
its explanation in the message), from ``deployer.engine``.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

# Task states (Swarm's own words), grouped as the deployer reads them.
TASK_ACTIVE = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting")
TASK_FAILED = ("failed", "rejected")
TASK_ENDED = ("complete", "shutdown", "failed", "rejected", "orphaned", "remove")

# A service's update status (``UpdateStatus.State``).
UPDATING = "updating"
UPDATE_COMPLETED = "completed"
UPDATE_PAUSED = "paused"
ROLLBACK_STARTED = "rollback_started"
ROLLBACK_COMPLETED = "rollback_completed"
ROLLBACK_PAUSED = "rollback_paused"


@dataclass(frozen=True)
class Node:
    id: str
    name: str  # its imagehub.host label, else its hostname
    hostname: str
    role: str  # manager | worker
    state: str  # ready | down | unknown | disconnected
    availability: str  # active | pause | drain
    address: str  # where its host ports answer
    cpus: float
    memory: int  # bytes
    labels: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    id: str
    slot: int
    node_id: str
    desired_state: str
    state: str
    error: str
    message: str
    container_id: str | None
    exit_code: int | None
    revision: int | None  # the imagehub.revision label of its container spec
    created_at: str = ""


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    version: int  # the index a service update must name
    labels: dict
    replicas: int
    revision: int | None  # the revision its current spec runs
    update_state: str | None  # UpdateStatus.State, None when never updated
    update_message: str = ""
    spec: dict = field(default_factory=dict)  # the current ServiceSpec, as the Engine API gives it
    previous_spec: dict | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """A service as the deployer asks for it; ``deployer.swarm.service_spec`` builds one."""

    name: str
    labels: dict
    task_template: dict  # the Engine API's TaskSpec
    replicas: int
    update_config: dict
    rollback_config: dict

    def body(self) -> dict[str, Any]:
        """The Engine API's ServiceSpec."""
        return {
            "Name": self.name,
            "Labels": self.labels,
            "TaskTemplate": self.task_template,
            "Mode": {"Replicated": {"Replicas": self.replicas}},
            "UpdateConfig": self.update_config,
            "RollbackConfig": self.rollback_config,
        }


class Swarm(Protocol):
    def ping(self) -> None: ...

    def nodes(self) -> list[Node]: ...

    def service(self, name: str) -> Service | None:
        """The service named ``name`` (its current state), or None."""

    def services(self, labels: dict) -> list[Service]: ...

    def tasks(self, service_id: str) -> list[Task]: ...

    def create(self, spec: ServiceSpec, auth: dict | None) -> str:
        """Create the service; its ID. ``auth`` (username, password, serveraddress) is handed to
        the nodes that pull its image."""

    def update(self, service: Service, spec: ServiceSpec, auth: dict | None) -> None:
        """Replace the service's spec (at ``service.version``) with ``spec``."""

    def scale(self, service: Service, replicas: int) -> None:
        """Set the service's replica count, nothing else of its spec."""

    def renew_auth(self, service: Service, labels: dict, auth: dict | None) -> None:
        """Hand the nodes a new pull credential for the service and set its labels, nothing else
        of its spec (no task is replaced for that)."""

    def remove(self, service_id: str) -> bool:
        """Remove the service (Swarm stops its tasks); False if it was gone."""

    def task_logs(self, task_id: str, tail: int) -> str: ...
