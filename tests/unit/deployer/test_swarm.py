"""Pools of kind ``swarm`` against ``FakeSwarm``: the service spec a revision becomes, the rollout
followed through tasks and update status, the teardown, the reconciler, and ``list_pools``."""

import shlex
from datetime import timedelta

import pytest
import sqlalchemy as sa

from deployer import credentials, swarm
from deployer import deployments as logic
from deployer.models import Revision
from deployer.orchestrator import ServiceSpec
from deployer.runs import Target
from deployer.settings import load_settings
from shared.contracts.errors import InvalidRequest
from shared.contracts.events import ROLLOUT_REQUESTED
from tests.unit.deployer.conftest import CONFIG, DIGEST_V1, PULL_HOST, T0, web_spec
from tests.unit.deployer.swarm_fake import FakeSwarm

SWARM_CONFIG = dict(
    CONFIG,
    DEFAULT_POOL="swarm",
    POOLS=dict(
        CONFIG["POOLS"],
        swarm={
            "kind": "swarm",
            "network_mode": "host",
            "shared_network_namespace": True,
            "managers": [{"name": "manager-1", "base_url": "unix:///run/manager.sock"}],
        },
    ),
)
MIB = 1024**2
PORT0 = '{{index .Service.Labels (printf "imagehub.port.%s.0" .Task.Slot)}}'
PORT1 = '{{index .Service.Labels (printf "imagehub.port.%s.1" .Task.Slot)}}'


@pytest.fixture
def settings():
    return load_settings(SWARM_CONFIG)


@pytest.fixture
def fake(world):
    fake = FakeSwarm()
    world.rt.swarm = lambda pool_name: fake if pool_name == "swarm" else None
    return fake


def create(world, **overrides):
    return logic.create_deployment(world.rt, "t1", web_spec(**overrides))["id"]


def get(world, deployment_id):
    return logic.get_deployment(world.rt, "t1", deployment_id)


def revisions(world, deployment_id):
    return {r["revision"]: r for r in logic.list_revisions(world.rt, "t1", deployment_id, 1, 50)["items"]}


def serving(world, fake, **overrides):
    deployment_id = create(world, **overrides)
    world.drain()
    assert get(world, deployment_id)["status"] == "running"
    return deployment_id


def live_tasks(fake, service):
    return sorted((t for t in fake.tasks(service.id) if t.desired_state == "running"), key=lambda t: t.slot)


# -- service_spec ----------------------------------------------------------------------------------


def runtime(**overrides):
    values = {
        "env": {"GREETING": "hi"},
        "command": ["sh", "-c", "exec app"],
        "ports": [{"container_port": 8080, "host_port": 0}, {"container_port": None, "host_port": 0}],
        "cpu": 0.5,
        "memory": 256 * MIB,
        "restart_policy": "unless-stopped",
        "health": {"type": "running", "seconds": 3},
    }
    values.update(overrides)
    return values


def build(settings, replicas=2, chosen=None, number=3, **overrides):
    return swarm.service_spec(
        settings.pools["swarm"],
        swarm.Identity("t1", "dep-1", "unit"),
        Target(number=number, pull_ref=f"{PULL_HOST}/t1/web@{DIGEST_V1}", runtime=runtime(**overrides)),
        replicas,
        {1: [20001, 20002], 2: [20003, 20004]} if chosen is None else chosen,
        10,
        512,
    )


class TestServiceSpec:
    def test_image_command_env_labels_resources(self, settings):
        spec = build(settings)
        body = spec.body()
        container = body["TaskTemplate"]["ContainerSpec"]
        assert (spec.name, body["Name"], spec.replicas) == ("ih-dep-1", "ih-dep-1", 2)
        assert body["Mode"] == {"Replicated": {"Replicas": 2}}
        assert container["Image"] == f"{PULL_HOST}/t1/web@{DIGEST_V1}"
        assert container["Args"] == ["sh", "-c", "exec app"]
        assert "Command" not in container  # the image's entrypoint stays
        assert container["Env"] == ["GREETING=hi", f"PORT0={PORT0}", f"PORT1={PORT1}", f"PORT={PORT0}"]
        identity = {
            "imagehub.deployer": "unit",
            "imagehub.tenant": "t1",
            "imagehub.deployment": "dep-1",
            "imagehub.revision": "3",
            "imagehub.swarm": "true",
        }
        assert container["Labels"] == identity
        assert body["Labels"] == dict(
            identity,
            **{
                "imagehub.port.1.0": "20001",
                "imagehub.port.1.1": "20002",
                "imagehub.port.2.0": "20003",
                "imagehub.port.2.1": "20004",
            },
        )
        assert (container["Init"], container["StopGracePeriod"], container["CapabilityDrop"]) == (
            True,
            10_000_000_000,
            ["CAP_NET_RAW"],
        )
        assert body["TaskTemplate"]["Resources"] == {
            "Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * MIB, "Pids": 512},
            "Reservations": {"NanoCPUs": 500_000_000, "MemoryBytes": 256 * MIB},
        }
        assert body["TaskTemplate"]["Networks"] == [{"Target": "host"}]
        assert body["TaskTemplate"]["Placement"] == {
            "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.imagehub.host"}}]
        }

    def test_no_ports_no_port_env(self, settings):
        container = build(settings, chosen={}, ports=[]).body()["TaskTemplate"]["ContainerSpec"]
        assert container["Env"] == ["GREETING=hi"]

    @pytest.mark.parametrize(
        ("policy", "condition"),
        [("no", "none"), ("on-failure", "on-failure"), ("always", "any"), ("unless-stopped", "any")],
    )
    def test_restart_condition(self, settings, policy, condition):
        restart = build(settings, restart_policy=policy).task_template["RestartPolicy"]
        assert restart == {"Condition": condition, "Delay": 1_000_000_000, "MaxAttempts": 0}

    def test_http_health_is_a_docker_healthcheck_on_the_tasks_own_port_with_the_path_quoted(self, settings):
        path = "/ready?a=1&b=it's"
        spec = build(settings, health={"type": "http", "path": path, "port_index": 1, "timeout": 20})
        check = spec.task_template["ContainerSpec"]["Healthcheck"]
        url = '"http://127.0.0.1:${PORT1}"' + shlex.quote(path)
        assert shlex.quote(path) == "'/ready?a=1&b=it'\"'\"'s'"
        assert check == {
            "Test": ["CMD-SHELL", f"wget -q -O /dev/null {url} || curl -fsS -o /dev/null {url}"],
            "Interval": 1_000_000_000,
            "Timeout": 1_000_000_000,
            "Retries": 3,
            "StartPeriod": 20_000_000_000,
        }
        # The shell reads the URL back as one word: the port variable expanded, the path verbatim.
        assert shlex.split(check["Test"][1].split(" || ")[0])[-1] == "http://127.0.0.1:${PORT1}" + path
        assert spec.update_config["Monitor"] == 1_000_000_000

    def test_running_health_has_no_healthcheck_and_is_judged_by_the_update_monitor(self, settings):
        spec = build(settings, health={"type": "running", "seconds": 5})
        assert "Healthcheck" not in spec.task_template["ContainerSpec"]
        assert spec.update_config["Monitor"] == 5_000_000_000
        assert build(settings, health={"type": "running", "seconds": 0}).update_config["Monitor"] == 1_000_000_000

    def test_update_and_rollback_config_start_first_by_default(self, settings):
        spec = build(settings)
        assert spec.update_config == {
            "Parallelism": 1,
            "Delay": 0,
            "FailureAction": "rollback",
            "Monitor": 3_000_000_000,
            "MaxFailureRatio": 0,
            "Order": "start-first",
        }
        assert spec.rollback_config == dict(spec.update_config, FailureAction="continue")
        assert "MaxReplicas" not in spec.task_template["Placement"]

    def test_a_fixed_host_port_is_stop_first_and_one_task_per_node(self, settings):
        spec = build(
            settings,
            replicas=2,
            chosen={1: [20500, 20001], 2: [20500, 20002]},
            ports=[{"container_port": 80, "host_port": 20500}, {"container_port": None, "host_port": 0}],
        )
        assert spec.update_config["Order"] == "stop-first"
        assert spec.rollback_config["Order"] == "stop-first"
        assert spec.task_template["Placement"]["MaxReplicas"] == 1
        assert spec.labels["imagehub.port.2.0"] == "20500"

    def test_placement_of_the_runtime(self, settings):
        placement = build(settings, placement={"constraints": ["node.role==worker"], "max_per_node": 2}).task_template[
            "Placement"
        ]
        assert placement["Constraints"] == ["node.role==worker"]
        assert placement["MaxReplicas"] == 2

    def test_service_spec_body_is_the_engine_api_service_spec(self, settings):
        spec = build(settings)
        assert isinstance(spec, ServiceSpec)
        assert set(spec.body()) == {"Name", "Labels", "TaskTemplate", "Mode", "UpdateConfig", "RollbackConfig"}
        assert spec.body()["UpdateConfig"] is spec.update_config


class TestSlotPorts:
    def test_round_trip(self):
        ports = {1: [20001, 20002], 2: [20003, 20004], 10: [20005, 20006]}
        labels = swarm.port_labels(ports)
        assert labels["imagehub.port.10.1"] == "20006"
        assert swarm.slot_ports(labels, 2) == ports

    def test_incomplete_or_foreign_labels_are_ignored(self):
        labels = {
            "imagehub.port.1.0": "20001",
            "imagehub.port.1.1": "20002",
            "imagehub.port.2.0": "20003",  # slot 2 lacks its second port
            "imagehub.port.x.0": "20009",
            "imagehub.port.3.0": "nope",
            "imagehub.deployment": "dep-1",
        }
        assert swarm.slot_ports(labels, 2) == {1: [20001, 20002]}
        assert swarm.slot_ports(labels, 1) == {1: [20001], 2: [20003]}
        assert swarm.slot_ports({}, 1) == {}


# -- rollouts --------------------------------------------------------------------------------------


class TestCreate:
    def test_tasks_running_make_the_deployment_running_with_instances_from_the_tasks(self, world, fake):
        deployment_id = create(world, env={"GREETING": "hi"}, ports=[{"container_port": 8080}, {}])
        world.drain()
        got = get(world, deployment_id)
        assert world.statuses(deployment_id) == [(1, "pending"), (1, "pulling"), (1, "starting"), (1, "running")]
        assert (got["status"], got["serving_revision"], got["reason"]) == ("running", 1, None)
        service = fake.only()
        assert (service.name, service.replicas, service.revision) == (f"ih-{deployment_id}", 2, 1)
        assert fake.auths == [None]  # no per-tenant source, no configured account
        ports = swarm.slot_ports(service.labels, 2)
        tasks = {t.id: t for t in live_tasks(fake, service)}
        nodes = {"node-a": ("local-1", "127.0.0.1"), "node-b": ("local-2", "127.0.0.2")}
        assert sorted(i["id"] for i in got["instances"]) == sorted(tasks)
        for instance in got["instances"]:
            task = tasks[instance["id"]]
            host, address = nodes[task.node_id]
            first, second = ports[task.slot]
            assert instance["host"] == host
            assert instance["container_id"] == task.container_id
            assert instance["container_name"] == f"ih-{deployment_id}.{task.slot}.{task.id}"
            assert (instance["state"], instance["revision"]) == ("running", 1)
            assert instance["ports"] == [
                {"container_port": 8080, "host_port": first},
                {"container_port": None, "host_port": second},
            ]
            assert instance["address"] == f"{address}:{first}"
        every = [p for row in ports.values() for p in row]
        assert len(set(every)) == 4 and all(20000 <= p <= 20099 for p in every)

    def test_pulls_with_the_tenants_credential(self, world, fake):
        world.rt.pull_auth = lambda tenant_id: {"username": f"{tenant_id}+deployer", "password": "x"}
        serving(world, fake)
        assert fake.auths == [{"username": "t1+deployer", "password": "x"}]

    def test_a_port_bound_by_someone_else_is_never_handed_out(self, world, fake):
        world.taken_ports.update(range(20000, 20098))
        serving(world, fake)
        assert sorted(p for row in swarm.slot_ports(fake.only().labels, 1).values() for p in row) == [20098, 20099]

    def test_a_first_revision_whose_task_fails_is_failed_and_its_service_removed(self, world, fake):
        fake.fail[1] = 3
        deployment_id = create(world)
        world.drain()
        got = get(world, deployment_id)
        assert (got["status"], got["serving_revision"], got["instances"]) == ("failed", None, [])
        assert got["reason"].startswith("container exited with code 3; last output: starting | bye (instance on local-")
        assert got["reason"].endswith("; the service is removed (nothing served before)")
        assert fake.services_by_id == {}
        assert world.statuses(deployment_id)[-1] == (1, "failed")
        assert revisions(world, deployment_id)[1]["reason"] == got["reason"]

    def test_a_task_no_node_can_take_fails_the_rollout_after_the_grace(self, world, fake):
        fake.pending_error = "no suitable node (insufficient resources on 2 nodes)"
        deployment_id = create(world)
        world.drain()
        got = get(world, deployment_id)
        assert (got["status"], got["reason"]) == (
            "failed",
            "no node of swarm pool 'swarm' can take a task: no suitable node (insufficient resources on 2 nodes)",
        )
        # Failed once the tasks had been pending PENDING_GRACE_SECONDS, not before, not much later.
        assert swarm.PENDING_GRACE_SECONDS <= world.clock.elapsed <= swarm.PENDING_GRACE_SECONDS + 1
        assert fake.services_by_id == {}

    def test_a_task_pending_shorter_than_the_grace_does_not_fail_the_rollout(self, world, fake):
        fake.pending_error = "no suitable node (insufficient resources on 2 nodes)"
        deployment_id = create(world)
        tasks = fake.tasks

        def scheduled_after_a_while(service_id):
            if world.clock.elapsed >= swarm.PENDING_GRACE_SECONDS / 2:
                for row in fake.task_rows[service_id]:
                    if row["state"] == "pending":
                        row.update(state="running", error="", node_id="node-a", container_id="ctr-" + row["id"])
            return tasks(service_id)

        fake.tasks = scheduled_after_a_while
        world.drain()
        assert get(world, deployment_id)["status"] == "running"


class TestUpdate:
    def test_start_first_gives_the_new_revision_other_ports(self, world, fake):
        deployment_id = serving(world, fake)
        before = swarm.slot_ports(fake.only().labels, 1)
        logic.update_deployment(world.rt, "t1", deployment_id, {"env": {"A": "b"}})
        world.drain()
        got = get(world, deployment_id)
        service = fake.only()
        after = swarm.slot_ports(service.labels, 1)
        assert (got["status"], got["serving_revision"], service.revision) == ("running", 2, 2)
        assert service.spec["UpdateConfig"]["Order"] == "start-first"
        assert set(after) == {1, 2}
        assert {p for row in after.values() for p in row}.isdisjoint({p for row in before.values() for p in row})
        assert sorted(i["ports"][0]["host_port"] for i in got["instances"]) == sorted(r[0] for r in after.values())
        assert {i["revision"] for i in got["instances"]} == {2}

    def test_stop_first_keeps_the_ports(self, world, fake):
        deployment_id = serving(world, fake)
        before = swarm.slot_ports(fake.only().labels, 1)
        logic.update_deployment(world.rt, "t1", deployment_id, {"env": {"A": "b"}})
        # No RPC field asks for stop-first with allocated ports: the runtime key update_strategy does.
        with world.rt.transaction() as session:
            revision = session.scalar(
                sa.select(Revision).where(Revision.deployment_id == deployment_id, Revision.number == 2)
            )
            revision.spec = dict(revision.spec, update_strategy="stop-first")
        world.drain()
        service = fake.only()
        assert (get(world, deployment_id)["status"], service.revision) == ("running", 2)
        assert service.spec["UpdateConfig"]["Order"] == "stop-first"
        assert swarm.slot_ports(service.labels, 1) == before

    def test_a_fixed_host_port_is_updated_stop_first_on_the_same_port(self, world, fake):
        deployment_id = serving(world, fake, replicas=1, ports=[{"container_port": 80, "host_port": 20500}])
        assert swarm.slot_ports(fake.only().labels, 1) == {1: [20500]}
        # A swarm pool replaces a fixed-port task stop-first: the engines pool's "a rolling update
        # would need the port twice" does not apply (see /work/notes/swarmunit.md).
        try:
            logic.update_deployment(world.rt, "t1", deployment_id, {"env": {"A": "b"}})
        except InvalidRequest as exc:
            pytest.fail(f"update of a fixed-port deployment in a swarm pool refused: {exc}")
        world.drain()
        service = fake.only()
        assert (get(world, deployment_id)["status"], service.revision) == ("running", 2)
        assert service.spec["UpdateConfig"]["Order"] == "stop-first"
        assert swarm.slot_ports(service.labels, 1) == {1: [20500]}

    def test_a_manual_update_swarm_rolled_back_is_rollout_failed(self, world, fake):
        deployment_id = serving(world, fake)
        old_tasks = {t.id for t in live_tasks(fake, fake.only())}
        fake.fail[2] = 3
        logic.update_deployment(world.rt, "t1", deployment_id, {"tag": "v2"})
        world.drain()
        got = get(world, deployment_id)
        cause = revisions(world, deployment_id)[2]["reason"]
        assert cause.startswith(
            "container exited with code 3; last output: starting | bye (instance on local-1, slot 1)"
        )
        assert cause.endswith("; Swarm rolled the update back (rollback completed)")
        assert (got["status"], got["serving_revision"]) == ("rollout_failed", 1)
        assert got["reason"] == f"revision 2 failed: {cause}; revision 1 is still serving"
        assert revisions(world, deployment_id)[2]["status"] == "failed"
        assert fake.only().revision == 1
        assert {i["id"] for i in got["instances"]} == old_tasks
        assert {i["revision"] for i in got["instances"]} == {1}

    def test_an_auto_deploy_swarm_rolled_back_is_rolled_back(self, world, fake):
        d11 = "sha256:" + "b" * 64
        world.tag("t1/web", "v1.0", DIGEST_V1, pushed_at=T0)
        world.tag("t1/web", "v1.1", d11)
        deployment_id = serving(world, fake, image="t1/web:v1.0", auto_deploy={"policy": "semver:minor"})
        fake.fail[2] = 4
        world.deliver(world.tag_indexed("t1/web", "v1.1", d11, pushed_at=T0 + timedelta(seconds=60)))
        world.drain()
        got = get(world, deployment_id)
        cause = revisions(world, deployment_id)[2]["reason"]
        assert revisions(world, deployment_id)[2]["trigger"] == "auto-deploy"
        assert cause.startswith("container exited with code 4")
        assert (got["status"], got["serving_revision"]) == ("rolled_back", 1)
        assert got["reason"] == (f"revision 2 (auto-deploy of t1/web:v1.1) failed: {cause}; rolled back to revision 1")
        assert fake.only().revision == 1

    def test_scale_changes_replicas_not_the_revision(self, world, fake):
        deployment_id = serving(world, fake)
        before = fake.only()
        kept = {t.slot: t.id for t in live_tasks(fake, before)}
        logic.scale_deployment(world.rt, "t1", deployment_id, 3)
        world.drain()
        service = fake.only()
        assert (service.replicas, service.revision, service.labels["imagehub.revision"]) == (3, 1, "1")
        assert service.spec["TaskTemplate"] == before.spec["TaskTemplate"]
        tasks = {t.slot: t.id for t in live_tasks(fake, service)}
        assert set(tasks) == {1, 2, 3} and {s: tasks[s] for s in (1, 2)} == kept
        ports = swarm.slot_ports(service.labels, 1)
        assert {s: ports[s] for s in (1, 2)} == swarm.slot_ports(before.labels, 1)
        assert ports[3][0] not in {ports[1][0], ports[2][0]}
        got = get(world, deployment_id)
        assert (got["status"], got["replicas"], len(got["instances"])) == ("running", 3, 3)
        assert world.statuses(deployment_id)[-1] == (1, "running")
        assert [c for c in fake.calls if c[0] in ("create", "update")] == [
            ("create", f"ih-{deployment_id}"),
            ("update", service.id),
        ]

    def test_scale_to_zero_stops_every_task(self, world, fake):
        deployment_id = serving(world, fake)
        logic.scale_deployment(world.rt, "t1", deployment_id, 0)
        world.drain()
        service = fake.only()
        got = get(world, deployment_id)
        assert (got["status"], got["instances"], service.replicas, service.revision) == ("stopped", [], 0, 1)
        assert live_tasks(fake, service) == []


class TestPortsAcrossDeployments:
    @pytest.fixture
    def settings(self):
        pools = dict(SWARM_CONFIG["POOLS"])
        pools["swarm"] = dict(pools["swarm"], shared_network_namespace=False)
        return load_settings(dict(SWARM_CONFIG, POOLS=pools, PORT_RANGE="20000-20000"))

    def test_a_port_another_deployment_holds_is_not_handed_out_again(self, world, fake):
        # Nodes with a network namespace each: Swarm may put both deployments' tasks on one node,
        # and its scheduler knows nothing of host-network ports (see /work/notes/swarmunit.md).
        first = serving(world, fake, name="a", replicas=1)
        assert [p["host_port"] for i in get(world, first)["instances"] for p in i["ports"]] == [20000]
        second = create(world, name="b", replicas=1)
        world.drain()
        got = get(world, second)
        assert got["status"] == "failed", got["instances"]
        assert got["reason"].startswith("port taken")


# -- teardown --------------------------------------------------------------------------------------


class TestTeardown:
    def test_scales_to_zero_waits_for_the_tasks_to_be_reaped_then_removes(self, world, fake):
        deployment_id = serving(world, fake)
        service = fake.only()
        mark = len(fake.calls)
        logic.delete_deployment(world.rt, "t1", deployment_id)
        world.drain()
        calls = [c[0] for c in fake.calls[mark:]]
        assert calls[calls.index("scale") :].count("tasks") >= 2 * fake.stop_polls
        assert calls.index("scale") < calls.index("remove")
        assert ("scale", service.id, 0) in fake.calls and ("remove", service.id) in fake.calls
        assert fake.services_by_id == {}
        got = get(world, deployment_id)
        assert (got["status"], got["reason"], got["instances"]) == ("deleted", None, [])

    def test_a_service_already_gone_is_deleted_all_the_same(self, world, fake):
        deployment_id = serving(world, fake)
        fake.services_by_id.clear()
        logic.delete_deployment(world.rt, "t1", deployment_id)
        world.drain()
        assert get(world, deployment_id)["status"] == "deleted"

    def test_an_unreachable_swarm_leaves_the_deployment_deleted_with_the_service_named(self, world, fake):
        deployment_id = serving(world, fake)
        fake.down = True
        logic.delete_deployment(world.rt, "t1", deployment_id)
        world.drain()
        got = get(world, deployment_id)
        assert got["status"] == "deleted"
        assert got["reason"] == (
            f"service ih-{deployment_id} may remain (no manager of swarm pool 'swarm' answers: manager-1: "
            "connection refused); the reconciler removes it once the swarm answers"
        )
        service = fake.only()
        fake.down = False
        reconcile(world)  # one step a pass: scaled to 0 first
        assert fake.only().replicas == 0 and ("remove", service.id) not in fake.calls
        for _ in range(6):  # the fake's tasks take a few looks to stop, then to be reaped
            reconcile(world)
        assert fake.services_by_id == {}
        assert get(world, deployment_id)["status"] == "deleted"


# -- reconciler ------------------------------------------------------------------------------------


def reconcile(world):
    swarm.SwarmReconciler(world.rt).run()


class TestReconciler:
    def test_a_service_removed_by_hand_is_reported_and_created_again(self, world, fake):
        deployment_id = serving(world, fake)
        fake.services_by_id.clear()
        published = len(world.events)
        reconcile(world)
        got = get(world, deployment_id)
        assert got["status"] == "degraded"
        assert got["reason"] == f"service ih-{deployment_id} was removed outside imagehub; creating it again"
        [request] = [p for kind, p in world.events[published:] if kind == ROLLOUT_REQUESTED]
        assert (request["deployment_id"], request["revision"], request["action"], request["trigger"]) == (
            deployment_id,
            1,
            "rollout",
            "restore",
        )
        world.drain()
        assert get(world, deployment_id)["status"] == "running"
        assert fake.only().revision == 1

    def test_the_service_of_a_failed_first_revision_left_behind_is_removed(self, world, fake):
        fake.fail[1] = 3
        deployment_id = create(world)
        world.drain()
        assert get(world, deployment_id)["status"] == "failed" and fake.services_by_id == {}
        # As if the swarm had not answered when the rollout removed it.
        leftover = swarm.service_spec(
            world.settings.pools["swarm"],
            swarm.Identity("t1", deployment_id, world.settings.deployer_id),
            Target(number=1, pull_ref=f"{PULL_HOST}/t1/web@{DIGEST_V1}", runtime=runtime(ports=[])),
            2,
            {},
            10,
            512,
        )
        fake.fail.clear()
        fake.create(leftover, None)
        for _ in range(8):
            reconcile(world)
        assert fake.services_by_id == {}
        got = get(world, deployment_id)
        assert (got["status"], got["operation"]) == ("failed", None)  # the lock was given back

    def test_a_service_of_this_deployer_without_a_deployment_is_left_alone(self, world, fake):
        deployment_id = serving(world, fake)
        stray = swarm.service_spec(
            world.settings.pools["swarm"],
            swarm.Identity("t9", "no-such-deployment", "unit"),
            Target(number=1, pull_ref=f"{PULL_HOST}/t9/x@{DIGEST_V1}", runtime=runtime(ports=[])),
            1,
            {},
            10,
            512,
        )
        stray_id = fake.create(stray, None)
        published = len(world.events)
        reconcile(world)
        assert stray_id in fake.services_by_id
        assert not [c for c in fake.calls if c[0] in ("remove", "scale")]
        assert world.events[published:] == []
        assert get(world, deployment_id)["status"] == "running"

    def test_fewer_running_tasks_than_replicas_is_degraded_and_full_again_is_running(self, world, fake):
        deployment_id = serving(world, fake)
        service = fake.only()
        dead = live_tasks(fake, service)[0]
        fake.kill(dead.id, exit_code=137, restart=False)
        reconcile(world)
        got = get(world, deployment_id)
        assert got["status"] == "degraded"
        assert got["reason"] == (
            "1 of 2 task(s) running; Swarm is replacing the rest: last failure: container exited with code 137 "
            f"(instance on local-1, slot {dead.slot})"
        )
        assert [i["id"] for i in got["instances"]] == [live_tasks(fake, service)[0].id]
        replacement = fake._start(service.id, dead.slot)
        reconcile(world)
        got = get(world, deployment_id)
        assert (got["status"], got["reason"]) == ("running", None)
        assert replacement["id"] in {i["id"] for i in got["instances"]}
        assert world.statuses(deployment_id)[-2:] == [(1, "degraded"), (1, "running")]

    def test_instances_follow_tasks_swarm_restarted(self, world, fake):
        deployment_id = serving(world, fake)
        service = fake.only()
        dead = live_tasks(fake, service)[1]
        replacement = fake.kill(dead.id)
        published = len(world.events)
        reconcile(world)
        got = get(world, deployment_id)
        assert got["status"] == "running"
        by_slot = {i["container_name"].split(".")[1]: i for i in got["instances"]}
        assert by_slot[str(dead.slot)]["id"] == replacement["id"]
        assert by_slot[str(dead.slot)]["container_id"] == replacement["container_id"] != dead.container_id
        assert {i["container_id"] for i in got["instances"]} == {t.container_id for t in live_tasks(fake, service)}
        assert world.events[published:] == []  # no status change to say

    def test_a_healthy_service_is_left_alone(self, world, fake):
        deployment_id = serving(world, fake)
        before = get(world, deployment_id)
        published = len(world.events)
        reconcile(world)
        assert get(world, deployment_id) == before
        assert world.events[published:] == []


class Robot:
    """Robot credentials as deployer.credentials hands them out: each good for 600 s from issue,
    a new one when the cached one would not last ``fresh_for`` more seconds."""

    expires = True

    def __init__(self, clock):
        self.clock, self.issued = clock, []

    def __call__(self, tenant_id, fresh_for=60):
        now = self.clock.now().timestamp()
        if not self.issued or self.issued[-1][1] - now < fresh_for:
            self.issued.append(
                ({"username": f"{tenant_id}+deployer", "password": f"pw-{len(self.issued) + 1}"}, now + 600)
            )
        return self.issued[-1][0]


class TestPullCredentialRenewal:
    """Swarm keeps the credential a service was created or last updated with for every later pull
    of its tasks: the reconciler renews it before it runs out, replacing no task."""

    def until(self, fake):
        return int(fake.only().labels[swarm.AUTH_UNTIL])

    def test_the_service_says_until_when_its_credential_is_good(self, world, fake):
        world.rt.pull_auth = Robot(world.clock)
        asked = world.clock.now().timestamp()
        serving(world, fake)
        assert asked + swarm.SERVICE_AUTH_SECONDS - 1 <= self.until(fake) <= asked + swarm.SERVICE_AUTH_SECONDS + 5
        assert fake.auths == [{"username": "t1+deployer", "password": "pw-1"}]

    def test_renewed_before_it_runs_out_with_no_task_replaced_and_no_status_change(self, world, fake):
        world.rt.pull_auth = Robot(world.clock)
        deployment_id = serving(world, fake)
        service = fake.only()
        tasks = live_tasks(fake, service)
        first = self.until(fake)
        published = len(world.events)
        world.clock.sleep(first - swarm.AUTH_RENEW_BEFORE - world.clock.now().timestamp() - 1)
        reconcile(world)
        assert fake.auths == [{"username": "t1+deployer", "password": "pw-1"}]  # not due yet
        world.clock.sleep(2)
        reconcile(world)
        # pw-1, issued for 600 s, still has more than SERVICE_AUTH_SECONDS left: handed again.
        assert fake.auths[-1] == {"username": "t1+deployer", "password": "pw-1"}
        second = self.until(fake)
        assert second == int(world.clock.now().timestamp()) + swarm.SERVICE_AUTH_SECONDS > first
        world.clock.sleep(second - swarm.AUTH_RENEW_BEFORE - world.clock.now().timestamp() + 1)
        reconcile(world)
        assert fake.auths[-1] == {"username": "t1+deployer", "password": "pw-2"}  # pw-1 would not last
        assert self.until(fake) == int(world.clock.now().timestamp()) + swarm.SERVICE_AUTH_SECONDS
        assert live_tasks(fake, fake.only()) == tasks
        assert swarm.without_auth(fake.only().labels) == swarm.without_auth(service.labels)
        assert fake.only().spec["TaskTemplate"] == service.spec["TaskTemplate"]
        got = get(world, deployment_id)
        assert (got["status"], got["operation"]) == ("running", None)  # the lock is given back
        assert world.events[published:] == []
        reconcile(world)
        assert len(fake.auths) == 3  # good for a while again

    def test_a_service_with_no_time_label_is_renewed_at_once(self, world, fake):
        world.rt.pull_auth = Robot(world.clock)
        serving(world, fake)
        row = fake.services_by_id[fake.only().id]
        row["spec"]["Labels"] = swarm.without_auth(row["spec"]["Labels"])  # made before the label existed
        reconcile(world)
        assert [c[0] for c in fake.calls].count("renew_auth") == 1
        assert swarm.AUTH_UNTIL in fake.only().labels

    def test_a_busy_deployment_is_not_renewed_and_its_rollout_not_disturbed(self, world, fake):
        world.rt.pull_auth = Robot(world.clock)
        deployment_id = serving(world, fake)
        world.clock.sleep(swarm.SERVICE_AUTH_SECONDS)
        logic.update_deployment(world.rt, "t1", deployment_id, {"env": {"GREETING": "v2"}})
        reconcile(world)  # the update is requested, not yet run: the deployment is locked
        assert "renew_auth" not in [c[0] for c in fake.calls]
        world.drain()
        got = get(world, deployment_id)
        assert (got["status"], got["serving_revision"]) == ("running", 2)
        assert self.until(fake) == int(world.clock.now().timestamp()) + swarm.SERVICE_AUTH_SECONDS

    def test_static_credentials_do_not_expire_and_are_never_renewed(self, world, fake):
        world.rt.pull_auth = lambda tenant_id: {"username": "platform", "password": "x"}
        serving(world, fake)
        assert swarm.AUTH_UNTIL not in fake.only().labels
        world.clock.sleep(3600)
        reconcile(world)
        assert "renew_auth" not in [c[0] for c in fake.calls]

    def test_the_auth_service_not_answering_leaves_the_old_credential_and_the_deployment_running(self, world, fake):
        robot = Robot(world.clock)
        world.rt.pull_auth = robot
        deployment_id = serving(world, fake)
        world.clock.sleep(swarm.SERVICE_AUTH_SECONDS)

        def unavailable(tenant_id, fresh_for=60):
            raise credentials.CredentialsUnavailable("no registry credential for tenant t1: TimeoutError")

        unavailable.expires = True
        world.rt.pull_auth = unavailable
        reconcile(world)
        assert "renew_auth" not in [c[0] for c in fake.calls]
        got = get(world, deployment_id)
        assert (got["status"], got["operation"]) == ("running", None)
        world.rt.pull_auth = robot
        reconcile(world)  # tried again next pass
        assert [c[0] for c in fake.calls].count("renew_auth") == 1


# -- list_pools ------------------------------------------------------------------------------------


class TestListPools:
    def test_a_swarm_pool_shows_its_nodes_with_what_the_tasks_reserve(self, world, fake):
        serving(world, fake)  # 2 tasks of 0.5 CPU and 256 MiB, one per node
        pools = {p["name"]: p for p in logic.list_pools(world.rt)["items"]}
        pool = pools["swarm"]
        assert (pool["kind"], pool["default"], pool["reachable"], pool["error"], pool["hosts"]) == (
            "swarm",
            True,
            True,
            None,
            [],
        )
        assert pool["managers"] == [{"name": "manager-1", "base_url": "unix:///run/manager.sock"}]
        assert pools["default"]["kind"] == "engines"
        nodes = {n["name"]: n for n in pool["nodes"]}
        assert set(nodes) == {"local-1", "local-2"}
        for name, address in (("local-1", "127.0.0.1"), ("local-2", "127.0.0.2")):
            node = nodes[name]
            assert (node["state"], node["availability"], node["address"], node["instances"]) == (
                "ready",
                "active",
                address,
                1,
            )
            assert node["capacity"] == {"cpus": 2.0, "memory": "4g", "memory_bytes": 4 * 1024**3}
            assert node["reserved"] == {"cpus": 0.5, "memory_bytes": 256 * MIB}
            assert node["free"] == {"cpus": 1.5, "memory": "3840m", "memory_bytes": 4 * 1024**3 - 256 * MIB}

    def test_a_swarm_no_manager_answers_is_unreachable(self, world, fake):
        fake.down = True
        pool = {p["name"]: p for p in logic.list_pools(world.rt)["items"]}["swarm"]
        assert (pool["reachable"], pool["nodes"]) == (False, [])
        assert "no manager of swarm pool 'swarm' answers" in pool["error"]
