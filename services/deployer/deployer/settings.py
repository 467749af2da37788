"""The deployer's configuration, read once from the service config into plain dataclasses.

Resource pools come from ``POOLS`` in config.yml, or from the YAML file named by ``POOLS_FILE``
(same shape) when it is set. Every mistake in them stops the service at start-up with a message
naming the key, rather than surfacing later as a failed deployment.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from deployer.units import parse_memory

NETWORK_MODES = ("host", "bridge")
ENGINES, SWARM = "engines", "swarm"
KINDS = (ENGINES, SWARM)
NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
LOOPBACK = re.compile(r"127(\.\d{1,3}){3}|localhost|::1")


class ConfigurationError(ValueError):
    """The service's configuration is unusable; the message names the key."""


@dataclass(frozen=True)
class TLSSettings:
    ca_cert: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool = True


@dataclass(frozen=True)
class Host:
    name: str
    pool: str
    base_url: str
    address: str  # where the host's ports answer (health checks, instance addresses)
    cpus: float
    memory: int  # bytes
    tls: TLSSettings | None = None

    @property
    def is_loopback(self) -> bool:
        return bool(LOOPBACK.fullmatch(self.address))


@dataclass(frozen=True)
class Pool:
    """A resource pool. ``engines``: the deployer's own orchestration over ``hosts``, a list of
    Docker engines. ``swarm``: a Docker Swarm reached through one of its ``managers`` (the first
    that answers); its nodes are the swarm's, read live, and ``hosts`` is empty."""

    name: str
    network_mode: str
    hosts: tuple
    # True when the hosts share one network namespace (the engines of this machine): a host
    # port is then taken pool-wide, not per host.
    shared_network_namespace: bool = False
    kind: str = ENGINES
    managers: tuple = ()

    @property
    def is_swarm(self) -> bool:
        return self.kind == SWARM

    def host(self, name: str) -> "Host | None":
        return next((h for h in self.hosts if h.name == name), None)

    @property
    def max_cpus(self) -> float | None:
        """The most CPUs one host has; None for a swarm (its scheduler judges, node by node)."""
        return max(h.cpus for h in self.hosts) if self.hosts else None

    @property
    def max_memory(self) -> int | None:
        return max(h.memory for h in self.hosts) if self.hosts else None

    def port_domain(self, host_name: str) -> str:
        """Hosts whose ports collide with ``host_name``'s: the whole pool or just that host."""
        return self.name if self.shared_network_namespace else f"{self.name}/{host_name}"


@dataclass(frozen=True)
class Settings:
    """Everything the logic needs from config.yml; the defaults live there, and only there."""

    deployer_id: str
    pools: dict
    default_pool: str
    registry_pull_host: str
    registry_hosts: tuple  # registry hosts a spec's image may name
    registry_auth: dict | None
    pull_credentials: str  # deployer.credentials.MODES
    auth_rpc_timeout: float
    port_range: tuple
    default_cpu: float
    default_memory: int
    max_replicas: int
    health_seconds: float
    health_timeout: float
    stop_timeout: int
    ping_timeout: float
    engine_timeout: float
    docker_api_version: str
    reconcile_interval: float
    operation_stale_after: float
    outbox_relay_interval: float
    outbox_relay_min_age: float
    # Processes and threads a container may have at once (a fork bomb stops there).
    pids_limit: int = 512

    def pool(self, name: str) -> "Pool | None":
        return self.pools.get(name)

    def host(self, name: str) -> "Host | None":
        for pool in self.pools.values():
            host = pool.host(name)
            if host is not None:
                return host
        return None

    def all_hosts(self) -> "list[Host]":
        return [host for pool in self.pools.values() for host in pool.hosts]


def _number(value: Any, key: str, minimum: float = 0.0, integer: bool = False) -> float:
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{key} must be a number, got {value!r}") from None
    if number <= minimum:
        raise ConfigurationError(f"{key} must be more than {minimum}, got {value!r}")
    return number


def _choice(value: Any, key: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigurationError(f"{key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _memory(value: Any, key: str) -> int:
    try:
        return parse_memory(value)
    except ValueError as exc:
        raise ConfigurationError(f"{key} {exc}") from None


def _tls(value: Any, key: str) -> TLSSettings | None:
    if not value:
        return None
    if not isinstance(value, dict):
        raise ConfigurationError(f"{key} must be a mapping of ca_cert, client_cert, client_key, verify")
    unknown = set(value) - {"ca_cert", "client_cert", "client_key", "verify"}
    if unknown:
        raise ConfigurationError(f"{key} has unknown keys {sorted(unknown)}")
    if bool(value.get("client_cert")) != bool(value.get("client_key")):
        raise ConfigurationError(f"{key} needs client_cert and client_key together")
    return TLSSettings(
        ca_cert=value.get("ca_cert") or None,
        client_cert=value.get("client_cert") or None,
        client_key=value.get("client_key") or None,
        verify=value.get("verify", True) is not False,
    )


def _host(pool_name: str, index: int, value: Any, seen: set[str], field: str = "hosts") -> Host:
    key = f"POOLS.{pool_name}.{field}[{index}]"
    if not isinstance(value, dict):
        raise ConfigurationError(f"{key} must be a mapping")
    manager = field == "managers"
    allowed = {"name", "base_url", "tls"} if manager else {"name", "base_url", "address", "cpus", "memory", "tls"}
    unknown = set(value) - allowed
    if unknown:
        raise ConfigurationError(f"{key} has unknown keys {sorted(unknown)}")
    name = str(value.get("name") or "")
    if not NAME.fullmatch(name):
        raise ConfigurationError(f"{key}.name must be a DNS label (a-z, 0-9, '-'), got {name!r}")
    if name in seen:
        raise ConfigurationError(f"{key}.name {name!r} is used twice (host names are unique across pools)")
    seen.add(name)
    base_url = str(value.get("base_url") or "")
    if not base_url.startswith(("unix://", "tcp://", "http://", "https://", "ssh://")):
        raise ConfigurationError(f"{key}.base_url must be unix://…, tcp://… or https://…, got {base_url!r}")
    return Host(
        name=name,
        pool=pool_name,
        base_url=base_url,
        address=str(value.get("address") or "127.0.0.1"),
        # A manager is reached, never scheduled on by the deployer: the swarm knows its nodes' sizes.
        cpus=0.0 if manager else _number(value.get("cpus"), f"{key}.cpus"),
        memory=0 if manager else _memory(value.get("memory"), f"{key}.memory"),
        tls=_tls(value.get("tls"), f"{key}.tls"),
    )


def load_pools(value: Any) -> dict[str, Pool]:
    """``{name: Pool}`` from the ``POOLS`` mapping."""
    if not isinstance(value, dict) or not value:
        raise ConfigurationError("POOLS must map at least one pool name to its settings")
    pools: dict[str, Pool] = {}
    seen: set[str] = set()
    for name, spec in value.items():
        name = str(name)
        if not NAME.fullmatch(name):
            raise ConfigurationError(f"POOLS: pool name {name!r} must be a DNS label (a-z, 0-9, '-')")
        if not isinstance(spec, dict):
            raise ConfigurationError(f"POOLS.{name} must be a mapping")
        kind = spec.get("kind", ENGINES)
        if kind not in KINDS:
            raise ConfigurationError(f"POOLS.{name}.kind must be one of {KINDS}, got {kind!r}")
        members = "managers" if kind == SWARM else "hosts"
        unknown = set(spec) - {"kind", "network_mode", members, "shared_network_namespace"}
        if unknown:
            raise ConfigurationError(f"POOLS.{name} has unknown keys {sorted(unknown)} (a {kind} pool lists {members})")
        mode = spec.get("network_mode")
        if mode not in NETWORK_MODES:
            raise ConfigurationError(f"POOLS.{name}.network_mode must be one of {NETWORK_MODES}, got {mode!r}")
        if kind == SWARM and mode != "host":
            # Publishing through the routing mesh needs the swarm's ingress overlay network.
            raise ConfigurationError(f"POOLS.{name}.network_mode must be host for a swarm pool, got {mode!r}")
        listed = spec.get(members)
        if not isinstance(listed, list) or not listed:
            raise ConfigurationError(f"POOLS.{name}.{members} must list at least one {members[:-1]}")
        parsed = tuple(_host(name, i, h, seen, members) for i, h in enumerate(listed))
        pools[name] = Pool(
            name=name,
            network_mode=mode,
            hosts=() if kind == SWARM else parsed,
            shared_network_namespace=spec.get("shared_network_namespace", False) is True,
            kind=kind,
            managers=parsed if kind == SWARM else (),
        )
    return pools


def _port_range(value: Any) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", str(value))
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)) <= 65535:
        raise ConfigurationError(f"PORT_RANGE must be 'low-high' within 1-65535, got {value!r}")
    return int(match.group(1)), int(match.group(2))


def load_settings(config: Mapping[str, Any]) -> Settings:
    """``Settings`` from a nameko config dict (config.yml with its ${VAR:default} values applied).

    A missing key is a ``ConfigurationError``: the defaults are config.yml's, never a second set.
    """

    def get(key: str) -> Any:
        if key not in config:
            raise ConfigurationError(f"{key} is missing from the configuration (see services/deployer/config.yml)")
        return config[key]

    pools_value = get("POOLS")
    if config.get("POOLS_FILE"):
        with open(config["POOLS_FILE"]) as f:
            pools_value = yaml.safe_load(f)
    pools = load_pools(pools_value)
    default_pool = str(get("DEFAULT_POOL"))
    if default_pool not in pools:
        raise ConfigurationError(f"DEFAULT_POOL {default_pool!r} is not one of the pools {sorted(pools)}")
    pull_host = str(get("REGISTRY_PULL_HOST"))
    public_host = str(config.get("REGISTRY_PUBLIC_HOST") or pull_host)
    username = config.get("REGISTRY_USERNAME")
    auth = {"username": username, "password": config.get("REGISTRY_PASSWORD") or ""} if username else None
    return Settings(
        deployer_id=str(get("DEPLOYER_ID")),
        pools=pools,
        default_pool=default_pool,
        registry_pull_host=pull_host,
        registry_hosts=tuple(dict.fromkeys([pull_host, public_host])),
        registry_auth=auth,
        pull_credentials=_choice(get("PULL_CREDENTIALS"), "PULL_CREDENTIALS", ("static", "robot")),
        auth_rpc_timeout=_number(get("AUTH_RPC_TIMEOUT"), "AUTH_RPC_TIMEOUT"),
        port_range=_port_range(get("PORT_RANGE")),
        default_cpu=_number(get("DEFAULT_CPU"), "DEFAULT_CPU"),
        default_memory=_memory(get("DEFAULT_MEMORY"), "DEFAULT_MEMORY"),
        max_replicas=int(_number(get("MAX_REPLICAS"), "MAX_REPLICAS", integer=True)),
        health_seconds=_number(get("HEALTH_SECONDS"), "HEALTH_SECONDS", minimum=-1),
        health_timeout=_number(get("HEALTH_TIMEOUT"), "HEALTH_TIMEOUT"),
        stop_timeout=int(_number(get("STOP_TIMEOUT"), "STOP_TIMEOUT", minimum=-1, integer=True)),
        ping_timeout=_number(get("PING_TIMEOUT"), "PING_TIMEOUT"),
        engine_timeout=_number(get("ENGINE_TIMEOUT"), "ENGINE_TIMEOUT"),
        docker_api_version=str(get("DOCKER_API_VERSION")),
        reconcile_interval=_number(get("RECONCILE_INTERVAL"), "RECONCILE_INTERVAL"),
        operation_stale_after=_number(get("OPERATION_STALE_AFTER"), "OPERATION_STALE_AFTER"),
        outbox_relay_interval=_number(get("OUTBOX_RELAY_INTERVAL"), "OUTBOX_RELAY_INTERVAL"),
        outbox_relay_min_age=_number(get("OUTBOX_RELAY_MIN_AGE"), "OUTBOX_RELAY_MIN_AGE", minimum=-1),
        pids_limit=int(_number(get("PIDS_LIMIT"), "PIDS_LIMIT", integer=True)),
    )
