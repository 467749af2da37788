"""Where instances go and which host ports they get. Pure functions over plain data.

Placement spreads a deployment: each instance goes to a reachable host with room for its CPU and
memory reservation, choosing the host with the fewest instances of this deployment first, then
the most free memory, then by name (so the choice is stable). Reservations come from the
deployer's own instance records, not from what the engine reports: capacity is what the pool's
configuration says a host may give to the platform.
"""

import random
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from deployer.units import format_memory

EPSILON = 1e-9  # CPU reservations are floats: 0.1 * 3 must still fit in 0.3


class NoCapacity(Exception):
    """No host can take the instance; the message says why, host by host."""


class NoFreePort(Exception):
    """The port range has no port left that is unused and bindable."""


@dataclass
class HostLoad:
    name: str
    cpus: float
    memory: int
    reachable: bool = True
    error: str | None = None
    used_cpu: float = 0.0
    used_memory: int = 0
    instances: int = 0  # instances of the deployment being placed
    # Host ports taken where this host's ports collide (shared by every host of a pool whose
    # hosts share one network namespace).
    ports: set = field(default_factory=set)

    @property
    def free_cpu(self) -> float:
        return max(self.cpus - self.used_cpu, 0.0)

    @property
    def free_memory(self) -> int:
        return max(self.memory - self.used_memory, 0)

    def fits(self, cpu: float, memory: int, fixed_ports: Collection[int] = ()) -> bool:
        return (
            self.reachable
            and self.free_cpu + EPSILON >= cpu
            and self.free_memory >= memory
            and not set(fixed_ports) & self.ports
        )

    def reserve(self, cpu: float, memory: int, fixed_ports: Collection[int] = ()) -> None:
        self.used_cpu += cpu
        self.used_memory += memory
        self.instances += 1
        self.ports.update(fixed_ports)

    def release(self, cpu: float, memory: int, ports: Collection[int] = ()) -> None:
        self.used_cpu -= cpu
        self.used_memory -= memory
        self.instances -= 1
        self.ports.difference_update(ports)


def _why_not(host: HostLoad, cpu: float, memory: int, fixed_ports: Collection[int]) -> str:
    if not host.reachable:
        return f"{host.name}: unreachable ({host.error})" if host.error else f"{host.name}: unreachable"
    taken = sorted(set(fixed_ports) & host.ports)
    if taken:
        return f"{host.name}: host port {', '.join(map(str, taken))} already in use"
    return (
        f"{host.name}: {host.free_cpu:g} CPU and {format_memory(host.free_memory)} free "
        f"(needs {cpu:g} CPU and {format_memory(memory)})"
    )


def place(
    hosts: list[HostLoad],
    count: int,
    cpu: float,
    memory: int,
    fixed_ports: Collection[int] = (),
    prefer: str | None = None,
) -> list[str]:
    """Host names for ``count`` instances, reserving as it goes (``hosts`` are updated).

    ``prefer`` names a host to use if it fits (a rolling update keeps an instance on its host).
    ``NoCapacity`` if any instance has nowhere to go: nothing is placed then.
    """
    chosen: list[str] = []
    for _ in range(count):
        candidates = [h for h in hosts if h.fits(cpu, memory, fixed_ports)]
        if not candidates:
            reasons = "; ".join(_why_not(h, cpu, memory, fixed_ports) for h in hosts)
            for host_name in chosen:  # all or nothing
                next(h for h in hosts if h.name == host_name).release(cpu, memory, fixed_ports)
            placed = f" ({len(chosen)} of {count} would fit)" if chosen else ""
            raise NoCapacity(f"no host can take another instance{placed}: {reasons}")
        preferred = [h for h in candidates if h.name == prefer]
        host = preferred[0] if preferred else min(candidates, key=lambda h: (h.instances, -h.free_memory, h.name))
        host.reserve(cpu, memory, fixed_ports)
        chosen.append(host.name)
    return chosen


def allocate_ports(
    count: int, in_use: set[int], port_range: tuple[int, int], is_free: Callable[[int], bool], rng: random.Random
) -> list[int]:
    """``count`` distinct ports from ``port_range`` that are not ``in_use`` and ``is_free(port)``.

    The scan starts at a random point so that deployers sharing a machine rarely race for the
    same port.
    """
    if count == 0:
        return []
    low, high = port_range
    size = high - low + 1
    start = rng.randrange(size)
    ports = []
    for offset in range(size):
        port = low + (start + offset) % size
        if port in in_use or port in ports:
            continue
        if is_free(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise NoFreePort(f"no free host port left in {low}-{high} ({len(in_use)} in use by instances)")
