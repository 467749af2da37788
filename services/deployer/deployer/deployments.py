"""The RPC side of deployments: check, record, take the lock, and hand the work to a rollout.

Each function returns at once. Changes to containers happen in the rollout worker
(``deployer.rollout``), which the service starts through a ``rollout_requested`` event dispatched
to itself after the commit here: the request then waits in the broker, and survives a restart
of this deployer.

Order inside a function: checks and remote calls (catalog, engine pings) first, then one short
transaction, then events. No transaction stays open across a remote call.
"""

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deployer import capacity, outbox, store, views
from deployer import spec as specs
from deployer.aggregate import DELETE, ROLLOUT, Event, is_busy
from deployer.aggregate import Deployment as DeploymentAggregate
from deployer.engine import EngineError
from deployer.models import AUTO_DEPLOY, RUNNING, SUPERSEDED, AuditRecord, Deployment, Instance, Revision
from deployer.placement import NoCapacity, place
from deployer.runtime import Runtime
from deployer.settings import Host, Pool
from deployer.units import format_memory
from shared.contracts.errors import Conflict, Forbidden, InvalidRequest, NotFound
from shared.contracts.reference import PUBLIC_NAMESPACE, Reference
from shared.runtime.audit import new_record
from shared.runtime.pagination import listing

log = logging.getLogger(__name__)


# -- helpers ---------------------------------------------------------------------------------------


def ping_hosts(rt: Runtime, hosts: Iterable[Host]) -> dict[str, str | None]:
    """``{host name: None if reachable, else the error}``, pinging every host at once."""

    def ping(host: Host) -> tuple[str, str | None]:
        try:
            rt.engine(host.name).ping()
            return host.name, None
        except EngineError as exc:  # unreachable, or answering with an error: not usable now
            return host.name, str(exc)

    return dict(rt.run_all(ping, list(hosts)))


def check_swarm_fits(rt: Runtime, pool: Pool, runtime: Mapping[str, Any]) -> None:
    """On a swarm pool, what ``spec.check_fits_pool`` checks against configured hosts: an instance
    larger than every ready, active node is refused (``InvalidRequest``), as on an engines pool,
    rather than left pending. A swarm that does not answer is not judged here: its rollout says."""
    if not pool.is_swarm:
        return
    try:
        nodes = [n for n in rt.swarm(pool.name).nodes() if n.state == "ready" and n.availability == "active"]
    except EngineError:
        return
    if not nodes:
        return
    problems = specs.Problems()
    cpus, memory = max(n.cpus for n in nodes), max(n.memory for n in nodes)
    if runtime["cpu"] > cpus:
        problems.add(
            "cpu", f"{runtime['cpu']:g} is more than any node of pool {pool.name!r} has ({cpus:g} CPUs at most)"
        )
    if runtime["memory"] > memory:
        problems.add(
            "memory",
            f"{format_memory(runtime['memory'])} is more than any node of pool {pool.name!r} has "
            f"({format_memory(memory)} at most)",
        )
    problems.raise_if_any()


def resolve_image(rt: Runtime, tenant_id: str, reference: Reference) -> tuple[dict[str, str], datetime | None]:
    """Pin a reference's tag to its digest through the catalogue. ``Forbidden``/``NotFound`` pass
    through.

    The tenant rule (the public library and the caller's own namespace) is the catalogue's, and
    checked here first as well, in the same words: the deployer pulls with the platform's registry
    credentials, so it does not rest another tenant's images on one remote check, and does not ask
    the catalogue about a namespace the caller may not use.

    ``(image, pushed_at)``: the image as a revision records it, and when the tag was pushed (None
    if the catalogue did not say), from which on older pushes of it are stale for auto-deploy.
    """
    if reference.namespace not in (PUBLIC_NAMESPACE, tenant_id):
        raise Forbidden(
            f"tenant {tenant_id!r} may not read {reference.repository!r}: it belongs to tenant {reference.namespace!r}"
        )
    tag = rt.catalog.get_tag(tenant_id, reference.repository, reference.tag)
    pushed_at = tag.get("pushed_at")
    return (
        # A checked reference has a tag: spec.check_image refuses digests, and no tag means latest.
        pinned_image(rt, reference.repository, cast(str, reference.tag), tag["digest"]),
        datetime.fromisoformat(pushed_at) if isinstance(pushed_at, str) else None,
    )


def pinned_image(rt: Runtime, repository: str, tag: str, digest: str) -> dict[str, str]:
    """The image fields of a revision: ``repository:tag`` as asked for, pinned to ``digest``."""
    return {
        "image": f"{repository}:{tag}",
        "repository": repository,
        "tag": tag,
        "digest": digest,
        "pull_ref": f"{rt.settings.registry_pull_host}/{repository}@{digest}",
    }


def _publish(rt: Runtime, outgoing: Iterable[Event]) -> None:
    """Send a committed transaction's events from the outbox (what fails is the relay's)."""
    outbox.send(rt, outgoing)


def _busy(deployment: Deployment) -> Conflict:
    what = "removal" if deployment.operation == DELETE else f"{deployment.operation} of revision {deployment.revision}"
    return Conflict(
        f"deployment {deployment.id} is busy ({what} in progress, status {deployment.status}); try again "
        f"once it is running, failed, rollout_failed or rolled_back"
    )


def _check_room(
    session: Session,
    pool: Pool,
    reachability: dict[str, str | None],
    deployment_id: str | None,
    count: int,
    runtime: Mapping[str, Any],
) -> None:
    """``Conflict`` unless ``count`` more instances of ``runtime`` fit in the pool now, beside
    the instances recorded and those promised to rollouts in progress (accepted, not yet placed):
    of two requests racing for the last room, the second is refused here, not in its rollout.
    A swarm pool's scheduler judges its own nodes' room (a task no node can take fails the
    rollout); fixed host ports are checked here against every instance recorded on the pool."""
    if count <= 0:
        return
    if pool.is_swarm:
        taken = sorted(specs.fixed_ports(runtime) & capacity.ports_in_domain(session, pool, pool.name))
        if taken and pool.shared_network_namespace:
            ports = ", ".join(str(p) for p in taken)
            raise Conflict(f"pool {pool.name!r} cannot take {count} more instance(s): host port {ports} already in use")
        return
    loads = capacity.host_loads(session, pool, reachability, deployment_id)
    promised = capacity.reserve_promised(session, pool, loads, exclude=deployment_id)
    try:
        place(loads, count, runtime["cpu"], runtime["memory"], specs.fixed_ports(runtime))
    except NoCapacity as exc:
        counted = f" (counting {promised} instance(s) promised to rollouts in progress)" if promised else ""
        raise Conflict(f"pool {pool.name!r} cannot take {count} more instance(s): {exc}{counted}") from None


def _surge(serving: int | None, replicas: int, runtime: Mapping[str, Any]) -> int:
    """Instances a rollout needs beyond those it replaces: all of them for a first revision, one
    at a time for a start-first update, none for a stop-first one."""
    if serving is None:
        return replicas
    return 0 if specs.update_strategy(runtime) == specs.STOP_FIRST else 1


def _lock_or_conflict(
    rt: Runtime, session: Session, deployment: Deployment, operation: str, force: bool = False
) -> tuple[DeploymentAggregate, str]:
    """``(aggregate, operation ID)`` with the deployment's lock taken; ``Conflict`` if busy."""
    current, operation_id = DeploymentAggregate.lock(
        session, deployment.id, operation, rt.now(), rt.settings.operation_stale_after, force=force
    )
    if operation_id is None:
        raise _busy(current.row)
    return current, operation_id


def _load(rt: Runtime, tenant_id: str, deployment_id: str, live: bool = True) -> tuple[Deployment, Revision | None]:
    """``(deployment, newest revision)`` read in a short session, checked for the tenant."""
    with rt.transaction() as session:
        deployment = DeploymentAggregate.of_tenant(session, tenant_id, deployment_id, live=live).row
        newest = store.revision(session, deployment.id, deployment.revision)
        session.expunge_all()
        return deployment, newest


def _view(rt: Runtime, deployment_id: str) -> dict[str, Any]:
    with rt.transaction() as session:
        return views.deployment_view(session, session.get(Deployment, deployment_id), rt.settings)


# -- create ----------------------------------------------------------------------------------------


def create_deployment(rt: Runtime, tenant_id: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Record a deployment at revision 1 (status ``pending``) and start its rollout."""
    request = specs.check_create(spec, rt.settings)
    pool = rt.settings.pools[request.pool]
    check_swarm_fits(rt, pool, request.runtime)
    image, pushed_at = resolve_image(rt, tenant_id, request.image)
    reachability = ping_hosts(rt, pool.hosts)
    now = rt.now()
    try:
        with rt.transaction() as session:
            if store.live_deployment_named(session, tenant_id, request.name) is not None:
                raise Conflict(f"tenant {tenant_id!r} already has a deployment named {request.name!r}")
            _check_room(session, pool, reachability, None, request.replicas, request.runtime)
            deployment, outgoing = DeploymentAggregate.create(
                session,
                tenant_id=tenant_id,
                name=request.name,
                pool=pool.name,
                replicas=request.replicas,
                auto_deploy=request.auto_deploy,
                runtime=request.runtime,
                image=image,
                pushed_at=pushed_at,
                now=now,
            )
            deployment_id = deployment.id
    except IntegrityError:  # a concurrent create took the name between the check and the commit
        raise Conflict(f"tenant {tenant_id!r} already has a deployment named {request.name!r}") from None
    _publish(rt, outgoing)
    return _view(rt, deployment_id)


# -- new revisions: update and rollback -------------------------------------------------------------


def _new_revision(
    rt: Runtime,
    deployment: Deployment,
    old_runtime: Mapping[str, Any],
    image: dict[str, str],
    runtime: dict[str, Any],
    trigger: str,
    rollback_to: int | None = None,
    pushed_at: datetime | None = None,
    auto_deploy: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Record revision n+1 (and ``auto_deploy``, if given, with it) and start rolling it out; the
    deployment's view."""
    pool = rt.settings.pools[deployment.pool]
    if deployment.serving_revision is not None:
        specs.check_rolling(old_runtime, runtime, deployment.replicas)
    reachability = ping_hosts(rt, pool.hosts)
    now = rt.now()
    with rt.transaction() as session:
        # One surge instance at a time: the new one starts before an old one stops (none when the
        # old one stops first).
        surge = _surge(deployment.serving_revision, deployment.replicas, runtime)
        _check_room(session, pool, reachability, deployment.id, min(surge, deployment.replicas), runtime)
        current, operation_id = _lock_or_conflict(rt, session, deployment, ROLLOUT)
        outgoing = current.start_revision(
            operation_id,
            now,
            runtime=runtime,
            image=image,
            trigger=trigger,
            rollback_to=rollback_to,
            pushed_at=pushed_at,
            auto_deploy=auto_deploy,
        )
    _publish(rt, outgoing)
    return _view(rt, deployment.id)


def update_deployment(rt: Runtime, tenant_id: str, deployment_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """A new revision from the serving one with ``changes`` applied, rolled out host by host.

    Changes apply on top of what serves, not of the newest revision: after a failed update the
    next one does not inherit the broken settings. Only when nothing ever served (the first
    revision failed) is the newest revision the base. Only ``auto_deploy`` changed, or changes
    that leave the base as it is: no new revision.
    """
    deployment, newest = _load(rt, tenant_id, deployment_id)
    if is_busy(deployment, rt.now(), rt.settings.operation_stale_after):
        raise _busy(deployment)
    # The newest revision is recorded with the deployment: _load finds it.
    base = cast(Revision, _serving(rt, deployment) or newest)
    pool = rt.settings.pools[deployment.pool]
    changed = specs.check_changes(changes, base.repository, base.spec, pool, deployment.replicas, rt.settings)
    if not changed.needs_rollout:
        if changed.auto_deploy is not None:
            _store_auto_deploy(rt, deployment.id, changed.auto_deploy)
        return _view(rt, deployment.id)
    # The policy is stored with the new revision, in its transaction: an update refused on the way
    # (another tenant's image, a tag not found, no room, busy) changes nothing at all.
    image, pushed_at = (
        resolve_image(rt, tenant_id, changed.image) if changed.image is not None else (_pinned(base), None)
    )
    return _new_revision(
        rt,
        deployment,
        base.spec,
        image,
        changed.runtime,
        "update",
        pushed_at=pushed_at,
        auto_deploy=changed.auto_deploy,
    )


def set_auto_deploy(rt: Runtime, tenant_id: str, deployment_id: str, policy: Any) -> dict[str, Any]:
    """Change the deployment's auto-deploy policy alone (even while an operation runs: the policy
    is read when a push arrives, and again before a waiting push is rolled out)."""
    deployment, _ = _load(rt, tenant_id, deployment_id)
    problems = specs.Problems()
    policy = specs.check_policy(policy, "policy", problems)
    problems.raise_if_any()
    _store_auto_deploy(rt, deployment.id, {"policy": policy})
    return _view(rt, deployment.id)


def _store_auto_deploy(rt: Runtime, deployment_id: str, auto_deploy: dict[str, Any]) -> None:
    with rt.transaction() as session:
        DeploymentAggregate.existing(session, deployment_id).set_auto_deploy(auto_deploy, rt.now())


def auto_update(rt: Runtime, deployment: Deployment, base: Revision, push: dict[str, Any]) -> int | None:
    """Revision n+1 for a push the policy follows: ``base`` (the serving revision, detached) with
    the pushed digest, rolled out like an update (``trigger`` auto-deploy, ``push`` recorded).

    ``deployment`` (detached) must carry ``push`` as its ``pending_push``; it is cleared in the
    transaction that takes the lock. Returns the revision number, or None when the deployment is
    busy (the push keeps waiting for the operation's end) or the push was dealt with meanwhile. A
    revision that cannot start (no room in the pool, a fixed port the rolling update would need
    twice) is recorded as failed at once: ``rolled_back`` (``failed`` if nothing served).
    """
    pool = rt.settings.pools[deployment.pool]
    runtime = dict(base.spec)
    refusal = None
    if deployment.serving_revision is not None:
        try:
            specs.check_rolling(runtime, runtime, deployment.replicas)
        except InvalidRequest as exc:
            refusal = str(exc)
    reachability = ping_hosts(rt, pool.hosts) if refusal is None else {}
    now = rt.now()
    with rt.transaction() as session:
        found = DeploymentAggregate.get(session, deployment.id, for_update=True)
        if found is None or found.row.deleted_at is not None or found.row.pending_push != push:
            return None
        if refusal is None:
            surge = _surge(found.serving_revision, found.row.replicas, runtime)
            try:
                _check_room(session, pool, reachability, found.id, min(surge, found.row.replicas), runtime)
            except Conflict as exc:
                refusal = str(exc)
        current, operation_id = DeploymentAggregate.lock(
            session, deployment.id, ROLLOUT, now, rt.settings.operation_stale_after
        )
        if operation_id is None:
            return None
        # The trigger as the history keeps it: the push, with the policy that followed it.
        image = pinned_image(rt, base.repository, push["tag"], push["digest"])
        pushed_at = datetime.fromisoformat(push["pushed_at"])
        if refusal is None:
            outgoing = current.start_revision(
                operation_id, now, runtime=runtime, image=image, trigger=AUTO_DEPLOY, push=push, pushed_at=pushed_at
            )
        else:
            outgoing = current.refuse_revision(
                operation_id, now, runtime=runtime, image=image, push=push, pushed_at=pushed_at, cause=refusal
            )
        number = current.newest_revision
        # Nobody called: the platform moved the deployment for the person who pushed.
        session.add(
            new_record(
                AuditRecord,
                action="deployer.auto_deploy",
                actor="platform:deployer",
                broker_user=None,
                on_behalf_of=push.get("actor"),
                tenant_id=found.row.tenant_id,
                target=deployment.id,
                outcome="ok" if refusal is None else "Refused",
                detail=f"revision {number} for the push of {base.repository}:{push['tag']} ({push['digest']})"
                + (f": {refusal}" if refusal else ""),
            )
        )
    _publish(rt, outgoing)
    return number


def _serving(rt: Runtime, deployment: Deployment) -> Revision | None:
    """The serving revision (detached), or None if no revision ever ran."""
    if deployment.serving_revision is None:
        return None
    with rt.transaction() as session:
        serving = store.revision(session, deployment.id, deployment.serving_revision)
        session.expunge(serving)
        return serving


def _pinned(revision: Revision) -> dict[str, str]:
    """A revision's image, pinned as it was: what a new revision reusing it records."""
    return {
        "image": revision.image,
        "repository": revision.repository,
        "tag": revision.tag,
        "digest": revision.digest,
        "pull_ref": revision.pull_ref,
    }


def rollback_deployment(rt: Runtime, tenant_id: str, deployment_id: str, revision: int | None = None) -> dict[str, Any]:
    """A new revision that reuses an earlier revision's pinned digest and runtime.

    ``revision`` None: the newest revision older than the serving one that ran successfully.
    """
    deployment, _ = _load(rt, tenant_id, deployment_id)
    if is_busy(deployment, rt.now(), rt.settings.operation_stale_after):
        raise _busy(deployment)
    with rt.transaction() as session:
        target: Revision | None
        if revision is None:
            target = _previous_good(session, deployment)
        else:
            target = store.revision(session, deployment.id, revision)
            if target is None:
                raise NotFound(
                    f"deployment {deployment.id} has no revision {revision} (its newest is {deployment.revision})"
                )
        if target.number == deployment.serving_revision:
            raise Conflict(f"revision {target.number} is the one serving already")
        image, runtime, number = _pinned(target), dict(target.spec), target.number
    serving = _serving(rt, deployment)
    old_runtime = serving.spec if serving is not None else runtime
    # The pool may have shrunk since: the old runtime must still fit it.
    problems = specs.Problems()
    specs.check_fits_pool(runtime, deployment.replicas, rt.settings.pools[deployment.pool], problems)
    problems.raise_if_any()
    return _new_revision(rt, deployment, old_runtime, image, runtime, "rollback", rollback_to=number)


def _previous_good(session: Session, deployment: Deployment) -> Revision:
    if deployment.serving_revision is None:
        raise Conflict(f"deployment {deployment.id} has no revision that ran: nothing to roll back to")
    target = session.scalar(
        sa.select(Revision)
        .where(
            Revision.deployment_id == deployment.id,
            Revision.number < deployment.serving_revision,
            Revision.status.in_([RUNNING, SUPERSEDED]),
        )
        .order_by(Revision.number.desc())
        .limit(1)
    )
    if target is None:
        raise Conflict(
            f"deployment {deployment.id} has no earlier revision that ran than revision "
            f"{deployment.serving_revision}: nothing to roll back to"
        )
    return target


# -- scale and delete ------------------------------------------------------------------------------


def scale_deployment(rt: Runtime, tenant_id: str, deployment_id: str, replicas: Any) -> dict[str, Any]:
    """Set the replica count and converge to it (0 stops every instance, status ``stopped``).

    Runs the serving revision; a deployment that never ran retries its newest revision.
    """
    deployment, _newest = _load(rt, tenant_id, deployment_id)
    if is_busy(deployment, rt.now(), rt.settings.operation_stale_after):
        raise _busy(deployment)
    problems = specs.Problems()
    specs.check_replicas(replicas, rt.settings, problems)
    problems.raise_if_any()
    target_number = deployment.serving_revision or deployment.revision
    pool = rt.settings.pools[deployment.pool]
    with rt.transaction() as session:
        target = store.recorded_revision(session, deployment.id, target_number)
        runtime = dict(target.spec)
        running = sum(1 for i in store.instances(session, deployment.id) if i.revision == target_number)
    problems = specs.Problems()
    specs.check_fits_pool(runtime, replicas, pool, problems)
    problems.raise_if_any()
    reachability = ping_hosts(rt, pool.hosts) if replicas > running else {}
    now = rt.now()
    with rt.transaction() as session:
        _check_room(session, pool, reachability, deployment.id, replicas - running, runtime)
        current, operation_id = _lock_or_conflict(rt, session, deployment, ROLLOUT)
        outgoing = current.scale(operation_id, now, replicas)
    _publish(rt, outgoing)
    return _view(rt, deployment.id)


def delete_deployment(rt: Runtime, tenant_id: str, deployment_id: str) -> dict[str, Any]:
    """Mark the deployment deleted (status ``deleting``) and start removing its containers on
    every host; status ``deleted`` once they are gone. Deleting again changes nothing."""
    deployment, _ = _load(rt, tenant_id, deployment_id, live=False)
    if deployment.deleted_at is not None:
        return _view(rt, deployment.id)
    now = rt.now()
    with rt.transaction() as session:
        # Taken by force: a rollout in progress sees it lost its lock and stops.
        current, operation_id = _lock_or_conflict(rt, session, deployment, DELETE, force=True)
        outgoing = current.mark_deleting(operation_id, now)
    _publish(rt, outgoing)
    return _view(rt, deployment.id)


# -- reading ---------------------------------------------------------------------------------------


def get_deployment(rt: Runtime, tenant_id: str, deployment_id: str) -> dict[str, Any]:
    with rt.transaction() as session:
        deployment = DeploymentAggregate.of_tenant(session, tenant_id, deployment_id, live=False).row
        return views.deployment_view(session, deployment, rt.settings)


def list_deployments(rt: Runtime, tenant_id: str, page: int, page_size: int) -> dict[str, Any]:
    with rt.transaction() as session:
        live = sa.and_(Deployment.tenant_id == tenant_id, Deployment.deleted_at.is_(None))
        total = session.scalar(sa.select(sa.func.count()).select_from(Deployment).where(live))
        rows = session.scalars(
            sa.select(Deployment).where(live).order_by(Deployment.name).offset((page - 1) * page_size).limit(page_size)
        )
        items = [views.deployment_view(session, d, rt.settings) for d in rows]
    return listing(items, total, page, page_size)


def list_revisions(rt: Runtime, tenant_id: str, deployment_id: str, page: int, page_size: int) -> dict[str, Any]:
    with rt.transaction() as session:
        deployment = DeploymentAggregate.of_tenant(session, tenant_id, deployment_id, live=False).row
        every = store.revisions(session, deployment.id)
        items = [views.revision_view(r) for r in every[(page - 1) * page_size : page * page_size]]
    return listing(items, len(every), page, page_size)


def list_pools(rt: Runtime) -> dict[str, Any]:
    """Every pool with its hosts' (a swarm's: its nodes') reachability, capacity and free capacity."""
    from deployer import pools as pools_module  # it imports this module, through the rollout

    pools = list(rt.settings.pools.values())
    reachability = ping_hosts(rt, [h for pool in pools for h in pool.hosts])
    items = []
    with rt.transaction() as session:
        for pool in pools:
            if pool.is_swarm:
                items.append(
                    dict(
                        {
                            "name": pool.name,
                            "kind": pool.kind,
                            "network_mode": pool.network_mode,
                            "shared_network_namespace": pool.shared_network_namespace,
                            "default": pool.name == rt.settings.default_pool,
                            "managers": [{"name": m.name, "base_url": m.base_url} for m in pool.managers],
                            "hosts": [],
                        },
                        **pools_module.KINDS[pool.kind].describe(rt, pool),
                    )
                )
                continue
            loads = {load.name: load for load in capacity.host_loads(session, pool, reachability)}
            counts = dict(
                session.execute(
                    sa.select(Instance.host, sa.func.count()).where(Instance.pool == pool.name).group_by(Instance.host)
                ).all()
            )
            hosts = []
            for host in pool.hosts:
                load = loads[host.name]
                hosts.append(
                    {
                        "name": host.name,
                        "base_url": host.base_url,
                        "address": host.address,
                        "reachable": load.reachable,
                        "error": load.error,
                        "capacity": {
                            "cpus": host.cpus,
                            "memory": format_memory(host.memory),
                            "memory_bytes": host.memory,
                        },
                        "reserved": {"cpus": round(load.used_cpu, 6), "memory_bytes": load.used_memory},
                        "free": {
                            "cpus": round(load.free_cpu, 6),
                            "memory": format_memory(load.free_memory),
                            "memory_bytes": load.free_memory,
                        },
                        "instances": counts.get(host.name, 0),
                    }
                )
            items.append(
                {
                    "name": pool.name,
                    "kind": pool.kind,
                    "network_mode": pool.network_mode,
                    "shared_network_namespace": pool.shared_network_namespace,
                    "default": pool.name == rt.settings.default_pool,
                    "hosts": hosts,
                }
            )
    return listing(items, len(items), 1, max(len(items), 1))
