"""``FakeSwarm``: the ``deployer.orchestrator.Swarm`` protocol in memory, for the swarm pool's unit
tests.

It keeps services (their Engine API spec, version, update status) and their tasks, and plays
Swarm's part in the simplest way that still shows what the deployer must cope with:

* a create starts one task per slot; an update that changes the container spec replaces every
  slot's task with one of the new spec (the old ones ``shutdown``), a scale adds or removes slots
  and leaves the spec as it is;
* ``fail`` (revision -> exit code): tasks of such a revision fail at once. On an update, Swarm's
  ``FailureAction: rollback`` then returns the service to its previous spec
  (``rollback_completed``) and the old revision's tasks run again;
* ``pending_error``: new tasks stay ``pending`` with that scheduler complaint;
* removal as Docker 20.10 does it: a scale to 0 marks tasks desired ``remove``; they stop over a
  few ``tasks`` calls, then are reaped. Removing a service while a task runs (or is still marked
  for removal) raises ``EngineError``, as the manager crash it stands for is not
  something a test can observe otherwise.

Every call is recorded in ``calls``; ``down`` makes every call ``EngineUnavailable``.
"""

import copy
import itertools

from deployer.engine import EngineError, EngineUnavailable
from deployer.orchestrator import Node, Service, Task

# Tasks with a container that a removal would have to stop under the manager's feet.
RUNNING_STATES = ("preparing", "ready", "starting", "running")


def _node(node_id, name, role, address):
    return Node(
        id=node_id,
        name=name,
        hostname="vm",
        role=role,
        state="ready",
        availability="active",
        address=address,
        cpus=2.0,
        memory=4 * 1024**3,
        labels={"imagehub.host": name},
    )


NODES = (_node("node-a", "local-1", "manager", "127.0.0.1"), _node("node-b", "local-2", "worker", "127.0.0.2"))


def _revision(body):
    labels = body["TaskTemplate"]["ContainerSpec"].get("Labels") or {}
    value = labels.get("imagehub.revision")
    return int(value) if value is not None else None


class FakeSwarm:
    def __init__(self, nodes=NODES):
        self.node_list = list(nodes)
        self.ids = itertools.count(1)
        self.services_by_id = {}  # id -> {"spec", "version", "update_state", "update_message", "previous"}
        self.task_rows = {}  # service id -> [dict] (Task fields)
        self.calls = []
        self.auths = []  # the auth of each create and update, in order
        self.down = False
        self.fail = {}  # revision -> exit code its tasks exit with
        self.pending_error = None  # new tasks stay pending with this scheduler error
        self.logs = {}  # task id -> output
        self.stop_polls = 2  # tasks() calls a task marked for removal takes to stop, then as many to be reaped

    # -- the protocol ------------------------------------------------------------------------------

    def _check(self, *call):
        self.calls.append(call)
        if self.down:
            raise EngineUnavailable("no manager of swarm pool 'swarm' answers: manager-1: connection refused")

    def ping(self):
        self._check("ping")

    def nodes(self):
        self._check("nodes")
        return list(self.node_list)

    def _view(self, service_id):
        row = self.services_by_id[service_id]
        body = row["spec"]
        return Service(
            id=service_id,
            name=body["Name"],
            version=row["version"],
            labels=dict(body["Labels"]),
            replicas=body["Mode"]["Replicated"]["Replicas"],
            revision=_revision(body),
            update_state=row["update_state"],
            update_message=row["update_message"],
            spec=copy.deepcopy(body),
            previous_spec=copy.deepcopy(row["previous"]),
        )

    def service(self, name):
        self._check("service", name)
        found = [sid for sid, row in self.services_by_id.items() if row["spec"]["Name"] == name]
        return self._view(found[0]) if found else None

    def services(self, labels):
        self._check("services", dict(labels))
        return [
            self._view(sid)
            for sid, row in self.services_by_id.items()
            if all(row["spec"]["Labels"].get(k) == v for k, v in labels.items())
        ]

    def tasks(self, service_id):
        self._check("tasks", service_id)
        self._progress(service_id)
        return [Task(**{k: v for k, v in t.items() if k != "polls"}) for t in self.task_rows.get(service_id, [])]

    def create(self, spec, auth):
        self._check("create", spec.name)
        self.auths.append(auth)
        if any(row["spec"]["Name"] == spec.name for row in self.services_by_id.values()):
            raise EngineError(f"create service {spec.name}: name conflicts with an existing object")
        service_id = f"svc-{next(self.ids):04d}"
        self.services_by_id[service_id] = {
            "spec": copy.deepcopy(spec.body()),
            "version": 1,
            "update_state": None,
            "update_message": "",
            "previous": None,
        }
        self.task_rows[service_id] = []
        for slot in range(1, spec.replicas + 1):
            self._start(service_id, slot)
        return service_id

    def update(self, service, spec, auth):
        self._check("update", service.id)
        self.auths.append(auth)
        row = self._current(service)
        old_body, new_body = row["spec"], copy.deepcopy(spec.body())
        row.update(previous=old_body, spec=new_body, version=row["version"] + 1)
        replicas = new_body["Mode"]["Replicated"]["Replicas"]
        if new_body["TaskTemplate"] == old_body["TaskTemplate"]:  # labels or replicas: no task replaced
            self._scale_tasks(service.id, replicas)
            return
        row.update(update_state="updating", update_message="update in progress")
        code = self.fail.get(_revision(new_body))
        if code is None:
            for task in self._live(service.id):
                task.update(desired_state="shutdown", state="shutdown")
            for slot in range(1, replicas + 1):
                self._start(service.id, slot)
            row.update(update_state="completed", update_message="update completed")
            return
        # The first slot's new task fails; FailureAction rollback returns to the previous spec, whose
        # tasks keep running (start-first) or run again.
        self._start(service.id, 1)
        row.update(
            spec=old_body,
            previous=new_body,
            version=row["version"] + 1,
            update_state="rollback_completed",
            update_message="rollback completed",
        )
        self._scale_tasks(service.id, old_body["Mode"]["Replicated"]["Replicas"])

    def scale(self, service, replicas):
        self._check("scale", service.id, replicas)
        row = self._current(service)
        row["spec"] = dict(row["spec"], Mode={"Replicated": {"Replicas": replicas}})
        row["version"] += 1
        self._scale_tasks(service.id, replicas)

    def renew_auth(self, service, labels, auth):
        self._check("renew_auth", service.id)
        self.auths.append(auth)
        row = self._current(service)
        row.update(previous=row["spec"], spec=dict(copy.deepcopy(row["spec"]), Labels=dict(labels)))
        row["version"] += 1  # no task is replaced: only the credential and the labels changed

    def remove(self, service_id):
        self._check("remove", service_id)
        if service_id not in self.services_by_id:
            return False
        busy = [t for t in self.task_rows[service_id] if t["state"] in RUNNING_STATES or t["desired_state"] == "remove"]
        if busy:
            raise EngineError(f"remove service {service_id}: {len(busy)} task(s) still running or being reaped")
        del self.services_by_id[service_id]
        del self.task_rows[service_id]
        return True

    def task_logs(self, task_id, tail):
        self._check("task_logs", task_id)
        return "\n".join(self.logs.get(task_id, "").splitlines()[-tail:])

    # -- Swarm's part ------------------------------------------------------------------------------

    def _current(self, service):
        row = self.services_by_id.get(service.id)
        if row is None:
            raise EngineError(f"update service {service.name}: service {service.id} not found")
        if row["version"] != service.version:
            raise EngineError(f"update service {service.name}: update out of sequence")
        return row

    def _live(self, service_id):
        return [t for t in self.task_rows[service_id] if t["desired_state"] == "running"]

    def _start(self, service_id, slot):
        body = self.services_by_id[service_id]["spec"]
        revision = _revision(body)
        task_id = f"task-{next(self.ids):04d}"
        node = self.node_list[(slot - 1) % len(self.node_list)]
        fields = dict(
            id=task_id,
            slot=slot,
            node_id=node.id,
            desired_state="running",
            state="running",
            error="",
            message="started",
            container_id=f"ctr-{task_id}",
            exit_code=None,
            revision=revision,
            created_at=f"2026-01-02T03:04:{next(self.ids) % 60:02d}.{task_id[-4:]}Z",
            polls=0,
        )
        if self.pending_error is not None:
            fields.update(state="pending", error=self.pending_error, message="pending task scheduling", node_id="")
            fields.update(container_id=None)
        elif revision in self.fail:
            fields.update(
                state="failed",
                desired_state="shutdown",
                error=f"task: non-zero exit ({self.fail[revision]})",
                message="started",
                exit_code=self.fail[revision],
            )
            self.logs[task_id] = "starting\nbye\n"
        else:
            self.logs[task_id] = "listening\n"
        self.task_rows[service_id].append(fields)
        return fields

    def _scale_tasks(self, service_id, replicas):
        live = self._live(service_id)
        for task in live:
            if task["slot"] > replicas:
                task.update(desired_state="remove")
        present = {t["slot"] for t in live}
        for slot in range(1, replicas + 1):
            if slot not in present:
                self._start(service_id, slot)

    def _progress(self, service_id):
        """Tasks marked for removal stop, then are reaped, ``stop_polls`` looks each."""
        rows = self.task_rows.get(service_id, [])
        for task in list(rows):
            if task["desired_state"] != "remove":
                continue
            task["polls"] += 1
            if task["polls"] >= 2 * self.stop_polls:
                rows.remove(task)
            elif task["polls"] >= self.stop_polls:
                task.update(state="shutdown")

    # -- for tests -------------------------------------------------------------------------------

    def only(self):
        """The one service there is."""
        [service_id] = self.services_by_id
        return self._view(service_id)

    def kill(self, task_id, exit_code=137, restart=True):
        """A running task's container exits; Swarm (restart condition any) starts another in its
        slot, unless ``restart`` is False (not yet: the restart delay)."""
        for service_id, rows in self.task_rows.items():
            for task in rows:
                if task["id"] == task_id:
                    task.update(state="failed", desired_state="shutdown", exit_code=exit_code)
                    return self._start(service_id, task["slot"]) if restart else None
        raise KeyError(task_id)
