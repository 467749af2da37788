"""The reconciler against fake engines: dead and vanished instances, unreachable hosts, strays,
orphans, and operations whose worker vanished."""

from deployer import deployments as logic
from deployer.engine import ContainerSpec
from deployer.reconcile import diagnose, reconcile
from shared.contracts.events import ROLLOUT_REQUESTED
from tests.unit.deployer.conftest import web_spec


def serving(world, **overrides):
    deployment_id = logic.create_deployment(world.rt, "t1", web_spec(**overrides))["id"]
    world.drain()
    return deployment_id


def get(world, deployment_id):
    return logic.get_deployment(world.rt, "t1", deployment_id)


def container_on(world, host, deployment_id):
    engine = world.engines[host]
    return next(cid for cid, c in engine.containers.items() if c["spec"].labels["imagehub.deployment"] == deployment_id)


def foreign(name, labels):
    return ContainerSpec(
        name=name,
        image="x",
        command=None,
        env={},
        labels=labels,
        cpu=0.1,
        memory=6 * 1024**2,
        restart_policy="no",
        network_mode="host",
    )


class TestRestore:
    def test_a_removed_container_is_replaced(self, world):
        deployment_id = serving(world)
        gone = container_on(world, "local-2", deployment_id)
        del world.engines["local-2"].containers[gone]
        reconcile(world.rt)
        got = get(world, deployment_id)
        assert got["status"] == "degraded"
        assert got["reason"] == (
            f"container {got['reason'].split()[1]} on local-2 disappeared; restoring 1 instance(s)"
        )
        assert [i["host"] for i in got["instances"]] == ["local-1"]
        world.drain()
        got = get(world, deployment_id)
        assert (got["status"], sorted(i["host"] for i in got["instances"])) == ("running", ["local-1", "local-2"])
        assert gone not in {i["container_id"] for i in got["instances"]}
        assert world.statuses(deployment_id)[-4:] == [(1, "degraded"), (1, "pulling"), (1, "starting"), (1, "running")]

    def test_an_exited_container_is_removed_and_replaced(self, world):
        deployment_id = serving(world)
        dead = container_on(world, "local-1", deployment_id)
        world.engines["local-1"].kill(dead)
        reconcile(world.rt)
        assert dead not in world.engines["local-1"].containers
        assert "on local-1 exited" in get(world, deployment_id)["reason"]
        world.drain()
        assert len(world.containers(deployment_id)) == 2

    def test_a_healthy_deployment_is_left_alone(self, world):
        deployment_id = serving(world)
        before = (get(world, deployment_id), len(world.events))
        reconcile(world.rt)
        assert (get(world, deployment_id), len(world.events)) == before

    def test_a_busy_deployment_is_left_to_its_operation(self, world):
        deployment_id = serving(world)
        logic.update_deployment(world.rt, "t1", deployment_id, {"tag": "v2"})
        del world.engines["local-2"].containers[container_on(world, "local-2", deployment_id)]
        published = len(world.events)
        reconcile(world.rt)
        assert len(world.events) == published
        assert len(get(world, deployment_id)["instances"]) == 2

    def test_a_stopped_deployment_needs_nothing(self, world):
        deployment_id = serving(world)
        logic.scale_deployment(world.rt, "t1", deployment_id, 0)
        world.drain()
        published = len(world.events)
        reconcile(world.rt)
        assert len(world.events) == published


class TestUnreachableHosts:
    def test_instances_are_kept_as_unknown_not_replaced(self, world):
        deployment_id = serving(world)
        world.engines["local-2"].down = True
        reconcile(world.rt)
        got = get(world, deployment_id)
        states = {i["host"]: (i["state"], i["reason"]) for i in got["instances"]}
        assert states["local-1"] == ("running", None)
        assert states["local-2"] == ("unknown", "host unreachable: local-2: connection refused")
        assert (got["status"], got["reason"]) == ("degraded", "host(s) local-2 unreachable: 1 instance(s) unknown")
        assert not any(kind == ROLLOUT_REQUESTED for kind, _ in world.events[world.handled :])
        assert len(world.engines["local-1"].running(deployment_id)) == 1  # no replacement started

    def test_a_host_that_answers_again_brings_them_back(self, world):
        deployment_id = serving(world)
        world.engines["local-2"].down = True
        reconcile(world.rt)
        world.engines["local-2"].down = False
        reconcile(world.rt)
        got = get(world, deployment_id)
        assert (got["status"], got["reason"]) == ("running", None)
        assert {i["state"] for i in got["instances"]} == {"running"}


class TestStrangers:
    def test_containers_of_unknown_deployments_are_removed_others_untouched(self, world):
        deployment_id = serving(world)
        engine = world.engines["local-1"]
        engine.images.add("x")
        orphan = engine.run(
            foreign("old", {"imagehub.managed": "true", "imagehub.deployer": "unit", "imagehub.deployment": "gone"})
        )
        elsewhere = engine.run(
            foreign("theirs", {"imagehub.managed": "true", "imagehub.deployer": "other", "imagehub.deployment": "gone"})
        )
        reconcile(world.rt)
        assert orphan not in engine.containers
        assert elsewhere in engine.containers
        assert len(world.containers(deployment_id)) == 2

    def test_a_stray_container_of_a_live_deployment_is_removed(self, world):
        deployment_id = serving(world)
        engine = world.engines["local-2"]
        engine.images.add("x")
        stray = engine.run(
            foreign(
                "stray", {"imagehub.managed": "true", "imagehub.deployer": "unit", "imagehub.deployment": deployment_id}
            )
        )
        reconcile(world.rt)
        assert stray not in engine.containers
        assert get(world, deployment_id)["status"] == "running"


class TestStaleOperations:
    def test_an_operation_whose_event_was_lost_is_requested_again(self, world):
        deployment_id = logic.create_deployment(world.rt, "t1", web_spec())["id"]
        world.handled = len(world.events)  # the rollout_requested is lost
        reconcile(world.rt)
        assert not any(kind == ROLLOUT_REQUESTED for kind, _ in world.events[world.handled :])  # not stale yet
        world.clock.sleep(301)
        reconcile(world.rt)
        resumed = [p for k, p in world.events[world.handled :] if k == ROLLOUT_REQUESTED]
        assert [(p["revision"], p["trigger"]) for p in resumed] == [(1, "resume")]
        world.drain()
        assert get(world, deployment_id)["status"] == "running"


class TestDiagnose:
    def test_instances_being_started_are_not_judged(self, world):
        class Row:
            id, host, container_id, container_name, state, revision = "i1", "local-1", None, "ih-x", "creating", 1

        assert not diagnose([Row()], "d1", {"local-1": []}, {})
