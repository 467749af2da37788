"""Deployment specs: checked field by field, normalised, and checked against the pool.

Every problem is reported at once in one ``InvalidRequest`` whose message names each field
(``memory must be …; ports[0].host_port must be …``). What comes out is plain JSON-safe data:

* the *runtime* of a revision: ``env``, ``command``, ``ports``, ``cpu``, ``memory`` (bytes),
  ``restart_policy``, ``health``, ``update_strategy`` — stored with each revision, so a rollback
  reuses it exactly;
* the deployment's own fields: ``name``, ``image`` (a parsed reference), ``pool``, ``replicas``,
  ``auto_deploy``.
"""

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from deployer.policy import NEVER, PolicyError, parse_policy
from deployer.settings import Pool, Settings
from deployer.units import format_memory, parse_memory
from shared.contracts.errors import InvalidReference, InvalidRequest
from shared.contracts.reference import Reference, parse_reference

NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV = re.compile(r"PORT[0-9]*")  # handed out by the deployer
RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")
START_FIRST, STOP_FIRST = "start-first", "stop-first"
UPDATE_STRATEGIES = (START_FIRST, STOP_FIRST)
MIN_MEMORY = 6 * 1024**2  # Docker refuses less
MIN_CPU = 0.01  # Docker's smallest --cpus
MAX_PORTS = 16
MAX_ENV = 256
MAX_HEALTH_SECONDS = 600
MAX_CONSTRAINTS = 16
# A Swarm placement constraint on a node's attributes or labels: `node.labels.zone==eu-1`.
CONSTRAINT = re.compile(
    r"(node\.(id|hostname|role|platform\.os|platform\.arch|labels\.[A-Za-z0-9_.-]{1,128})|engine\.labels\.[A-Za-z0-9_.-]{1,128})"
    r"\s*(==|!=)\s*[A-Za-z0-9_.:/-]{1,128}"
)

RUNTIME_FIELDS = (
    "env",
    "command",
    "ports",
    "cpu",
    "memory",
    "restart_policy",
    "health",
    "update_strategy",
    "placement",
)
CREATE_FIELDS = ("name", "image", "pool", "replicas", *RUNTIME_FIELDS, "auto_deploy")
# What update_deployment may change; ``tag`` is a shorthand for the same image at another tag.
CHANGE_FIELDS = ("image", "tag") + RUNTIME_FIELDS + ("auto_deploy",)


class Problems:
    """Collects ``field message`` lines; ``raise_if_any`` turns them into one InvalidRequest."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, field: str, message: str) -> None:
        self.lines.append(f"{field} {message}")

    def raise_if_any(self) -> None:
        if self.lines:
            raise InvalidRequest("; ".join(self.lines))


@dataclass(frozen=True)
class CreateRequest:
    name: str
    image: Reference
    pool: str
    replicas: int
    runtime: dict[str, Any]
    auto_deploy: dict[str, str]


@dataclass(frozen=True)
class Changes:
    image: Reference | None  # a new Reference, or None to keep the pinned digest
    runtime: dict[str, Any]  # the whole new runtime (the old one with the changes applied)
    auto_deploy: dict[str, str] | None
    runtime_changed: bool = False

    @property
    def needs_rollout(self) -> bool:
        return self.image is not None or self.runtime_changed


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite int or float; an int too large for a float (``math.isfinite`` overflows on it)
    is not a number anyone means for a CPU share or a number of seconds."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


# -- single fields --------------------------------------------------------------------------------


def check_name(value: Any, problems: Problems) -> str | None:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        problems.add(
            "name",
            f"must be 1-63 lower-case letters, digits or '-', starting and ending with a "
            f"letter or digit (a DNS label), got {value!r}",
        )
        return None
    return value


def check_image(value: Any, settings: Settings, problems: Problems) -> Reference | None:
    if not isinstance(value, str) or not value:
        problems.add("image", f"must be an image reference '[registry/]<namespace>/<name>:<tag>', got {value!r}")
        return None
    try:
        reference = parse_reference(value)
    except InvalidReference as exc:
        problems.add("image", f"{value!r}: {exc}")
        return None
    if reference.digest is not None:
        problems.add(
            "image",
            f"{value!r}: give a tag, not a digest; the deployer resolves the tag through the "
            f"catalogue and pins its digest itself",
        )
        return None
    if reference.registry is not None and reference.registry not in settings.registry_hosts:
        problems.add(
            "image",
            f"{value!r}: registry {reference.registry!r} is not this platform's registry "
            f"({', '.join(settings.registry_hosts)})",
        )
        return None
    return reference


def check_pool(value: Any, settings: Settings, problems: Problems) -> str | None:
    if value is None:
        return settings.default_pool
    if not isinstance(value, str) or value not in settings.pools:
        problems.add("pool", f"{value!r} is unknown; pools: {', '.join(sorted(settings.pools))}")
        return None
    return value


def check_replicas(value: Any, settings: Settings, problems: Problems) -> int | None:
    if not _is_int(value) or not 0 <= value <= settings.max_replicas:
        problems.add("replicas", f"must be a whole number from 0 to {settings.max_replicas}, got {value!r}")
        return None
    return value


def check_env(value: Any, problems: Problems) -> dict[str, str] | None:
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.add("env", f"must be a mapping of names to string values, got {type(value).__name__}")
        return None
    if len(value) > MAX_ENV:
        problems.add("env", f"has {len(value)} variables; at most {MAX_ENV}")
        return None
    env: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not ENV_NAME.fullmatch(key):
            problems.add("env", f"name {key!r} must be letters, digits and '_', not starting with a digit")
        elif not isinstance(item, str):
            problems.add(f"env.{key}", f"must be a string, got {type(item).__name__} {item!r}")
        elif "\x00" in item:
            problems.add(f"env.{key}", "must not contain a NUL character")
        else:
            env[key] = item
    return env


def check_command(value: Any, problems: Problems) -> list[str] | None:
    """None (the image's own command), a list of strings, or a string split as a shell would."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            problems.add("command", f"cannot be split into words: {exc}")
            return None
    elif isinstance(value, list) and all(isinstance(word, str) for word in value):
        words = list(value)
    else:
        problems.add("command", f"must be a list of strings or a string, got {value!r}")
        return None
    if not words:
        problems.add("command", "is empty; leave it out to run the image's own command")
        return None
    return words


def _port(value: Any, field: str, problems: Problems, allow_zero: bool) -> int | None:
    low = 0 if allow_zero else 1
    if not _is_int(value) or not low <= value <= 65535:
        problems.add(field, f"must be a whole number from {low} to 65535, got {value!r}")
        return None
    return value


def check_ports(value: Any, problems: Problems) -> list[dict[str, Any]] | None:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.add("ports", f'must be a list of {{"container_port", "host_port"}}, got {value!r}')
        return None
    if len(value) > MAX_PORTS:
        problems.add("ports", f"lists {len(value)} ports; at most {MAX_PORTS}")
        return None
    ports: list[dict[str, Any]] = []
    fixed: dict[int, int] = {}  # host port -> the index of the port that asked for it
    for index, item in enumerate(value):
        field = f"ports[{index}]"
        if not isinstance(item, dict):
            problems.add(field, f'must be {{"container_port", "host_port"}}, got {item!r}')
            continue
        unknown = sorted(set(item) - {"container_port", "host_port"})
        if unknown:
            problems.add(field, f'has unknown keys {unknown}; a port is {{"container_port", "host_port"}}')
            continue
        container_port = item.get("container_port")
        if container_port is not None:
            container_port = _port(container_port, f"{field}.container_port", problems, allow_zero=False)
        host_port = item.get("host_port")
        host_port = 0 if host_port is None else _port(host_port, f"{field}.host_port", problems, allow_zero=True)
        if host_port:
            if host_port in fixed:
                problems.add(f"{field}.host_port", f"{host_port} is also ports[{fixed[host_port]}].host_port")
            fixed[host_port] = index
        ports.append({"container_port": container_port, "host_port": host_port})
    return ports


def check_cpu(value: Any, settings: Settings, problems: Problems) -> float | None:
    if value is None:
        return settings.default_cpu
    if not _is_number(value) or value < MIN_CPU:
        problems.add("cpu", f"must be a number of CPUs of at least {MIN_CPU} (e.g. 0.5), got {value!r}")
        return None
    return float(value)


def check_memory(value: Any, settings: Settings, problems: Problems) -> int | None:
    if value is None:
        return settings.default_memory
    try:
        size = parse_memory(value)
    except ValueError as exc:
        problems.add("memory", str(exc))
        return None
    if size < MIN_MEMORY:
        problems.add("memory", f"must be at least {format_memory(MIN_MEMORY)} (Docker's minimum), got {value!r}")
        return None
    return size


def check_restart_policy(value: Any, problems: Problems) -> str | None:
    if value is None:
        return "unless-stopped"
    if value not in RESTART_POLICIES:
        problems.add("restart_policy", f"must be one of {', '.join(RESTART_POLICIES)}, got {value!r}")
        return None
    return value


def check_health(value: Any, settings: Settings, problems: Problems) -> dict[str, Any] | None:
    if value is None:
        return {"type": "running", "seconds": settings.health_seconds}
    if not isinstance(value, dict) or value.get("type", "running") not in ("running", "http"):
        problems.add(
            "health",
            'must be {"type": "running", "seconds": N} or '
            f'{{"type": "http", "path", "port_index", "timeout"}}, got {value!r}',
        )
        return None
    kind = value.get("type", "running")
    allowed = {"type", "seconds"} if kind == "running" else {"type", "path", "port_index", "timeout"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        problems.add("health", f"has unknown keys {unknown} for type {kind!r}")
        return None
    if kind == "running":
        seconds = value.get("seconds", settings.health_seconds)
        if not _is_number(seconds) or not 0 <= seconds <= MAX_HEALTH_SECONDS:
            problems.add("health.seconds", f"must be a number from 0 to {MAX_HEALTH_SECONDS}, got {seconds!r}")
            return None
        return {"type": "running", "seconds": seconds}
    path = value.get("path", "/")
    port_index = value.get("port_index", 0)
    timeout = value.get("timeout", settings.health_timeout)
    ok = True
    if not isinstance(path, str) or not path.startswith("/") or any(c.isspace() for c in path):
        problems.add("health.path", f"must be a URL path starting with '/', got {path!r}")
        ok = False
    if not _is_int(port_index) or port_index < 0:
        problems.add("health.port_index", f"must be the index of one of the spec's ports, got {port_index!r}")
        ok = False
    if not _is_number(timeout) or not 0 < timeout <= MAX_HEALTH_SECONDS:
        problems.add("health.timeout", f"must be a number of seconds from 0 to {MAX_HEALTH_SECONDS}, got {timeout!r}")
        ok = False
    return {"type": "http", "path": path, "port_index": port_index, "timeout": timeout} if ok else None


def default_update_strategy(ports: Any) -> str:
    """``stop-first`` when a port is fixed (the new instance could not bind it beside the old
    one), else ``start-first``."""
    fixed = any(isinstance(p, dict) and p.get("host_port") for p in ports or [])
    return STOP_FIRST if fixed else START_FIRST


def update_strategy(runtime: Mapping[str, Any]) -> str:
    """A runtime's update strategy; a revision recorded before the field had the default."""
    return str(runtime.get("update_strategy") or default_update_strategy(runtime.get("ports")))


def check_update_strategy(value: Any, ports: list[dict[str, Any]] | None, problems: Problems) -> str | None:
    """``start-first`` (the new instance healthy before the old one stops: no downtime) or
    ``stop-first`` (the old one stops first: a recreate, each replaced instance down until its
    successor starts); the default follows the ports. start-first with a fixed host port is
    refused: the new instance would need the port the old one holds."""
    if value is None:
        return default_update_strategy(ports)
    if value not in UPDATE_STRATEGIES:
        problems.add("update_strategy", f"must be one of {', '.join(UPDATE_STRATEGIES)}, got {value!r}")
        return None
    fixed = sorted(fixed_ports({"ports": ports or []}))
    if value == START_FIRST and fixed:
        problems.add(
            "update_strategy",
            f"start-first cannot update an instance on fixed host port {', '.join(map(str, fixed))}: the new "
            f"instance would need the port while the old one holds it; use stop-first (each replaced instance "
            f"is down until its successor starts) or host_port 0",
        )
        return None
    return str(value)


def check_placement(value: Any, settings: Settings, problems: Problems) -> dict[str, Any] | None:
    """Where a swarm pool may run the tasks: ``constraints`` (Swarm's, on node attributes and
    labels, all must hold) and ``max_per_node`` (at most that many tasks of the deployment on one
    node). None: anywhere, spread over the nodes."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"constraints", "max_per_node"}:
        problems.add("placement", f'must be {{"constraints": [...], "max_per_node": N}}, got {value!r}')
        return None
    constraints = value.get("constraints") or []
    ok = True
    if not isinstance(constraints, list) or len(constraints) > MAX_CONSTRAINTS:
        problems.add("placement.constraints", f"must be a list of at most {MAX_CONSTRAINTS} constraints")
        ok = False
    else:
        for index, item in enumerate(constraints):
            if not isinstance(item, str) or not CONSTRAINT.fullmatch(item):
                problems.add(
                    f"placement.constraints[{index}]",
                    f"must be '<node.id|node.hostname|node.role|node.labels.K|engine.labels.K> ==|!= <value>', "
                    f"got {item!r}",
                )
                ok = False
    per_node = value.get("max_per_node")
    if per_node is not None and (not _is_int(per_node) or not 1 <= per_node <= settings.max_replicas):
        problems.add(
            "placement.max_per_node", f"must be a whole number from 1 to {settings.max_replicas}, got {per_node!r}"
        )
        ok = False
    if not ok:
        return None
    placement: dict[str, Any] = {"constraints": [c.replace(" ", "") for c in constraints]}
    if per_node is not None:
        placement["max_per_node"] = per_node
    return placement


def check_auto_deploy(value: Any, problems: Problems) -> dict[str, str] | None:
    """``{"policy": …}``; the policy's syntax is ``deployer.policy``'s."""
    if value is None:
        return {"policy": NEVER}
    policy = value.get("policy") if isinstance(value, dict) and set(value) == {"policy"} else None
    if not isinstance(policy, str):
        problems.add("auto_deploy", f'must be {{"policy": …}}, got {value!r}')
        return None
    policy = check_policy(policy, "auto_deploy.policy", problems)
    return None if policy is None else {"policy": policy}


def check_policy(value: Any, field: str, problems: Problems) -> str | None:
    """An auto-deploy policy as text (``deployer.policy``), or None with the problem added."""
    try:
        return str(parse_policy(value))
    except PolicyError as exc:
        problems.add(field, str(exc))
        return None


# -- whole specs ----------------------------------------------------------------------------------


def _check_runtime(values: Mapping[str, Any], settings: Settings, problems: Problems) -> dict[str, Any]:
    ports = check_ports(values.get("ports"), problems)
    return {
        "env": check_env(values.get("env"), problems),
        "command": check_command(values.get("command"), problems),
        "ports": ports,
        "cpu": check_cpu(values.get("cpu"), settings, problems),
        "memory": check_memory(values.get("memory"), settings, problems),
        "restart_policy": check_restart_policy(values.get("restart_policy"), problems),
        "health": check_health(values.get("health"), settings, problems),
        "update_strategy": check_update_strategy(values.get("update_strategy"), ports, problems),
        "placement": check_placement(values.get("placement"), settings, problems),
    }


def check_fits_pool(runtime: Mapping[str, Any], replicas: int | None, pool: Pool, problems: Problems) -> None:
    """Rules that depend on the pool: capacity, network mode, fixed host ports, placement."""
    if runtime.get("placement") and not pool.is_swarm:
        problems.add(
            "placement",
            f"is a swarm pool's (constraints on nodes, tasks per node); pool {pool.name!r} is a list of "
            f"engines and places each instance on the host with the most room",
        )
    if runtime["cpu"] is not None and pool.max_cpus is not None and runtime["cpu"] > pool.max_cpus:
        problems.add(
            "cpu",
            f"{runtime['cpu']:g} is more than any host of pool {pool.name!r} has ({pool.max_cpus:g} CPUs at most)",
        )
    if runtime["memory"] is not None and pool.max_memory is not None and runtime["memory"] > pool.max_memory:
        problems.add(
            "memory",
            f"{format_memory(runtime['memory'])} is more than any host of pool {pool.name!r} "
            f"has ({format_memory(pool.max_memory)} at most)",
        )
    ports = runtime["ports"] or []
    for index, port in enumerate(ports):
        if pool.network_mode == "bridge" and port["container_port"] is None:
            problems.add(
                f"ports[{index}].container_port",
                f"is required: pool {pool.name!r} publishes host_port -> container_port (bridge networking)",
            )
        if (
            port["host_port"]
            and replicas
            and replicas > 1
            and (pool.shared_network_namespace or (len(pool.hosts) == 1 and not pool.is_swarm))
        ):
            problems.add(
                f"ports[{index}].host_port",
                f"{port['host_port']} is fixed, but {replicas} replicas cannot all have it: the hosts of "
                f"pool {pool.name!r} share one network namespace; leave host_port 0 (or out) to get a "
                f"free port per replica",
            )
    if ports and runtime["env"]:
        for key in sorted(runtime["env"]):
            if RESERVED_ENV.fullmatch(key):
                problems.add(f"env.{key}", "is set by the deployer to the instance's port; choose another name")
    health = runtime["health"]
    if health and health["type"] == "http" and health["port_index"] >= len(ports):
        problems.add("health.port_index", f"{health['port_index']} names no port: the spec has {len(ports)}")


def _unknown(values: Any, allowed: tuple[str, ...], what: str, problems: Problems) -> None:
    if not isinstance(values, dict):
        raise InvalidRequest(f"{what} must be a mapping of fields, got {type(values).__name__}")
    for key in sorted(set(values) - set(allowed), key=str):
        problems.add(str(key), f"is not a {what} field; fields: {', '.join(allowed)}")


def check_create(spec: Any, settings: Settings) -> CreateRequest:
    """``CreateRequest`` for a create_deployment spec; ``InvalidRequest`` naming every bad field."""
    problems = Problems()
    _unknown(spec, CREATE_FIELDS, "spec", problems)
    if "name" not in spec:
        problems.add("name", "is required")
    if "image" not in spec:
        problems.add("image", "is required")
    name = check_name(spec.get("name"), problems) if "name" in spec else None
    image = check_image(spec.get("image"), settings, problems) if "image" in spec else None
    pool_name = check_pool(spec.get("pool"), settings, problems)
    replicas = check_replicas(spec.get("replicas", 1), settings, problems)
    runtime = _check_runtime(spec, settings, problems)
    auto_deploy = check_auto_deploy(spec.get("auto_deploy"), problems)
    if pool_name is not None:
        check_fits_pool(runtime, replicas, settings.pools[pool_name], problems)
    problems.raise_if_any()
    assert name is not None  # a missing or bad name is a problem, raised just above
    # Like the name, each of these is None only with a problem added, raised just above.
    return CreateRequest(
        name=name,
        image=cast(Reference, image),
        pool=cast(str, pool_name),
        replicas=cast(int, replicas),
        runtime=runtime,
        auto_deploy=cast("dict[str, str]", auto_deploy),
    )


def check_changes(
    changes: Any, current_image: str, current_runtime: Mapping[str, Any], pool: Pool, replicas: int, settings: Settings
) -> Changes:
    """``Changes`` for update_deployment: the given fields replace the current ones.

    ``tag`` alone moves the current image to another tag; ``image`` and ``tag`` together are
    refused. Fields left out keep their current values (``env`` is replaced as a whole).
    """
    problems = Problems()
    _unknown(changes, CHANGE_FIELDS, "changes", problems)
    if not changes:
        problems.add("changes", f"is empty; give at least one of {', '.join(CHANGE_FIELDS)}")
    image = None
    if "image" in changes and "tag" in changes:
        problems.add("tag", "cannot be given with image; put the tag in the image reference")
    elif "image" in changes:
        image = check_image(changes["image"], settings, problems)
    elif "tag" in changes:
        if isinstance(changes["tag"], str) and changes["tag"]:
            image = check_image(f"{current_image}:{changes['tag']}", settings, problems)
        else:
            problems.add("tag", f"must be a tag of the deployment's repository, such as 'v1.2', got {changes['tag']!r}")
    merged = dict(current_runtime)
    if "update_strategy" not in changes and update_strategy(current_runtime) == default_update_strategy(
        current_runtime.get("ports")
    ):
        # The default, not a choice: it follows the new ports (a fixed port makes it stop-first).
        merged.pop("update_strategy", None)
    merged.update({key: changes[key] for key in RUNTIME_FIELDS if key in changes})
    # Normalised values pass their own checks again unchanged (memory as bytes, command as list).
    runtime = _check_runtime(merged, settings, problems)
    auto_deploy = check_auto_deploy(changes["auto_deploy"], problems) if "auto_deploy" in changes else None
    check_fits_pool(runtime, replicas, pool, problems)
    problems.raise_if_any()
    return Changes(image=image, runtime=runtime, auto_deploy=auto_deploy, runtime_changed=runtime != current_runtime)


def fixed_ports(runtime: Mapping[str, Any]) -> set[int]:
    return {port["host_port"] for port in runtime.get("ports") or [] if port["host_port"]}


def check_rolling(old_runtime: Mapping[str, Any], new_runtime: Mapping[str, Any], replicas: int) -> None:
    """A start-first update starts each new instance before it stops an old one: a fixed host
    port in both the old and the new runtime would be needed twice at once. (A runtime recorded
    before update strategies existed can say start-first with a fixed port.)"""
    if not replicas or update_strategy(new_runtime) == STOP_FIRST:
        return
    both = fixed_ports(old_runtime) & fixed_ports(new_runtime)
    if both:
        ports = ", ".join(str(p) for p in sorted(both))
        raise InvalidRequest(
            f"update_strategy start-first: host_port {ports} is fixed in the running revision and in the new "
            f"one, and a start-first update starts the new instance before it stops the old, so it would "
            f"need the port twice; use update_strategy stop-first (each replaced instance is down until "
            f"its successor starts), or host_port 0 (allocated per instance)"
        )
