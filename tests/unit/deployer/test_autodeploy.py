"""Auto-deploy on the catalog's ``tag_indexed``: which deployments a push moves, through the same
rolling update as a manual one; duplicates, stale events, tenants, serialising with the operation
in progress, automatic rollback, and the history each automatic change leaves."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from deployer import autodeploy, reconcile, service
from deployer import deployments as logic
from deployer.models import Deployment, ProcessedEvent
from shared.contracts.errors import InvalidRequest, NotFound
from shared.contracts.events import DEPLOYMENT_STATUS_CHANGED, ROLLOUT_REQUESTED
from shared.runtime.consumer import ConsumingHandler
from tests.unit.deployer.conftest import PULL_HOST, T0, web_spec

D10, D11, D12, D13, D20 = ("sha256:" + c * 64 for c in "abcde")
LATEST_OLD, LATEST_NEW, LATEST_NEWER = ("sha256:" + c * 64 for c in "567")
NGINX = "sha256:" + "3" * 64
NGINX_NEW = "sha256:" + "8" * 64


@pytest.fixture
def web(world):
    """``t1/web`` at v1.0 (pushed at T0), v1.1 and v2.0 in the catalogue."""
    world.tag("t1/web", "v1.0", D10, pushed_at=T0)
    world.tag("t1/web", "v1.1", D11)
    world.tag("t1/web", "v1.3", D13)
    world.tag("t1/web", "latest", LATEST_OLD, pushed_at=T0)
    return world


def deploy(world, policy, tag="v1.0", tenant="t1", image=None, **overrides):
    spec = web_spec(image=image or f"t1/web:{tag}", auto_deploy={"policy": policy}, **overrides)
    deployment_id = logic.create_deployment(world.rt, tenant, spec)["id"]
    world.drain()
    assert get(world, deployment_id, tenant)["status"] == "running"
    return deployment_id


def get(world, deployment_id, tenant="t1"):
    return logic.get_deployment(world.rt, tenant, deployment_id)


def revisions(world, deployment_id, tenant="t1"):
    return logic.list_revisions(world.rt, tenant, deployment_id, 1, 50)["items"]


def later(seconds):
    return T0 + timedelta(seconds=seconds)


def push(world, tag, digest, repository="t1/web", seconds=60, **fields):
    """The catalog's tag_indexed for a push ``seconds`` after T0, delivered once and carried out."""
    payload = world.tag_indexed(repository, tag, digest, pushed_at=later(seconds), **fields)
    outcome = world.deliver(payload)
    world.drain()
    return outcome


def serving(world, deployment_id, tenant="t1"):
    got = get(world, deployment_id, tenant)
    return got["status"], got["serving_revision"], got["serving_digest"]


def running_digests(world, deployment_id):
    return sorted(c["spec"].image.rsplit("@", 1)[1] for c in world.containers(deployment_id))


class TestAPushMovesWhatFollowsIt:
    def test_a_higher_minor_rolls_a_semver_minor_deployment_to_the_pushed_digest(self, web):
        deployment_id = deploy(web, "semver:minor")
        web.events.clear()
        web.handled = 0

        outcome = push(web, "v1.1", D11, actor="alice")

        assert outcome.moved == [deployment_id] and outcome.started == ((deployment_id, 2),)
        assert serving(web, deployment_id) == ("running", 2, D11)
        assert running_digests(web, deployment_id) == [D11, D11]
        # The same rolling update as a manual one: its statuses and its request.
        assert web.statuses(deployment_id) == [(2, "pending"), (2, "pulling"), (2, "starting"), (2, "running")]
        [request] = [p for kind, p in web.events if kind == ROLLOUT_REQUESTED]
        assert (request["revision"], request["trigger"]) == (2, "auto-deploy")

    def test_the_change_is_in_the_history_with_its_trigger(self, web):
        deployment_id = deploy(web, "semver:minor")
        event = web.tag_indexed("t1/web", "v1.1", D11, pushed_at=later(60), actor="alice")
        web.deliver(event)
        web.drain()

        newest, first = revisions(web, deployment_id)
        assert (
            newest["revision"],
            newest["image"],
            newest["tag"],
            newest["digest"],
            newest["status"],
            newest["trigger"],
        ) == (2, "t1/web:v1.1", "v1.1", D11, "running", "auto-deploy")
        assert newest["pull_ref"] == f"{PULL_HOST}/t1/web@{D11}"
        assert newest["push"] == {
            "event_id": event["event_id"],
            "namespace": "t1",
            "repository": "t1/web",
            "tag": "v1.1",
            "digest": D11,
            "actor": "alice",
            "pushed_at": later(60).isoformat(),
            "policy": "semver:minor",
        }
        assert newest["spec"] == first["spec"]  # the serving revision's settings, only the image moves
        assert (first["status"], first["trigger"], first["push"]) == ("superseded", "create", None)

    def test_a_new_major_leaves_a_semver_minor_deployment_where_it_is(self, web):
        deployment_id = deploy(web, "semver:minor")
        before = len(web.events)

        outcome = push(web, "v2.0", D20)

        assert outcome.moved == [] and len(outcome.decisions) == 1
        assert outcome.decisions[0].verdict.reason == "v2.0 is outside semver:minor of v1.0 (another major version)"
        assert serving(web, deployment_id) == ("running", 1, D10)
        assert len(web.events) == before  # nothing published, nothing rolled

    def test_never_does_not_move(self, web):
        deployment_id = deploy(web, "never")
        assert push(web, "v1.1", D11).moved == []
        assert serving(web, deployment_id) == ("running", 1, D10)

    def test_force_follows_a_re_push_of_its_tag_only(self, web):
        deployment_id = deploy(web, "force", tag="latest")
        assert push(web, "v1.1", D11, seconds=30).moved == []

        push(web, "latest", LATEST_NEW, seconds=60)

        assert serving(web, deployment_id) == ("running", 2, LATEST_NEW)
        assert revisions(web, deployment_id)[0]["image"] == "t1/web:latest"

    def test_every_following_deployment_moves_and_only_those(self, web):
        minor = deploy(web, "semver:minor", name="minor")
        glob = deploy(web, "glob:v1.*", name="glob")
        other = deploy(web, "semver:minor", name="other", image="library/nginx:latest", ports=[])

        outcome = push(web, "v1.1", D11)

        assert sorted(outcome.moved) == sorted([minor, glob])
        assert [d.deployment_id for d in outcome.decisions if not d.verdict.move] == []  # nginx is not t1/web
        assert serving(web, minor)[2] == serving(web, glob)[2] == D11
        assert serving(web, other) == ("running", 1, NGINX)

    def test_deleted_deployments_are_left_alone(self, web):
        deployment_id = deploy(web, "semver:minor")
        logic.delete_deployment(web.rt, "t1", deployment_id)
        web.drain()
        assert push(web, "v1.1", D11).decisions == ()
        assert len(revisions(web, deployment_id)) == 1

    def test_a_deployment_scaled_to_zero_moves_and_stays_stopped(self, web):
        deployment_id = deploy(web, "semver:minor")
        logic.scale_deployment(web.rt, "t1", deployment_id, 0)
        web.drain()
        push(web, "v1.1", D11)
        assert serving(web, deployment_id) == ("stopped", 2, D11)
        assert web.containers(deployment_id) == []


class TestNeverBackwards:
    def test_never_the_digest_it_runs(self, web):
        deployment_id = deploy(web, "glob:v1.*")
        outcome = push(web, "v1.2", D10)  # a new tag for the same content
        assert outcome.decisions[0].verdict.reason == f"it runs {D10} already"
        assert len(revisions(web, deployment_id)) == 1

    def test_never_a_lower_version(self, web):
        deployment_id = deploy(web, "glob:v1.*", tag="v1.1")
        outcome = push(web, "v1.0", D12)
        assert outcome.decisions[0].verdict.reason == "v1.0 is a lower version than v1.1"
        assert serving(web, deployment_id) == ("running", 1, D11)

    def test_a_stale_event_is_ignored(self, web):
        """The catalog's outbox may deliver an older push after a newer one: compare pushed_at."""
        deployment_id = deploy(web, "force", tag="latest")
        push(web, "latest", LATEST_NEWER, seconds=120)

        outcome = push(web, "latest", LATEST_NEW, seconds=60)

        assert outcome.decisions[0].verdict.reason.startswith("stale: pushed at ")
        assert serving(web, deployment_id) == ("running", 2, LATEST_NEWER)

    def test_a_push_older_than_the_tag_it_was_deployed_at_is_stale(self, web):
        web.tag("t1/web", "latest", LATEST_NEW, pushed_at=later(100))
        deployment_id = deploy(web, "force", tag="latest")

        outcome = push(web, "latest", LATEST_OLD, seconds=50)

        assert outcome.moved == [] and "stale" in outcome.decisions[0].verdict.reason
        assert serving(web, deployment_id) == ("running", 1, LATEST_NEW)

    def test_a_manual_update_raises_the_bar_too(self, web):
        deployment_id = deploy(web, "force", tag="v1.0")
        web.tag("t1/web", "latest", LATEST_NEW, pushed_at=later(100))
        logic.update_deployment(web.rt, "t1", deployment_id, {"tag": "latest"})
        web.drain()
        assert push(web, "latest", LATEST_OLD, seconds=50).moved == []
        assert serving(web, deployment_id)[2] == LATEST_NEW


class TestEachEventOnce:
    def test_a_second_delivery_is_recognised_and_changes_nothing(self, web):
        deployment_id = deploy(web, "semver:minor")
        event = web.tag_indexed("t1/web", "v1.1", D11, pushed_at=later(60))
        first = web.deliver(event)
        again = web.deliver(event)  # before the first rollout even ran
        web.drain()

        assert (first.duplicate, first.moved) == (False, [deployment_id])
        assert (again.duplicate, again.decisions, again.started) == (True, (), ())
        assert [r["revision"] for r in revisions(web, deployment_id)] == [2, 1]
        assert [(p["revision"], p["trigger"]) for kind, p in web.events if kind == ROLLOUT_REQUESTED][-1:] == [
            (2, "auto-deploy")
        ]
        with web.rt.transaction() as session:
            assert session.scalars(sa.select(ProcessedEvent.event_id)).all() == [event["event_id"]]

    def test_a_redelivered_failed_push_does_not_roll_out_again(self, web):
        """After an automatic rollback nothing else would stop the same push from being tried again."""
        web.exits.append(lambda spec: spec.image.endswith(D12))
        deployment_id = deploy(web, "semver:minor")
        event = web.tag_indexed("t1/web", "v1.2", D12, pushed_at=later(60))
        web.deliver(event)
        web.drain()
        assert get(web, deployment_id)["status"] == "rolled_back"

        assert web.deliver(event).duplicate
        web.drain()
        assert [r["revision"] for r in revisions(web, deployment_id)] == [2, 1]

    def test_a_duplicate_processed_concurrently_is_recognised_by_the_key(self, web, monkeypatch):
        deployment_id = deploy(web, "semver:minor")
        event = web.tag_indexed("t1/web", "v1.1", D11, pushed_at=later(60))
        web.deliver(event)
        web.drain()
        # The other worker had not committed yet when this one looked: the insert decides.
        monkeypatch.setattr(autodeploy.store, "already_processed", lambda session, event_id: False)

        outcome = web.deliver(event)

        assert outcome.duplicate
        assert [r["revision"] for r in revisions(web, deployment_id)] == [2, 1]
        assert get(web, deployment_id)["pending_push"] is None


class TestTenants:
    def test_a_library_push_moves_every_tenants_deployment_of_it(self, web):
        web.tag("library/nginx", "1.25", NGINX)
        mine = deploy(web, "semver:minor", image="library/nginx:1.25", ports=[])
        theirs = deploy(web, "semver:minor", image="library/nginx:1.25", ports=[], tenant="t2")

        outcome = push(web, "1.26", NGINX_NEW, repository="library/nginx", actor="curator")

        assert sorted(outcome.moved) == sorted([mine, theirs])
        assert serving(web, mine)[2] == serving(web, theirs, tenant="t2")[2] == NGINX_NEW

    def test_a_private_push_moves_only_its_own_tenants_deployments(self, web):
        web.tag("t2/web", "v1.0", D10)
        own = deploy(web, "semver:minor", image="t2/web:v1.0", tenant="t2")
        # A deployment of t2's image by t1 cannot be created (the catalog refuses it); make one as
        # if the tenant rules had changed after it was.
        foreign = deploy(web, "semver:minor", image="t2/web:v1.0", tenant="t2", name="foreign")
        with web.rt.transaction() as session:
            session.get(Deployment, foreign).tenant_id = "t1"

        outcome = push(web, "v1.1", D11, repository="t2/web")

        verdicts = {d.deployment_id: d.verdict for d in outcome.decisions}
        assert verdicts[own].move
        assert (verdicts[foreign].move, verdicts[foreign].reason) == (False, "tenant t1 may not use t2/web")
        assert serving(web, foreign)[2] == D10


class TestOneOperationAtATime:
    def test_a_push_during_a_rollout_waits_for_it_then_rolls_on_top(self, web):
        deployment_id = deploy(web, "semver:minor")
        logic.update_deployment(web.rt, "t1", deployment_id, {"env": {"MODE": "b"}})  # not carried out yet

        outcome = web.deliver(web.tag_indexed("t1/web", "v1.1", D11, pushed_at=later(60)))

        assert outcome.moved == [deployment_id] and outcome.started == ()
        pending = get(web, deployment_id)["pending_push"]
        assert (pending["tag"], pending["digest"]) == ("v1.1", D11)
        web.drain()
        got = get(web, deployment_id)
        assert (got["status"], got["serving_revision"], got["serving_digest"], got["pending_push"]) == (
            "running",
            3,
            D11,
            None,
        )
        assert [(r["revision"], r["trigger"], r["spec"]["env"]) for r in revisions(web, deployment_id)] == [
            (3, "auto-deploy", {"MODE": "b"}),
            (2, "update", {"MODE": "b"}),
            (1, "create", {}),
        ]

    def test_a_better_push_replaces_the_waiting_one(self, web):
        deployment_id = deploy(web, "semver:minor")
        logic.update_deployment(web.rt, "t1", deployment_id, {"env": {"MODE": "b"}})
        web.deliver(web.tag_indexed("t1/web", "v1.1", D11, pushed_at=later(60)))
        web.deliver(web.tag_indexed("t1/web", "v1.2", D12, pushed_at=later(50)))  # higher, whenever pushed
        lower = web.deliver(web.tag_indexed("t1/web", "v1.1.5", D13, pushed_at=later(70)))
        web.drain()

        assert (
            lower.decisions[0].verdict.reason == "the waiting push of v1.2 is preferred: v1.1.5 is not higher than v1.2"
        )
        assert [(r["revision"], r["tag"]) for r in revisions(web, deployment_id)] == [
            (3, "v1.2"),
            (2, "v1.0"),
            (1, "v1.0"),
        ]

    def test_a_later_push_of_the_tag_replaces_the_waiting_one(self, web):
        deployment_id = deploy(web, "force", tag="latest")
        logic.update_deployment(web.rt, "t1", deployment_id, {"env": {"MODE": "b"}})
        web.deliver(web.tag_indexed("t1/web", "latest", LATEST_NEWER, pushed_at=later(90)))
        older = web.deliver(web.tag_indexed("t1/web", "latest", LATEST_NEW, pushed_at=later(60)))
        web.drain()
        assert older.decisions[0].verdict.reason == "a later push (latest) waits already"
        assert serving(web, deployment_id)[2] == LATEST_NEWER
        assert len(revisions(web, deployment_id)) == 3

    def test_a_waiting_push_the_operation_made_pointless_is_dropped(self, web):
        deployment_id = deploy(web, "semver:minor")
        logic.update_deployment(web.rt, "t1", deployment_id, {"tag": "v1.3"})
        web.deliver(web.tag_indexed("t1/web", "v1.2", D12, pushed_at=later(60)))  # higher than v1.0 serving
        web.drain()
        got = get(web, deployment_id)
        assert (got["serving_revision"], got["serving_digest"], got["pending_push"]) == (2, D13, None)
        assert len(revisions(web, deployment_id)) == 2

    def test_a_policy_set_to_never_meanwhile_drops_the_waiting_push(self, web):
        deployment_id = deploy(web, "semver:minor")
        logic.update_deployment(web.rt, "t1", deployment_id, {"env": {"MODE": "b"}})
        web.deliver(web.tag_indexed("t1/web", "v1.1", D11, pushed_at=later(60)))
        logic.set_auto_deploy(web.rt, "t1", deployment_id, "never")
        web.drain()
        assert serving(web, deployment_id) == ("running", 2, D10)

    def test_the_reconciler_starts_a_push_left_waiting(self, web, monkeypatch):
        """The process died between recording the push and starting it."""
        deployment_id = deploy(web, "semver:minor")
        monkeypatch.setattr(autodeploy, "start_safely", lambda rt, deployment_id: None)
        web.deliver(web.tag_indexed("t1/web", "v1.1", D11, pushed_at=later(60)))
        assert get(web, deployment_id)["pending_push"]["tag"] == "v1.1"
        monkeypatch.undo()

        reconcile.reconcile(web.rt)
        web.drain()

        assert serving(web, deployment_id) == ("running", 2, D11)


class TestFailures:
    def test_a_push_that_fails_its_health_check_is_rolled_back(self, web):
        web.exits.append(lambda spec: spec.image.endswith(D12))
        deployment_id = deploy(web, "semver:minor")
        before = sorted(c["spec"].name for c in web.containers(deployment_id))

        push(web, "v1.2", D12)

        got = get(web, deployment_id)
        assert (got["status"], got["revision"], got["serving_revision"], got["serving_digest"]) == (
            "rolled_back",
            2,
            1,
            D10,
        )
        assert got["reason"] == (
            "revision 2 (auto-deploy of t1/web:v1.2) failed: container exited with code 3; "
            "last output: starting | bye (instance on local-1); rolled back to revision 1"
        )
        assert sorted(c["spec"].name for c in web.containers(deployment_id)) == before  # never stopped
        assert web.statuses(deployment_id)[-1] == (2, "rolled_back")
        assert [(r["revision"], r["status"]) for r in revisions(web, deployment_id)] == [(2, "failed"), (1, "running")]

    def test_a_rollback_after_a_replacement_brings_the_previous_revision_back(self, web):
        """The first new instance passed and replaced an old one; the second failed: the deployer
        removes the new revision and tops the previous one back up."""
        started = []

        def second_new_one_exits(spec):
            if spec.image.endswith(D12):
                started.append(spec.name)
            return len(started) == 2 and spec.name == started[1]

        web.exits.append(second_new_one_exits)
        deployment_id = deploy(web, "semver:minor")

        push(web, "v1.2", D12)

        assert serving(web, deployment_id) == ("rolled_back", 1, D10)
        assert running_digests(web, deployment_id) == [D10, D10]
        assert sorted(i["host"] for i in get(web, deployment_id)["instances"]) == ["local-1", "local-2"]

    def test_a_digest_that_failed_automatically_is_not_tried_again(self, web):
        web.exits.append(lambda spec: spec.image.endswith(D12))
        deployment_id = deploy(web, "semver:minor")
        push(web, "v1.2", D12, seconds=60)

        outcome = push(web, "v1.2.0", D12, seconds=90)  # the same content under another tag

        assert outcome.decisions[0].verdict.reason == f"an auto-deploy of {D12} already failed on it"
        assert len(revisions(web, deployment_id)) == 2
        push(web, "v1.2.1", D13, seconds=120)  # a fixed version moves it again
        assert serving(web, deployment_id) == ("running", 3, D13)

    def test_one_deployment_failing_does_not_hold_back_the_others(self, web):
        broken = deploy(web, "semver:minor", name="broken")
        fine = deploy(web, "semver:minor", name="fine")
        web.exits.append(lambda spec: spec.image.endswith(D11) and spec.labels["imagehub.deployment"] == broken)

        push(web, "v1.1", D11)

        assert serving(web, broken)[0] == "rolled_back"
        assert serving(web, fine) == ("running", 2, D11)

    def test_an_error_starting_one_leaves_its_push_waiting_and_starts_the_others(self, web, monkeypatch):
        first = deploy(web, "semver:minor", name="first")
        second = deploy(web, "semver:minor", name="second")
        real = logic.auto_update

        def auto_update(rt, deployment, base, push):
            if deployment.id == first:
                raise RuntimeError("engine client exploded")
            return real(rt, deployment, base, push)

        monkeypatch.setattr(logic, "auto_update", auto_update)

        outcome = push(web, "v1.1", D11)

        assert dict(outcome.started) == {second: 2}
        assert serving(web, second)[2] == D11
        assert get(web, first)["pending_push"]["tag"] == "v1.1"
        monkeypatch.undo()
        reconcile.reconcile(web.rt)
        web.drain()
        assert serving(web, first) == ("running", 2, D11)

    def test_no_room_for_the_surge_instance_fails_at_once(self, web):
        deployment_id = deploy(web, "semver:minor", cpu=1.5)

        push(web, "v1.1", D11)

        got = get(web, deployment_id)
        assert (got["status"], got["serving_revision"], got["operation"]) == ("rolled_back", 1, None)
        assert got["reason"].startswith(
            "revision 2 (auto-deploy of t1/web:v1.1) failed: pool 'default' cannot take 1 more instance(s)"
        )
        assert got["reason"].endswith("; rolled back to revision 1")
        assert [(r["revision"], r["status"]) for r in revisions(web, deployment_id)] == [(2, "failed"), (1, "running")]
        assert web.statuses(deployment_id)[-1] == (2, "rolled_back")

    def test_a_deployment_that_never_ran_is_retried_and_fails_as_failed(self, web):
        web.exits.append(lambda spec: True)
        deployment_id = logic.create_deployment(
            web.rt, "t1", web_spec(image="t1/web:v1.0", auto_deploy={"policy": "semver:minor"})
        )["id"]
        web.drain()
        push(web, "v1.1", D11)
        got = get(web, deployment_id)
        assert (got["status"], got["revision"], got["serving_revision"]) == ("failed", 2, None)


class TestSettingThePolicy:
    def test_set_auto_deploy_changes_only_the_policy(self, web):
        deployment_id = deploy(web, "never")
        before = len(web.events)

        got = logic.set_auto_deploy(web.rt, "t1", deployment_id, "semver:minor+prerelease")

        assert (got["auto_deploy"], got["revision"], got["status"]) == (
            {"policy": "semver:minor+prerelease"},
            1,
            "running",
        )
        assert len(web.events) == before
        push(web, "v1.1.0-rc.1", D11)
        assert serving(web, deployment_id)[2] == D11

    def test_accepted_while_an_operation_runs(self, web):
        deployment_id = deploy(web, "never")
        logic.update_deployment(web.rt, "t1", deployment_id, {"env": {"MODE": "b"}})
        assert logic.set_auto_deploy(web.rt, "t1", deployment_id, "force")["auto_deploy"] == {"policy": "force"}

    def test_update_deployment_changes_it_too(self, web):
        deployment_id = deploy(web, "never")
        got = logic.update_deployment(web.rt, "t1", deployment_id, {"auto_deploy": {"policy": "glob:v1.*"}})
        assert (got["auto_deploy"], got["revision"]) == ({"policy": "glob:v1.*"}, 1)

    @pytest.mark.parametrize(
        "policy, message",
        [
            ("sometimes", "policy must be one of never, force, semver:major|minor|patch"),
            (
                "semver:minor+rc",
                "policy 'semver:minor+rc': a semver policy is semver:major, semver:minor or "
                "semver:patch, optionally followed by +prerelease",
            ),
            ({"policy": "force"}, "policy must be a string"),
        ],
    )
    def test_a_bad_policy_is_refused(self, web, policy, message):
        deployment_id = deploy(web, "never")
        with pytest.raises(InvalidRequest) as raised:
            logic.set_auto_deploy(web.rt, "t1", deployment_id, policy)
        assert str(raised.value).startswith(message)
        assert get(web, deployment_id)["auto_deploy"] == {"policy": "never"}

    def test_a_deleted_deployment_is_not_found(self, web):
        deployment_id = deploy(web, "never")
        logic.delete_deployment(web.rt, "t1", deployment_id)
        with pytest.raises(NotFound):
            logic.set_auto_deploy(web.rt, "t1", deployment_id, "force")


def test_status_events_say_rolled_back_with_the_reason(web):
    web.exits.append(lambda spec: spec.image.endswith(D12))
    deployment_id = deploy(web, "semver:minor")
    push(web, "v1.2", D12)
    [last] = [p for kind, p in web.events if kind == DEPLOYMENT_STATUS_CHANGED][-1:]
    assert (last["deployment_id"], last["revision"], last["status"]) == (deployment_id, 2, "rolled_back")
    assert last["reason"].endswith("rolled back to revision 1")


class TestTheEventHandler:
    """``DeployerWorker.handle_tag_indexed``: its queue name, and what happens on each kind of error."""

    def test_consumes_the_catalogs_tag_indexed_retrying_only_database_errors(self):
        [entrypoint] = service.DeployerWorker.handle_tag_indexed.nameko_entrypoints
        assert isinstance(entrypoint, ConsumingHandler)
        assert (entrypoint.source_service, entrypoint.event_type, entrypoint.transient) == (
            "catalog",
            "tag_indexed",
            (sa.exc.DBAPIError,),
        )

    def test_an_unusable_payload_or_a_bug_is_raised_for_the_consumer_to_park(self, world, monkeypatch):
        worker = service.DeployerWorker()
        with pytest.raises(InvalidRequest):
            worker.handle_tag_indexed({"event_id": "x"})  # unusable: refused before any work

        def bug(rt, event):
            raise KeyError("oops")

        monkeypatch.setattr(service.autodeploy, "handle_tag_indexed", bug)
        monkeypatch.setattr(service.DeployerWorker, "_runtime", lambda self: world.rt)
        with pytest.raises(KeyError):
            worker.handle_tag_indexed(world.tag_indexed("t1/web", "v1.1", D11))
