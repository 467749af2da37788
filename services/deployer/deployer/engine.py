"""What the deployer needs from a container engine, without naming Docker.

``deployer.dependencies.DockerEngine`` implements it over the docker SDK; unit tests use a fake
with the same methods and errors. Every method may raise ``EngineUnavailable`` (the host cannot
be reached), which the logic reports and never reads as "no containers there".
"""

from dataclasses import dataclass, field
from typing import Protocol

# Labels on every container the deployer makes; the reconciler finds its containers by them.
MANAGED = "imagehub.managed"
DEPLOYER = "imagehub.deployer"
TENANT = "imagehub.tenant"
DEPLOYMENT = "imagehub.deployment"
REVISION = "imagehub.revision"
INSTANCE = "imagehub.instance"


class EngineError(Exception):
    """The engine refused a request (the message is the engine's explanation)."""


class EngineUnavailable(EngineError):
    """The host's engine could not be reached (down, socket missing, timeout, TLS refused)."""


class ImageNotFound(EngineError):
    """The registry has no such image (or digest)."""


class PullDenied(EngineError):
    """The registry refused the engine's credentials for this image."""


class ContainerNotFound(EngineError):
    """No container with that ID on this engine (it was removed)."""


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str  # "<registry>/<ns>/<name>@<digest>"
    command: list | None
    env: dict
    labels: dict
    cpu: float
    memory: int  # bytes
    restart_policy: str
    network_mode: str  # "host" or "bridge"
    ports: list = field(default_factory=list)  # [{"container_port", "host_port"}] (published in bridge mode)


@dataclass(frozen=True)
class ContainerState:
    id: str
    status: str  # created | running | restarting | paused | exited | dead | removing
    running: bool
    exit_code: int | None = None
    restart_count: int = 0
    oom_killed: bool = False
    error: str = ""


@dataclass(frozen=True)
class ContainerSummary:
    id: str
    name: str
    status: str
    labels: dict


class Engine(Protocol):
    def ping(self) -> None: ...

    def has_image(self, image: str) -> bool:
        """Whether the engine already holds ``image`` under that reference."""

    def pull(self, image: str, auth: dict | None) -> None: ...

    def run(self, spec: ContainerSpec) -> str:
        """Create and start a container; its ID. A container that could not start is removed."""

    def inspect(self, container_id: str) -> ContainerState: ...

    def logs(self, container_id: str, tail: int) -> str: ...

    def remove(self, container_id: str, stop_timeout: int) -> bool:
        """Stop (SIGTERM, then SIGKILL after ``stop_timeout`` s) and remove; False if it was gone."""

    def list(self, labels: dict) -> list: ...
