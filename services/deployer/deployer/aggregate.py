"""The Deployment aggregate: the one owner of a deployment's state.

A deployment's status, its revisions' statuses, the revision that serves, its lock, the push it
holds for later and its instances change only through the methods of ``Deployment`` here. Each
transition checks that it is allowed (``TRANSITIONS``: from which statuses, and for the steps of
a running operation, that the operation still holds the lock), records the change, and queues its
events in the outbox in the same session, so they commit or roll back together. Callers send what
a transaction returned once it has committed (``deployer.outbox.send``).

Placement, rollout, the reconciler and auto-deploy decide *what* should happen (they talk to the
engines and the catalogue, outside any transaction) and then ask the aggregate to record it. A
coming Swarm pool plugs in the same way: its orchestrator reports, the aggregate records.

The lock is the deployment row itself (``operation``, ``operation_id``, ``operation_at``), a
``shared.runtime.lease.RowLease``: taken with one conditional UPDATE, which SQLite and PostgreSQL
both apply atomically, so two callers can never both hold it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from deployer import outbox
from deployer.lifecycle import (
    BY_METHOD,
    DELETE,
    RECONCILE,
    ROLLOUT,
    TRANSITIONS,
    IllegalTransition,
    LockLost,
    lifecycle_table,
)
from deployer.models import (
    AUTO_DEPLOY,
    CREATING,
    DEGRADED,
    DELETED,
    DELETING,
    FAILED,
    IN_PROGRESS,
    PENDING,
    ROLLED_BACK,
    RUNNING,
    STARTING,
    STOPPED,
    SUPERSEDED,
    UNKNOWN,
    Instance,
    Revision,
)
from deployer.models import Deployment as DeploymentRow
from shared.contracts.errors import Forbidden, NotFound
from shared.contracts.events import (
    DEPLOYMENT_STATUS_CHANGED,
    ROLLOUT_REQUESTED,
    DeploymentStatusChanged,
    RolloutRequested,
)
from shared.runtime.lease import RowLease

# Names the rest of the deployer takes from here: the aggregate, its operations and errors, and
# the lifecycle it enforces (declared in deployer.lifecycle).
__all__ = [
    "DELETE",
    "RECONCILE",
    "ROLLOUT",
    "TRANSITIONS",
    "Deployment",
    "Event",
    "IllegalTransition",
    "LockLost",
    "is_busy",
    "later",
    "lifecycle_table",
    "new_id",
    "rolled_back_reason",
]

Event = tuple[str, dict[str, Any]] | None  # what outbox.emit returns; None: nothing changed


def new_id() -> str:
    return str(uuid.uuid4())


class Deployment:
    """A deployment row with its revisions and instances, in one session; the only writer of them.

    Reads go through the properties; every change is a method below. Methods that a running
    operation calls take its ``operation_id`` and raise ``LockLost`` once it no longer holds the
    lock; each returns the events it queued (send them after the commit).
    """

    def __init__(self, session: Session, row: DeploymentRow) -> None:
        self.session = session
        self.row = row

    # -- loading -----------------------------------------------------------------------------------

    @classmethod
    def get(cls, session: Session, deployment_id: str, for_update: bool = False) -> Deployment | None:
        """The deployment, or None; ``for_update`` locks its row until the commit (PostgreSQL;
        SQLite serialises every write transaction anyway)."""
        row = session.get(DeploymentRow, deployment_id, with_for_update=for_update or None)
        return None if row is None else cls(session, row)

    @classmethod
    def of_tenant(cls, session: Session, tenant_id: str, deployment_id: str, live: bool = True) -> Deployment:
        """The deployment if the tenant owns it: ``NotFound``, or ``Forbidden`` for another tenant's
        (saying nothing else about it). ``live`` refuses a deleted one as ``NotFound``."""
        row = session.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFound(f"deployment {deployment_id} does not exist")
        if row.tenant_id != tenant_id:
            raise Forbidden(
                f"deployment {deployment_id} belongs to another tenant", {"of_another_tenant": deployment_id}
            )
        if live and row.deleted_at is not None:
            raise NotFound(f"deployment {deployment_id} was deleted")
        return cls(session, row)

    @classmethod
    def locked_by(cls, session: Session, deployment_id: str, operation_id: str, now: datetime) -> Deployment:
        """The deployment while ``operation_id`` still holds its lock, its heartbeat renewed;
        ``LockLost`` otherwise.

        One statement checks and renews (an ``UPDATE … WHERE operation_id = :ours``), and it holds
        the row — PostgreSQL's row lock, SQLite's write lock — until the commit: no other
        transaction can take the lock between this check and what the caller then writes. (Read
        first, write after, two deliveries of one request could both see the lock as theirs and
        both claim it, the second removing the first run's new containers as in flight.)"""
        renewed: sa.CursorResult[Any] = session.execute(  # type: ignore[assignment]  # an UPDATE's result
            sa.update(DeploymentRow)
            .where(DeploymentRow.id == deployment_id, DeploymentRow.operation_id == operation_id)
            .values(operation_at=now)
            .execution_options(synchronize_session=False)
        )
        found = cls.get(session, deployment_id) if renewed.rowcount == 1 else None
        if found is None:
            holder = session.scalar(sa.select(DeploymentRow.operation_id).where(DeploymentRow.id == deployment_id))
            raise LockLost(
                f"deployment {deployment_id} is no longer this run's (deleted, or taken over by operation {holder})"
            )
        set_committed_value(found.row, "operation_at", now)  # what the statement wrote, without writing it again
        return found

    # -- reading -----------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.row.id

    @property
    def status(self) -> str:
        return self.row.status

    @property
    def serving_revision(self) -> int | None:
        return self.row.serving_revision

    @property
    def newest_revision(self) -> int:
        return self.row.revision

    def revision(self, number: int) -> Revision | None:
        return self.session.scalar(
            sa.select(Revision).where(Revision.deployment_id == self.row.id, Revision.number == number)
        )

    def instances(self) -> list[Instance]:
        return list(
            self.session.scalars(
                sa.select(Instance)
                .where(Instance.deployment_id == self.row.id)
                .order_by(Instance.host, Instance.created_at)
            )
        )

    def is_busy(self, now: datetime, stale_after: float) -> bool:
        return is_busy(self.row, now, stale_after)

    # -- the lock ----------------------------------------------------------------------------------

    @classmethod
    def take_lock(
        cls,
        session: Session,
        deployment_id: str,
        operation: str,
        now: datetime,
        stale_after: float,
        force: bool = False,
    ) -> str | None:
        """Take the deployment's lock for ``operation``: its operation ID, or None if another
        operation holds it and is not stale (or the deployment is gone). ``force`` takes it
        regardless (a delete does: a rollout in progress sees it lost the lock and stops)."""
        operation_id = new_id()
        lease = RowLease(
            DeploymentRow.id, DeploymentRow.operation_id, DeploymentRow.operation_at, timedelta(seconds=stale_after)
        )
        taken = lease.take(session, deployment_id, operation_id, now, force=force, operation=operation)
        return operation_id if taken else None

    @classmethod
    def lock(
        cls,
        session: Session,
        deployment_id: str,
        operation: str,
        now: datetime,
        stale_after: float,
        force: bool = False,
    ) -> tuple[Deployment, str | None]:
        """``take_lock`` on a deployment that exists: ``(deployment, operation ID or None)``."""
        operation_id = cls.take_lock(session, deployment_id, operation, now, stale_after, force)
        found = cls.get(session, deployment_id)
        if found is None:
            raise NotFound(f"deployment {deployment_id} does not exist")
        return found, operation_id

    @classmethod
    def existing(cls, session: Session, deployment_id: str) -> Deployment:
        """The deployment, which the caller knows exists (``NotFound`` otherwise)."""
        found = cls.get(session, deployment_id)
        if found is None:
            raise NotFound(f"deployment {deployment_id} does not exist")
        return found

    def claim_for_run(self) -> str:
        """Pass the lock from the request's operation ID to one of this run's own, and return it.

        A request can be delivered twice (a redelivery after a lost ack, the outbox relay's copy
        of an event already sent): the first delivery claims the operation, and a second finds the
        lock no longer its request's and leaves the work to the run under way, instead of a second
        rollout that would remove the first one's new containers as "in flight". A run that dies
        after its claim is taken over by the reconciler once its heartbeat is stale."""
        run_id = new_id()
        self.row.operation_id = run_id
        return run_id

    def release_lock(self) -> None:
        self.row.operation = None
        self.row.operation_id = None
        self.row.operation_at = None

    def release_lock_of(self, operation_id: str) -> None:
        """Release the lock if ``operation_id`` still holds it (an operation that gave up)."""
        if self.row.operation_id == operation_id:
            self.release_lock()

    # -- the RPC's transitions ---------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        session: Session,
        *,
        tenant_id: str,
        name: str,
        pool: str,
        replicas: int,
        auto_deploy: dict,
        runtime: dict,
        image: dict,
        pushed_at: datetime | None,
        now: datetime,
    ) -> tuple[Deployment, list[Event]]:
        """A new deployment at revision 1, ``pending``, its lock held by the rollout it requests."""
        operation_id = new_id()
        row = DeploymentRow(
            id=new_id(),
            tenant_id=tenant_id,
            name=name,
            pool=pool,
            replicas=replicas,
            revision=1,
            serving_revision=None,
            status=PENDING,
            reason=None,
            auto_deploy=auto_deploy,
            pending_push=None,
            last_pushed_at=pushed_at,
            operation=ROLLOUT,
            operation_id=operation_id,
            operation_at=now,
            created_at=now,
            updated_at=now,
            deleted_at=None,
        )
        session.add(row)
        session.add(
            Revision(
                deployment_id=row.id,
                number=1,
                spec=runtime,
                status=PENDING,
                reason=None,
                trigger="create",
                rollback_to=None,
                created_at=now,
                **image,
            )
        )
        deployment = cls(session, row)
        return deployment, [
            deployment._status_event(PENDING, None, 1),
            deployment._rollout_requested(operation_id, 1, ROLLOUT, "create"),
        ]

    def start_revision(
        self,
        operation_id: str,
        now: datetime,
        *,
        runtime: dict,
        image: dict,
        trigger: str,
        rollback_to: int | None = None,
        push: dict | None = None,
        pushed_at: datetime | None = None,
        auto_deploy: dict | None = None,
    ) -> list[Event]:
        """Revision n+1 (an update, a rollback, a push a policy follows), ``pending``, its rollout
        requested. ``auto_deploy``, if given, is stored with it; a held push is cleared."""
        self._check("start_revision", operation_id)
        number = self._add_revision(now, runtime, image, trigger, rollback_to, push)
        self.row.last_pushed_at = later(self.row.last_pushed_at, pushed_at)
        if auto_deploy is not None:
            self.row.auto_deploy = auto_deploy
        if push is not None:
            self.row.pending_push = None
        return [
            self._set_status(PENDING, None, number, now),
            self._rollout_requested(operation_id, number, ROLLOUT, trigger),
        ]

    def refuse_revision(
        self,
        operation_id: str,
        now: datetime,
        *,
        runtime: dict,
        image: dict,
        push: dict,
        pushed_at: datetime | None,
        cause: str,
    ) -> list[Event]:
        """Record revision n+1 of a push a policy follows as failed at once (it cannot start):
        ``rolled_back`` to what serves, or ``failed`` if nothing does. The lock is released."""
        self._check("refuse_revision", operation_id)
        number = self._add_revision(now, runtime, image, AUTO_DEPLOY, None, push)
        self.row.pending_push = None
        self.row.last_pushed_at = later(self.row.last_pushed_at, pushed_at)
        self.session.flush()
        failed = self.revision(number)
        assert failed is not None
        failed.status, failed.reason, failed.finished_at = FAILED, cause, now
        serving = self.row.serving_revision
        if serving is not None:
            status, reason = ROLLED_BACK, rolled_back_reason(number, image["image"], cause, serving)
        else:
            status, reason = FAILED, cause
        self.release_lock()
        return [self._set_status(status, reason, number, now)]

    def scale(self, operation_id: str, now: datetime, replicas: int) -> list[Event]:
        """Set the replica count and request a rollout of what serves (the newest revision if
        nothing ever ran) to converge to it."""
        self._check("scale", operation_id)
        target = self.row.serving_revision or self.row.revision
        self.row.replicas = replicas
        return [
            self._set_status(PENDING, None, target, now),
            self._rollout_requested(operation_id, target, ROLLOUT, "scale"),
        ]

    def mark_deleting(self, operation_id: str, now: datetime) -> list[Event]:
        """Deleted from now on (``deleting``); the removal of every container is requested."""
        self._check("mark_deleting", operation_id)
        self.row.deleted_at = now
        return [
            self._set_status(DELETING, None, self.row.revision, now),
            self._rollout_requested(operation_id, self.row.revision, DELETE, "delete"),
        ]

    def set_auto_deploy(self, auto_deploy: dict, now: datetime) -> None:
        """Change the auto-deploy policy alone (allowed while an operation runs: the policy is read
        when a push arrives, and again before a held push is rolled out)."""
        self.row.auto_deploy = auto_deploy
        self.row.updated_at = now

    def hold_push(self, push: dict | None) -> None:
        """Keep ``push`` (a push the policy follows) until the deployment is free; None drops it."""
        self.row.pending_push = push

    # -- the rollout's transitions -----------------------------------------------------------------

    def progress(self, operation_id: str, now: datetime, status: str, number: int) -> list[Event]:
        """``pulling`` or ``starting`` revision ``number``; the revision says so too, unless it
        already ran (a scale or a restore does not re-open it)."""
        self._check("progress", operation_id, status)
        revision = self._revision(number)
        if revision.status not in (RUNNING, SUPERSEDED):
            revision.status = status
        return [self._set_status(status, None, number, now)]

    def serve(self, operation_id: str, now: datetime, number: int) -> list[Event]:
        """Revision ``number`` serves: ``running`` (``stopped`` at 0 replicas); the one that served
        before is superseded; the lock is released."""
        status = RUNNING if self.row.replicas else STOPPED
        self._check("serve", operation_id, status)
        revision = self._revision(number)
        revision.status, revision.reason, revision.finished_at = RUNNING, None, revision.finished_at or now
        previous_number = self.row.serving_revision
        if previous_number not in (None, number):
            previous = self._revision(previous_number)
            if previous.status == RUNNING:
                previous.status = SUPERSEDED
        self.row.serving_revision = number
        event = self._set_status(status, None, number, now)
        self.release_lock()
        return [event]

    def fail(self, operation_id: str, now: datetime, number: int, status: str, reason: str, cause: str) -> list[Event]:
        """The rollout of revision ``number`` failed with ``cause``; the deployment ends ``status``
        (the rollout decided it: ``failed``, ``rollout_failed``, ``rolled_back`` or ``degraded``).
        A revision that was not already serving is marked failed. The lock is released."""
        self._check("fail", operation_id, status)
        if number != self.row.serving_revision:
            revision = self._revision(number)
            revision.status, revision.reason, revision.finished_at = FAILED, cause, now
        event = self._set_status(status, reason, number, now)
        self.release_lock()
        return [event]

    def mark_deleted(self, operation_id: str, now: datetime, reason: str | None) -> list[Event]:
        """Every container is gone (``reason`` says where some may remain): ``deleted``, no instance
        recorded, the lock released."""
        self._check("mark_deleted", operation_id, DELETED)
        for row in self.instances():
            self.session.delete(row)
        event = self._set_status(DELETED, reason, self.row.revision, now)
        self.release_lock()
        return [event]

    # -- the reconciler's transitions --------------------------------------------------------------

    def restore(self, operation_id: str, now: datetime, reason: str) -> list[Event]:
        """``degraded``, and a rollout of the serving revision requested to bring it back to
        ``replicas`` (the reconciler's lock becomes that rollout's)."""
        self._check("restore", operation_id, DEGRADED)
        serving = self.row.serving_revision
        assert serving is not None
        self.row.operation = ROLLOUT
        return [
            self._set_status(DEGRADED, reason, serving, now),
            self._rollout_requested(operation_id, serving, ROLLOUT, "restore"),
        ]

    def degrade(self, operation_id: str, now: datetime, reason: str) -> list[Event]:
        """``degraded`` for ``reason`` (dead or unreachable instances); the lock is released."""
        self._check("degrade", operation_id, DEGRADED)
        self.release_lock()
        return [self._set_status(DEGRADED, reason, self.row.serving_revision, now)]

    def recover(self, operation_id: str, now: datetime) -> list[Event]:
        """Back from ``degraded``: ``running`` (``stopped`` at 0 replicas); the lock is released."""
        status = RUNNING if self.row.replicas else STOPPED
        self._check("recover", operation_id, status)
        self.release_lock()
        return [self._set_status(status, None, self.row.serving_revision, now)]

    def resume(self, operation_id: str) -> list[Event]:
        """Request again the operation a vanished worker left (its lock went stale and
        ``operation_id`` took it over): the removal of a deployment being deleted, else the rollout
        of the revision in progress (or of what serves, or of the newest if nothing ever ran)."""
        self._check("resume", operation_id)
        if self.row.status == DELETING:
            self.row.operation = DELETE
            return [self._rollout_requested(operation_id, self.row.revision, DELETE, "resume")]
        newest = self._revision(self.row.revision)
        in_progress = newest.status in IN_PROGRESS or self.row.serving_revision is None
        number = self.row.revision if in_progress else self.row.serving_revision
        assert number is not None
        return [self._rollout_requested(operation_id, number, ROLLOUT, "resume")]

    # -- instances ---------------------------------------------------------------------------------

    def add_instance(
        self,
        operation_id: str,
        now: datetime,
        *,
        instance_id: str,
        number: int,
        host: str,
        container_name: str,
        ports: list[dict],
        port_domain: str,
        cpu: float,
        memory: int,
        address: str | None = None,
    ) -> None:
        """Record an instance of revision ``number`` before its container is created (``creating``):
        the row comes first, so a run that dies leaves a trace the next one cleans up."""
        self._check_lock(operation_id)
        self.session.add(
            Instance(
                id=instance_id,
                deployment_id=self.row.id,
                revision=number,
                pool=self.row.pool,
                host=host,
                container_name=container_name,
                container_id=None,
                state=CREATING,
                reason=None,
                ports=ports,
                port_domain=port_domain,
                cpu=cpu,
                memory=memory,
                address=address,
                created_at=now,
                updated_at=now,
                started_at=None,
            )
        )

    def instance_started(self, operation_id: str, now: datetime, instance_id: str, container_id: str) -> None:
        self._check_lock(operation_id)
        row = self._instance(instance_id)
        if row is not None:
            row.container_id, row.state, row.started_at, row.updated_at = container_id, STARTING, now, now

    def instance_running(self, now: datetime, instance_id: str) -> None:
        """A healthy instance (or one whose host answers again)."""
        row = self._instance(instance_id)
        if row is not None:
            row.state, row.reason, row.updated_at = RUNNING, None, now

    def instance_unknown(self, now: datetime, instance_id: str, reason: str) -> None:
        """An instance whose host does not answer: kept, not replaced."""
        row = self._instance(instance_id)
        if row is not None:
            row.state, row.reason, row.updated_at = UNKNOWN, reason, now

    def forget_instances(self, instance_ids: Iterable[str]) -> None:
        """Forget instances whose containers are (being) removed."""
        for instance_id in instance_ids:
            row = self._instance(instance_id)
            if row is not None:
                self.session.delete(row)

    # -- inside ------------------------------------------------------------------------------------

    def _check(self, method: str, operation_id: str | None, target: str | None = None) -> None:
        transition = BY_METHOD[method]
        if transition.needs_lock:
            self._check_lock(operation_id)
        if transition.sources and self.row.status not in transition.sources:
            raise IllegalTransition(f"deployment {self.row.id}: {method} is not allowed from status {self.row.status}")
        if target is not None and target not in transition.targets:
            raise IllegalTransition(f"deployment {self.row.id}: {method} cannot lead to status {target}")

    def _check_lock(self, operation_id: str | None) -> None:
        if operation_id is None or self.row.operation_id != operation_id:
            raise LockLost(f"deployment {self.row.id} is not held by operation {operation_id}")

    def _add_revision(
        self,
        now: datetime,
        runtime: dict,
        image: dict,
        trigger: str,
        rollback_to: int | None,
        push: dict | None,
    ) -> int:
        number = self.row.revision + 1
        followed = dict(push, policy=self.row.auto_deploy["policy"]) if push is not None else None
        self.session.add(
            Revision(
                deployment_id=self.row.id,
                number=number,
                spec=runtime,
                status=PENDING,
                reason=None,
                trigger=trigger,
                rollback_to=rollback_to,
                push=followed,
                created_at=now,
                **image,
            )
        )
        self.row.revision = number
        return number

    def _revision(self, number: int) -> Revision:
        revision = self.revision(number)
        if revision is None:
            raise NotFound(f"deployment {self.row.id} has no revision {number}")
        return revision

    def _instance(self, instance_id: str) -> Instance | None:
        row = self.session.get(Instance, instance_id)
        return row if row is not None and row.deployment_id == self.row.id else None

    def _set_status(self, status: str, reason: str | None, number: int | None, now: datetime) -> Event:
        """Change the status; its ``deployment_status_changed`` queued, or None if nothing changed."""
        if self.row.status == status and self.row.reason == reason:
            return None
        self.row.status = status
        self.row.reason = reason
        self.row.updated_at = now
        return self._status_event(status, reason, number)

    def _status_event(self, status: str, reason: str | None, number: int | None) -> Event:
        return outbox.emit(
            self.row,
            DEPLOYMENT_STATUS_CHANGED,
            DeploymentStatusChanged,
            deployment_id=self.row.id,
            tenant_id=self.row.tenant_id,
            revision=number,
            status=status,
            reason=reason,
        )

    def _rollout_requested(self, operation_id: str, number: int, action: str, trigger: str) -> Event:
        return outbox.emit(
            self.row,
            ROLLOUT_REQUESTED,
            RolloutRequested,
            deployment_id=self.row.id,
            tenant_id=self.row.tenant_id,
            revision=number,
            operation_id=operation_id,
            action=action,
            trigger=trigger,
        )


def is_busy(row: DeploymentRow, now: datetime, stale_after: float) -> bool:
    """Whether an operation holds the deployment's lock and is not stale."""
    stale = row.operation_at is None or row.operation_at < now - timedelta(seconds=stale_after)
    return row.operation is not None and not stale


def later(first: datetime | None, second: datetime | None) -> datetime | None:
    """The later of two optional datetimes."""
    return max((t for t in (first, second) if t is not None), default=None)


def rolled_back_reason(failed: int, image: str, cause: str, serving: int) -> str:
    """Why a deployment is ``rolled_back``: which automatic revision failed, and what serves."""
    return f"revision {failed} (auto-deploy of {image}) failed: {cause}; rolled back to revision {serving}"
