"""Dependency providers: the resource pools' Docker engines, the database, and a configurable timer.

``DockerEngine`` is the one place that speaks the docker SDK; it implements
``deployer.engine.Engine`` and turns the SDK's exceptions into that module's errors.
"""

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import docker
import eventlet
import requests
from docker import auth as docker_auth
from docker import errors as docker_errors
from nameko.extensions import DependencyProvider

from deployer import credentials
from deployer.engine import (
    ContainerNotFound,
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullDenied,
)
from deployer.orchestrator import Node, Service, ServiceSpec, Task
from deployer.settings import ConfigurationError, Host, Pool, Settings, load_settings
from shared.runtime.db import Database, create_engine
from shared.runtime.settings import settings_of

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

# The SDK raises these (or subclasses) when the engine does not answer at all.
UNREACHABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError, TimeoutError, OSError)


def _explain(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    text = explanation.decode(errors="replace") if isinstance(explanation, bytes) else explanation
    return str(text or exc).strip().splitlines()[0] if str(text or exc).strip() else type(exc).__name__


def _pull_error(message: str) -> EngineError:
    lowered = message.lower()
    if "unauthorized" in lowered or "denied" in lowered or "authentication required" in lowered:
        return PullDenied(message)
    if "not found" in lowered or "manifest unknown" in lowered or "does not exist" in lowered:
        return ImageNotFound(message)
    return EngineError(message)


class DockerEngine:
    """One host's Docker engine through the docker SDK (unix socket, or tcp with TLS)."""

    def __init__(self, host: Host, settings: Settings) -> None:
        self.host = host
        self.pids_limit = settings.pids_limit
        self.api, self.probe = _clients(
            host, settings.docker_api_version, settings.engine_timeout, settings.ping_timeout
        )

    def close(self) -> None:
        self.api.close()
        self.probe.close()

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except docker_errors.NotFound as exc:
            raise ContainerNotFound(f"{what}: {_explain(exc)}") from None
        except docker_errors.APIError as exc:
            if exc.status_code and exc.status_code >= 500 and "connect" in _explain(exc).lower():
                raise EngineUnavailable(f"{self.host.name}: {_explain(exc)}") from None
            raise EngineError(f"{what}: {_explain(exc)}") from None
        except docker_errors.DockerException as exc:
            raise EngineUnavailable(f"{self.host.name} ({self.host.base_url}): {_explain(exc)}") from None
        except UNREACHABLE as exc:
            raise EngineUnavailable(f"{self.host.name} ({self.host.base_url}): {_explain(exc)}") from None

    def ping(self) -> None:
        self._call("ping", self.probe.ping)

    def has_image(self, image: str) -> bool:
        try:
            self._call(f"inspect image {image}", self.api.inspect_image, image)
        except ContainerNotFound:  # the SDK's NotFound, here about the image
            return False
        return True

    def pull(self, image: str, auth: dict[str, str] | None) -> None:
        repository, _, digest = image.partition("@")
        try:
            for chunk in self._call(
                f"pull {image}",
                self.api.pull,
                repository,
                tag=digest or None,
                stream=True,
                decode=True,
                auth_config=auth,
            ):
                if isinstance(chunk, dict) and chunk.get("error"):
                    raise _pull_error(str(chunk["error"]))
        except ContainerNotFound as exc:  # the SDK's NotFound, here about the image (or access to it)
            error = _pull_error(str(exc))
            raise error if isinstance(error, PullDenied) else ImageNotFound(str(exc)) from None
        except EngineUnavailable:
            raise
        except (ImageNotFound, PullDenied):
            raise
        except EngineError as exc:
            raise _pull_error(str(exc)) from None
        except UNREACHABLE as exc:  # while streaming
            raise EngineUnavailable(f"{self.host.name}: {_explain(exc)}") from None

    def run(self, spec: ContainerSpec) -> str:
        policy = {"Name": "" if spec.restart_policy == "no" else spec.restart_policy}
        bindings = {}
        if spec.network_mode == "bridge":
            bindings = {f"{p['container_port']}/tcp": p["host_port"] for p in spec.ports}
        # init: docker's tini is PID 1, so the app gets SIGTERM like any process and is not left
        # to a stop timeout because PID 1 ignores signals it has no handler for (and zombies are
        # reaped). A rolling update waits for each old instance to stop: seconds saved per host.
        host_config = self.api.create_host_config(
            network_mode=spec.network_mode,
            mem_limit=spec.memory,
            nano_cpus=round(spec.cpu * 1e9),
            restart_policy=policy,
            port_bindings=bindings or None,
            init=True,
            # A tenant's code, next to the platform on host networking: no setuid escalation, no raw
            # sockets (which would read the loopback traffic of the broker and the services), a
            # bounded number of processes.
            security_opt=["no-new-privileges:true"],
            cap_drop=["NET_RAW"],
            pids_limit=self.pids_limit,
        )
        created = self._call(
            f"create {spec.name}",
            self.api.create_container,
            image=spec.image,
            command=spec.command,
            environment=spec.env,
            labels=spec.labels,
            name=spec.name,
            host_config=host_config,
            ports=[f"{p['container_port']}/tcp" for p in spec.ports] if bindings else None,
        )
        container_id = created["Id"]
        try:
            self._call(f"start {spec.name}", self.api.start, container_id)
        except EngineError:
            try:
                self._call(f"remove {spec.name}", self.api.remove_container, container_id, force=True)
            except EngineError:
                pass
            raise
        return container_id

    def inspect(self, container_id: str) -> ContainerState:
        data = self._call(f"inspect {container_id}", self.api.inspect_container, container_id)
        state = data.get("State") or {}
        return ContainerState(
            id=data["Id"],
            status=state.get("Status", ""),
            running=bool(state.get("Running")),
            exit_code=state.get("ExitCode"),
            restart_count=int(data.get("RestartCount") or 0),
            oom_killed=bool(state.get("OOMKilled")),
            error=state.get("Error") or "",
        )

    def logs(self, container_id: str, tail: int) -> str:
        raw = self._call(f"logs {container_id}", self.api.logs, container_id, stdout=True, stderr=True, tail=tail)
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def remove(self, container_id: str, stop_timeout: int) -> bool:
        try:
            self._call(f"stop {container_id}", self.api.stop, container_id, timeout=stop_timeout)
        except ContainerNotFound:
            return False
        except EngineUnavailable:
            raise
        except EngineError as exc:  # e.g. it is being removed already: removing settles it
            log.debug("stop %s: %s", container_id, exc)
        try:
            self._call(f"remove {container_id}", self.api.remove_container, container_id, force=True)
        except ContainerNotFound:
            return False
        except EngineUnavailable:
            raise
        except EngineError as exc:
            if "already in progress" not in str(exc):
                raise
        return True

    def list(self, labels: Mapping[str, str]) -> list[ContainerSummary]:
        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        found = self._call("list containers", self.api.containers, all=True, filters=filters)
        return [
            ContainerSummary(
                id=c["Id"],
                name=(c.get("Names") or ["/"])[0].lstrip("/"),
                status=c.get("State", ""),
                labels=c.get("Labels") or {},
            )
            for c in found
        ]


def _clients(
    host: Host, version: str, timeout: float, ping_timeout: float
) -> tuple[docker.APIClient, docker.APIClient]:
    """Two SDK clients of one engine: for calls (ENGINE_TIMEOUT) and for pings (PING_TIMEOUT)."""
    tls: Any = False
    if host.tls is not None:
        cert = (host.tls.client_cert, host.tls.client_key) if host.tls.client_cert else None
        tls = docker.tls.TLSConfig(client_cert=cert, ca_cert=host.tls.ca_cert, verify=host.tls.verify)
    # An explicit API version: the client then does not call the engine when it is built.
    options = dict(base_url=host.base_url, version=version, tls=tls)
    return docker.APIClient(timeout=timeout, **options), docker.APIClient(timeout=ping_timeout, **options)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class DockerSwarm:
    """A swarm pool through its managers' Engine API (docker SDK): the first manager that answers
    serves each call; a manager that fails to answer is passed over for the next."""

    def __init__(self, pool: Pool, version: str, timeout: float, ping_timeout: float) -> None:
        self.pool = pool
        self.managers = [(host, *_clients(host, version, timeout, ping_timeout)) for host in pool.managers]

    def close(self) -> None:
        for _, api, probe in self.managers:
            api.close()
            probe.close()

    def _call(self, what: str, call: Callable[[docker.APIClient], Any], probe: bool = False) -> Any:
        errors = []
        for host, api, ping_client in self.managers:
            try:
                return call(ping_client if probe else api)
            except docker_errors.NotFound as exc:
                raise ContainerNotFound(f"{what}: {_explain(exc)}") from None
            except docker_errors.APIError as exc:
                message = _explain(exc)
                # A manager that lost its quorum or is not a manager (any more): try the next.
                if exc.status_code == 503 or "not a swarm manager" in message:
                    errors.append(f"{host.name}: {message}")
                    continue
                raise EngineError(f"{what}: {message}") from None
            except (docker_errors.DockerException, *UNREACHABLE) as exc:
                errors.append(f"{host.name} ({host.base_url}): {_explain(exc)}")
        raise EngineUnavailable(f"no manager of swarm pool {self.pool.name!r} answers: {'; '.join(errors)}")

    def ping(self) -> None:
        self._call("ping", lambda api: api.ping(), probe=True)
        info = self._call("info", lambda api: api.info(), probe=True)
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise EngineUnavailable(f"swarm pool {self.pool.name!r}: the engine is not a manager of an active swarm")

    def nodes(self) -> list[Node]:
        found = []
        for node in self._call("list nodes", lambda api: api.nodes()):
            spec, description, status = node.get("Spec") or {}, node.get("Description") or {}, node.get("Status") or {}
            resources = description.get("Resources") or {}
            labels = spec.get("Labels") or {}
            hostname = description.get("Hostname", "")
            found.append(
                Node(
                    id=node["ID"],
                    name=labels.get("imagehub.host") or hostname,
                    hostname=hostname,
                    role=spec.get("Role", ""),
                    state=status.get("State", ""),
                    availability=spec.get("Availability", ""),
                    address=status.get("Addr", ""),
                    cpus=(resources.get("NanoCPUs") or 0) / 1e9,
                    memory=int(resources.get("MemoryBytes") or 0),
                    labels=labels,
                )
            )
        return sorted(found, key=lambda n: (n.name, n.id))

    @staticmethod
    def _service(data: dict[str, Any]) -> Service:
        spec = data.get("Spec") or {}
        labels = spec.get("Labels") or {}
        container_labels = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}).get("Labels") or {}
        update = data.get("UpdateStatus") or {}
        return Service(
            id=data["ID"],
            name=spec.get("Name", ""),
            version=int((data.get("Version") or {}).get("Index") or 0),
            labels=labels,
            replicas=int(((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas") or 0),
            revision=_int(container_labels.get("imagehub.revision")),
            update_state=update.get("State") or None,
            update_message=update.get("Message") or "",
            spec=spec,
            previous_spec=data.get("PreviousSpec"),
        )

    def service(self, name: str) -> Service | None:
        found = self._call("list services", lambda api: api.services(filters={"name": name}))
        exact = [s for s in found if (s.get("Spec") or {}).get("Name") == name]  # the filter is a prefix match
        return self._service(exact[0]) if exact else None

    def services(self, labels: Mapping[str, str]) -> list[Service]:
        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        return [self._service(s) for s in self._call("list services", lambda api: api.services(filters=filters))]

    def tasks(self, service_id: str) -> list[Task]:
        found = []
        for task in self._call("list tasks", lambda api: api.tasks(filters={"service": service_id})):
            status = task.get("Status") or {}
            container = status.get("ContainerStatus") or {}
            labels = ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Labels") or {}
            found.append(
                Task(
                    id=task["ID"],
                    slot=int(task.get("Slot") or 0),
                    node_id=task.get("NodeID", ""),
                    desired_state=task.get("DesiredState", ""),
                    state=status.get("State", ""),
                    error=status.get("Err", ""),
                    message=status.get("Message", ""),
                    container_id=container.get("ContainerID") or None,
                    exit_code=container.get("ExitCode"),
                    revision=_int(labels.get("imagehub.revision")),
                    created_at=task.get("CreatedAt", ""),
                )
            )
        return found

    @staticmethod
    def _auth_header(auth: Mapping[str, str] | None) -> dict[str, str]:
        # The nodes pull with it: Swarm keeps it with the service for its tasks' pulls.
        return {"X-Registry-Auth": docker_auth.encode_header(dict(auth)).decode()} if auth else {}

    def create(self, spec: ServiceSpec, auth: Mapping[str, str] | None) -> str:
        headers = self._auth_header(auth)
        created = self._call(
            f"create service {spec.name}",
            lambda api: api._result(
                api._post_json(api._url("/services/create"), data=spec.body(), headers=headers), True
            ),
        )
        return str(created["ID"])

    def update(self, service: Service, spec: ServiceSpec, auth: Mapping[str, str] | None) -> None:
        self._update(service, spec.body(), self._auth_header(auth))

    def scale(self, service: Service, replicas: int) -> None:
        body = dict(service.spec, Mode={"Replicated": {"Replicas": replicas}})
        self._update(service, body, {})

    def renew_auth(self, service: Service, labels: Mapping[str, str], auth: Mapping[str, str] | None) -> None:
        # An update with no X-Registry-Auth keeps the credential the service has.
        self._update(service, dict(service.spec, Labels=dict(labels)), self._auth_header(auth))

    def _update(self, service: Service, body: dict[str, Any], headers: dict[str, str]) -> None:
        params = {"version": service.version}
        url = ("/services/{0}/update", service.id)
        self._call(
            f"update service {service.name}",
            lambda api: api._raise_for_status(
                api._post_json(api._url(*url), data=body, headers=headers, params=params)
            ),
        )

    def remove(self, service_id: str) -> bool:
        try:
            self._call(f"remove service {service_id}", lambda api: api.remove_service(service_id))
        except ContainerNotFound:
            return False
        return True

    def task_logs(self, task_id: str, tail: int) -> str:
        def read(api: docker.APIClient) -> str:
            params = {"stdout": 1, "stderr": 1, "tail": tail}
            response = api._get(api._url("/tasks/{0}/logs", task_id), params=params, stream=False)
            api._raise_for_status(response)
            return b"".join(api._multiplexed_buffer_helper(response)).decode(errors="replace")

        return str(self._call(f"logs of task {task_id}", read))


def http_ok(url: str, timeout: float) -> bool:
    """True if ``url`` answers GET with a 2xx or 3xx status (redirects are not followed)."""
    try:
        return requests.get(url, timeout=timeout, allow_redirects=False).status_code < 400
    except requests.RequestException:
        return False


def run_all(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item)]`` with the calls made concurrently (green threads), in order."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    return list(eventlet.GreenPool(len(items)).imap(fn, items))


class ResourcePools(DependencyProvider):
    """The deployer's settings and one ``DockerEngine`` per configured host, built at start-up.

    Workers get this provider's ``Pools``: ``.settings`` and ``.engine(host_name)``.
    """

    def setup(self) -> None:
        self.settings = settings_of(self.container, load_settings)
        self.engines = {host.name: DockerEngine(host, self.settings) for host in self.settings.all_hosts()}
        self.swarms = {
            pool.name: DockerSwarm(
                pool, self.settings.docker_api_version, self.settings.engine_timeout, self.settings.ping_timeout
            )
            for pool in self.settings.pools.values()
            if pool.is_swarm
        }

    def stop(self) -> None:
        for engine in self.engines.values():
            engine.close()
        for swarm in self.swarms.values():
            swarm.close()

    kill = stop

    def get_dependency(self, worker_ctx: Any) -> "Pools":
        return Pools(self.settings, self.engines, self.swarms)


class PullCredentials(DependencyProvider):
    """What the engines pull with, per tenant: ``deployer.credentials`` as configured by
    ``PULL_CREDENTIALS`` (one cache per container, shared by its workers)."""

    def setup(self) -> None:
        settings = settings_of(self.container, load_settings)
        self.credentials: credentials.RobotCredentials | credentials.StaticCredentials
        if settings.pull_credentials == credentials.ROBOT:
            self.credentials = credentials.RobotCredentials(
                credentials.standalone_issuer(self.container.config["AMQP_URI"], settings.auth_rpc_timeout)
            )
        else:
            self.credentials = credentials.StaticCredentials(settings.registry_auth)

    def get_dependency(self, worker_ctx: Any) -> credentials.RobotCredentials | credentials.StaticCredentials:
        return self.credentials


class Pools:
    def __init__(
        self, settings: Settings, engines: Mapping[str, DockerEngine], swarms: Mapping[str, DockerSwarm]
    ) -> None:
        self.settings = settings
        self._engines = engines
        self._swarms = swarms

    def swarm(self, pool_name: str) -> DockerSwarm:
        try:
            return self._swarms[pool_name]
        except KeyError:
            raise EngineUnavailable(f"pool {pool_name} is not a swarm pool of the configuration") from None

    def engine(self, host_name: str) -> DockerEngine:
        try:
            return self._engines[host_name]
        except KeyError:  # recorded on a host since removed from the configuration
            raise EngineUnavailable(f"host {host_name} is not in the configuration any more") from None


class DeployerDatabase(Database):
    """nameko-sqlalchemy's provider on an engine tuned for the database (see ``shared.runtime.db``),
    configured under ``DB_URIS["<service_name>:<base>"]`` whatever the service class is called.

    nameko-sqlalchemy keys the URL by the container's service name; the deployer runs as two
    service classes (``deployer`` and ``deployer_worker``) on one database, so both read the
    ``deployer:Base`` entry.
    """

    def __init__(self, declarative_base: Any, service_name: str, **options: Any) -> None:
        super().__init__(declarative_base, **options)
        self.service_name = service_name

    def setup(self) -> None:
        from nameko_sqlalchemy.database import DB_URIS_KEY, Session
        from sqlalchemy.orm import sessionmaker

        base_name = self.declarative_base.__name__
        self.db_uri = self.container.config[DB_URIS_KEY][f"{self.service_name}:{base_name}"].format(
            {"service_name": self.service_name, "declarative_base_name": base_name}
        )
        self.engine = create_engine(self.db_uri)
        self.Session = sessionmaker(bind=self.engine, class_=Session, **self.session_options)


class WorkerPoolSize(DependencyProvider):
    """This service's own number of concurrent workers, from ``config[config_key]``.

    nameko 2.14 reads ``max_workers`` once per container, from a config shared by every service
    class a ``nameko run`` starts. This sets the container's pool (and with it the prefetch count
    of its queue consumer, read when it starts consuming) to ``config[config_key]`` at setup,
    before any worker runs. Without the key the container keeps ``max_workers``.
    """

    def __init__(self, config_key: str) -> None:
        self.config_key = config_key

    def setup(self) -> None:
        value = self.container.config.get(self.config_key)
        if value is None or value == "":
            return
        try:
            size = int(value)
        except (TypeError, ValueError):
            raise ConfigurationError(f"{self.config_key} must be a whole number of workers, got {value!r}") from None
        if size < 1:
            raise ConfigurationError(f"{self.config_key} must be at least 1, got {value!r}")
        self.container.max_workers = size
        # Built in the container's __init__ from max_workers; resized before any worker is spawned.
        self.container._worker_pool.resize(size)

    def get_dependency(self, worker_ctx: Any) -> int:
        return self.container.max_workers
