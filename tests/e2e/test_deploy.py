"""Push with the docker CLI, deploy with the imagehub CLI onto the two real engines, roll to a new
version while replicas keep answering, undeploy: the whole suite as processes."""

import json
import struct
import subprocess
import threading
import time

import pytest
import requests

from shared.contracts.errors import Forbidden
from tests.e2e.stack import ENGINES
from tests.e2e.test_cli import imagehub
from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support import token_session, wait_until


def amqp_login(user, password):
    """An AMQP 0-9-1 client's first bytes: the protocol header and a Connection.Start-Ok with PLAIN
    credentials, asking the broker to say why it refuses (``authentication_failure_close``)."""

    def shortstr(text):
        return bytes([len(text)]) + text.encode()

    def table(fields):
        body = b"".join(shortstr(k) + v for k, v in fields.items())
        return struct.pack(">I", len(body)) + body

    capabilities = table({"authentication_failure_close": b"t\x01"})
    client = table({"capabilities": b"F" + capabilities})
    response = b"\0" + user.encode() + b"\0" + password.encode()
    payload = (
        struct.pack(">HH", 10, 11) + client + shortstr("PLAIN") + struct.pack(">I", len(response)) + response
    ) + shortstr("en_US")
    return b"AMQP\x00\x00\x09\x01" + struct.pack(">BHI", 1, 0, len(payload)) + payload + b"\xce"


def pg_startup(user):
    """PostgreSQL's StartupMessage (protocol 3.0) for ``user``: the server answers how it wants
    them to authenticate (``R``, then 0 for none needed)."""
    body = struct.pack(">i", 196608) + b"user\0" + user.encode() + b"\0database\0postgres\0\0"
    return struct.pack(">i", len(body) + 4) + body


def wait_running(stack, tenant, deployment_id):
    """The deployment once it runs with no operation left, as ``get_deployment`` shows it."""
    return wait_until(
        lambda: (lambda d: d if d["status"] == "running" and d["operation"] is None else None)(
            stack.rpc("deployer", "get_deployment", tenant, deployment_id)
        ),
        timeout=90,
        interval=0.2,
        what="the deployment running",
    )


def answers(address):
    try:
        return requests.get(f"http://{address}/", timeout=1).text.strip()
    except requests.RequestException:
        return None


def containers(stack, deployment_id):
    found = {}
    for sock in ENGINES:
        out = subprocess.run(
            ["docker", "-H", sock, "ps", "-q", "--filter", f"label=imagehub.deployment={deployment_id}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
        found[sock] = out
    return found


class Prober(threading.Thread):
    """Polls every serving address of a deployment while a rollout runs; records any moment at
    which none of them answered."""

    def __init__(self, stack, tenant, deployment_id):
        super().__init__(daemon=True)
        self.stack, self.tenant, self.deployment_id = stack, tenant, deployment_id
        self.stop_event = threading.Event()
        self.outages = []
        self.seen = set()

    def run(self):
        while not self.stop_event.is_set():
            deployment = self.stack.rpc("deployer", "get_deployment", self.tenant, self.deployment_id)
            bodies = [answers(i["address"]) for i in deployment["instances"] if i.get("address")]
            alive = [b for b in bodies if b]
            self.seen.update(alive)
            if not alive:
                self.outages.append(time.monotonic())
            time.sleep(0.05)


class TestDeployFromTheCatalogue:
    def test_deploy_roll_and_undeploy(self, stack, docker_cli, tenant):
        repository = f"{tenant}/web"
        v1 = docker_cli.build(repository, "v1", marker=f"web v1 {tenant}")
        wait_for_tag(stack, tenant, repository, "v1", docker_cli.push(v1))

        deployed = imagehub(
            stack,
            "--tenant",
            tenant,
            "--json",
            "deploy",
            v1,
            "--name",
            "web",
            "--replicas",
            "2",
            "--port",
            "8080",
            "--memory",
            "64m",
            "--health",
            "http:/",
            "--wait-timeout",
            "90",
        )
        deployment = json.loads(deployed.stdout)
        assert deployment["status"] == "running"
        assert sorted(i["host"] for i in deployment["instances"]) == ["local-1", "local-2"]
        addresses = [i["address"] for i in deployment["instances"]]
        assert len(set(addresses)) == 2
        assert [answers(a) for a in addresses] == [f"web v1 {tenant}"] * 2
        assert all(len(ids) == 1 for ids in containers(stack, deployment["id"]).values())

        with pytest.raises(Forbidden):
            stack.rpc("deployer", "get_deployment", "intruder", deployment["id"])

        v2 = docker_cli.build(repository, "v2", marker=f"web v2 {tenant}")
        wait_for_tag(stack, tenant, repository, "v2", docker_cli.push(v2))
        prober = Prober(stack, tenant, deployment["id"])
        prober.start()
        try:
            updated = json.loads(
                imagehub(
                    stack,
                    "--tenant",
                    tenant,
                    "--json",
                    "update",
                    deployment["id"],
                    "--tag",
                    "v2",
                    "--wait-timeout",
                    "90",
                ).stdout
            )
        finally:
            prober.stop_event.set()
            prober.join(10)
        assert updated["status"] == "running"
        assert updated["revision"] == 2
        assert [answers(i["address"]) for i in updated["instances"]] == [f"web v2 {tenant}"] * 2
        assert prober.outages == [], "no replica answered during the rolling update"
        assert {f"web v1 {tenant}", f"web v2 {tenant}"} <= prober.seen

        imagehub(stack, "--tenant", tenant, "undeploy", deployment["id"], "--yes")
        assert containers(stack, deployment["id"]) == {sock: [] for sock in ENGINES}
        wait_until(
            lambda: not any(answers(a) for a in addresses + [i["address"] for i in updated["instances"]]),
            timeout=10,
            what="no address answers after undeploy",
        )

    def test_another_tenants_private_image_cannot_be_deployed(self, stack, docker_cli, tenant):
        repository = f"{tenant}/private"
        ref = docker_cli.build(repository, "v1")
        wait_for_tag(stack, tenant, repository, "v1", docker_cli.push(ref))
        refused = imagehub(stack, "--tenant", "intruder", "deploy", ref, "--name", "steal", check=False)
        assert refused.returncode == 1
        assert refused.stderr.startswith(f"error: tenant 'intruder' may not read '{repository}'"), refused.stderr
        assert stack.rpc("deployer", "list_deployments", "intruder")["total"] == 0


class TestPullsWithTheTenantsRobot:
    """Token auth on: an engine pulls nothing without credentials. The deployer asks the auth
    service for a short-lived credential of the deployment's tenant's robot and pulls with it;
    that credential opens the tenant's own images (and the library), never another tenant's."""

    def test_a_private_image_is_pulled_onto_both_engines_with_the_tenants_robot(
        self, stack, docker_cli, tenant, tmp_path
    ):
        repository = f"{tenant}/robot"
        ref = docker_cli.build(repository, "v1", marker=f"robot v1 {tenant}")
        digest = docker_cli.push(ref)
        wait_for_tag(stack, tenant, repository, "v1", digest)
        docker_cli.run("rmi", ref)  # neither engine has it now: both must pull it from the registry
        pinned = f"{stack.registry.host}/{repository}@{digest}"
        anonymous = subprocess.run(
            ["docker", "--config", str(tmp_path / "nobody"), "-H", ENGINES[1], "pull", pinned],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert anonymous.returncode != 0
        assert "pull access denied" in anonymous.stderr, anonymous.stderr

        created = stack.rpc(
            "deployer",
            "create_deployment",
            tenant,
            {
                "name": "robot",
                "image": f"{repository}:v1",
                "replicas": 2,
                "cpu": 0.1,
                "memory": "32m",
                "ports": [{}],
                "health": {"type": "http", "timeout": 30},
            },
        )
        running = wait_running(stack, tenant, created["id"])
        assert sorted(i["host"] for i in running["instances"]) == ["local-1", "local-2"]
        assert [answers(i["address"]) for i in running["instances"]] == [f"robot v1 {tenant}"] * 2
        for sock in ENGINES:  # each engine pulled the pinned image itself
            inspected = subprocess.run(
                ["docker", "-H", sock, "image", "inspect", pinned], capture_output=True, text=True, timeout=30
            )
            assert inspected.returncode == 0, f"{sock} has no {pinned}: {inspected.stderr}"
        stack.rpc("deployer", "delete_deployment", tenant, created["id"])

    @pytest.mark.parametrize("pool", ["swarm", "engines"])
    def test_a_deployed_container_holds_no_secret_and_no_privilege(self, stack, docker_cli, tenant, pool):
        """What a tenant's code gets on a host beside the platform, on either kind of pool: its own
        env and PORT, no mount, no raw sockets, no privilege escalation, bounded processes and
        memory (docs/security.md)."""
        repository = f"{tenant}/jail"
        ref = docker_cli.build(repository, "v1", marker=f"jail {tenant}")
        wait_for_tag(stack, tenant, repository, "v1", docker_cli.push(ref))
        created = stack.rpc(
            "deployer",
            "create_deployment",
            tenant,
            {"name": "jail", "image": f"{repository}:v1", "env": {"GREETING": "hi"}, "ports": [{}], "pool": pool},
        )
        running = wait_running(stack, tenant, created["id"])
        [instance] = running["instances"]
        sock = ENGINES[0] if instance["host"] == "local-1" else ENGINES[1]
        [container_id] = containers(stack, created["id"])[sock]
        [inspected] = json.loads(
            subprocess.run(
                ["docker", "-H", sock, "inspect", container_id], capture_output=True, text=True, timeout=30, check=True
            ).stdout
        )
        env = dict(item.split("=", 1) for item in inspected["Config"]["Env"])
        # The spec's env and the allocated ports ($PORT, $PORT0), the image's PATH: nothing of the platform's.
        assert set(env) - {"PATH"} == {"GREETING", "PORT", "PORT0"}, env
        assert inspected["Mounts"] == []
        host = inspected["HostConfig"]
        if pool == "engines":
            assert host["SecurityOpt"] == ["no-new-privileges:true"]
        else:  # the Engine API 1.41 has no such service option: the engines' --no-new-privileges (NoNewPrivs below)
            assert host["SecurityOpt"] in (None, [])
        assert host["CapDrop"] in (["NET_RAW"], ["CAP_NET_RAW"])
        assert host["PidsLimit"] == 512
        assert host["Memory"] == 256 * 1024 * 1024  # DEFAULT_MEMORY: the spec gave none
        assert not host["Privileged"] and host["Binds"] in (None, [])
        status = subprocess.run(
            ["docker", "-H", sock, "exec", container_id, "cat", "/proc/1/status"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        assert fields["NoNewPrivs"].strip() == "1"
        cap_net_raw = 1 << 13
        assert int(fields["CapEff"].strip(), 16) & cap_net_raw == 0
        assert int(fields["CapBnd"].strip(), 16) & cap_net_raw == 0

        # What the tenant's code can try from in there, on the host's loopback:
        def inside(*command, data=b""):
            return subprocess.run(
                ["docker", "-H", sock, "exec", "-i", container_id, "/bin/busybox", *command],
                input=data,
                capture_output=True,
                timeout=30,
            )

        for user, password in (("guest", "guest"), ("", "")):  # the broker: as guest, and as nobody
            answer = inside("nc", "-w", "3", "127.0.0.1", "5672", data=amqp_login(user, password)).stdout
            assert b"RabbitMQ" in answer and b"ACCESS_REFUSED" in answer, answer[-200:]
        for user in ("postgres", "imagehub"):  # the database over TCP: a password is asked, none is known
            answer = inside("nc", "-w", "3", "127.0.0.1", "5432", data=pg_startup(user)).stdout
            assert answer[:1] == b"R" and struct.unpack(">i", answer[5:9])[0] != 0, answer[:40]
        assert inside("test", "-e", "/var/run/docker.sock").returncode == 1  # no engine socket
        for port in ("2375", "2376"):  # no engine on TCP
            assert inside("nc", "-z", "-w", "2", "127.0.0.1", port).returncode != 0
        stack.rpc("deployer", "delete_deployment", tenant, created["id"])

    def test_another_tenants_image_is_refused_and_its_robot_could_not_pull_it_either(self, stack, docker_cli, tenant):
        repository = f"{tenant}/private"
        digest = docker_cli.push(docker_cli.build(repository, "v1"))
        wait_for_tag(stack, tenant, repository, "v1", digest)
        intruder = f"i{tenant}"
        stack.add_tenant(intruder)  # a real tenant of the platform, with a robot of its own

        with pytest.raises(Forbidden):
            stack.rpc(
                "deployer",
                "create_deployment",
                intruder,
                {"name": "steal", "image": f"{repository}:v1", "replicas": 1, "memory": "32m", "ports": [{}]},
            )
        assert stack.rpc("deployer", "list_deployments", intruder)["total"] == 0

        # Below the deployer's own check, the registry: the credential the deployer would get for
        # the intruder opens the intruder's namespace, not this tenant's.
        issued = stack.rpc("auth", "issue_robot_credential", intruder)
        session = token_session(issued["username"], issued["password"])
        manifest = session.get(f"{stack.registry.url}/v2/{repository}/manifests/{digest}", timeout=10)
        assert manifest.status_code == 401
        own = session.get(f"{stack.registry.url}/v2/{intruder}/nothing/tags/list", timeout=10)
        assert own.status_code == 404  # let in, and there is nothing there
        assert stack.registry.manifest_digest(repository, "v1") == digest
