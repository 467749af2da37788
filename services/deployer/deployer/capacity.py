"""What a pool can still take: the capacity each host has left once every recorded instance and
every rollout in progress is counted. Read by the RPC's admission checks and by the rollout's
placement (``deployer.placement`` decides where an instance goes; this says what is taken)."""

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from deployer import store
from deployer.models import IN_PROGRESS, Deployment, Instance
from deployer.placement import HostLoad, NoCapacity, place
from deployer.settings import Pool
from deployer.spec import fixed_ports


def host_loads(
    session: Session,
    pool: Pool,
    reachability: dict[str, str | None],
    deployment_id: str | None = None,
    exclude: Collection[str] = (),
) -> list[HostLoad]:
    """A ``HostLoad`` per host of ``pool``: capacity minus the reservations of every instance
    recorded there (all deployments), the count of ``deployment_id``'s own, and ports taken.

    ``reachability`` maps host name to None (reachable) or the error; ``exclude`` leaves out
    instance IDs (ones about to be removed).
    """
    port_sets: dict[str, set[int]] = {}
    loads = {}
    for host in pool.hosts:
        error = reachability.get(host.name)
        ports = port_sets.setdefault(pool.port_domain(host.name), set())
        loads[host.name] = HostLoad(
            name=host.name, cpus=host.cpus, memory=host.memory, reachable=error is None, error=error, ports=ports
        )
    for instance in store.pool_instances(session, pool.name):
        load = loads.get(instance.host)
        if load is None or instance.id in exclude:
            continue
        load.used_cpu += instance.cpu
        load.used_memory += instance.memory
        load.ports.update(p["host_port"] for p in instance.ports if p.get("host_port"))
        if instance.deployment_id == deployment_id:
            load.instances += 1
    return [loads[host.name] for host in pool.hosts]


def ports_in_domain(session: Session, pool: Pool, host_name: str) -> set[int]:
    """Host ports recorded for instances whose ports collide with ``host_name``'s."""
    domain = pool.port_domain(host_name)
    rows = session.scalars(sa.select(Instance.ports).where(Instance.port_domain == domain))
    return {p["host_port"] for ports in rows for p in ports if p.get("host_port")}


def promised(
    session: Session, pool_name: str, exclude: str | None = None
) -> list[tuple[dict[str, Any], int, dict[str, int], str | None]]:
    """What the rollouts in progress in the pool (deployments ``pending``/``pulling``/``starting``)
    are still to place: ``[(runtime, count, per-host instance counts, preferred host)]``.

    A rollout's target is its newest revision while that one is in progress (create, update,
    rollback), else the serving one (scale, restore). It still needs ``replicas`` minus the
    instances of the target already recorded (those count through their records). A rolling
    replacement needs one instance at a time beside the old ones (on an old one's host first),
    as its own up-front check asked; instances added beyond the old ones all count.
    ``exclude`` leaves out one deployment (the one being checked).
    """
    found = []
    rows = session.scalars(
        sa.select(Deployment).where(
            Deployment.pool == pool_name, Deployment.deleted_at.is_(None), Deployment.status.in_(IN_PROGRESS)
        )
    )
    for deployment in rows:
        if deployment.id == exclude:
            continue
        newest = store.recorded_revision(session, deployment.id, deployment.revision)
        number = newest.number if newest.status in IN_PROGRESS else (deployment.serving_revision or newest.number)
        target = newest if number == newest.number else store.recorded_revision(session, deployment.id, number)
        placed = store.instances(session, deployment.id)
        remaining = max(deployment.replicas - sum(1 for i in placed if i.revision == number), 0)
        old = [i for i in placed if i.revision != number]
        replacements = min(remaining, len(old))
        count = (1 if replacements else 0) + remaining - replacements
        if count:
            per_host: dict[str, int] = {}
            for instance in placed:
                per_host[instance.host] = per_host.get(instance.host, 0) + 1
            found.append((dict(target.spec), count, per_host, old[0].host if replacements else None))
    return found


def reserve_promised(session: Session, pool: Pool, loads: list[HostLoad], exclude: str | None = None) -> int:
    """Reserve in ``loads`` (``host_loads``'s) what rollouts in progress are still to place,
    placed as their rollouts would place them; how many instances that is. A promise that no
    longer fits anywhere (a host went away) is skipped: that rollout will fail on its own."""
    own = {load.name: load.instances for load in loads}
    reserved = 0
    for runtime, count, per_host, prefer in promised(session, pool.name, exclude):
        for load in loads:  # spread as that deployment's rollout would
            load.instances = per_host.get(load.name, 0)
        for _ in range(count):
            try:
                place(loads, 1, runtime["cpu"], runtime["memory"], fixed_ports(runtime), prefer=prefer)
            except NoCapacity:
                break
            reserved += 1
    for load in loads:
        load.instances = own[load.name]
    return reserved
