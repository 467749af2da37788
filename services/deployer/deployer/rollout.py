"""The rollout worker: bring a deployment to ``replicas`` healthy instances of one revision.

One algorithm serves create, update, rollback, scale and the reconciler's restores: compare the
instances recorded with the target, then

1. remove what an interrupted earlier run left half-started;
2. plan: each missing instance either *replaces* an instance of an older revision (placed on
   that instance's host if it has room: "host by host") or is *added*;
3. ``pulling``: pull the pinned digest on every host of the plan;
4. ``starting``: each replacement in turn: start the new instance, wait until healthy, then stop
   the old one. Additions start together and are waited for together;
5. remove what is left over (older revisions, instances beyond ``replicas``); ``running``.

A failure stops and removes the new revision's containers; an older revision that was serving
keeps serving (``rollout_failed``), topped back up if a replacement already took some of its
instances: that is the rollback, so a revision an auto-deploy policy made ends ``rolled_back``.
The first revision of a deployment fails as ``failed``. Once a run ends, a push the deployment's
policy follows that waited for it is started (``deployer.autodeploy``).

Every write checks, in the same transaction, that this run still holds the deployment's lock:
a delete (or a stale-lock takeover) makes the run stop at its next step and remove what it
started. Nothing here holds a transaction open across an engine call.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy.orm import Session

from deployer import autodeploy, capacity, credentials, deployments, store
from deployer import spec as specs
from deployer.aggregate import new_id, rolled_back_reason
from deployer.engine import (
    DEPLOYER,
    DEPLOYMENT,
    INSTANCE,
    MANAGED,
    REVISION,
    TENANT,
    ContainerNotFound,
    ContainerSpec,
    ContainerState,
    Engine,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullDenied,
)
from deployer.models import (
    AUTO_DEPLOY,
    CREATING,
    DEGRADED,
    FAILED,
    PULLING,
    ROLLED_BACK,
    ROLLOUT_FAILED,
    RUNNING,
    STARTING,
    UNKNOWN,
)
from deployer.placement import NoCapacity, NoFreePort, allocate_ports, place
from deployer.runs import Aborted, Live, Plan, RolloutFailed, Run, Step, Target, container_name
from deployer.runtime import Runtime
from deployer.settings import Host

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_SECONDS = 0.25  # between two looks at a starting container
HEARTBEAT_SECONDS = 1.0  # how often a long wait proves the lock is still ours
HTTP_ATTEMPT_SECONDS = 1.0
LOG_TAIL = 5  # lines of a failed container's output kept in the reason
REASON_LOG_CHARS = 300


def handle(rt: Runtime, request: Mapping[str, Any]) -> None:
    """Carry out a ``rollout_requested`` event (already loaded with its schema) on the deployment's
    kind of pool (``deployer.pools``)."""
    from deployer import pools  # it imports this module

    pools.handle(rt, request)


class Rollout(Run):
    def __init__(self, rt: Runtime, deployment_id: str, operation_id: str, revision_number: int) -> None:
        super().__init__(rt, deployment_id, operation_id)
        self.number = revision_number
        self.started: list[Live] = []  # instances this run created: removed again if it fails or is aborted

    def run(self) -> None:
        try:
            if not self.load():
                return
            self.clear_inflight()
            plan = self.plan()
            self.execute(plan)
            self.succeed()
        except Aborted as exc:
            log.info("rollout of %s revision %s stopped: %s", self.deployment_id, self.number, exc)
            self.remove_containers([s for s in self.started if s.revision == self.number])
            return
        except RolloutFailed as exc:
            log.info("rollout of %s revision %s failed: %s", self.deployment_id, self.number, exc)
            if not self.fail(str(exc)):
                return
        autodeploy.start_safely(self.rt, self.deployment_id)  # a push that waited for this run

    # -- reading ---------------------------------------------------------------------------------

    def load(self) -> bool:
        """Claim the request (``Run.claimed``) and read what the run needs; False when the request
        is stale or already claimed by another delivery of it."""
        try:
            with self.claimed() as (session, deployment):
                row = deployment.row
                if row.deleted_at is not None:
                    raise Aborted(f"deployment {self.deployment_id} is deleted")
                self.tenant_id, self.name = row.tenant_id, row.name
                self.pool = self.settings.pools[row.pool]
                self.replicas = row.replicas
                self.serving = row.serving_revision
                self.target = self.load_target(session, self.number)
        except Aborted:
            log.info(
                "rollout_requested for %s (operation %s) is stale or already under way: dropped",
                self.deployment_id,
                self.operation_id,
            )
            return False
        return True

    def load_target(self, session: Session, number: int) -> Target:
        revision = store.recorded_revision(session, self.deployment_id, number)
        return Target(
            number=number,
            pull_ref=revision.pull_ref,
            runtime=dict(revision.spec),
            image=revision.image,
            trigger=revision.trigger,
        )

    def current(self) -> list[Live]:
        with self.locked() as (session, _):
            return [Live.of(row) for row in store.instances(session, self.deployment_id)]

    # -- planning --------------------------------------------------------------------------------

    def clear_inflight(self) -> None:
        """A run that died mid-way leaves instances being created or started: start over."""
        inflight = [i for i in self.current() if i.state in (CREATING, STARTING)]
        if inflight:
            self.remove_containers(inflight)
            self.forget(inflight)

    def plan(self) -> Plan:
        lives = self.current()
        reachability = deployments.ping_hosts(self.rt, self.pool.hosts)
        with self.locked() as (session, _):
            loads = {
                load.name: load for load in capacity.host_loads(session, self.pool, reachability, self.deployment_id)
            }
        target = self.target.number
        # Keep running instances of the target first; then unknown ones (host unreachable).
        keep = sorted(
            (i for i in lives if i.revision == target and i.state in (RUNNING, UNKNOWN)),
            key=lambda i: (i.state != RUNNING, i.host),
        )
        extras, keep = keep[self.replicas :], keep[: self.replicas]
        # Older revisions' instances, running ones first: each is replaced by a new instance.
        old = sorted(
            (i for i in lives if i not in keep and i not in extras), key=lambda i: (i.state != RUNNING, i.host, i.id)
        )
        runtime = self.target.runtime
        plan = Plan()
        stop_first = specs.update_strategy(runtime) == specs.STOP_FIRST
        for _ in range(self.replicas - len(keep)):
            replaced = old.pop(0) if old else None
            if stop_first and replaced is not None and replaced.host in loads:
                # Stopped before its successor starts: its room and ports are the successor's.
                loads[replaced.host].release(replaced.cpu, replaced.memory, _host_ports(replaced.ports))
            try:
                host = place(
                    list(loads.values()),
                    1,
                    runtime["cpu"],
                    runtime["memory"],
                    _fixed(runtime),
                    prefer=replaced.host if replaced else None,
                )[0]
            except NoCapacity as exc:
                raise RolloutFailed(f"no room in pool {self.pool.name!r}: {exc}") from None
            plan.steps.append(Step(host=host, old=replaced))
            if replaced is not None and replaced.host in loads and not stop_first:
                loads[replaced.host].release(replaced.cpu, replaced.memory, _host_ports(replaced.ports))
        plan.removals = extras + old
        return plan

    # -- doing -----------------------------------------------------------------------------------

    def execute(self, plan: Plan) -> None:
        if plan.steps:
            lacking = self.lacking_image({step.host for step in plan.steps})
            if lacking:
                self.set_status(PULLING)
                self.pull(lacking)
                self.set_status(STARTING)
            else:  # nothing to pull: both steps said in one transaction, in their order
                self.set_status(PULLING, STARTING)
        stop_first = specs.update_strategy(self.target.runtime) == specs.STOP_FIRST
        for step in (s for s in plan.steps if s.old is not None):
            if stop_first:  # a recreate: the old instance's ports and room go to its successor
                self.retire([step.old])
            new = self.start(step.host)
            self.wait_healthy([new])
            if not stop_first:
                self.retire([step.old])
        additions = [self.start(step.host) for step in plan.steps if step.old is None]
        if additions:
            self.wait_healthy(additions)
        self.retire(plan.removals)

    def set_status(self, *statuses: str) -> None:
        with self.locked() as (_, deployment):
            now = self.rt.now()
            events = [
                e
                for status in statuses
                for e in deployment.progress(self.operation_id, now, status, self.target.number)
            ]
        self.publish(*events)

    def lacking_image(self, hosts: Iterable[str]) -> list[str]:
        """The hosts that must pull the target's image. A reference pinned by digest names content
        that never changes, so an engine that holds it under that reference (pulled there for this
        tenant's repository before: only the tenant's deployments name it) is not asked to pull
        again, as Kubernetes' ``IfNotPresent``: a pull costs a registry round trip, a token and a
        credential even when every layer is cached. A tag is always pulled."""
        if "@" not in self.target.pull_ref:
            return sorted(hosts)
        return [
            host
            for host in sorted(hosts)
            if not self.on_engine(host, "inspect", lambda e: e.has_image(self.target.pull_ref))
        ]

    def pull(self, hosts: Iterable[str]) -> None:
        auth = self.pull_auth()
        for host in hosts:
            self.on_engine(host, "pull", lambda e: e.pull(self.target.pull_ref, auth))

    def on_engine(self, host: str, what: str, call: Callable[[Engine], T]) -> T:
        """``call`` on the host's engine; its failures as the rollout's, named."""
        try:
            return call(self.rt.engine(host))
        except ImageNotFound as exc:
            raise RolloutFailed(f"image not found: {self.target.pull_ref} ({exc})") from None
        except PullDenied as exc:
            raise RolloutFailed(f"pull denied: {self.target.pull_ref} ({exc})") from None
        except EngineUnavailable as exc:
            raise RolloutFailed(f"host {host} unreachable: {exc}") from None
        except EngineError as exc:
            raise RolloutFailed(f"{what} of {self.target.pull_ref} on {host} failed: {exc}") from None

    def pull_auth(self) -> dict[str, str] | None:
        return self.lasting_auth(credentials.REFRESH_MARGIN)[0]

    def lasting_auth(self, seconds: float) -> tuple[dict[str, str] | None, float | None]:
        """The tenant's pull credential good for ``seconds`` at least, and until when it is known
        good (``credentials.lasting``); none to be had fails the rollout."""
        try:
            return credentials.lasting(
                self.rt.pull_auth, self.settings.registry_auth, self.tenant_id, seconds, self.rt.now().timestamp()
            )
        except credentials.CredentialsUnavailable as exc:
            raise RolloutFailed(f"pull of {self.target.pull_ref} not attempted: {exc}") from None

    def start(self, host_name: str) -> Live:
        """Record, create and start one instance of the target on ``host_name``."""
        host = self.settings.host(host_name)
        runtime = self.target.runtime
        instance_id = new_id()
        name = container_name(self.tenant_id, self.name, self.target.number, instance_id)
        now = self.rt.now()
        with self.locked() as (session, deployment):
            ports = self.assign_ports(session, host, runtime["ports"])
            deployment.add_instance(
                self.operation_id,
                now,
                instance_id=instance_id,
                number=self.target.number,
                host=host_name,
                container_name=name,
                ports=ports,
                port_domain=self.pool.port_domain(host_name),
                cpu=runtime["cpu"],
                memory=runtime["memory"],
            )
        live = Live(
            id=instance_id,
            revision=self.target.number,
            host=host_name,
            container_name=name,
            container_id=None,
            state=CREATING,
            ports=ports,
            cpu=runtime["cpu"],
            memory=runtime["memory"],
        )
        self.started.append(live)
        try:
            live.container_id = self.rt.engine(host_name).run(self.container_spec(live, runtime))
        except EngineUnavailable as exc:
            raise RolloutFailed(f"host {host_name} unreachable: {exc}") from None
        except EngineError as exc:
            raise RolloutFailed(_start_failure(host_name, exc)) from None
        live.started = self.rt.monotonic()
        live.state = STARTING
        now = self.rt.now()
        with self.locked() as (_, deployment):
            deployment.instance_started(self.operation_id, now, instance_id, live.container_id)
        return live

    def assign_ports(self, session: Session, host: Host, wanted: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Host ports for one instance: the fixed ones if free, the rest allocated from the range."""
        in_use = capacity.ports_in_domain(session, self.pool, host.name)
        ports: list[dict[str, Any]] = []
        for port in wanted:
            fixed = port["host_port"]
            if fixed and (fixed in in_use or not self.rt.port_is_free(host, fixed)):
                raise RolloutFailed(f"port taken: {host.address}:{fixed} is already in use (on {host.name})")
            ports.append({"container_port": port["container_port"], "host_port": fixed})
        free_needed = sum(1 for p in ports if not p["host_port"])
        try:
            allocated = allocate_ports(
                free_needed,
                in_use | _host_ports(ports),
                self.settings.port_range,
                lambda p: self.rt.port_is_free(host, p),
                self.rt.rng,
            )
        except NoFreePort as exc:
            raise RolloutFailed(f"port taken: {exc}") from None
        for port in ports:
            if not port["host_port"]:
                port["host_port"] = allocated.pop(0)
        return ports

    def container_spec(self, live: Live, runtime: Mapping[str, Any]) -> ContainerSpec:
        env = dict(runtime["env"])
        # The port each instance must listen on: its host port with host networking, its
        # container port behind a bridge (the engine maps host_port to it).
        listen = [p["host_port"] if self.pool.network_mode == "host" else p["container_port"] for p in live.ports]
        for index, port in enumerate(listen):
            env[f"PORT{index}"] = str(port)
        if listen:
            env["PORT"] = str(listen[0])
        labels = {
            MANAGED: "true",
            DEPLOYER: self.settings.deployer_id,
            TENANT: self.tenant_id,
            DEPLOYMENT: self.deployment_id,
            REVISION: str(live.revision),
            INSTANCE: live.id,
        }
        return ContainerSpec(
            name=live.container_name,
            image=self.target.pull_ref,
            command=runtime["command"],
            env=env,
            labels=labels,
            cpu=runtime["cpu"],
            memory=runtime["memory"],
            restart_policy=runtime["restart_policy"],
            network_mode=self.pool.network_mode,
            ports=live.ports,
        )

    def wait_healthy(self, lives: Iterable[Live]) -> None:
        pending = list(lives)
        last_heartbeat = self.rt.monotonic()
        while pending:
            for live in list(pending):
                if self.is_healthy(live):
                    pending.remove(live)
                    live.state = RUNNING
                    with self.locked() as (_, deployment):
                        deployment.instance_running(self.rt.now(), live.id)
            if not pending:
                return
            if self.rt.monotonic() - last_heartbeat >= HEARTBEAT_SECONDS:
                with self.locked():
                    pass
                last_heartbeat = self.rt.monotonic()
            self.rt.sleep(POLL_SECONDS)

    def is_healthy(self, live: Live) -> bool:
        engine = self.rt.engine(live.host)
        try:
            state = engine.inspect(live.container_id)
        except ContainerNotFound:
            raise RolloutFailed(f"container {live.container_name} on {live.host} disappeared while starting") from None
        except EngineUnavailable as exc:
            raise RolloutFailed(f"host {live.host} unreachable: {exc}") from None
        except EngineError as exc:
            raise RolloutFailed(f"could not inspect {live.container_name} on {live.host}: {exc}") from None
        if not state.running or state.restart_count > 0:
            raise RolloutFailed(self.exit_reason(engine, live, state))
        health = self.target.runtime["health"]
        elapsed = self.rt.monotonic() - live.started
        if health["type"] == "running":
            return elapsed >= health["seconds"]
        host = self.settings.host(live.host)
        url = f"http://{host.address}:{live.ports[health['port_index']]['host_port']}{health['path']}"
        if self.rt.http_ok(url, HTTP_ATTEMPT_SECONDS):
            return True
        if elapsed >= health["timeout"]:
            raise RolloutFailed(
                f"health check failed: GET {url} gave no 2xx/3xx answer within "
                f"{health['timeout']:g}s (instance on {live.host})"
            )
        return False

    def exit_reason(self, engine: Engine, live: Live, state: ContainerState) -> str:
        if state.running:
            # Caught after its restart policy started it again: the engine reports the running
            # attempt (exit code 0), so the code the previous attempt exited with is not known.
            what = f"container kept exiting and was restarted {state.restart_count} time(s) by its restart policy"
        else:
            what = f"container exited with code {state.exit_code}"
        if state.oom_killed:
            what += " (out of memory)"
        if state.error:
            what += f": {state.error}"
        try:
            # An instance being waited for was started: start() set its container_id.
            output = " | ".join(engine.logs(cast(str, live.container_id), LOG_TAIL).strip().splitlines())
        except EngineError:
            output = ""
        if output:
            what += f"; last output: {output[-REASON_LOG_CHARS:]}"
        return f"{what} (instance on {live.host})"

    def retire(self, lives: Sequence[Live]) -> None:
        """Stop and remove instances, then forget them."""
        if not lives:
            return
        self.remove_containers(lives)
        self.forget(lives)

    # -- endings ---------------------------------------------------------------------------------

    def succeed(self) -> None:
        with self.locked() as (_, deployment):
            events = deployment.serve(self.operation_id, self.rt.now(), self.target.number)
        self.publish(*events)

    def fail(self, cause: str) -> bool:
        """Remove the failed revision's new containers, keep (or top up) what served, say so.
        False if the run lost its lock meanwhile."""
        failed, serving, failed_target = self.target.number, self.serving, self.target
        try:
            self.remove_failed(failed, serving)
            status, reason = self.outcome(cause, failed_target, serving)
            now = self.rt.now()
            with self.locked() as (_, deployment):
                events = deployment.fail(self.operation_id, now, failed, status, reason, cause)
            self.publish(*events)
            return True
        except Aborted as exc:
            log.info("rollout of %s stopped while failing: %s", self.deployment_id, exc)
            self.remove_containers([s for s in self.started if s.revision == failed])
            return False

    def remove_failed(self, failed: int, serving: int | None) -> None:
        """Remove the failed revision's new containers (a scale or a restore keeps its healthy ones)."""
        lives = self.current()
        if serving == failed:
            doomed = [i for i in lives if i.revision == failed and i.state != RUNNING]
        else:
            doomed = [i for i in lives if i.revision == failed]
        self.retire(doomed)

    def running_count(self, number: int) -> int:
        """Instances of revision ``number`` running (or on a host that does not answer)."""
        return sum(1 for i in self.current() if i.revision == number and i.state in (RUNNING, UNKNOWN))

    def nothing_served(self) -> None:
        """A first revision failed: nothing is left to keep (its containers are already removed)."""

    def outcome(self, reason: str, failed: Target, serving: int | None) -> tuple[str, str]:
        """The status and reason after ``failed`` (a ``Target``) failed, topping the serving revision
        back up first. A revision made by a policy is rolled back by that: ``rolled_back``. The
        steps that depend on the kind of pool (``nothing_served``, ``running_count``, ``restore``)
        are methods a pool's rollout overrides."""
        if serving is None:
            self.nothing_served()
            return FAILED, reason
        if failed.number == serving:
            return DEGRADED, f"{reason}; {self.running_count(serving)} of {self.replicas} instance(s) running"
        restored = self.restore(serving)
        if failed.trigger == AUTO_DEPLOY:
            status, message = ROLLED_BACK, rolled_back_reason(failed.number, failed.image, reason, serving)
        else:
            status = ROLLOUT_FAILED
            message = f"revision {failed.number} failed: {reason}; revision {serving} is still serving"
        if restored is not None:
            return DEGRADED, f"{message}, but could not be brought back to {self.replicas} instance(s): {restored}"
        return status, message

    def restore(self, serving: int) -> str | None:
        """Bring the serving revision back to ``replicas`` (a replacement may have taken some of
        its instances before the failure). None on success, else why not."""
        with self.locked() as (session, _):
            self.target = self.load_target(session, serving)
        try:
            plan = self.plan()
            plan.removals = []  # nothing else is touched while failing
            if plan.steps:
                self.pull({step.host for step in plan.steps})
                self.wait_healthy([self.start(step.host) for step in plan.steps])
        except RolloutFailed as exc:
            self.retire([i for i in self.current() if i.revision == serving and i.state != RUNNING])
            return str(exc)
        return None


def _fixed(runtime: Mapping[str, Any]) -> set[int]:
    return {p["host_port"] for p in runtime["ports"] if p["host_port"]}


def _host_ports(ports: Iterable[Mapping[str, Any]]) -> set[int]:
    return {p["host_port"] for p in ports if p.get("host_port")}


def _start_failure(host_name: str, exc: Exception) -> str:
    message = str(exc)
    if "address already in use" in message or "port is already allocated" in message:
        return f"port taken: {message} (on {host_name})"
    return f"container could not start on {host_name}: {message}"
