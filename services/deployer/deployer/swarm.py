"""Pools of kind ``swarm``: a deployment is one Docker Swarm service.

The Deployment aggregate keeps the lifecycle (revisions, statuses, the lock, the outbox) exactly as
for an ``engines`` pool; what differs is who does the work. Here the swarm places tasks over its
nodes, rolls a new revision out one task at a time, judges health, rolls a failed update back and
restarts what dies; the deployer

* turns a revision into a service spec (``service_spec``): the image pinned by digest, pulled by
  the nodes with the tenant robot's short-lived credential; replicas, env, command, CPU and memory
  limits and reservations, restart policy, placement, health check, update and rollback
  configuration; labelled with tenant, deployment and revision;
* creates the service (revision 1), updates it (a new revision, a rollback, a scale), removes it;
* follows its tasks and update status to the deployment's statuses (``SwarmRollout``), and
  records its running tasks as the deployment's instances;
* reconciles its records with the services (``SwarmReconciler``): a service removed by hand is
  reported and created again; a service left behind by a deleted deployment, or by a first
  revision that failed, is removed (its teardown could not reach the swarm); a service of this
  deployer with no deployment here at all is reported, never removed;
* keeps the pull credential Swarm holds for each service valid: Swarm hands it to every later
  pull of the service's tasks (a task rescheduled onto a node without the image, a node added), so
  a short-lived robot credential would leave the service unable to heal once it expired. The
  credential is given good for ``SERVICE_AUTH_SECONDS`` at least, the time is a service label
  (``imagehub.auth-until``), and the reconciler renews it ``AUTH_RENEW_BEFORE`` seconds before
  then: an update of the service's labels and credential only, which replaces no running task.

Ports. Tasks use host networking. Each task of a slot listens on the ports the deployer chose for
that slot and revision: they are service labels (``imagehub.port.<slot>.<index>``), and the env of
the task template reads them through Swarm's template, ``{{index .Service.Labels (printf
"imagehub.port.%s.0" .Task.Slot)}}``, into ``$PORT``/``$PORT0``… when the task is created. A
start-first update gives the new revision other ports than those of the one it replaces (so the
new task of a slot can start while the old one still listens, even where nodes share one network
namespace, as the two nodes of this machine do); a stop-first update, a scale and a restart keep
them. A fixed host port is the same for every slot, and at most one task per node may hold it.
"""

import logging
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from deployer import autodeploy, credentials, outbox, store
from deployer import spec as specs
from deployer.aggregate import RECONCILE, is_busy
from deployer.aggregate import Deployment as DeploymentAggregate
from deployer.engine import DEPLOYER, DEPLOYMENT, REVISION, TENANT, EngineError, EngineUnavailable
from deployer.models import (
    DEGRADED,
    DELETING,
    PULLING,
    STARTING,
    Deployment,
    Instance,
)
from deployer.orchestrator import (
    ROLLBACK_COMPLETED,
    ROLLBACK_PAUSED,
    ROLLBACK_STARTED,
    TASK_ENDED,
    TASK_FAILED,
    UPDATE_PAUSED,
    UPDATING,
    Node,
    Service,
    ServiceSpec,
    Swarm,
    Task,
)
from deployer.placement import NoFreePort, allocate_ports
from deployer.rollout import LOG_TAIL, REASON_LOG_CHARS, Rollout
from deployer.runs import Aborted, RolloutFailed, Run, Target
from deployer.runtime import Runtime
from deployer.settings import Pool
from deployer.units import format_memory

log = logging.getLogger(__name__)

T = TypeVar("T")

SWARM = "imagehub.swarm"  # on our services and their containers (the engines reconciler skips them)
PORT_LABEL = "imagehub.port"  # imagehub.port.<slot>.<index> = host port
NODE_LABEL = "imagehub.host"  # a node's name in the deployer's records
AUTH_UNTIL = "imagehub.auth-until"  # until when the service's pull credential is good (Unix time, s)
SERVICE_AUTH_SECONDS = 300  # a credential handed to Swarm is good for at least this long
AUTH_RENEW_BEFORE = 120  # the reconciler renews it this long before it runs out
POLL_SECONDS = 0.1  # between two looks at the service and its tasks (two manager calls)
HEARTBEAT_SECONDS = 1.0
# A task pending with the scheduler's complaint (no node can take it) this long fails the rollout.
PENDING_GRACE_SECONDS = 10.0
HEALTH_INTERVAL_NS = 1_000_000_000
RESTART_DELAY_NS = 1_000_000_000
RESTART_CONDITIONS = {"no": "none", "on-failure": "on-failure", "always": "any", "unless-stopped": "any"}


def service_name(deployment_id: str) -> str:
    return f"ih-{deployment_id}"


def port_labels(ports: Mapping[int, list[int]]) -> dict[str, str]:
    return {f"{PORT_LABEL}.{slot}.{index}": str(port) for slot, row in ports.items() for index, port in enumerate(row)}


def slot_ports(labels: Mapping[str, str], count: int) -> dict[int, list[int]]:
    """``{slot: [host port per spec port]}`` from a service's labels (complete slots only)."""
    found: dict[int, dict[int, int]] = {}
    prefix = PORT_LABEL + "."
    for key, value in labels.items():
        if not key.startswith(prefix):
            continue
        slot, _, index = key[len(prefix) :].partition(".")
        if slot.isdigit() and index.isdigit() and value.isdigit():
            found.setdefault(int(slot), {})[int(index)] = int(value)
    return {slot: [row[i] for i in range(count)] for slot, row in found.items() if all(i in row for i in range(count))}


def without_auth(labels: Mapping[str, str]) -> dict[str, str]:
    """A service's labels less the credential's time, which changes with every renewal."""
    return {key: value for key, value in labels.items() if key != AUTH_UNTIL}


def auth_due(labels: Mapping[str, str], now: float) -> bool:
    """Whether the credential a service's label says is good until then must be renewed at
    ``now``: within ``AUTH_RENEW_BEFORE`` of that time, past it, or with no (readable) time."""
    until = labels.get(AUTH_UNTIL, "")
    return not until.isdigit() or int(until) - now < AUTH_RENEW_BEFORE


def _seconds_ns(seconds: float) -> int:
    return round(seconds * 1e9)


def _health(runtime: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Docker health check for an ``http`` health: GET from inside the task, on its own port,
    with the image's wget or curl; ``running`` has none (the update's monitor period judges)."""
    health = runtime["health"]
    if health["type"] != "http":
        return None
    url = f'"http://127.0.0.1:${{PORT{health["port_index"]}}}"{shlex.quote(health["path"])}'
    test = f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}"
    return {
        "Test": ["CMD-SHELL", test],
        "Interval": HEALTH_INTERVAL_NS,
        "Timeout": HEALTH_INTERVAL_NS,
        "Retries": 3,
        "StartPeriod": _seconds_ns(health["timeout"]),
    }


def _monitor(runtime: Mapping[str, Any]) -> float:
    """Seconds each new task is watched after it started before the update goes on."""
    health = runtime["health"]
    return max(float(health["seconds"]), 1.0) if health["type"] == "running" else 1.0


@dataclass(frozen=True)
class Identity:
    tenant_id: str
    deployment_id: str
    deployer_id: str


def service_spec(
    pool: Pool,
    who: Identity,
    target: Target,
    replicas: int,
    ports: Mapping[int, list[int]],
    stop_timeout: int,
    pids_limit: int,
) -> ServiceSpec:
    """The Swarm service for revision ``target`` of a deployment, its slots' ports chosen."""
    runtime = target.runtime
    env = dict(runtime["env"])
    for index in range(len(runtime["ports"])):
        env[f"PORT{index}"] = f'{{{{index .Service.Labels (printf "{PORT_LABEL}.%s.{index}" .Task.Slot)}}}}'
    if runtime["ports"]:
        env["PORT"] = env["PORT0"]
    identity = {
        DEPLOYER: who.deployer_id,
        TENANT: who.tenant_id,
        DEPLOYMENT: who.deployment_id,
        REVISION: str(target.number),
        SWARM: "true",
    }
    container: dict[str, Any] = {
        "Image": target.pull_ref,
        "Env": [f"{key}={value}" for key, value in env.items()],
        "Labels": identity,
        # docker run's COMMAND is the service's Args (Command would replace the entrypoint).
        "Args": runtime["command"],
        # tini as PID 1: the app gets SIGTERM like any process; zombies are reaped.
        "Init": True,
        "StopGracePeriod": _seconds_ns(stop_timeout),
        # No raw sockets: with host networking they would read the platform's loopback traffic.
        "CapabilityDrop": ["CAP_NET_RAW"],
    }
    health = _health(runtime)
    if health is not None:
        container["Healthcheck"] = health
    fixed = specs.fixed_ports(runtime)
    placement: dict[str, Any] = {"Preferences": [{"Spread": {"SpreadDescriptor": f"node.labels.{NODE_LABEL}"}}]}
    placement.update(_placement(runtime, fixed))
    strategy = specs.update_strategy(runtime)
    monitor = _seconds_ns(_monitor(runtime))
    update = {
        "Parallelism": 1,
        "Delay": 0,
        "FailureAction": "rollback",
        "Monitor": monitor,
        "MaxFailureRatio": 0,
        "Order": strategy,
    }
    task_template = {
        "ContainerSpec": container,
        "Resources": {
            "Limits": {
                "NanoCPUs": _seconds_ns(runtime["cpu"]),
                "MemoryBytes": runtime["memory"],
                "Pids": pids_limit,
            },
            # Reserved as much as the limit: the scheduler never promises a node more than it has.
            "Reservations": {"NanoCPUs": _seconds_ns(runtime["cpu"]), "MemoryBytes": runtime["memory"]},
        },
        "RestartPolicy": {
            "Condition": RESTART_CONDITIONS[runtime["restart_policy"]],
            "Delay": RESTART_DELAY_NS,
            "MaxAttempts": 0,
        },
        "Placement": placement,
        "Networks": [{"Target": "host"}],
    }
    labels = dict(identity, **port_labels(ports))
    return ServiceSpec(
        name=service_name(who.deployment_id),
        labels=labels,
        task_template=task_template,
        replicas=replicas,
        update_config=update,
        # A rollback goes on when a task fails: the one it starts in a slot gets the ports of the
        # revision it returns to, which the old task of that slot may still hold while it stops;
        # that task's restart (RestartPolicy) binds them once the old one is gone.
        rollback_config=dict(update, FailureAction="continue"),
    )


def _placement(runtime: Mapping[str, Any], fixed: set[int]) -> dict[str, Any]:
    """Constraints and the most tasks per node the spec asks for; a fixed host port allows one."""
    wanted = runtime.get("placement") or {}
    out: dict[str, Any] = {}
    if wanted.get("constraints"):
        out["Constraints"] = list(wanted["constraints"])
    per_node = wanted.get("max_per_node") or 0
    if fixed:
        per_node = 1
    if per_node:
        out["MaxReplicas"] = per_node
    return out


def _task_reason(task: Task, logs: str, node: str) -> str:
    """A failed task in the engines pool's words: how its container ended, its last output."""
    if task.exit_code not in (None, 0):
        what = f"container exited with code {task.exit_code}"
    elif task.state == "rejected":
        what = f"task rejected: {task.error or task.message}"
    else:
        what = f"task {task.state}: {task.error or task.message}"
    if logs:
        what += f"; last output: {logs[-REASON_LOG_CHARS:]}"
    return f"{what} (instance on {node}, slot {task.slot})"


class SwarmRollout(Rollout):
    """Bring the deployment's service to revision ``number`` at ``replicas`` tasks, through Swarm.

    Loading, statuses and endings are ``Rollout``'s; the doing is one create or update of the
    service, then a watch of its tasks and update status until it serves, fails or is rolled back.
    """

    def __init__(self, rt: Runtime, deployment_id: str, operation_id: str, revision_number: int) -> None:
        super().__init__(rt, deployment_id, operation_id, revision_number)
        self.first_failure: str | None = None  # why the revision's first failed task ended
        self.running: tuple[tuple[str, ...], float] = ((), 0.0)  # the running tasks' IDs, since when

    def run(self) -> None:
        try:
            if not self.load():
                return
            self.swarm: Swarm = self.rt.swarm(self.pool.name)
            self.service_name = service_name(self.deployment_id)
            self.set_status(PULLING)
            service = self.on_swarm("inspect", lambda s: s.service(self.service_name))
            changed = self.apply(service, self.target)
            self.converge(self.target, changed)
            self.record(self.target.number)
            self.succeed()
        except Aborted as exc:
            # A delete took the lock: its teardown removes the service.
            log.info("swarm rollout of %s revision %s stopped: %s", self.deployment_id, self.number, exc)
            return
        except RolloutFailed as exc:
            log.info("swarm rollout of %s revision %s failed: %s", self.deployment_id, self.number, exc)
            if not self.fail(str(exc)):
                return
        autodeploy.start_safely(self.rt, self.deployment_id)

    # -- talking to the swarm --------------------------------------------------------------------

    def on_swarm(self, what: str, call: Callable[[Swarm], T]) -> T:
        try:
            return call(self.swarm)
        except EngineUnavailable as exc:
            raise RolloutFailed(f"swarm pool {self.pool.name!r} unreachable: {exc}") from None
        except EngineError as exc:
            raise RolloutFailed(f"{what} of service {self.service_name} failed: {exc}") from None

    def apply(self, service: Service | None, target: Target) -> bool:
        """Create or update the service to run ``target``; whether its tasks must be replaced."""
        ports = self.choose_ports(service, target)
        spec = service_spec(
            self.pool,
            Identity(self.tenant_id, self.deployment_id, self.settings.deployer_id),
            target,
            self.replicas,
            ports,
            self.settings.stop_timeout,
            self.settings.pids_limit,
        )
        auth, until = self.lasting_auth(SERVICE_AUTH_SECONDS)
        if until is not None:
            spec = replace(spec, labels={**spec.labels, AUTH_UNTIL: str(int(until))})
        if service is None:
            self.on_swarm("create", lambda s: s.create(spec, auth))
            return True
        if (
            service.revision == target.number
            and service.replicas == self.replicas
            and without_auth(service.labels) == without_auth(spec.labels)
        ):
            return False  # already asked for (a resumed run, a restore of a service Swarm keeps)
        self.on_swarm("update", lambda s: s.update(service, spec, auth))
        return service.revision != target.number

    def choose_ports(self, service: Service | None, target: Target) -> dict[int, list[int]]:
        """Each slot's host ports for ``target``: kept from the current spec where the same
        revision runs or a stop-first update replaces it, else free ones the current spec does not
        hold (a start-first update runs both at once)."""
        wanted = target.runtime["ports"]
        if not wanted:
            return {}
        current = slot_ports(service.labels, len(wanted)) if service is not None else {}
        keep = service is not None and (
            service.revision == target.number or specs.update_strategy(target.runtime) == specs.STOP_FIRST
        )
        held = {port for row in current.values() for port in row}
        with self.locked() as (session, _):
            # Every port recorded in the pool: Swarm, not the deployer, chooses a task's node.
            held |= {p["host_port"] for i in store.pool_instances(session, self.pool.name) for p in i.ports}
        manager = self.pool.managers[0]
        chosen: dict[int, list[int]] = {}
        for slot in range(1, self.replicas + 1):
            if keep and slot in current and self._fits(current[slot], wanted):
                chosen[slot] = current[slot]
                continue
            try:
                free = allocate_ports(
                    sum(1 for p in wanted if not p["host_port"]),
                    held,
                    self.settings.port_range,
                    lambda port: self.rt.port_is_free(manager, port),
                    self.rt.rng,
                )
            except NoFreePort as exc:
                raise RolloutFailed(f"port taken: {exc}") from None
            held |= set(free)
            chosen[slot] = [p["host_port"] or free.pop(0) for p in wanted]
        return chosen

    @staticmethod
    def _fits(ports: list[int], wanted: list[dict[str, Any]]) -> bool:
        return all(not w["host_port"] or w["host_port"] == p for p, w in zip(ports, wanted, strict=True))

    def converge(self, target: Target, replacing: bool) -> None:
        """Wait until ``replicas`` tasks of ``target`` run (healthy, when it has a check) and no
        update is under way. ``RolloutFailed`` when Swarm rolled the update back or paused it, a
        task of a new service failed, or no node can take a task."""
        start = self.rt.monotonic()
        deadline = (
            start + self.settings.engine_timeout + self.replicas * (self._budget(target) + _monitor(target.runtime))
        )
        last_heartbeat, starting_said, pending_since = start, False, None
        while True:
            service = self.on_swarm("inspect", lambda s: s.service(self.service_name))
            if service is None:
                raise RolloutFailed(f"service {self.service_name} was removed while it was rolled out")
            tasks = self.tasks_of(service)
            ours = [t for t in tasks if t.revision == target.number]
            self.remember_failure(ours)
            if replacing and service.update_state in (ROLLBACK_STARTED, ROLLBACK_COMPLETED, ROLLBACK_PAUSED):
                if service.update_state == ROLLBACK_STARTED:
                    pass  # wait for Swarm to finish returning to the previous spec
                else:
                    raise SwarmRolledBack(
                        self.failure(ours, f"Swarm rolled the update back ({service.update_message})")
                    )
            elif replacing and service.update_state == UPDATE_PAUSED:
                raise RolloutFailed(self.failure(ours, f"Swarm paused the update: {service.update_message}"))
            else:
                if not starting_said and any(t.state in ("starting", "running") for t in ours):
                    self.set_status(STARTING)
                    starting_said = True
                live = [t for t in tasks if t.desired_state == "running"]
                if service.update_state != UPDATING and self._converged(live, target):
                    if not starting_said:
                        self.set_status(STARTING)
                    return
                if service.update_state != UPDATING and self.serving is None:
                    failed = [
                        t
                        for t in ours
                        if t.state in TASK_FAILED or (t.state == "complete" and t.desired_state != "shutdown")
                    ]
                    if failed:  # a new service has nothing to roll back to: its first failure ends it
                        raise RolloutFailed(self.failure(failed, "the service is removed (nothing served before)"))
            pending = [t for t in ours if t.state == "pending" and t.error and t.desired_state == "running"]
            if pending:
                pending_since = pending_since if pending_since is not None else self.rt.monotonic()
                if self.rt.monotonic() - pending_since >= PENDING_GRACE_SECONDS:
                    raise RolloutFailed(f"no node of swarm pool {self.pool.name!r} can take a task: {pending[0].error}")
            else:
                pending_since = None
            now = self.rt.monotonic()
            if now >= deadline:
                raise RolloutFailed(self.failure(ours, f"not running after {now - start:.0f}s"))
            if now - last_heartbeat >= HEARTBEAT_SECONDS:
                with self.locked():
                    pass
                last_heartbeat = now
            self.rt.sleep(POLL_SECONDS)

    def tasks_of(self, service: Service) -> list[Task]:
        return self.on_swarm("tasks", lambda s: s.tasks(service.id))

    def _budget(self, target: Target) -> float:
        health = target.runtime["health"]
        return float(health["timeout"]) if health["type"] == "http" else self.settings.health_timeout

    def _converged(self, live: list[Task], target: Target) -> bool:
        if len(live) != self.replicas or any(t.revision != target.number or t.state != "running" for t in live):
            return False
        health = target.runtime["health"]
        if health["type"] == "running" and self.serving is None:
            # A new service has no update monitor: its tasks must stay up ``seconds`` here.
            return self.rt.monotonic() - self._running_since(live) >= health["seconds"]
        return True

    def _running_since(self, live: list[Task]) -> float:
        key = tuple(sorted(t.id for t in live))
        if self.running[0] != key:
            self.running = (key, self.rt.monotonic())
        return self.running[1]

    def remember_failure(self, tasks: Iterable[Task]) -> None:
        """Keep why the revision's first failed task ended, read while Swarm still lists it (its
        restarts can push it out of the task history before the update is judged)."""
        if self.first_failure is not None:
            return
        failed = [t for t in tasks if t.state in TASK_FAILED or t.exit_code not in (None, 0)]
        if failed:
            self.first_failure = self.explain(min(failed, key=lambda t: t.created_at))

    def explain(self, task: Task) -> str:
        try:
            output = " | ".join(self.swarm.task_logs(task.id, LOG_TAIL).strip().splitlines())
            nodes = {n.id: n.name for n in self.swarm.nodes()}
        except EngineError:
            output, nodes = "", {}
        return _task_reason(task, output, nodes.get(task.node_id, task.node_id[:12]))

    def failure(self, tasks: Iterable[Task], what: str) -> str:
        """Why the revision failed: its first failed task (how it ended, its output, where), then
        ``what`` Swarm did; ``what`` alone when no task failed."""
        self.remember_failure(tasks)
        first = self.first_failure
        return f"{first}; {what}" if first else what

    # -- recording -------------------------------------------------------------------------------

    def record(self, number: int) -> None:
        """The service's running tasks of revision ``number`` become the deployment's instances."""
        service = self.on_swarm("inspect", lambda s: s.service(self.service_name))
        tasks = self.on_swarm("tasks", lambda s: s.tasks(service.id)) if service is not None else []
        nodes = {n.id: n for n in self.on_swarm("nodes", lambda s: s.nodes())}
        with self.locked() as (_, deployment):
            record_tasks(self.rt, self.pool, deployment, self.operation_id, service, tasks, nodes, number)

    # -- failing ---------------------------------------------------------------------------------

    # The failure's outcome is ``Rollout.fail``'s; these are its steps on a swarm.

    def remove_failed(self, failed: int, serving: int | None) -> None:
        """Nothing to remove here: Swarm rolled the update back, or ``restore`` updates it back."""

    def nothing_served(self) -> None:
        """A first revision failed: its service goes (Swarm would restart its tasks for ever)."""
        self.on_swarm_quietly(self.remove_service)

    def remove_service(self, swarm: Swarm) -> None:
        remove_own_service(self, swarm)

    def on_swarm_quietly(self, call: Callable[[Swarm], Any]) -> None:
        try:
            call(self.swarm)
        except EngineError as exc:
            log.warning("service %s: %s (the reconciler removes it once the swarm answers)", self.service_name, exc)

    def running_count(self, number: int) -> int:
        try:
            service = self.swarm.service(self.service_name)
            tasks = self.swarm.tasks(service.id) if service is not None else []
        except EngineError:
            return 0
        return sum(1 for t in tasks if t.revision == number and t.state == "running" and t.desired_state == "running")

    def restore(self, serving: int) -> str | None:
        """Make sure the service runs the serving revision again: Swarm's own rollback already did
        if the service says so; else update it back. None when it serves, else why not."""
        with self.locked() as (session, _):
            self.target = self.load_target(session, serving)
        try:
            service = self.on_swarm("inspect", lambda s: s.service(self.service_name))
            if service is None or service.revision != serving or service.replicas != self.replicas:
                changed = self.apply(service, self.target)
                self.converge(self.target, changed)
            else:
                self.converge(self.target, False)
            self.record(serving)
        except RolloutFailed as exc:
            return str(exc)
        return None


class SwarmRolledBack(RolloutFailed):
    """Swarm itself returned the service to its previous spec after a failed update."""


def record_tasks(
    rt: Runtime,
    pool: Pool,
    deployment: DeploymentAggregate,
    operation_id: str,
    service: Service | None,
    tasks: Iterable[Task],
    nodes: Mapping[str, Node],
    number: int,
) -> None:
    """Replace the deployment's instance rows with the running tasks of revision ``number``."""
    now = rt.now()
    revision = deployment.revision(number)
    spec_ports = revision.spec["ports"] if revision is not None else []
    ports_by_slot = slot_ports(service.labels, len(spec_ports)) if service is not None else {}
    deployment.forget_instances(i.id for i in deployment.instances())
    deployment.session.flush()
    for task in sorted(tasks, key=lambda t: t.slot):
        if task.revision != number or task.state != "running" or task.desired_state != "running":
            continue
        node = nodes.get(task.node_id)
        node_name = node.name if node is not None else task.node_id[:12]
        ports = [
            {"container_port": wanted["container_port"], "host_port": port}
            for wanted, port in zip(spec_ports, ports_by_slot.get(task.slot, []), strict=False)
        ]
        deployment.add_instance(
            operation_id,
            now,
            instance_id=task.id,
            number=number,
            host=node_name,
            container_name=f"{service_name(deployment.id)}.{task.slot}.{task.id}",
            ports=ports,
            port_domain=pool.port_domain(node_name),
            cpu=revision.spec["cpu"] if revision is not None else 0.0,
            memory=revision.spec["memory"] if revision is not None else 0,
            address=node.address if node is not None else None,
        )
        deployment.instance_started(operation_id, now, task.id, task.container_id or "")
        deployment.instance_running(now, task.id)


class SwarmTeardown(Run):
    """Remove a deleted deployment's service, and wait for Swarm to stop its tasks."""

    def run(self) -> None:
        pool = self.claim_removal()
        if pool is None:
            return
        reason = None
        try:
            self.remove(self.rt.swarm(pool.name))
        except EngineError as exc:
            reason = (
                f"service {service_name(self.deployment_id)} may remain ({exc}); the reconciler removes it once "
                f"the swarm answers"
            )
        self.finish_removal(reason)

    def remove(self, swarm: Swarm) -> None:
        remove_own_service(self, swarm)


def remove_own_service(run: Run, swarm: Swarm) -> None:
    """Remove ``run``'s deployment's service the safe way (``remove_service``), proving the
    run still holds the lock while Swarm stops the tasks."""
    service = swarm.service(service_name(run.deployment_id))
    if service is not None:
        remove_service(swarm, service, run.settings.stop_timeout + 30, run.rt.sleep, run.rt.monotonic, run.heartbeat)


def remove_service(
    swarm: Swarm,
    service: Service,
    timeout: float,
    sleep: Callable[[float], Any],
    clock: Callable[[], float],
    heartbeat: Callable[[], None] = lambda: None,
) -> None:
    """Scale the service to 0, wait until Swarm has stopped every task (each gets SIGTERM, then
    SIGKILL after its grace) and reaped them, then remove it: its containers go with it.

    Removed while tasks run or are being reaped, the service's tasks vanish from the API while
    their containers still stop, and Docker 20.10's manager can crash: its removal reads each
    task and then updates it, and a task the reaper deleted in between is a nil pointer
    (swarmkit ``SetServiceTasksRemove``). Once only ended tasks kept as history remain, nothing
    else touches them."""
    if service.replicas:
        swarm.scale(service, 0)
    deadline = clock() + timeout
    while clock() < deadline:
        tasks = swarm.tasks(service.id)
        if all(t.state in TASK_ENDED and t.desired_state != "remove" for t in tasks):
            break
        heartbeat()
        sleep(POLL_SECONDS)
    swarm.remove(service.id)


class SwarmReconciler:
    """One pass over the swarm pools: records against services (see the module's doc)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.settings = rt.settings

    def run(self) -> None:
        for pool in self.settings.pools.values():
            if pool.is_swarm:
                try:
                    self.pass_over(pool)
                except EngineError as exc:
                    log.warning("swarm pool %s not reconciled: %s", pool.name, exc)

    def pass_over(self, pool: Pool) -> None:
        swarm: Swarm = self.rt.swarm(pool.name)
        services = {s.labels.get(DEPLOYMENT): s for s in swarm.services({DEPLOYER: self.settings.deployer_id})}
        now = self.rt.now()
        with self.rt.transaction() as session:
            rows = list(session.scalars(sa.select(Deployment).where(Deployment.pool == pool.name)))
            live = {d.id: d for d in rows if d.deleted_at is None}
            known = {d.id for d in rows}
            session.expunge_all()
        for deployment_id, service in services.items():
            if deployment_id not in known:
                log.warning(
                    "service %s carries this deployer's label but no deployment here has it: left alone", service.name
                )
            elif deployment_id not in live:  # deleted: no RPC acts on it any more, no lock to take
                self.remove_leftover(swarm, service, f"deployment {deployment_id} was deleted")
        nodes: dict[str, Node] | None = None
        renewing = credentials.expire(self.rt.pull_auth)
        for deployment in live.values():
            if is_busy(deployment, now, self.settings.operation_stale_after) or deployment.status == DELETING:
                continue
            try:
                found = services.get(deployment.id)
                if deployment.serving_revision is None:
                    # A first revision failed and its service could not be removed then (a stale
                    # operation is resume_stale's to take over, not this step's).
                    if found is not None and deployment.operation is None:
                        with self.holding(deployment, now) as held:
                            if held:
                                self.remove_leftover(
                                    swarm, found, f"deployment {deployment.id} serves nothing ({deployment.status})"
                                )
                    continue
                if found is None:
                    self.recreate(deployment, now)
                    continue
                service = found
                nodes = nodes if nodes is not None else {n.id: n for n in swarm.nodes()}
                self.check(pool, deployment, service, swarm.tasks(service.id), nodes, now)
                if renewing and deployment.operation is None and auth_due(service.labels, now.timestamp()):
                    self.renew_auth(swarm, deployment, now)
            except EngineError as exc:
                log.warning("deployment %s not reconciled: %s", deployment.id, exc)
            except Exception:
                log.exception("reconciling deployment %s failed", deployment.id)
        for deployment in live.values():
            if deployment.pending_push is not None and deployment.operation is None:
                autodeploy.start_safely(self.rt, deployment.id)  # a push whose starter died

    def recreate(self, deployment: Deployment, now: datetime) -> None:
        name = service_name(deployment.id)
        log.warning(
            "deployment %s: its service %s is gone (removed outside imagehub); creating it again", deployment.id, name
        )
        with self.rt.transaction() as session:
            aggregate, operation_id = DeploymentAggregate.lock(
                session, deployment.id, RECONCILE, now, self.settings.operation_stale_after
            )
            if operation_id is None:
                return
            events = aggregate.restore(
                operation_id, now, f"service {name} was removed outside imagehub; creating it again"
            )
        outbox.send(self.rt, events)

    @contextmanager
    def holding(self, deployment: Deployment, now: datetime) -> Iterator[bool]:
        """The deployment's lock for a reconciler step that touches its service (a rollout's
        update would otherwise race it): whether it was free, given back afterwards."""
        with self.rt.transaction() as session:
            operation_id = DeploymentAggregate.take_lock(
                session, deployment.id, RECONCILE, now, self.settings.operation_stale_after
            )
        if operation_id is None:
            yield False  # an RPC took it meanwhile: next pass
            return
        try:
            yield True
        finally:
            with self.rt.transaction() as session:
                current = DeploymentAggregate.get(session, deployment.id)
                if current is not None:
                    current.release_lock_of(operation_id)

    def remove_leftover(self, swarm: Swarm, service: Service, why: str) -> None:
        """Remove a service nothing serves from any more, the safe way ``remove_service`` does,
        one step a pass so that no pass waits on Swarm: scale it to 0, then remove it once its
        tasks are stopped and reaped."""
        try:
            if service.replicas:
                log.warning("service %s left behind (%s): scaling it to 0, then removing it", service.name, why)
                swarm.scale(service, 0)
                return
            tasks = swarm.tasks(service.id)
            if all(t.state in TASK_ENDED and t.desired_state != "remove" for t in tasks):
                swarm.remove(service.id)
                log.warning("service %s left behind (%s): removed", service.name, why)
        except EngineError as exc:
            log.warning("service %s left behind (%s) not removed yet: %s", service.name, why, exc)

    def renew_auth(self, swarm: Swarm, deployment: Deployment, now: datetime) -> None:
        """Give the service a new credential good for ``SERVICE_AUTH_SECONDS``, under the
        deployment's lock. Only the credential and its label change: Swarm replaces no running
        task for that."""
        with self.holding(deployment, now) as held:
            if not held:
                return
            service = swarm.service(service_name(deployment.id))  # its version now, under the lock
            if service is None or service.revision != deployment.serving_revision:
                return
            try:
                auth, until = credentials.lasting(
                    self.rt.pull_auth,
                    self.settings.registry_auth,
                    deployment.tenant_id,
                    SERVICE_AUTH_SECONDS,
                    now.timestamp(),
                )
            except credentials.CredentialsUnavailable as exc:
                log.warning("deployment %s: pull credential not renewed: %s", deployment.id, exc)
                return
            labels = dict(service.labels)
            if until is not None:
                labels[AUTH_UNTIL] = str(int(until))
            swarm.renew_auth(service, labels, auth)
            log.info("deployment %s: pull credential of service %s renewed", deployment.id, service.name)

    def check(
        self,
        pool: Pool,
        deployment: Deployment,
        service: Service,
        tasks: list[Task],
        nodes: Mapping[str, Node],
        now: datetime,
    ) -> None:
        serving = deployment.serving_revision
        assert serving is not None
        live = [t for t in tasks if t.desired_state == "running" and t.revision == serving]
        running = [t for t in live if t.state == "running"]
        recorded = {(i.id, i.container_id) for i in _instances(self.rt, deployment.id)}
        seen = {(t.id, t.container_id) for t in running}
        short = len(running) < deployment.replicas
        healthy_again = deployment.status == DEGRADED and not short
        if recorded == seen and not short and not healthy_again:
            return
        if service.revision != serving:
            return  # an update Swarm is still carrying out: the rollout's to watch
        with self.rt.transaction() as session:
            aggregate, operation_id = DeploymentAggregate.lock(
                session, deployment.id, RECONCILE, now, self.settings.operation_stale_after
            )
            if operation_id is None:
                return
            record_tasks(self.rt, pool, aggregate, operation_id, service, tasks, nodes, serving)
            if short:
                failed = [t for t in tasks if t.revision == serving and t.state in TASK_FAILED]
                last = max(failed, key=lambda t: t.created_at) if failed else None
                node = nodes.get(last.node_id) if last else None
                where = node.name if node is not None else ""
                why = f": last failure: {_task_reason(last, '', where)}" if last else ""
                events = aggregate.degrade(
                    operation_id,
                    now,
                    f"{len(running)} of {deployment.replicas} task(s) running; Swarm is replacing the rest{why}",
                )
            elif aggregate.status == DEGRADED:
                events = aggregate.recover(operation_id, now)
            else:
                aggregate.release_lock()
                events = []
        outbox.send(self.rt, events)


def _instances(rt: Runtime, deployment_id: str) -> list[Instance]:
    with rt.transaction() as session:
        found = list(session.scalars(sa.select(Instance).where(Instance.deployment_id == deployment_id)))
        session.expunge_all()
        return found


def describe(rt: Runtime, pool: Pool) -> dict[str, Any]:
    """A swarm pool as ``list_pools`` shows it: its nodes' state, availability, capacity, what
    the tasks of every service reserve there, and what is free."""
    item: dict[str, Any] = {"reachable": True, "error": None, "nodes": []}
    try:
        swarm: Swarm = rt.swarm(pool.name)
        nodes = swarm.nodes()
        reserved: dict[str, list[float]] = {}
        for service in swarm.services({}):
            resources = (service.spec.get("TaskTemplate") or {}).get("Resources") or {}
            want = resources.get("Reservations") or {}
            for task in swarm.tasks(service.id):
                if task.desired_state == "running" and task.node_id:
                    total = reserved.setdefault(task.node_id, [0.0, 0.0, 0])
                    total[0] += (want.get("NanoCPUs") or 0) / 1e9
                    total[1] += want.get("MemoryBytes") or 0
                    if service.labels.get(DEPLOYER) == rt.settings.deployer_id:
                        total[2] += 1
    except EngineError as exc:
        return dict(item, reachable=False, error=str(exc))
    for node in nodes:
        cpus, memory, ours = reserved.get(node.id, [0.0, 0.0, 0])
        item["nodes"].append(
            {
                "id": node.id,
                "name": node.name,
                "hostname": node.hostname,
                "role": node.role,
                "state": node.state,
                "availability": node.availability,
                "address": node.address,
                "capacity": {"cpus": node.cpus, "memory": format_memory(node.memory), "memory_bytes": node.memory},
                "reserved": {"cpus": round(cpus, 6), "memory_bytes": int(memory)},
                "free": {
                    "cpus": round(max(node.cpus - cpus, 0.0), 6),
                    "memory": format_memory(max(node.memory - int(memory), 0)),
                    "memory_bytes": max(node.memory - int(memory), 0),
                },
                "instances": int(ours),
            }
        )
    return item
