"""The outside world as the deployer's logic sees it: one object handed to every logic function.

The service builds it from its dependency providers; unit tests build it from fakes. Nothing in
here imports nameko or docker.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployer.settings import Host


import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.runtime.clock import utcnow


def run_in_turn(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    return [fn(item) for item in items]


def port_is_free(host: "Host", port: int) -> bool:
    """Whether ``port`` can be bound on the host. Known only for a host on this machine's
    loopback; for any other the engine is the judge (a taken port fails the container)."""
    if not host.is_loopback:
        return True
    with socket.socket() as sock:
        # As a server binds: connections its predecessor on the port closed (TIME_WAIT, a minute)
        # do not hold the port, a listener does. Without it a fixed port stays "taken" for a
        # minute after its container stopped, and a stop-first update could never reuse it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host.address, port))
        except OSError:
            return False
    return True


@dataclass
class Runtime:
    settings: Any  # deployer.settings.Settings
    transaction: Callable  # () -> context manager: a session, committed on exit, rolled back on error
    engine: Callable  # host name -> Engine
    http_ok: Callable  # (url, timeout) -> True for a 2xx/3xx answer
    swarm: Callable = lambda pool_name: None  # swarm pool name -> deployer.orchestrator.Swarm
    catalog: Any = None  # .get_tag(tenant_id, repository, tag), as the catalog's RPC
    # tenant_id -> docker auth_config for that tenant's pulls (deployer.credentials); None:
    # settings.registry_auth for every pull
    pull_auth: Callable | None = None
    publish: Callable = lambda event_type, payload: None  # dispatch an event (after a commit)
    run_all: Callable = run_in_turn  # (fn, items) -> [fn(item)], concurrently where it can
    port_is_free: Callable = port_is_free  # (host, port) -> bool
    now: Callable = utcnow
    monotonic: Callable = time.monotonic
    sleep: Callable = time.sleep
    rng: random.Random = field(default_factory=random.Random)
