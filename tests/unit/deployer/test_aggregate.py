"""deployer.aggregate.Deployment: each transition allowed or refused as TRANSITIONS says, what it
records, and the events it queues in the outbox of the same session."""

import os
import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from deployer.aggregate import (
    DELETE,
    ROLLOUT,
    TRANSITIONS,
    Deployment,
    IllegalTransition,
    LockLost,
    lifecycle_table,
)
from deployer.models import (
    AUTO_DEPLOY,
    DEGRADED,
    DELETED,
    DELETING,
    FAILED,
    PENDING,
    PULLING,
    ROLLED_BACK,
    ROLLOUT_FAILED,
    RUNNING,
    STARTING,
    SUPERSEDED,
    Base,
    Instance,
    OutboxEvent,
)
from shared.contracts.events import DEPLOYMENT_STATUS_CHANGED, ROLLOUT_REQUESTED

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STALE_AFTER = 60.0
RUNTIME = {"env": {}, "command": None, "ports": [], "cpu": 0.1, "memory": 1 << 25, "restart_policy": "no"}


def image(tag):
    digest = "sha256:" + (tag * 64)[:64].replace("v", "a").replace(".", "b")
    return {
        "image": f"t1/web:{tag}",
        "repository": "t1/web",
        "tag": tag,
        "digest": digest,
        "pull_ref": f"127.0.0.1:5000/t1/web@{digest}",
    }


@pytest.fixture
def session():
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def queued(session):
    """``[(event type, payload)]`` in the outbox, oldest first."""
    session.flush()
    return [(row.event_type, row.payload) for row in session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id))]


def created(session, replicas=2):
    deployment, _ = Deployment.create(
        session,
        tenant_id="t1",
        name="web",
        pool="default",
        replicas=replicas,
        auto_deploy={"policy": "never"},
        runtime=RUNTIME,
        image=image("v1"),
        pushed_at=None,
        now=NOW,
    )
    return deployment, deployment.row.operation_id


def served(session, replicas=2):
    """A deployment whose revision 1 serves, its lock free."""
    deployment, operation_id = created(session, replicas)
    deployment.serve(operation_id, NOW, 1)
    session.flush()
    return deployment


def relock(session, deployment, operation=ROLLOUT, force=False):
    operation_id = Deployment.take_lock(session, deployment.id, operation, NOW, STALE_AFTER, force=force)
    assert operation_id is not None
    return Deployment.get(session, deployment.id), operation_id


class TestTheDocumentedTable:
    def test_docs_deployer_api_shows_the_table_the_code_enforces(self):
        with open(os.path.join(ROOT, "docs", "deployer-api.md")) as doc:
            text = doc.read()
        shown = re.search(r"<!-- lifecycle:start -->\n(.*?)\n<!-- lifecycle:end -->", text, re.S)
        assert shown is not None, "docs/deployer-api.md lost its lifecycle table markers"
        assert shown.group(1) == lifecycle_table()

    def test_every_method_of_the_table_exists_on_the_aggregate(self):
        assert [t.method for t in TRANSITIONS if not callable(getattr(Deployment, t.method, None))] == []


class TestCreate:
    def test_revision_one_pending_with_its_lock_and_two_events(self, session):
        deployment, operation_id = created(session)
        session.flush()
        assert (deployment.status, deployment.newest_revision, deployment.serving_revision) == (PENDING, 1, None)
        assert (deployment.row.operation, operation_id is not None) == (ROLLOUT, True)
        assert deployment.revision(1).status == PENDING
        events = queued(session)
        assert [kind for kind, _ in events] == [DEPLOYMENT_STATUS_CHANGED, ROLLOUT_REQUESTED]
        assert events[1][1]["operation_id"] == operation_id
        assert (events[1][1]["revision"], events[1][1]["action"], events[1][1]["trigger"]) == (1, ROLLOUT, "create")


class TestTheRollout:
    def test_progress_records_the_status_on_the_deployment_and_its_revision(self, session):
        deployment, operation_id = created(session)
        before = len(queued(session))
        deployment.progress(operation_id, NOW, PULLING, 1)
        assert (deployment.status, deployment.revision(1).status) == (PULLING, PULLING)
        assert [p["status"] for _, p in queued(session)[before:]] == [PULLING]

    def test_a_step_of_an_operation_that_lost_the_lock_is_refused_and_changes_nothing(self, session):
        deployment, _ = created(session)
        before = len(queued(session))
        with pytest.raises(LockLost):
            deployment.progress("another-operation", NOW, PULLING, 1)
        assert (deployment.status, len(queued(session))) == (PENDING, before)

    def test_progress_cannot_lead_anywhere_but_pulling_or_starting(self, session):
        deployment, operation_id = created(session)
        with pytest.raises(IllegalTransition, match="progress cannot lead to status running"):
            deployment.progress(operation_id, NOW, RUNNING, 1)
        assert deployment.status == PENDING

    def test_serve_supersedes_what_served_and_releases_the_lock(self, session):
        deployment = served(session)
        assert (deployment.status, deployment.serving_revision, deployment.row.operation) == (RUNNING, 1, None)
        deployment, operation_id = relock(session, deployment)
        deployment.start_revision(operation_id, NOW, runtime=RUNTIME, image=image("v2"), trigger="update")
        deployment.progress(operation_id, NOW, STARTING, 2)
        deployment.serve(operation_id, NOW, 2)
        assert (deployment.revision(1).status, deployment.revision(2).status) == (SUPERSEDED, RUNNING)
        assert (deployment.serving_revision, deployment.row.operation_id) == (2, None)

    def test_a_failed_update_marks_its_revision_and_keeps_what_serves(self, session):
        deployment = served(session)
        deployment, operation_id = relock(session, deployment)
        deployment.start_revision(operation_id, NOW, runtime=RUNTIME, image=image("v2"), trigger="update")
        reason = "revision 2 failed: image not found; revision 1 is still serving"
        deployment.fail(operation_id, NOW, 2, ROLLOUT_FAILED, reason, "image not found")
        assert (deployment.status, deployment.row.reason, deployment.serving_revision) == (ROLLOUT_FAILED, reason, 1)
        assert (deployment.revision(2).status, deployment.revision(2).reason) == (FAILED, "image not found")
        assert deployment.revision(1).status == RUNNING
        assert deployment.row.operation is None

    def test_a_failed_rollout_cannot_end_running(self, session):
        deployment, operation_id = created(session)
        with pytest.raises(IllegalTransition):
            deployment.fail(operation_id, NOW, 1, RUNNING, "no", "no")


class TestNewRevisions:
    def test_an_update_numbers_the_next_revision_and_requests_its_rollout(self, session):
        deployment = served(session)
        deployment, operation_id = relock(session, deployment)
        before = len(queued(session))
        deployment.start_revision(
            operation_id, NOW, runtime=RUNTIME, image=image("v2"), trigger="update", auto_deploy={"policy": "force"}
        )
        assert (deployment.newest_revision, deployment.status, deployment.row.auto_deploy) == (
            2,
            PENDING,
            {"policy": "force"},
        )
        assert [(kind, p["revision"]) for kind, p in queued(session)[before:]] == [
            (DEPLOYMENT_STATUS_CHANGED, 2),
            (ROLLOUT_REQUESTED, 2),
        ]

    def test_a_followed_push_is_recorded_with_the_policy_and_no_longer_held(self, session):
        deployment = served(session)
        push = {"tag": "v2", "digest": image("v2")["digest"], "pushed_at": NOW.isoformat()}
        deployment.hold_push(push)
        deployment, operation_id = relock(session, deployment)
        later = NOW + timedelta(minutes=1)
        deployment.start_revision(
            operation_id, NOW, runtime=RUNTIME, image=image("v2"), trigger=AUTO_DEPLOY, push=push, pushed_at=later
        )
        assert deployment.revision(2).push == dict(push, policy="never")
        assert (deployment.row.pending_push, deployment.row.last_pushed_at) == (None, later)

    def test_a_refused_auto_deploy_is_rolled_back_at_once(self, session):
        deployment = served(session)
        deployment, operation_id = relock(session, deployment)
        push = {"tag": "v2", "digest": image("v2")["digest"], "pushed_at": NOW.isoformat()}
        events = deployment.refuse_revision(
            operation_id, NOW, runtime=RUNTIME, image=image("v2"), push=push, pushed_at=None, cause="no room"
        )
        assert (deployment.status, deployment.revision(2).status, deployment.row.operation) == (
            ROLLED_BACK,
            FAILED,
            None,
        )
        assert deployment.row.reason == (
            "revision 2 (auto-deploy of t1/web:v2) failed: no room; rolled back to revision 1"
        )
        assert [p["status"] for _, p in events] == [ROLLED_BACK]

    def test_without_the_lock_no_revision_is_recorded(self, session):
        deployment = served(session)
        with pytest.raises(LockLost):
            deployment.start_revision("not-held", NOW, runtime=RUNTIME, image=image("v2"), trigger="update")
        session.flush()
        assert (deployment.newest_revision, deployment.revision(2)) == (1, None)


class TestScaleAndDelete:
    def test_scale_requests_a_rollout_of_what_serves(self, session):
        deployment = served(session)
        deployment, operation_id = relock(session, deployment)
        events = deployment.scale(operation_id, NOW, 5)
        assert (deployment.row.replicas, deployment.status) == (5, PENDING)
        assert [(kind, p["revision"], p.get("trigger")) for kind, p in events] == [
            (DEPLOYMENT_STATUS_CHANGED, 1, None),
            (ROLLOUT_REQUESTED, 1, "scale"),
        ]

    def test_deleted_only_after_deleting_and_then_no_instance_is_left(self, session):
        deployment = served(session)
        deployment, operation_id = relock(session, deployment)
        deployment.add_instance(
            operation_id,
            NOW,
            instance_id="i1",
            number=1,
            host="local-1",
            container_name="c1",
            ports=[],
            port_domain="d",
            cpu=0.1,
            memory=1,
        )
        with pytest.raises(IllegalTransition, match="mark_deleted is not allowed from status pending|running"):
            deployment.mark_deleted(operation_id, NOW, None)
        deployment, delete_id = relock(session, deployment, DELETE, force=True)
        deployment.mark_deleting(delete_id, NOW)
        assert (deployment.status, deployment.row.deleted_at) == (DELETING, NOW)
        deployment.mark_deleted(delete_id, NOW, None)
        session.flush()
        assert (deployment.status, deployment.row.operation) == (DELETED, None)
        assert session.scalars(sa.select(Instance)).all() == []

    def test_a_delete_takes_the_lock_from_a_running_rollout_which_then_stops(self, session):
        deployment, rollout_id = created(session)
        deployment, delete_id = relock(session, deployment, DELETE, force=True)
        assert delete_id != rollout_id
        with pytest.raises(LockLost):
            deployment.progress(rollout_id, NOW, PULLING, 1)


class TestTheReconciler:
    def test_recover_only_from_degraded(self, session):
        deployment = served(session)
        deployment, operation_id = relock(session, deployment, "reconcile")
        with pytest.raises(IllegalTransition, match="recover is not allowed from status running"):
            deployment.recover(operation_id, NOW)
        deployment.degrade(operation_id, NOW, "host local-2 unreachable")
        assert (deployment.status, deployment.row.operation) == (DEGRADED, None)
        deployment, operation_id = relock(session, deployment, "reconcile")
        deployment.recover(operation_id, NOW)
        assert (deployment.status, deployment.row.reason) == (RUNNING, None)

    def test_the_same_status_and_reason_again_queue_no_event(self, session):
        deployment = served(session)
        deployment, operation_id = relock(session, deployment, "reconcile")
        deployment.degrade(operation_id, NOW, "one instance exited")
        deployment, operation_id = relock(session, deployment, "reconcile")
        assert deployment.degrade(operation_id, NOW, "one instance exited") == [None]

    def test_restore_hands_the_lock_to_the_rollout_it_requests(self, session):
        deployment = served(session)
        deployment, operation_id = relock(session, deployment, "reconcile")
        events = deployment.restore(operation_id, NOW, "restoring 1 instance(s)")
        assert (deployment.status, deployment.row.operation, deployment.row.operation_id) == (
            DEGRADED,
            ROLLOUT,
            operation_id,
        )
        assert [(kind, p.get("trigger")) for kind, p in events] == [
            (DEPLOYMENT_STATUS_CHANGED, None),
            (ROLLOUT_REQUESTED, "restore"),
        ]

    def test_resume_requests_the_removal_of_a_deployment_being_deleted(self, session):
        deployment = served(session)
        deployment, delete_id = relock(session, deployment, DELETE, force=True)
        deployment.mark_deleting(delete_id, NOW)
        deployment, resumed = relock(session, deployment, ROLLOUT, force=True)
        [(kind, payload)] = deployment.resume(resumed)
        assert (kind, payload["action"], payload["trigger"], deployment.row.operation) == (
            ROLLOUT_REQUESTED,
            DELETE,
            "resume",
            DELETE,
        )
