"""The swarm pool on the machine's real two-node swarm (the default engine manages it, the second
engine is its worker): a deployment is one Swarm service, and Swarm places, rolls, rolls back and
restarts; the deployer follows and records. Every call goes through the real suite (RPC, catalog,
auth's robot credential, the registry with token auth)."""

import json
import subprocess
import threading
import time

import docker as docker_sdk
import pytest
import requests
from docker import auth as docker_auth

from shared.contracts.errors import Conflict, Forbidden, InvalidRequest
from tests.e2e.stack import ENGINES
from tests.e2e.test_deploy import answers, containers, wait_running
from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support import free_port, wait_until

MANAGER, WORKER = ENGINES
SMALL = {"cpu": 0.1, "memory": "32m", "ports": [{}], "health": {"type": "http", "path": "/", "timeout": 30}}


def docker(sock, *args, check=True):
    result = subprocess.run(["docker", "-H", sock, *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr}")
    return result.stdout


def service(deployment_id):
    """The deployment's service as the manager shows it, or None."""
    found = subprocess.run(
        ["docker", "-H", MANAGER, "service", "inspect", f"ih-{deployment_id}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return json.loads(found.stdout)[0] if found.returncode == 0 else None


def node_id(sock):
    return docker(sock, "info", "--format", "{{.Swarm.NodeID}}").strip()


def settled(stack, tenant, deployment_id, statuses, timeout=120):
    """The deployment once its status is one of ``statuses`` with no operation left."""
    return deployment_when(
        stack,
        tenant,
        deployment_id,
        lambda d: d["status"] in statuses and d["operation"] is None,
        f"the deployment {' or '.join(statuses)}",
        timeout=timeout,
        interval=0.2,
    )


def deployment_when(stack, tenant, deployment_id, holds, what, timeout=60, interval=0.5):
    """The deployment once ``holds(deployment)`` is true, looked at every ``interval`` s."""
    return wait_until(
        lambda: (lambda d: d if holds(d) else None)(stack.rpc("deployer", "get_deployment", tenant, deployment_id)),
        timeout=timeout,
        interval=interval,
        what=what,
    )


def all_containers(deployment_id):
    """Every container (running or not) of the deployment, per engine."""
    return {
        sock: docker(sock, "ps", "-aq", "--filter", f"label=imagehub.deployment={deployment_id}").split()
        for sock in ENGINES
    }


class Probe(threading.Thread):
    """GETs every address known for the deployment every 50 ms (the addresses before, during and
    after a rollout); counts the probes at which none answered."""

    def __init__(self, stack, tenant, deployment_id, addresses):
        super().__init__(daemon=True)
        self.stack, self.tenant, self.deployment_id = stack, tenant, deployment_id
        self.addresses = set(addresses)
        self.stop_event = threading.Event()
        self.probes, self.outages, self.seen = 0, 0, set()

    def run(self):
        last_refresh = 0.0
        while not self.stop_event.is_set():
            if time.monotonic() - last_refresh > 0.5:
                shown = self.stack.rpc("deployer", "get_deployment", self.tenant, self.deployment_id)
                self.addresses.update(i["address"] for i in shown["instances"] if i.get("address"))
                last_refresh = time.monotonic()
            bodies = [answers(a) for a in sorted(self.addresses)]
            self.probes += 1
            alive = [b for b in bodies if b]
            self.seen.update(alive)
            if not alive:
                self.outages += 1
            time.sleep(0.05)


@pytest.fixture
def pushed(stack, docker_cli, tenant):
    """``pushed(tag)``: a web image of the tenant answering ``web <tag> <tenant>``, pushed and
    indexed; returns its repository."""
    repository = f"{tenant}/web"

    def push(tag):
        ref = docker_cli.build(repository, tag, marker=f"web {tag} {tenant}")
        wait_for_tag(stack, tenant, repository, tag, docker_cli.push(ref))
        return repository

    return push


@pytest.fixture
def deploy(stack, tenant):
    """``deploy(spec)`` → the created deployment; every one is deleted after the test, and its
    service and containers awaited gone."""
    made = []

    def create(spec):
        created = stack.rpc("deployer", "create_deployment", tenant, spec)
        made.append(created["id"])
        return created

    yield create
    for deployment_id in made:
        try:
            stack.rpc("deployer", "delete_deployment", tenant, deployment_id)
        except Exception:  # already deleted by the test
            pass
    for deployment_id in made:
        settled(stack, tenant, deployment_id, ("deleted",), timeout=90)


class TestOneServicePerDeployment:
    def test_two_replicas_one_task_per_node_a_rolling_update_without_outage_and_a_rollback_by_swarm(
        self, stack, tenant, pushed, deploy
    ):
        repository = pushed("v1")
        pushed("v2")
        created = deploy(dict(SMALL, name="web", image=f"{repository}:v1", replicas=2))
        running = wait_running(stack, tenant, created["id"])

        # One task on each node, both answering; one service, labelled, its image pinned.
        assert sorted(i["host"] for i in running["instances"]) == ["local-1", "local-2"]
        assert [answers(i["address"]) for i in running["instances"]] == [f"web v1 {tenant}"] * 2
        assert {sock: len(ids) for sock, ids in containers(stack, created["id"]).items()} == {MANAGER: 1, WORKER: 1}
        spec = service(created["id"])["Spec"]
        labels = spec["Labels"]
        assert (labels["imagehub.tenant"], labels["imagehub.deployment"], labels["imagehub.revision"]) == (
            tenant,
            created["id"],
            "1",
        )
        assert spec["TaskTemplate"]["ContainerSpec"]["Image"].endswith(f"/{repository}@{running['digest']}")
        assert spec["Mode"]["Replicated"]["Replicas"] == 2 and spec["UpdateConfig"]["Order"] == "start-first"
        pools = {p["name"]: p for p in stack.rpc("deployer", "list_pools")["items"]}
        assert pools["swarm"]["kind"] == "swarm" and pools["swarm"]["default"] is True
        assert sorted((n["name"], n["state"]) for n in pools["swarm"]["nodes"]) == [
            ("local-1", "ready"),
            ("local-2", "ready"),
        ]

        # A new version rolls over with some replica answering at every probe (every 50 ms).
        probe = Probe(stack, tenant, created["id"], [i["address"] for i in running["instances"]])
        probe.start()
        try:
            stack.rpc("deployer", "update_deployment", tenant, created["id"], {"tag": "v2"})
            updated = wait_running(stack, tenant, created["id"])
            time.sleep(0.5)  # a few probes after the end
        finally:
            probe.stop_event.set()
            probe.join(10)
        assert (updated["revision"], updated["serving_revision"]) == (2, 2)
        assert [answers(i["address"]) for i in updated["instances"]] == [f"web v2 {tenant}"] * 2
        assert probe.probes > 20 and probe.outages == 0, (probe.probes, probe.outages)
        assert {f"web v1 {tenant}", f"web v2 {tenant}"} <= probe.seen
        assert service(created["id"])["Spec"]["Labels"]["imagehub.revision"] == "2"

        # A version whose command exits at once: Swarm rolls the update back, v2 still answers.
        stack.rpc(
            "deployer", "update_deployment", tenant, created["id"], {"command": ["sh", "-c", "echo broken; exit 3"]}
        )
        failed = settled(stack, tenant, created["id"], ("rollout_failed", "degraded", "running"))
        assert failed["status"] == "rollout_failed", failed["reason"]
        assert failed["reason"].startswith("revision 3 failed: container exited with code 3"), failed["reason"]
        assert "Swarm rolled the update back" in failed["reason"] and "revision 2 is still serving" in failed["reason"]
        assert failed["serving_revision"] == 2
        assert service(created["id"])["Spec"]["Labels"]["imagehub.revision"] == "2"
        wait_until(
            lambda: (
                [
                    answers(i["address"])
                    for i in stack.rpc("deployer", "get_deployment", tenant, created["id"])["instances"]
                ]
                == [f"web v2 {tenant}"] * 2
            ),
            timeout=30,
            what="v2 answering on both instances after the rollback",
        )

    def test_a_killed_task_comes_back_and_scale_to_zero_and_back(self, stack, tenant, pushed, deploy):
        repository = pushed("v1")
        created = deploy(dict(SMALL, name="web", image=f"{repository}:v1", replicas=2))
        running = wait_running(stack, tenant, created["id"])
        victim = running["instances"][0]
        sock = MANAGER if victim["host"] == "local-1" else WORKER
        docker(sock, "kill", victim["container_id"])
        # No call: Swarm starts another task in the slot; the reconciler records it.
        back = deployment_when(
            stack,
            tenant,
            created["id"],
            lambda d: (
                d["status"] == "running"
                and len(d["instances"]) == 2
                and victim["container_id"] not in {i["container_id"] for i in d["instances"]}
                and all(answers(i["address"]) == f"web v1 {tenant}" for i in d["instances"])
            ),
            "the killed task replaced and recorded",
        )
        assert back["revision"] == 1

        stack.rpc("deployer", "scale_deployment", tenant, created["id"], 0)
        stopped = settled(stack, tenant, created["id"], ("stopped",))
        assert stopped["instances"] == []
        wait_until(lambda: not any(containers(stack, created["id"]).values()), timeout=30, what="no running container")
        stack.rpc("deployer", "scale_deployment", tenant, created["id"], 2)
        again = wait_running(stack, tenant, created["id"])
        assert [answers(i["address"]) for i in again["instances"]] == [f"web v1 {tenant}"] * 2
        assert service(created["id"])["Spec"]["Labels"]["imagehub.revision"] == "1"

    def test_the_pull_credential_swarm_keeps_is_renewed_with_no_restart_and_a_new_task_pulls_with_it(
        self, stack, tenant, pushed, deploy
    ):
        repository = pushed("v1")
        created = deploy(dict(SMALL, name="web", image=f"{repository}:v1", replicas=1))
        running = wait_running(stack, tenant, created["id"])
        labels = service(created["id"])["Spec"]["Labels"]
        assert time.time() + 200 < int(labels["imagehub.auth-until"]) <= time.time() + 301

        # As Swarm would hold it ten minutes on: a credential the registry refuses, run out. Handed
        # by hand, with nothing else of the spec changed (so no task is replaced).
        api = docker_sdk.APIClient(base_url=MANAGER, version="1.41", timeout=30)
        inspected = api.inspect_service(f"ih-{created['id']}")
        bogus = docker_auth.encode_header({"username": f"{tenant}+deployer", "password": "expired"}).decode()
        body = dict(inspected["Spec"], Labels=dict(labels, **{"imagehub.auth-until": str(int(time.time()) - 1)}))
        api._raise_for_status(
            api._post_json(
                api._url("/services/{0}/update", inspected["ID"]),
                data=body,
                headers={"X-Registry-Auth": bogus},
                params={"version": inspected["Version"]["Index"]},
            )
        )
        renewed = wait_until(
            lambda: (lambda until: until if until > time.time() + 200 else None)(
                int(service(created["id"])["Spec"]["Labels"]["imagehub.auth-until"])
            ),
            timeout=30,
            interval=0.5,
            what="the reconciler renewing the service's credential",
        )
        assert renewed <= time.time() + 301
        now = stack.rpc("deployer", "get_deployment", tenant, created["id"])
        assert (now["status"], now["revision"], now["operation"]) == ("running", 1, None)
        assert [i["container_id"] for i in now["instances"]] == [i["container_id"] for i in running["instances"]]

        # No engine has the image any more, and the task dies: the one Swarm starts instead must
        # pull, with the credential Swarm now holds (the bogus one would be refused by the registry).
        image = service(created["id"])["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        for sock in ENGINES:
            docker(sock, "rmi", "-f", image, check=False)  # absent from an engine that never ran it
            gone = subprocess.run(["docker", "-H", sock, "image", "inspect", image], capture_output=True, timeout=30)
            assert gone.returncode != 0, f"{image} is still on {sock}"
        victim = running["instances"][0]
        docker(MANAGER if victim["host"] == "local-1" else WORKER, "kill", victim["container_id"])
        back = deployment_when(
            stack,
            tenant,
            created["id"],
            lambda d: (
                d["status"] == "running"
                and len(d["instances"]) == 1
                and d["instances"][0]["container_id"] != victim["container_id"]
                and answers(d["instances"][0]["address"]) == f"web v1 {tenant}"
            ),
            "a new task, its image pulled with the renewed credential, answering",
        )
        sock = MANAGER if back["instances"][0]["host"] == "local-1" else WORKER
        assert docker(sock, "image", "inspect", "--format", "{{.Id}}", image).strip()  # pulled again

    def test_a_service_left_behind_by_a_deleted_deployment_is_removed_by_the_reconciler(
        self, stack, tenant, pushed, deploy
    ):
        repository = pushed("v1")
        created = deploy(dict(SMALL, name="web", image=f"{repository}:v1", replicas=1))
        wait_running(stack, tenant, created["id"])
        spec = service(created["id"])["Spec"]
        stack.rpc("deployer", "delete_deployment", tenant, created["id"])
        settled(stack, tenant, created["id"], ("deleted",), timeout=90)
        assert service(created["id"]) is None
        # As a teardown that could not reach the swarm leaves it: the service, labelled as ours.
        docker(
            MANAGER,
            "service",
            "create",
            "--detach",
            "--name",
            f"ih-{created['id']}",
            "--label",
            f"imagehub.deployer={spec['Labels']['imagehub.deployer']}",
            "--label",
            f"imagehub.deployment={created['id']}",
            "--container-label",
            f"imagehub.deployment={created['id']}",
            "--network",
            "host",
            "--no-resolve-image",
            "--replicas",
            "1",
            spec["TaskTemplate"]["ContainerSpec"]["Image"],
        )
        assert service(created["id"]) is not None
        wait_until(lambda: service(created["id"]) is None, timeout=60, interval=0.5, what="the leftover removed")
        wait_until(
            lambda: all_containers(created["id"]) == {MANAGER: [], WORKER: []},
            timeout=30,
            what="no container of the leftover on either engine",
        )
        assert stack.rpc("deployer", "get_deployment", tenant, created["id"])["status"] == "deleted"

    def test_delete_leaves_no_service_and_no_container(self, stack, tenant, pushed):
        repository = pushed("v1")
        created = stack.rpc(
            "deployer", "create_deployment", tenant, dict(SMALL, name="gone", image=f"{repository}:v1", replicas=2)
        )
        running = wait_running(stack, tenant, created["id"])
        stack.rpc("deployer", "delete_deployment", tenant, created["id"])
        settled(stack, tenant, created["id"], ("deleted",), timeout=90)
        assert service(created["id"]) is None
        wait_until(
            lambda: all_containers(created["id"]) == {MANAGER: [], WORKER: []},
            timeout=30,
            what="no container of the deployment on either engine",
        )
        assert not any(answers(i["address"]) for i in running["instances"])


@pytest.mark.exclusive  # drains a node of the machine's one swarm: no other test may deploy meanwhile
def test_a_drained_node_gives_its_task_to_the_other(stack, tenant, pushed, deploy):
    repository = pushed("v1")
    created = deploy(dict(SMALL, name="web", image=f"{repository}:v1", replicas=2))
    wait_running(stack, tenant, created["id"])
    worker = node_id(WORKER)
    docker(MANAGER, "node", "update", "--availability", "drain", worker)
    try:
        moved = deployment_when(
            stack,
            tenant,
            created["id"],
            lambda d: (
                [i["host"] for i in d["instances"]] == ["local-1", "local-1"]
                and all(answers(i["address"]) == f"web v1 {tenant}" for i in d["instances"])
            ),
            "both tasks on local-1 after the drain",
        )
        assert moved["status"] == "running"
        assert {sock: len(ids) for sock, ids in containers(stack, created["id"]).items()} == {MANAGER: 2, WORKER: 0}
    finally:
        docker(MANAGER, "node", "update", "--availability", "active", worker)


@pytest.mark.parametrize("pool", ["swarm", "engines"])
def test_a_fixed_host_port_is_updated_stop_first_on_both_kinds_of_pool(stack, tenant, pushed, deploy, pool):
    repository = pushed("v1")
    pushed("v2")
    port = free_port()
    spec = dict(SMALL, name="fixed", image=f"{repository}:v1", replicas=1, pool=pool, ports=[{"host_port": port}])
    created = deploy(spec)
    running = wait_running(stack, tenant, created["id"])
    assert running["spec"]["update_strategy"] == "stop-first"
    assert answers(f"127.0.0.1:{port}") == f"web v1 {tenant}"
    with pytest.raises(
        InvalidRequest, match="update_strategy start-first cannot update an instance on fixed host port"
    ):
        stack.rpc(
            "deployer", "update_deployment", tenant, created["id"], {"tag": "v2", "update_strategy": "start-first"}
        )
    stack.rpc("deployer", "update_deployment", tenant, created["id"], {"tag": "v2"})
    updated = wait_running(stack, tenant, created["id"])
    assert (updated["serving_revision"], updated["spec"]["update_strategy"]) == (2, "stop-first"), updated
    assert [i["address"] for i in updated["instances"]] == [f"127.0.0.1:{port}"]
    assert answers(f"127.0.0.1:{port}") == f"web v2 {tenant}"


def test_placement_constraints_keep_the_tasks_on_the_nodes_they_name(stack, tenant, pushed, deploy):
    repository = pushed("v1")
    placement = {"constraints": ["node.labels.imagehub.host==local-2"], "max_per_node": 2}
    created = deploy(dict(SMALL, name="pinned", image=f"{repository}:v1", replicas=2, placement=placement))
    running = wait_running(stack, tenant, created["id"])
    assert [i["host"] for i in running["instances"]] == ["local-2", "local-2"]
    assert {sock: len(ids) for sock, ids in containers(stack, created["id"]).items()} == {MANAGER: 0, WORKER: 2}
    assert [answers(i["address"]) for i in running["instances"]] == [f"web v1 {tenant}"] * 2
    task_placement = service(created["id"])["Spec"]["TaskTemplate"]["Placement"]
    assert (task_placement["Constraints"], task_placement["MaxReplicas"]) == (["node.labels.imagehub.host==local-2"], 2)
    with pytest.raises(InvalidRequest, match="placement is a swarm pool's"):
        stack.rpc(
            "deployer",
            "create_deployment",
            tenant,
            dict(SMALL, name="e", image=f"{repository}:v1", pool="engines", placement=placement),
        )


def test_another_tenant_and_bad_specs_are_refused(stack, tenant, pushed, deploy):
    repository = pushed("v1")
    created = deploy(dict(SMALL, name="web", image=f"{repository}:v1", replicas=1))
    for method, args in [
        ("get_deployment", (created["id"],)),
        ("update_deployment", (created["id"], {"tag": "v1"})),
        ("scale_deployment", (created["id"], 2)),
        ("delete_deployment", (created["id"],)),
    ]:
        with pytest.raises(Forbidden):
            stack.rpc("deployer", method, "intruder", *args)
    for spec, message in [
        ({"replicas": -1}, "replicas must be a whole number"),
        ({"cpu": 64}, "cpu 64 is more than any node of pool 'swarm' has"),
        ({"replicas": 2, "ports": [{"host_port": free_port()}]}, "replicas cannot all have it"),
        ({"update_strategy": "rolling"}, "update_strategy must be one of start-first, stop-first"),
    ]:
        with pytest.raises(InvalidRequest, match=message):
            stack.rpc(
                "deployer", "create_deployment", tenant, dict(SMALL, name="bad", image=f"{repository}:v1", **spec)
            )
    taken = wait_running(stack, tenant, created["id"])["instances"][0]["ports"][0]["host_port"]
    with pytest.raises(Conflict, match=f"host port {taken} already in use"):
        stack.rpc(
            "deployer",
            "create_deployment",
            tenant,
            dict(SMALL, name="other", image=f"{repository}:v1", ports=[{"host_port": taken}]),
        )
    assert stack.rpc("deployer", "list_deployments", tenant)["total"] == 1
    assert requests.get(
        f"http://{wait_running(stack, tenant, created['id'])['instances'][0]['address']}/", timeout=5
    ).ok
