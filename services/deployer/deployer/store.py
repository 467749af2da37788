"""Reads and writes shared by the RPC logic, the rollout worker and the reconciler.

Plain functions on a session. The per-deployment lock lives in the deployment row: it is taken
with one conditional UPDATE (``operation IS NULL`` or stale), which both SQLite and PostgreSQL
apply atomically, so two callers can never both hold it.
"""

import uuid
from datetime import timedelta

import sqlalchemy as sa

from deployer import outbox
from deployer.models import AUTO_DEPLOY, FAILED, IN_PROGRESS, Deployment, Instance, ProcessedEvent, Revision
from deployer.placement import HostLoad, NoCapacity, place
from deployer.spec import fixed_ports
from shared.contracts.errors import Forbidden, NotFound
from shared.contracts.events import DEPLOYMENT_STATUS_CHANGED, DeploymentStatusChanged


def new_id():
    return str(uuid.uuid4())


def find_deployment(session, deployment_id, for_update=False):
    """The deployment row; ``for_update`` locks it until the commit (PostgreSQL; SQLite
    serialises every write transaction anyway)."""
    return session.get(Deployment, deployment_id, with_for_update=for_update or None)


def tenant_deployment(session, tenant_id, deployment_id, live=True):
    """The deployment, if the tenant owns it: ``NotFound``, or ``Forbidden`` for another tenant's
    (saying nothing else about it). ``live`` refuses a deleted one as ``NotFound``."""
    deployment = session.get(Deployment, deployment_id)
    if deployment is None:
        raise NotFound(f"deployment {deployment_id} does not exist")
    if deployment.tenant_id != tenant_id:
        raise Forbidden(f"deployment {deployment_id} belongs to another tenant")
    if live and deployment.deleted_at is not None:
        raise NotFound(f"deployment {deployment_id} was deleted")
    return deployment


def live_deployment_named(session, tenant_id, name):
    return session.scalar(
        sa.select(Deployment).where(
            Deployment.tenant_id == tenant_id, Deployment.name == name, Deployment.deleted_at.is_(None)
        )
    )


def revision(session, deployment_id, number):
    return session.scalar(sa.select(Revision).where(Revision.deployment_id == deployment_id, Revision.number == number))


def revisions(session, deployment_id):
    return list(
        session.scalars(
            sa.select(Revision).where(Revision.deployment_id == deployment_id).order_by(Revision.number.desc())
        )
    )


def instances(session, deployment_id):
    return list(
        session.scalars(
            sa.select(Instance)
            .where(Instance.deployment_id == deployment_id)
            .order_by(Instance.host, Instance.created_at)
        )
    )


def base_revision(session, deployment):
    """What a change builds on: the serving revision, or the newest if none ever served."""
    return revision(session, deployment.id, deployment.serving_revision or deployment.revision)


def following(session, repository):
    """``[(deployment, base revision)]`` of the live deployments whose base revision runs
    ``repository``, rows locked for the transaction (concurrent pushes decide one at a time)."""
    base_number = sa.func.coalesce(Deployment.serving_revision, Deployment.revision)
    rows = session.execute(
        sa.select(Deployment, Revision)
        .join(Revision, sa.and_(Revision.deployment_id == Deployment.id, Revision.number == base_number))
        .where(Deployment.deleted_at.is_(None), Revision.repository == repository)
        .order_by(Deployment.id)
        .with_for_update(of=Deployment)
    )
    return [(deployment, base) for deployment, base in rows]


def failed_automatically(session, deployment_id, digest):
    """Whether an auto-deploy of ``digest`` already failed on the deployment."""
    return (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Revision)
            .where(
                Revision.deployment_id == deployment_id,
                Revision.digest == digest,
                Revision.trigger == AUTO_DEPLOY,
                Revision.status == FAILED,
            )
        )
        > 0
    )


def already_processed(session, event_id):
    return session.get(ProcessedEvent, event_id) is not None


def mark_processed(session, event_id, event_type, now):
    """Record the event as acted on, at once (a concurrent duplicate then fails on the primary key
    or, on PostgreSQL, waits for this transaction)."""
    session.add(ProcessedEvent(event_id=event_id, event_type=event_type, processed_at=now))
    session.flush()


def pool_instances(session, pool_name):
    return list(session.scalars(sa.select(Instance).where(Instance.pool == pool_name)))


# -- the lock ---------------------------------------------------------------------------------


def is_busy(deployment, now, stale_after):
    return deployment.operation is not None and not _is_stale(deployment, now, stale_after)


def _is_stale(deployment, now, stale_after):
    return deployment.operation_at is None or deployment.operation_at < now - timedelta(seconds=stale_after)


def take_lock(session, deployment_id, operation, now, stale_after, force=False):
    """Take the deployment's lock for ``operation``; its new operation ID, or None if another
    operation holds it (and is not stale). ``force`` takes it regardless (delete does)."""
    operation_id = new_id()
    condition = (
        sa.true()
        if force
        else sa.or_(
            Deployment.operation.is_(None),
            Deployment.operation_at.is_(None),
            Deployment.operation_at < now - timedelta(seconds=stale_after),
        )
    )
    result = session.execute(
        sa.update(Deployment)
        .where(Deployment.id == deployment_id, condition)
        .values(operation=operation, operation_id=operation_id, operation_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    session.expire_all()  # the row changed under the ORM's feet
    return operation_id


def holds_lock(deployment, operation_id):
    return deployment is not None and deployment.operation_id == operation_id


def release_lock(deployment):
    deployment.operation = None
    deployment.operation_id = None
    deployment.operation_at = None


# -- status ------------------------------------------------------------------------------------


def set_status(deployment, status, reason, revision_number, now):
    """Change the deployment's status; the ``deployment_status_changed`` event (in the outbox, to
    send after the commit: ``deployer.outbox``), or None if nothing changed."""
    if deployment.status == status and deployment.reason == reason:
        return None
    deployment.status = status
    deployment.reason = reason
    deployment.updated_at = now
    return status_event(deployment, status, reason, revision_number)


def status_event(deployment, status, reason, revision_number):
    """A ``deployment_status_changed``, added to the outbox in ``deployment``'s session."""
    return outbox.emit(
        deployment,
        DEPLOYMENT_STATUS_CHANGED,
        DeploymentStatusChanged,
        deployment_id=deployment.id,
        tenant_id=deployment.tenant_id,
        revision=revision_number,
        status=status,
        reason=reason,
    )


# -- capacity ----------------------------------------------------------------------------------


def host_loads(session, pool, reachability, deployment_id=None, exclude=()):
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
    for instance in pool_instances(session, pool.name):
        load = loads.get(instance.host)
        if load is None or instance.id in exclude:
            continue
        load.used_cpu += instance.cpu
        load.used_memory += instance.memory
        load.ports.update(p["host_port"] for p in instance.ports if p.get("host_port"))
        if instance.deployment_id == deployment_id:
            load.instances += 1
    return [loads[host.name] for host in pool.hosts]


def ports_in_domain(session, pool, host_name):
    """Host ports recorded for instances whose ports collide with ``host_name``'s."""
    domain = pool.port_domain(host_name)
    rows = session.scalars(sa.select(Instance.ports).where(Instance.port_domain == domain))
    return {p["host_port"] for ports in rows for p in ports if p.get("host_port")}


def promised(session, pool_name, exclude=None):
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
        newest = revision(session, deployment.id, deployment.revision)
        number = newest.number if newest.status in IN_PROGRESS else (deployment.serving_revision or newest.number)
        target = newest if number == newest.number else revision(session, deployment.id, number)
        placed = instances(session, deployment.id)
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


def reserve_promised(session, pool, loads, exclude=None):
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
