"""The reconciler: what the records say against what the engines run.

Each pass (a nameko timer):

1. lists, on every host of every pool, the containers labelled with this deployer's ID — before
   reading the records, so that a container created meanwhile always has its row already;
2. removes containers of deployments that are deleted or unknown here;
3. for each deployment with no operation in progress, finds instances whose container exited or
   disappeared, instances on hosts that do not answer, and containers with no row;
4. fixes such a deployment under its lock: dead instances are removed and forgotten, instances
   on an unreachable host are marked ``unknown`` (kept, not replaced: the host may come back with
   them), stray containers are removed; if the serving revision then has fewer instances than
   ``replicas``, a restore rollout is requested (status ``degraded`` until it is ``running``);
5. takes over a lock whose holder shows no sign of life for ``OPERATION_STALE_AFTER`` seconds
   and requests the operation again (its worker died and its event was lost);
6. starts the pushes an auto-deploy policy follows that still wait on an idle deployment (the
   process that recorded one died before starting it: ``deployer.autodeploy``).
"""

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from deployer import autodeploy, outbox
from deployer.aggregate import RECONCILE, ROLLOUT, Event, is_busy
from deployer.aggregate import Deployment as DeploymentAggregate
from deployer.engine import DEPLOYER, DEPLOYMENT, MANAGED, ContainerNotFound, ContainerSummary, EngineError
from deployer.models import CREATING, DEGRADED, RUNNING, STARTING, STOPPED, UNKNOWN, Deployment, Instance
from deployer.runtime import Runtime
from deployer.settings import Host

log = logging.getLogger(__name__)

ALIVE = ("running", "restarting")  # a restarting container is the engine's restart policy at work
# A restore that failed (no room, image gone) is tried again after this many reconciler intervals,
# not at every pass.
RESTORE_RETRY_INTERVALS = 6


@dataclass
class Findings:
    dead: list = field(default_factory=list)  # (instance id, reason)
    unreachable: list = field(default_factory=list)  # instance ids now on an unreachable host
    back: list = field(default_factory=list)  # unknown instance ids whose host answers again
    strays: list = field(default_factory=list)  # (host, container summary) without a row

    def __bool__(self) -> bool:
        return bool(self.dead or self.unreachable or self.back or self.strays)


def diagnose(
    rows: Sequence[Instance],
    deployment_id: str,
    containers: Mapping[str, list[ContainerSummary]],
    unreachable: Mapping[str, str],
) -> Findings:
    """Compare one deployment's instance rows with the containers seen per reachable host.

    ``containers``: ``{host: [ContainerSummary]}`` for hosts that answered; ``unreachable``:
    ``{host: error}``. Instances being created or started belong to a rollout and are left alone.
    """
    findings = Findings()
    for row in rows:
        if row.state in (CREATING, STARTING):
            continue
        if row.host in unreachable:
            if row.state != UNKNOWN:
                findings.unreachable.append(row.id)
            continue
        seen = containers.get(row.host)
        if seen is None:  # a host no longer in the configuration: nothing to compare with
            continue
        match = next((c for c in seen if c.id == row.container_id or c.name == row.container_name), None)
        if match is None:
            findings.dead.append((row.id, f"container {row.container_name} on {row.host} disappeared"))
        elif match.status not in ALIVE:
            findings.dead.append((row.id, f"container {row.container_name} on {row.host} {match.status}"))
        elif row.state == UNKNOWN:
            findings.back.append(row.id)
    known = {row.container_id for row in rows} | {row.container_name for row in rows}
    for host, seen in containers.items():
        for container in seen:
            if container.labels.get(DEPLOYMENT) == deployment_id and not {container.id, container.name} & known:
                findings.strays.append((host, container))
    return findings


class Reconciler:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.settings = rt.settings

    def run(self) -> None:
        containers, unreachable = self.survey()
        now = self.rt.now()
        with self.rt.transaction() as session:
            live = {
                d.id: d
                for d in session.scalars(sa.select(Deployment).where(Deployment.deleted_at.is_(None)))
                if not self.on_swarm(d.pool)
            }
            rows: dict[str, list[Instance]] = {}
            for row in session.scalars(sa.select(Instance)):
                rows.setdefault(row.deployment_id, []).append(row)
            session.expunge_all()
        self.remove_orphans(containers, live)
        for deployment in live.values():
            try:
                self.check(deployment, rows.get(deployment.id, []), containers, unreachable, now)
            except Exception:  # one deployment's trouble must not stop the pass for the others
                log.exception("reconciling deployment %s failed", deployment.id)
        self.resume_stale(now)
        for deployment in live.values():
            if deployment.pending_push is not None and deployment.operation is None:
                autodeploy.start_safely(self.rt, deployment.id)

    def on_swarm(self, pool_name: str) -> bool:
        """A deployment of a swarm pool: ``deployer.swarm.SwarmReconciler``'s, not this pass's."""
        pool = self.settings.pools.get(pool_name)
        return pool is not None and pool.is_swarm

    def survey(self) -> tuple[dict[str, list[ContainerSummary]], dict[str, str]]:
        labels = {MANAGED: "true", DEPLOYER: self.settings.deployer_id}

        def look(host: Host) -> tuple[str, list[ContainerSummary] | None, str | None]:
            try:
                return host.name, self.rt.engine(host.name).list(labels), None
            except EngineError as exc:  # not answering usefully: judged like an unreachable host
                return host.name, None, str(exc)

        seen = self.rt.run_all(look, self.settings.all_hosts())
        return (
            {name: found for name, found, _ in seen if found is not None},
            {name: error for name, _, error in seen if error is not None},
        )

    def remove_orphans(self, containers: Mapping[str, list[ContainerSummary]], live: Mapping[str, Deployment]) -> None:
        orphans = [(host, c) for host, seen in containers.items() for c in seen if c.labels.get(DEPLOYMENT) not in live]
        if orphans:
            log.info("removing %d container(s) of deleted or unknown deployments", len(orphans))
            self.remove(orphans)

    def remove(self, pairs: list[tuple[str, ContainerSummary]]) -> None:
        def remove(pair: tuple[str, ContainerSummary]) -> None:
            host, container = pair
            try:
                self.rt.engine(host).remove(container.id, self.settings.stop_timeout)
            except EngineError as exc:
                log.warning("could not remove %s on %s: %s", container.name, host, exc)

        self.rt.run_all(remove, pairs)

    def check(
        self,
        deployment: Deployment,
        rows: Sequence[Instance],
        containers: Mapping[str, list[ContainerSummary]],
        unreachable: Mapping[str, str],
        now: datetime,
    ) -> None:
        if deployment.operation is not None:
            return  # busy, or stale (resume_stale's business)
        findings = diagnose(rows, deployment.id, containers, unreachable)
        retry_after = timedelta(seconds=RESTORE_RETRY_INTERVALS * self.settings.reconcile_interval)
        restore_due = self.needs_restore(deployment, rows) and (
            deployment.status != DEGRADED or deployment.updated_at < now - retry_after
        )
        if not findings and not restore_due and not self.recovered(deployment, rows):
            return
        with self.rt.transaction() as session:
            operation_id = DeploymentAggregate.take_lock(
                session, deployment.id, RECONCILE, now, self.settings.operation_stale_after
            )
        if operation_id is None:
            return  # an RPC took it meanwhile: look again next pass
        try:
            self.fix(deployment, findings, unreachable, operation_id)
        except Exception:
            with self.rt.transaction() as session:
                current = DeploymentAggregate.get(session, deployment.id)
                if current is not None:
                    current.release_lock_of(operation_id)
            raise

    def needs_restore(self, deployment: Deployment, rows: Iterable[Instance]) -> bool:
        """Fewer instances of the serving revision than wanted, and nobody at work on it."""
        if deployment.serving_revision is None or deployment.status == STOPPED:
            return False
        present = sum(1 for r in rows if r.revision == deployment.serving_revision and r.state in (RUNNING, UNKNOWN))
        return present < deployment.replicas

    def recovered(self, deployment: Deployment, rows: Sequence[Instance]) -> bool:
        """Degraded only by unreachable hosts that now answer: back to running."""
        return (
            deployment.status == DEGRADED
            and not self.needs_restore(deployment, rows)
            and all(r.state == RUNNING for r in rows)
        )

    def fix(
        self, deployment: Deployment, findings: Findings, unreachable: Mapping[str, str], operation_id: str
    ) -> None:
        # Look again, one container at a time, now that no rollout can start meanwhile.
        dead = [
            (instance_id, reason)
            for instance_id, reason in findings.dead
            if self.still_dead(deployment.id, instance_id)
        ]
        self.remove(findings.strays)
        now = self.rt.now()
        with self.rt.transaction() as session:
            current = DeploymentAggregate.get(session, deployment.id)
            if current is None or current.row.operation_id != operation_id:
                return
            doomed = [(session.get(Instance, instance_id), reason) for instance_id, reason in dead]
            doomed = [(row, reason) for row, reason in doomed if row is not None]
            for instance_id in findings.unreachable:
                row = session.get(Instance, instance_id)
                if row is not None:
                    current.instance_unknown(now, instance_id, f"host unreachable: {unreachable[row.host]}")
            for instance_id in findings.back:
                current.instance_running(now, instance_id)
            gone = [(row.host, row.container_id or row.container_name) for row, _ in doomed]
            current.forget_instances(row.id for row, _ in doomed)
            session.flush()
            rows = current.instances()
            reasons = [reason for _, reason in dead]
            outgoing = self.decide(current, rows, reasons, operation_id, now)
        for host, container in gone:  # exited ones are still there: out of the way
            try:
                self.rt.engine(host).remove(container, self.settings.stop_timeout)
            except EngineError:
                pass
        outbox.send(self.rt, outgoing)

    def still_dead(self, deployment_id: str, instance_id: str) -> bool:
        with self.rt.transaction() as session:
            row = session.get(Instance, instance_id)
            if row is None:
                return False
            host, container = row.host, row.container_id or row.container_name
        try:
            state = self.rt.engine(host).inspect(container)
        except ContainerNotFound:
            return True
        except EngineError:
            return False  # cannot tell now: next pass
        return state.status not in ALIVE

    def decide(
        self,
        deployment: DeploymentAggregate,
        rows: Sequence[Instance],
        reasons: Iterable[str],
        operation_id: str,
        now: datetime,
    ) -> list[Event]:
        """What the deployment (the aggregate, its lock held by ``operation_id``) becomes after a
        fix: restored, degraded, recovered, or as it was; the events to send."""
        row = deployment.row
        serving = row.serving_revision
        unknown = sorted({r.host for r in rows if r.state == UNKNOWN})
        notes = list(reasons)
        if unknown:
            count = sum(1 for r in rows if r.state == UNKNOWN)
            notes.append(f"host(s) {', '.join(unknown)} unreachable: {count} instance(s) unknown")
        if self.needs_restore(row, rows):
            missing = row.replicas - sum(1 for r in rows if r.revision == serving and r.state in (RUNNING, UNKNOWN))
            return deployment.restore(operation_id, now, "; ".join(notes + [f"restoring {missing} instance(s)"]))
        if notes and serving is not None:
            return deployment.degrade(operation_id, now, "; ".join(notes))
        if row.status == DEGRADED and serving is not None:
            return deployment.recover(operation_id, now)
        deployment.release_lock()
        return []

    def resume_stale(self, now: datetime) -> None:
        """Request again the operations whose worker vanished (their lock went stale)."""
        with self.rt.transaction() as session:
            stale = [
                d.id
                for d in session.scalars(sa.select(Deployment).where(Deployment.operation.is_not(None)))
                if not is_busy(d, now, self.settings.operation_stale_after)
            ]
        for deployment_id in stale:
            outgoing = []
            with self.rt.transaction() as session:
                deployment, operation_id = DeploymentAggregate.lock(
                    session, deployment_id, ROLLOUT, now, self.settings.operation_stale_after
                )
                if operation_id is None:
                    continue
                outgoing.extend(deployment.resume(operation_id))
                log.warning(
                    "deployment %s: operation with no sign of life taken over and requested again", deployment_id
                )
            outbox.send(self.rt, outgoing)


def reconcile(rt: Runtime) -> None:
    """One pass over every pool, each by its kind (``deployer.pools``)."""
    from deployer import pools  # it imports this module

    pools.reconcile_all(rt)
