"""The rollout worker against fake engines: statuses, containers, failures, rolling order."""

import itertools

import pytest

from deployer import deployments as logic
from deployer import rollout
from deployer.credentials import CredentialsUnavailable
from deployer.engine import EngineError
from deployer.reconcile import reconcile
from shared.contracts.events import ROLLOUT_REQUESTED, RolloutRequested, load_event
from tests.unit.deployer.conftest import DIGEST_V2, PULL_HOST, web_spec


def create(world, **overrides):
    return logic.create_deployment(world.rt, "t1", web_spec(**overrides))["id"]


def get(world, deployment_id):
    return logic.get_deployment(world.rt, "t1", deployment_id)


def by_revision(world, deployment_id):
    return sorted(int(c["spec"].labels["imagehub.revision"]) for c in world.containers(deployment_id))


class TestCreateRollout:
    def test_statuses_go_pending_pulling_starting_running(self, world):
        deployment_id = create(world)
        world.drain()
        assert world.statuses(deployment_id) == [(1, "pending"), (1, "pulling"), (1, "starting"), (1, "running")]
        assert [r["status"] for r in logic.list_revisions(world.rt, "t1", deployment_id, 1, 50)["items"]] == ["running"]

    def test_containers_are_labelled_named_limited_and_told_their_port(self, world):
        deployment_id = create(
            world,
            env={"GREETING": "hi"},
            ports=[{"container_port": 8080}, {}],
            health={"type": "running", "seconds": 1},
        )
        world.drain()
        instances = {i["container_id"]: i for i in get(world, deployment_id)["instances"]}
        for engine in world.engines.values():
            for container_id, container in engine.containers.items():
                spec, instance = container["spec"], instances[container_id]
                assert spec.labels == {
                    "imagehub.managed": "true",
                    "imagehub.deployer": "unit",
                    "imagehub.tenant": "t1",
                    "imagehub.deployment": deployment_id,
                    "imagehub.revision": "1",
                    "imagehub.instance": instance["id"],
                }
                assert spec.name == instance["container_name"]
                assert spec.name.startswith("ih-t1-web-r1-")
                assert (spec.network_mode, spec.cpu, spec.memory, spec.restart_policy) == (
                    "host",
                    0.5,
                    256 * 1024**2,
                    "unless-stopped",
                )
                assert spec.image == f"{PULL_HOST}/t1/web@sha256:" + "1" * 64
                first, second = (p["host_port"] for p in instance["ports"])
                assert spec.env == {"GREETING": "hi", "PORT": str(first), "PORT0": str(first), "PORT1": str(second)}
                assert instance["address"] == f"127.0.0.1:{first}"
                assert 20000 <= first <= 20099 and 20000 <= second <= 20099
        ports = [p["host_port"] for i in instances.values() for p in i["ports"]]
        assert len(ports) == len(set(ports)) == 4  # one shared namespace: all distinct

    def test_a_port_bound_by_someone_else_is_never_handed_out(self, world):
        world.taken_ports.update(range(20000, 20098))
        deployment_id = create(world)
        world.drain()
        assert sorted(i["address"] for i in get(world, deployment_id)["instances"]) == [
            "127.0.0.1:20098",
            "127.0.0.1:20099",
        ]

    def test_http_health_waits_for_an_answer(self, world):
        deployment_id = create(world, replicas=1, health={"type": "http", "path": "/ready", "timeout": 5})
        world.drain()
        assert get(world, deployment_id)["status"] == "running"


class TestCreateFailures:
    def expect_failed(self, world, deployment_id, reason):
        got = get(world, deployment_id)
        assert (got["status"], got["serving_revision"], got["instances"]) == ("failed", None, [])
        assert reason in got["reason"], got["reason"]
        assert world.containers() == []
        assert all(not e.containers for e in world.engines.values())  # removed, not only stopped
        assert world.statuses(deployment_id)[-1] == (1, "failed")
        revision = logic.list_revisions(world.rt, "t1", deployment_id, 1, 50)["items"][0]
        assert (revision["status"], revision["reason"]) == ("failed", got["reason"])

    def test_image_not_found(self, world):
        world.registry.clear()
        deployment_id = create(world)
        world.drain()
        self.expect_failed(world, deployment_id, "image not found: 127.0.0.1:5000/t1/web@sha256:")

    def test_no_registry_credential_for_the_tenant(self, world):
        def unavailable(tenant_id):
            raise CredentialsUnavailable(
                f"no registry credential for tenant {tenant_id} from the auth service: RpcTimeout: 5"
            )

        world.rt.pull_auth = unavailable
        deployment_id = create(world)
        world.drain()
        self.expect_failed(world, deployment_id, "not attempted: no registry credential for tenant t1")
        assert [c for e in world.engines.values() for c in e.calls if c[0] == "pull"] == []

    def test_pulls_use_the_deployments_tenant_credential(self, world):
        world.rt.pull_auth = lambda tenant_id: {"username": f"{tenant_id}+deployer", "password": "x"}
        deployment_id = create(world)
        world.drain()
        assert get(world, deployment_id)["status"] == "running"
        auths = [a for e in world.engines.values() for a in e.pull_auths]
        assert auths and all(a == {"username": "t1+deployer", "password": "x"} for a in auths)

    def test_without_a_per_tenant_source_pulls_use_the_configured_account(self, world):
        assert world.rt.pull_auth is None
        create(world)
        world.drain()
        auths = [a for e in world.engines.values() for a in e.pull_auths]
        assert auths and all(a == world.settings.registry_auth for a in auths)

    def test_a_host_holding_the_pinned_image_is_not_asked_to_pull_it_again(self, world):
        fetched = []
        world.rt.pull_auth = lambda tenant_id: fetched.append(tenant_id) or {"username": "robot", "password": "x"}
        first = create(world, name="web-a")
        world.drain()
        marks = {e.name: len(e.calls) for e in world.engines.values()}
        second = create(world, name="web-b")
        world.drain()
        assert (get(world, first)["status"], get(world, second)["status"]) == ("running", "running")
        later = {e.name: [c[0] for c in e.calls[marks[e.name] :]] for e in world.engines.values()}
        hosts = {i["host"] for i in get(world, second)["instances"]}
        # The second rollout looked on each host it started on, pulled nowhere, fetched no credential.
        assert hosts and all("has_image" in later[h] for h in hosts)
        assert [h for h, calls in later.items() if "pull" in calls] == []
        assert fetched == ["t1"]

    def test_a_host_that_lost_the_image_pulls_it_again(self, world):
        first = create(world, name="web-a")
        world.drain()
        for engine in world.engines.values():
            engine.images.clear()
        pulls_before = sum(1 for e in world.engines.values() for c in e.calls if c[0] == "pull")
        second = create(world, name="web-b")
        world.drain()
        assert get(world, second)["status"] == "running"
        pulls = sum(1 for e in world.engines.values() for c in e.calls if c[0] == "pull")
        assert pulls - pulls_before == len({i["host"] for i in get(world, second)["instances"]}) > 0
        assert get(world, first)["status"] == "running"

    def test_pull_denied(self, world):
        world.registry[f"{PULL_HOST}/t1/web@sha256:" + "1" * 64] = "denied"
        deployment_id = create(world)
        world.drain()
        self.expect_failed(world, deployment_id, "pull denied")

    def test_container_exits_at_once(self, world):
        world.exits.append(lambda spec: True)
        deployment_id = create(world)
        world.drain()
        self.expect_failed(world, deployment_id, "container exited with code 3; last output: starting | bye")

    def test_a_container_restarted_by_its_policy_fails_without_a_made_up_exit_code(self, world):
        world.restarts.append(lambda spec: True)
        deployment_id = create(world)
        world.drain()
        self.expect_failed(
            world,
            deployment_id,
            "container kept exiting and was restarted 1 time(s) by its "
            "restart policy; last output: starting | bye | starting",
        )

    def test_health_check_never_answered(self, world):
        world.no_http.append(lambda spec: True)
        deployment_id = create(world, replicas=1, health={"type": "http", "timeout": 5})
        world.drain()
        self.expect_failed(world, deployment_id, "health check failed: GET http://127.0.0.1:")
        assert "gave no 2xx/3xx answer within 5s" in get(world, deployment_id)["reason"]

    def test_fixed_port_taken(self, world):
        world.taken_ports.add(20500)
        deployment_id = create(world, replicas=1, ports=[{"host_port": 20500}])
        world.drain()
        self.expect_failed(world, deployment_id, "port taken: 127.0.0.1:20500 is already in use")

    def test_engine_refusing_the_container(self, world):
        def refuse(spec):
            raise EngineError("Conflict. The container name is already in use")

        world.engines["local-1"].run = refuse
        deployment_id = create(world)
        world.drain()
        self.expect_failed(world, deployment_id, "container could not start on local-1: Conflict.")

    def test_host_gone_after_the_request(self, world):
        deployment_id = create(world, replicas=2, cpu=1.5)
        world.engines["local-2"].down = True
        world.drain()
        self.expect_failed(world, deployment_id, "no room in pool 'default'")


@pytest.fixture
def serving(world):
    deployment_id = create(world)
    world.drain()
    return deployment_id


class TestRollingUpdate:
    def test_each_host_gets_its_new_instance_before_the_old_one_stops(self, world, serving):
        seen = []  # running containers of the deployment at each removal
        for engine in world.engines.values():
            remove = engine.remove

            def recording(container_id, stop_timeout, remove=remove, engine=engine):
                seen.append((engine.name, by_revision(world, serving)))
                return remove(container_id, stop_timeout)

            engine.remove = recording
        logic.update_deployment(world.rt, "t1", serving, {"tag": "v2"})
        world.drain()
        assert seen == [("local-1", [1, 1, 2]), ("local-2", [1, 2, 2])]
        got = get(world, serving)
        assert (got["status"], got["revision"], got["serving_revision"], got["digest"]) == ("running", 2, 2, DIGEST_V2)
        assert sorted((i["host"], i["revision"]) for i in got["instances"]) == [("local-1", 2), ("local-2", 2)]
        assert world.statuses(serving)[-4:] == [(2, "pending"), (2, "pulling"), (2, "starting"), (2, "running")]

    def test_a_broken_revision_leaves_the_previous_serving(self, world, serving):
        before = sorted(i["container_id"] for i in get(world, serving)["instances"])
        world.exits.append(lambda spec: spec.command == ["sh", "-c", "exit 3"])
        logic.update_deployment(world.rt, "t1", serving, {"command": ["sh", "-c", "exit 3"]})
        world.drain()
        got = get(world, serving)
        assert (got["status"], got["revision"], got["serving_revision"]) == ("rollout_failed", 2, 1)
        assert got["reason"].startswith("revision 2 failed: container exited with code 3")
        assert got["reason"].endswith("revision 1 is still serving")
        assert sorted(i["container_id"] for i in got["instances"]) == before
        assert by_revision(world, serving) == [1, 1]
        revisions = logic.list_revisions(world.rt, "t1", serving, 1, 50)["items"]
        assert [(r["revision"], r["status"]) for r in revisions] == [(2, "failed"), (1, "running")]
        assert revisions[0]["reason"].startswith("container exited with code 3")
        assert world.statuses(serving)[-1] == (2, "rollout_failed")

    def test_a_failure_on_the_second_host_brings_the_first_back(self, world, serving):
        second = itertools.count()
        world.exits.append(lambda spec: spec.labels["imagehub.revision"] == "2" and next(second) >= 1)
        logic.update_deployment(world.rt, "t1", serving, {"tag": "v2"})
        world.drain()
        got = get(world, serving)
        assert (got["status"], got["serving_revision"]) == ("rollout_failed", 1)
        assert by_revision(world, serving) == [1, 1]
        assert len(got["instances"]) == 2 and {i["revision"] for i in got["instances"]} == {1}

    def test_a_new_run_clears_what_a_crashed_one_left(self, world):
        deployment_id = create(world)
        request = load_event(RolloutRequested, next(p for k, p in world.events if k == ROLLOUT_REQUESTED))
        world.handled = len(world.events)
        engine = world.engines["local-2"]
        real_run = engine.run

        def crash(spec):
            real_run(spec)  # the container exists, then the worker dies before recording it
            raise RuntimeError("worker killed")

        engine.run = crash
        with pytest.raises(RuntimeError):
            rollout.handle(world.rt, request)
        engine.run = real_run
        rollout.handle(world.rt, request)  # the broker redelivers the same event: claimed, left alone
        assert get(world, deployment_id)["status"] != "running"
        world.clock.sleep(301)  # the crashed run's heartbeat goes stale: the reconciler takes over
        reconcile(world.rt)
        world.drain()
        got = get(world, deployment_id)
        assert (got["status"], len(got["instances"])) == ("running", 2)
        assert len(world.containers(deployment_id)) == 2  # the half-made one is gone

    def test_a_request_delivered_twice_at_once_rolls_out_once(self, world):
        """The outbox relay's copy of an event already sent, or a redelivery: the second delivery
        finds the operation claimed by the first and leaves it alone; no container of the first
        run is removed."""
        deployment_id = create(world)
        request = load_event(RolloutRequested, next(p for k, p in world.events if k == ROLLOUT_REQUESTED))
        world.handled = len(world.events)
        engine = world.engines["local-1"]
        real_run, second = engine.run, []

        def deliver_again_mid_run(spec):
            engine.run = real_run
            started = real_run(spec)
            rollout.handle(world.rt, request)  # the duplicate arrives while the first run is starting
            second.append(len(world.containers(deployment_id)))
            return started

        engine.run = deliver_again_mid_run
        rollout.handle(world.rt, request)
        got = get(world, deployment_id)
        assert (got["status"], got["revision"], len(got["instances"])) == ("running", 1, 2)
        assert second == [1]  # the duplicate started nothing and removed nothing
        assert len(world.containers(deployment_id)) == 2

    def test_a_delete_mid_rollout_stops_it_and_removes_what_it_started(self, world, serving):
        logic.update_deployment(world.rt, "t1", serving, {"tag": "v2"})
        sleep = world.rt.sleep

        def delete_then_sleep(seconds):
            world.rt.sleep = sleep
            logic.delete_deployment(world.rt, "t1", serving)
            sleep(seconds)

        world.rt.sleep = delete_then_sleep
        world.drain()
        assert world.containers() == []
        assert get(world, serving)["status"] == "deleted"

    def test_scale_up_without_room_degrades_but_keeps_what_runs(self, world, serving):
        logic.scale_deployment(world.rt, "t1", serving, 3)
        world.engines["local-1"].down = True
        world.engines["local-2"].run = lambda spec: (_ for _ in ()).throw(EngineError("out of disk"))
        world.drain()
        got = get(world, serving)
        assert got["status"] == "degraded"
        assert "container could not start on local-2: out of disk; 2 of 3 instance(s) running" in got["reason"]
        assert by_revision(world, serving) == [1, 1]
