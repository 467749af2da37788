"""``DockerSwarm`` on the machine's real two-node swarm honours ``deployer.orchestrator.Swarm``:
the nodes, a service made by ``deployer.swarm.service_spec`` created, updated, scaled and removed,
its tasks and their logs, and a manager that does not answer.

The image is a busybox httpd built here (``scripts/busybox-image.sh``) and loaded on both engines:
the service names it by its image ID, so no node pulls from any registry.
"""

import os
import subprocess
import time
import uuid

import pytest
import requests

from deployer.dependencies import DockerSwarm
from deployer.engine import DEPLOYER, EngineUnavailable
from deployer.runs import Target
from deployer.settings import Host, Pool
from deployer.swarm import Identity, remove_service, service_spec, slot_ports
from tests.support import free_port, wait_until

pytestmark = pytest.mark.docker

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ENGINES = {"local-1": "unix:///var/run/docker.sock", "local-2": "unix:///var/run/imagehub-docker2.sock"}


def docker(sock, *args, stdin=None, timeout=120):
    result = subprocess.run(["docker", "-H", sock, *args], input=stdin, capture_output=True, timeout=timeout)
    assert result.returncode == 0, f"docker -H {sock} {' '.join(args)} failed: {result.stderr.decode()}"
    return result.stdout.decode()


@pytest.fixture(scope="module")
def image():
    """``(image ID, marker)`` of a busybox httpd image present on both engines under one ID."""
    marker = f"swarm-test-{uuid.uuid4().hex[:8]}"
    ref = f"imagehub-swarm-test:{marker}"
    env = dict(os.environ, DOCKER_HOST=ENGINES["local-1"])
    subprocess.run(
        ["bash", os.path.join(ROOT, "scripts/busybox-image.sh"), ref, marker],
        check=True,
        capture_output=True,
        timeout=120,
        env=env,
    )
    try:
        saved = subprocess.run(
            ["docker", "-H", ENGINES["local-1"], "save", ref], check=True, capture_output=True, timeout=120
        ).stdout
        docker(ENGINES["local-2"], "load", stdin=saved)
        ids = {
            name: docker(sock, "image", "inspect", "--format", "{{.Id}}", ref).strip() for name, sock in ENGINES.items()
        }
        assert ids["local-1"] == ids["local-2"], ids
        yield ids["local-1"], marker
    finally:
        for sock in ENGINES.values():
            subprocess.run(["docker", "-H", sock, "rmi", "-f", ref], capture_output=True, timeout=60)


def manager_pool(base_url=ENGINES["local-1"]):
    manager = Host(name="manager-1", pool="swarm", base_url=base_url, address="127.0.0.1", cpus=0, memory=0)
    return Pool(
        name="swarm", network_mode="host", hosts=(), kind="swarm", managers=(manager,), shared_network_namespace=True
    )


@pytest.fixture
def deployer_id():
    """A deployer ID of this test's own: no running deployer's reconciler looks at its service."""
    return "swarm-test-" + uuid.uuid4().hex[:8]


@pytest.fixture
def swarm(deployer_id):
    swarm = DockerSwarm(manager_pool(), "1.41", timeout=60, ping_timeout=5)
    try:
        yield swarm
    finally:
        try:
            for service in swarm.services({DEPLOYER: deployer_id}):
                remove_service(swarm, service, 40, time.sleep, time.monotonic)
            wait_until(lambda: not containers(deployer_id), timeout=60, what="the test's containers to be removed")
        finally:
            swarm.close()


def containers(deployer_id):
    """``{engine: [container ID]}`` of the containers labelled with ``deployer_id``, on either engine."""
    found = {}
    for name, sock in ENGINES.items():
        ids = docker(sock, "ps", "-aq", "--filter", f"label={DEPLOYER}={deployer_id}").split()
        if ids:
            found[name] = ids
    return found


def runtime(command, ports=1, seconds=1, restart_policy="unless-stopped"):
    return {
        "env": {"GREETING": "hi"},
        "command": command,
        "ports": [{"container_port": None, "host_port": 0} for _ in range(ports)],
        "cpu": 0.05,
        "memory": 32 * 1024**2,
        "restart_policy": restart_policy,
        "health": {"type": "running", "seconds": seconds},
    }


def make_spec(deployer_id, image_id, number, replicas, ports, rt):
    return service_spec(
        manager_pool(),
        Identity("swarm-test", deployer_id, deployer_id),
        Target(number=number, pull_ref=image_id, runtime=rt),
        replicas,
        ports,
        2,
        64,
    )


SERVE = ["sh", "-c", 'echo "hello $GREETING on $PORT"; exec httpd -f -p 127.0.0.1:$PORT -h /www']


def running(swarm, service_id, revision):
    """The service's tasks of ``revision`` desired and reported running, by slot."""
    return {
        t.slot: t
        for t in swarm.tasks(service_id)
        if t.desired_state == "running" and t.state == "running" and t.revision == revision
    }


def answers(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/", timeout=2).text.strip()
    except requests.RequestException:
        return None


class TestDockerSwarm:
    def test_ping_and_the_two_ready_nodes(self, swarm):
        swarm.ping()
        nodes = swarm.nodes()
        assert [n.name for n in nodes] == ["local-1", "local-2"]
        assert all((n.state, n.availability) == ("ready", "active") for n in nodes)
        assert sorted(n.role for n in nodes) == ["manager", "worker"]
        assert all(n.cpus > 0 and n.memory > 0 and n.address.startswith("127.") for n in nodes)
        assert [n.labels["imagehub.host"] for n in nodes] == ["local-1", "local-2"]
        assert len({n.id for n in nodes}) == 2

    def test_create_update_scale_logs_remove(self, swarm, image, deployer_id):
        image_id, marker = image
        nodes = {n.id: n.name for n in swarm.nodes()}
        first = {1: [free_port()], 2: [free_port()]}
        spec = make_spec(deployer_id, image_id, 1, 2, first, runtime(SERVE))
        service_id = swarm.create(spec, None)
        assert service_id

        service = swarm.service(spec.name)
        assert (service.id, service.name, service.replicas, service.revision) == (service_id, spec.name, 2, 1)
        assert service.labels == spec.labels and slot_ports(service.labels, 1) == first
        assert [s.id for s in swarm.services({DEPLOYER: deployer_id})] == [service_id]

        tasks = wait_until(
            lambda: (lambda found: found if len(found) == 2 else None)(running(swarm, service_id, 1)),
            timeout=60,
            what="two running tasks of revision 1",
        )
        assert sorted(tasks) == [1, 2]
        assert sorted(nodes[t.node_id] for t in tasks.values()) == ["local-1", "local-2"]  # spread by node label
        assert all(t.container_id and t.exit_code in (None, 0) for t in tasks.values())
        # $PORT is each slot's own port label, read through Swarm's template when the task was made.
        for slot, task in tasks.items():
            port = first[slot][0]
            wait_until(lambda port=port: answers(port) == marker, timeout=30, what=f"httpd on {port}")
            logs = wait_until(lambda task=task: swarm.task_logs(task.id, 5), timeout=30, what="the task's output")
            assert logs.strip() == f"hello hi on {port}"

        # A new revision on other ports (start-first): its tasks replace the old ones, slot by slot.
        second = {1: [free_port()], 2: [free_port()]}
        update = make_spec(deployer_id, image_id, 2, 2, second, runtime(SERVE))
        swarm.update(swarm.service(spec.name), update, None)
        wait_until(
            lambda: (
                len(running(swarm, service_id, 2)) == 2
                and swarm.service(spec.name).update_state == "completed"
                and not running(swarm, service_id, 1)
            ),
            timeout=90,
            what="the update to revision 2 to complete",
        )
        service = swarm.service(spec.name)
        assert (service.revision, service.replicas, slot_ports(service.labels, 1)) == (2, 2, second)
        assert service.previous_spec["TaskTemplate"]["ContainerSpec"]["Labels"]["imagehub.revision"] == "1"
        assert service.spec["UpdateConfig"]["Order"] == "start-first"
        for row in second.values():
            wait_until(lambda port=row[0]: answers(port) == marker, timeout=30, what=f"httpd on {row[0]}")

        # A scale changes the replicas only: no new revision, slot 1 keeps its task.
        kept = running(swarm, service_id, 2)[1].id
        swarm.scale(service, 1)
        wait_until(
            lambda: (
                list(running(swarm, service_id, 2)) == [1]
                and [t.slot for t in swarm.tasks(service_id) if t.state == "running"] == [1]
            ),
            timeout=60,
            what="the service to run one task",
        )
        service = swarm.service(spec.name)
        assert (service.replicas, service.revision, running(swarm, service_id, 2)[1].id) == (1, 2, kept)
        assert service.labels == update.labels  # a scale leaves the rest of the spec as it was
        container = service.spec["TaskTemplate"]["ContainerSpec"]
        assert (container["Image"], container["Labels"]) == (image_id, update.task_template["ContainerSpec"]["Labels"])

        remove_service(swarm, service, 40, time.sleep, time.monotonic)
        assert swarm.service(spec.name) is None
        assert swarm.services({DEPLOYER: deployer_id}) == []
        assert swarm.remove(service_id) is False
        wait_until(lambda: not containers(deployer_id), timeout=60, what="no container of the service on either engine")

    def test_a_task_that_exits_reports_its_exit_code_and_output(self, swarm, image, deployer_id):
        image_id, _ = image
        rt = runtime(["sh", "-c", "echo starting; echo bye; exit 3"], ports=0, restart_policy="no")
        spec = make_spec(deployer_id, image_id, 1, 1, {}, rt)
        service_id = swarm.create(spec, None)
        assert swarm.service(spec.name).spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
        [task] = wait_until(
            lambda: [t for t in swarm.tasks(service_id) if t.state == "failed"], timeout=60, what="the task to fail"
        )
        assert (task.exit_code, task.revision, task.slot) == (3, 1, 1)
        assert "exit (3)" in task.error
        assert swarm.task_logs(task.id, 5).split() == ["starting", "bye"]
        assert len(swarm.tasks(service_id)) == 1  # restart condition none: not started again

    def test_a_manager_that_does_not_answer_is_unavailable(self):
        gone = DockerSwarm(manager_pool("unix:///var/run/no-such-manager.sock"), "1.41", timeout=5, ping_timeout=2)
        try:
            with pytest.raises(EngineUnavailable, match="no manager of swarm pool 'swarm' answers: manager-1"):
                gone.ping()
            with pytest.raises(EngineUnavailable):
                gone.nodes()
            with pytest.raises(EngineUnavailable):
                gone.services({DEPLOYER: "nobody"})
        finally:
            gone.close()
