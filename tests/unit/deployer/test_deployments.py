"""The RPC side: what is recorded and published, tenant rules, conflicts. Rollouts are carried
out by ``world.drain()`` as the service's event handler would."""

import uuid

import pytest

from deployer import deployments as logic
from deployer import rollout
from shared.contracts.errors import Conflict, Forbidden, InvalidRequest, NotFound, ServiceUnavailable
from shared.contracts.events import (
    DEPLOYMENT_STATUS_CHANGED,
    ROLLOUT_REQUESTED,
    DeploymentStatusChanged,
    RolloutRequested,
    load_event,
)
from tests.unit.deployer.conftest import DIGEST_V1, DIGEST_V2, PULL_HOST, web_spec


def create(world, tenant="t1", **overrides):
    return logic.create_deployment(world.rt, tenant, web_spec(**overrides))


class TestCreate:
    def test_returns_at_once_pending_and_pinned_by_digest(self, world):
        created = create(world)
        assert (created["status"], created["revision"], created["serving_revision"]) == ("pending", 1, None)
        assert (created["image"], created["digest"], created["instances"]) == ("t1/web:v1", DIGEST_V1, [])
        assert (created["serving_image"], created["serving_digest"]) == (None, None)  # nothing serves yet
        assert created["spec"]["memory"] == "256m"
        assert world.containers() == []  # nothing started before the rollout runs

    def test_publishes_pending_then_requests_the_rollout(self, world):
        created = create(world)
        kinds = [kind for kind, _ in world.events]
        assert kinds == [DEPLOYMENT_STATUS_CHANGED, ROLLOUT_REQUESTED]
        status = load_event(DeploymentStatusChanged, world.events[0][1])
        assert (
            status["deployment_id"],
            status["tenant_id"],
            status["revision"],
            status["status"],
            status["reason"],
        ) == (created["id"], "t1", 1, "pending", None)
        request = world.events[1][1]
        assert (request["deployment_id"], request["revision"], request["action"], request["trigger"]) == (
            created["id"],
            1,
            "rollout",
            "create",
        )

    def test_rollout_runs_two_replicas_one_per_host(self, world):
        created = create(world)
        world.drain()
        got = logic.get_deployment(world.rt, "t1", created["id"])
        assert (got["status"], got["serving_revision"]) == ("running", 1)
        assert (got["serving_image"], got["serving_digest"]) == ("t1/web:v1", DIGEST_V1)
        assert sorted(i["host"] for i in got["instances"]) == ["local-1", "local-2"]
        assert all(i["state"] == "running" and i["address"].startswith("127.0.0.1:") for i in got["instances"])
        images = {c["spec"].image for c in world.containers()}
        assert images == {f"{PULL_HOST}/t1/web@{DIGEST_V1}"}

    def test_public_library_images_are_deployable_by_any_tenant(self, world):
        created = create(world, tenant="t2", image="library/nginx", ports=[])
        assert created["repository"] == "library/nginx"

    def test_another_tenants_image_is_forbidden(self, world):
        with pytest.raises(Forbidden):
            create(world, tenant="t2")
        assert world.events == []

    def test_a_catalog_that_does_not_answer_records_nothing(self, world, monkeypatch):
        def down(*args):
            raise ServiceUnavailable("the catalog service did not answer catalog.get_tag within 10 s")

        monkeypatch.setattr(world.catalog, "get_tag", down)
        with pytest.raises(ServiceUnavailable, match="did not answer"):
            create(world)
        assert (world.events, logic.list_deployments(world.rt, "t1", 1, 50)["total"]) == ([], 0)

    def test_an_unknown_tag_is_not_found(self, world):
        with pytest.raises(NotFound, match="t1/web:v9"):
            create(world, image="t1/web:v9")

    def test_a_name_is_unique_per_tenant(self, world):
        create(world)
        with pytest.raises(Conflict, match="already has a deployment named 'web'"):
            create(world)
        world.tag("t2/web", "v1", DIGEST_V1)
        assert create(world, tenant="t2", image="t2/web:v1")["name"] == "web"

    def test_more_than_the_pool_can_take_is_refused_up_front(self, world):
        with pytest.raises(
            Conflict,
            match=r"cannot take 5 more instance\(s\): no host can take another instance "
            r"\(4 of 5 would fit\)",
        ):
            create(world, replicas=5, cpu=1)
        assert world.events == []

    def test_an_unreachable_host_leaves_the_other(self, world):
        world.engines["local-2"].down = True
        with pytest.raises(Conflict, match="local-2: unreachable"):
            create(world, replicas=3, cpu=1)
        created = create(world, replicas=2, cpu=1)
        world.drain()
        assert {i["host"] for i in logic.get_deployment(world.rt, "t1", created["id"])["instances"]} == {"local-1"}

    def test_bad_specs_record_nothing(self, world):
        with pytest.raises(InvalidRequest, match="memory must be a size"):
            create(world, memory="12q")
        assert logic.list_deployments(world.rt, "t1", 1, 50)["total"] == 0


class TestCapacityPromisedToRolloutsInProgress:
    """The up-front check counts what accepted rollouts are still to place: of two requests for
    the last room, the second is refused at once instead of failing in its rollout."""

    def test_a_second_create_for_the_last_room_is_refused_up_front(self, world):
        first = create(world, name="first", replicas=2, cpu=1.5)  # accepted, rollout not run yet
        with pytest.raises(
            Conflict,
            match=r"cannot take 1 more instance\(s\): no host can take another instance.*"
            r"2 instance\(s\) promised to rollouts in progress",
        ):
            create(world, name="second", replicas=1, cpu=1)
        world.drain()
        assert logic.get_deployment(world.rt, "t1", first["id"])["status"] == "running"
        assert [d["name"] for d in logic.list_deployments(world.rt, "t1", 1, 50)["items"]] == ["first"]

    def test_what_still_fits_beside_the_promise_is_accepted(self, world):
        first = create(world, name="first", replicas=2, cpu=1.5)
        second = create(world, name="second", replicas=2, cpu=0.5)
        world.drain()
        assert [logic.get_deployment(world.rt, "t1", d["id"])["status"] for d in (first, second)] == [
            "running",
            "running",
        ]
        # Once placed, the instances count through their records: not twice.
        with pytest.raises(Conflict, match="no host can take another instance") as refused:
            create(world, name="third", replicas=1, cpu=0.01)
        assert "promised" not in str(refused.value)

    def test_a_rollout_half_way_promises_only_what_it_has_not_placed(self, world):
        first = create(world, name="first", replicas=2, cpu=1.5)
        [request] = [p for k, p in world.events if k == ROLLOUT_REQUESTED]
        world.handled = len(world.events)
        engine = world.engines["local-1"]
        real_run, seen = engine.run, {}

        def run_then_look(spec):  # the first instance is recorded, the second not yet
            with pytest.raises(Conflict) as refused:
                create(world, name="second", replicas=1, cpu=1)
            seen["refused"] = refused.value
            seen["taken"] = create(world, name="small", replicas=1, cpu=0.5, ports=[])
            return real_run(spec)

        engine.run = run_then_look
        rollout.handle(world.rt, load_event(RolloutRequested, request))
        assert "1 instance(s) promised" in str(seen["refused"])
        assert seen["taken"]["status"] == "pending"  # local-1's remaining 0.5 CPU is not promised
        assert logic.get_deployment(world.rt, "t1", first["id"])["status"] == "running"

    def test_a_scale_up_in_progress_is_counted(self, world, running):
        logic.scale_deployment(world.rt, "t1", running, 8)  # 6 more of 0.5 CPU: the pool is full then
        with pytest.raises(Conflict, match="promised to rollouts in progress"):
            create(world, name="other", replicas=1, cpu=0.5)
        world.drain()
        assert len(world.containers(running)) == 8

    def test_an_update_in_progress_is_counted_for_its_surge_instance(self, world, running):
        logic.update_deployment(world.rt, "t1", running, {"cpu": 1.5})  # each new one starts beside an old one
        with pytest.raises(Conflict, match=r"1 instance\(s\) promised to rollouts in progress"):
            create(world, name="other", replicas=2, cpu=1)
        world.drain()
        assert logic.get_deployment(world.rt, "t1", running)["status"] == "running"

    def test_a_fixed_host_port_promised_is_taken(self, world):
        create(world, name="first", replicas=1, ports=[{"host_port": 20500}])
        with pytest.raises(Conflict, match="host port 20500 already in use"):
            create(world, name="second", replicas=1, ports=[{"host_port": 20500}])

    def test_finished_failed_and_deleted_rollouts_promise_nothing(self, world):
        world.registry.clear()
        failed = create(world, name="failed", replicas=2, cpu=1.5)
        world.drain()
        assert logic.get_deployment(world.rt, "t1", failed["id"])["status"] == "failed"
        world.tag("t1/web", "v1", DIGEST_V1)
        deleted = create(world, name="deleted", replicas=2, cpu=1.5)
        logic.delete_deployment(world.rt, "t1", deleted["id"])
        assert create(world, name="fits", replicas=2, cpu=1.5)["status"] == "pending"


@pytest.fixture
def running(world):
    created = create(world)
    world.drain()
    return created["id"]


class TestTenancy:
    @pytest.mark.parametrize(
        "call",
        [
            lambda rt, d: logic.get_deployment(rt, "t2", d),
            lambda rt, d: logic.update_deployment(rt, "t2", d, {"env": {"A": "1"}}),
            lambda rt, d: logic.scale_deployment(rt, "t2", d, 3),
            lambda rt, d: logic.rollback_deployment(rt, "t2", d),
            lambda rt, d: logic.list_revisions(rt, "t2", d, 1, 50),
            lambda rt, d: logic.delete_deployment(rt, "t2", d),
        ],
    )
    def test_another_tenants_deployment_is_forbidden_and_untouched(self, world, running, call):
        before = logic.get_deployment(world.rt, "t1", running)
        with pytest.raises(Forbidden) as raised:
            call(world.rt, running)
        assert str(raised.value) == f"deployment {running} belongs to another tenant"
        assert logic.get_deployment(world.rt, "t1", running) == before

    def test_lists_show_only_the_callers_deployments(self, world, running):
        assert [d["id"] for d in logic.list_deployments(world.rt, "t1", 1, 50)["items"]] == [running]
        assert logic.list_deployments(world.rt, "t2", 1, 50) == {"items": [], "total": 0, "page": 1, "page_size": 50}

    def test_an_unknown_deployment_is_not_found(self, world):
        with pytest.raises(NotFound):
            logic.get_deployment(world.rt, "t1", str(uuid.uuid4()))


class TestUpdate:
    def test_makes_the_next_revision_and_keeps_the_pin_without_a_new_image(self, world, running):
        updated = logic.update_deployment(world.rt, "t1", running, {"env": {"A": "1"}})
        assert (updated["revision"], updated["serving_revision"], updated["status"]) == (2, 1, "pending")
        assert (updated["digest"], updated["spec"]["env"]) == (DIGEST_V1, {"A": "1"})

    def test_a_new_tag_is_resolved_again(self, world, running):
        assert logic.update_deployment(world.rt, "t1", running, {"tag": "v2"})["digest"] == DIGEST_V2

    def test_a_second_update_while_rolling_out_is_a_conflict(self, world, running):
        logic.update_deployment(world.rt, "t1", running, {"tag": "v2"})
        with pytest.raises(Conflict, match="busy"):
            logic.update_deployment(world.rt, "t1", running, {"env": {"A": "1"}})
        with pytest.raises(Conflict, match="busy"):
            logic.scale_deployment(world.rt, "t1", running, 1)
        world.drain()
        assert logic.update_deployment(world.rt, "t1", running, {"env": {"A": "1"}})["revision"] == 3

    def test_auto_deploy_alone_is_stored_without_a_revision(self, world, running):
        updated = logic.update_deployment(world.rt, "t1", running, {"auto_deploy": {"policy": "semver:patch"}})
        assert (updated["revision"], updated["auto_deploy"]) == (1, {"policy": "semver:patch"})
        assert not any(kind == ROLLOUT_REQUESTED for kind, _ in world.events[world.handled :])

    def test_a_fixed_port_is_updated_stop_first_on_the_same_port(self, world):
        created = create(world, replicas=1, ports=[{"host_port": 20500}])
        world.drain()
        assert logic.get_deployment(world.rt, "t1", created["id"])["spec"]["update_strategy"] == "stop-first"
        with pytest.raises(
            InvalidRequest, match="update_strategy start-first cannot update an instance on fixed host port 20500"
        ):
            logic.update_deployment(
                world.rt, "t1", created["id"], {"env": {"A": "1"}, "update_strategy": "start-first"}
            )
        logic.update_deployment(world.rt, "t1", created["id"], {"env": {"A": "1"}})
        world.drain()
        got = logic.get_deployment(world.rt, "t1", created["id"])
        assert (got["status"], got["serving_revision"]) == ("running", 2)
        assert [(i["revision"], i["ports"][0]["host_port"]) for i in got["instances"]] == [(2, 20500)]

    def test_start_first_starts_the_new_instance_before_it_stops_the_old_and_stop_first_after(self, world):
        """The engine's calls in order: start-first runs revision 2's container, then removes
        revision 1's; stop-first removes revision 2's, then runs revision 3's."""
        created = create(world, replicas=1, ports=[{}])
        world.drain()

        def run_and_remove(since):
            calls = [call[0] for engine in world.engines.values() for call in engine.calls[since[engine.name] :]]
            return [kind for kind in calls if kind in ("run", "stop", "remove")]

        def mark():
            return {name: len(engine.calls) for name, engine in world.engines.items()}

        before = mark()
        logic.update_deployment(world.rt, "t1", created["id"], {"env": {"A": "1"}})
        world.drain()
        start_first, before = run_and_remove(before), mark()
        logic.update_deployment(world.rt, "t1", created["id"], {"env": {"A": "2"}, "update_strategy": "stop-first"})
        world.drain()
        stop_first = run_and_remove(before)
        assert (start_first[0], stop_first[-1]) == ("run", "run"), (start_first, stop_first)
        assert "run" not in stop_first[:-1] and start_first.count("run") == 1, (start_first, stop_first)
        got = logic.get_deployment(world.rt, "t1", created["id"])
        assert (got["status"], got["serving_revision"], got["spec"]["update_strategy"]) == ("running", 3, "stop-first")


BROKEN = ["sh", "-c", "exit 3"]


@pytest.fixture
def failed_update(world, running):
    """Revision 2 (a command that exits at once) failed; revision 1 still serves."""
    world.exits.append(lambda spec: spec.command == BROKEN)
    logic.update_deployment(world.rt, "t1", running, {"command": BROKEN, "env": {"B": "2"}})
    world.drain()
    got = logic.get_deployment(world.rt, "t1", running)
    assert (got["status"], got["revision"], got["serving_revision"]) == ("rollout_failed", 2, 1)
    return running


class TestUpdateBuildsOnTheServingRevision:
    def test_after_a_failed_update_a_new_tag_starts_from_what_serves(self, world, failed_update):
        updated = logic.update_deployment(world.rt, "t1", failed_update, {"tag": "v2"})
        assert (updated["revision"], updated["digest"]) == (3, DIGEST_V2)
        # Not the failed revision's command and env: the serving revision's (the image's command, no env).
        assert (updated["spec"]["command"], updated["spec"]["env"]) == (None, {})
        world.drain()
        got = logic.get_deployment(world.rt, "t1", failed_update)
        assert (got["status"], got["revision"], got["serving_revision"]) == ("running", 3, 3)

    def test_a_settings_change_keeps_the_serving_image_not_the_failed_ones(self, world, running):
        world.registry[f"{PULL_HOST}/t1/web@{DIGEST_V2}"] = "denied"
        logic.update_deployment(world.rt, "t1", running, {"tag": "v2"})
        world.drain()
        assert logic.get_deployment(world.rt, "t1", running)["status"] == "rollout_failed"
        updated = logic.update_deployment(world.rt, "t1", running, {"env": {"A": "1"}})
        assert (updated["revision"], updated["tag"], updated["digest"]) == (3, "v1", DIGEST_V1)
        world.drain()
        assert logic.get_deployment(world.rt, "t1", running)["status"] == "running"

    def test_get_deployment_names_the_serving_image_beside_the_newest_one(self, world, running):
        world.registry[f"{PULL_HOST}/t1/web@{DIGEST_V2}"] = "denied"
        logic.update_deployment(world.rt, "t1", running, {"tag": "v2"})
        world.drain()
        got = logic.get_deployment(world.rt, "t1", running)
        assert (got["revision"], got["image"], got["digest"]) == (2, "t1/web:v2", DIGEST_V2)
        assert (got["serving_revision"], got["serving_image"], got["serving_digest"]) == (1, "t1/web:v1", DIGEST_V1)
        listed = logic.list_deployments(world.rt, "t1", 1, 50)["items"][0]
        assert (listed["serving_image"], listed["serving_digest"]) == ("t1/web:v1", DIGEST_V1)

    def test_changes_that_leave_the_serving_revision_as_it_is_make_no_revision(self, world, failed_update):
        unchanged = logic.update_deployment(world.rt, "t1", failed_update, {"env": {}})
        assert (unchanged["revision"], unchanged["status"]) == (2, "rollout_failed")
        assert not any(kind == ROLLOUT_REQUESTED for kind, _ in world.events[world.handled :])

    def test_when_nothing_ever_served_it_starts_from_the_newest_revision(self, world):
        world.exits.append(lambda spec: spec.command == BROKEN)
        created = create(world, command=BROKEN, env={"A": "1"})
        world.drain()
        assert logic.get_deployment(world.rt, "t1", created["id"])["status"] == "failed"
        updated = logic.update_deployment(world.rt, "t1", created["id"], {"command": ["httpd", "-f"]})
        assert (updated["revision"], updated["spec"]["command"], updated["spec"]["env"]) == (
            2,
            ["httpd", "-f"],
            {"A": "1"},
        )
        world.drain()
        got = logic.get_deployment(world.rt, "t1", created["id"])
        assert (got["status"], got["serving_revision"]) == ("running", 2)


class TestRollback:
    def test_returns_to_the_previous_good_revision_as_a_new_one(self, world, running):
        logic.update_deployment(world.rt, "t1", running, {"tag": "v2"})
        world.drain()
        rolled = logic.rollback_deployment(world.rt, "t1", running)
        assert (rolled["revision"], rolled["digest"], rolled["tag"]) == (3, DIGEST_V1, "v1")
        world.drain()
        revisions = logic.list_revisions(world.rt, "t1", running, 1, 50)["items"]
        assert [(r["revision"], r["status"], r["trigger"], r["rollback_to"]) for r in revisions] == [
            (3, "running", "rollback", 1),
            (2, "superseded", "update", None),
            (1, "superseded", "create", None),
        ]

    def test_keeps_the_pinned_digest_even_if_the_tag_moved(self, world, running):
        logic.update_deployment(world.rt, "t1", running, {"tag": "v2"})
        world.drain()
        world.tag("t1/web", "v1", "sha256:" + "9" * 64)
        assert logic.rollback_deployment(world.rt, "t1", running, revision=1)["digest"] == DIGEST_V1

    def test_after_a_failed_update_the_default_is_the_revision_before_the_serving_one(self, world, running):
        logic.update_deployment(world.rt, "t1", running, {"tag": "v2"})
        world.drain()  # revision 2 serves
        world.exits.append(lambda spec: spec.command == BROKEN)
        logic.update_deployment(world.rt, "t1", running, {"command": BROKEN})
        world.drain()  # revision 3 failed; 2 still serves
        rolled = logic.rollback_deployment(world.rt, "t1", running)
        # Never the failed revision (it never ran), never the serving one: the one that served before.
        assert (rolled["revision"], rolled["digest"], rolled["spec"]["command"]) == (4, DIGEST_V1, None)
        assert logic.list_revisions(world.rt, "t1", running, 1, 50)["items"][0]["rollback_to"] == 1

    def test_after_a_failed_then_a_good_update_the_default_skips_the_failed_revision(self, world, failed_update):
        logic.update_deployment(world.rt, "t1", failed_update, {"tag": "v2"})
        world.drain()  # revision 3 (from revision 1) serves; 2 failed
        rolled = logic.rollback_deployment(world.rt, "t1", failed_update)
        assert (rolled["revision"], rolled["digest"], rolled["spec"]["command"]) == (4, DIGEST_V1, None)
        assert logic.list_revisions(world.rt, "t1", failed_update, 1, 50)["items"][0]["rollback_to"] == 1
        world.drain()
        assert logic.get_deployment(world.rt, "t1", failed_update)["status"] == "running"

    def test_nothing_earlier_is_a_conflict(self, world, running):
        with pytest.raises(Conflict, match="nothing to roll back to"):
            logic.rollback_deployment(world.rt, "t1", running)

    def test_the_serving_revision_is_a_conflict_and_unknown_ones_not_found(self, world, running):
        with pytest.raises(Conflict, match="revision 1 is the one serving already"):
            logic.rollback_deployment(world.rt, "t1", running, revision=1)
        with pytest.raises(NotFound, match="has no revision 7"):
            logic.rollback_deployment(world.rt, "t1", running, revision=7)


class TestScaleAndDelete:
    def test_scale_to_zero_stops_everything_and_back(self, world, running):
        logic.scale_deployment(world.rt, "t1", running, 0)
        world.drain()
        got = logic.get_deployment(world.rt, "t1", running)
        assert (got["status"], got["replicas"], got["instances"], world.containers()) == ("stopped", 0, [], [])
        logic.scale_deployment(world.rt, "t1", running, 3)
        world.drain()
        got = logic.get_deployment(world.rt, "t1", running)
        assert (got["status"], len(got["instances"]), len(world.containers(running))) == ("running", 3, 3)

    @pytest.mark.parametrize("replicas", [-1, 51, "2", None])
    def test_bad_replica_counts_are_refused(self, world, running, replicas):
        with pytest.raises(InvalidRequest, match="replicas"):
            logic.scale_deployment(world.rt, "t1", running, replicas)

    def test_delete_removes_every_container_and_frees_the_name(self, world, running):
        deleting = logic.delete_deployment(world.rt, "t1", running)
        assert deleting["status"] == "deleting"
        world.drain()
        assert world.containers() == []
        got = logic.get_deployment(world.rt, "t1", running)
        assert (got["status"], got["instances"]) == ("deleted", [])
        assert logic.list_deployments(world.rt, "t1", 1, 50)["total"] == 0
        assert logic.delete_deployment(world.rt, "t1", running)["status"] == "deleted"  # again: unchanged
        with pytest.raises(NotFound, match="was deleted"):
            logic.scale_deployment(world.rt, "t1", running, 1)
        assert create(world)["name"] == "web"

    def test_delete_during_a_rollout_wins(self, world):
        created = create(world)
        logic.delete_deployment(world.rt, "t1", created["id"])
        world.drain()  # the create's rollout finds its lock gone and does nothing
        assert world.containers() == []
        assert world.statuses(created["id"]) == [(1, "pending"), (1, "deleting"), (1, "deleted")]


class TestListPools:
    def test_reports_reachability_capacity_and_reservations(self, world, running):
        world.engines["local-2"].down = True
        pools = {p["name"]: p for p in logic.list_pools(world.rt)["items"]}
        one, two = pools["default"]["hosts"]
        assert (one["reachable"], one["instances"], one["reserved"], one["free"]["cpus"], one["free"]["memory"]) == (
            True,
            1,
            {"cpus": 0.5, "memory_bytes": 256 * 1024**2},
            1.5,
            "3840m",
        )
        # Unreachable: reported, and its recorded instance still counts against it.
        assert (two["reachable"], two["error"], two["instances"], two["free"]["cpus"]) == (
            False,
            "local-2: connection refused",
            1,
            1.5,
        )
        assert pools["prod"]["network_mode"] == "bridge" and pools["default"]["default"] is True
