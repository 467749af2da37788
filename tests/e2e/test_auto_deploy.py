"""Auto-deploy end to end: `docker push` with the real CLI, the registry's notification, the webhook,
the catalog's tag_indexed, and the deployer rolling the following deployments onto the two
engines, all as `nameko run` processes. No RPC asks for any of these rollouts: the tests only
read (get_deployment, list_revisions), and push."""

import json
import uuid

import pytest
from nameko.containers import ServiceContainer
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher

from shared.contracts.events import CATALOG, TAG_INDEXED
from tests.e2e.test_cli import imagehub
from tests.e2e.test_deploy import answers
from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support import wait_until

pytestmark = pytest.mark.docker

WAIT = 45  # seconds for a push to be indexed and rolled out: generous on a loaded machine
SETTLED = ("running", "failed", "rollout_failed", "rolled_back", "degraded", "stopped")
SMALL = {"replicas": 1, "cpu": 0.1, "memory": "32m", "ports": [{}], "health": {"type": "http", "timeout": 10}}


class Web:
    """Versions of ``<tenant>/web`` built and pushed with the docker CLI, and the tenant's deployments."""

    def __init__(self, stack, docker_cli, tenant):
        self.stack, self.docker, self.tenant = stack, docker_cli, tenant
        self.repository = f"{tenant}/web"
        self.pushed = {}  # tag -> (digest, marker)

    def push(self, tag, broken=False):
        """Build (a new marker: new content), `docker push`, wait until the catalogue has it.
        ``broken``: the image's own command exits with code 3 at once."""
        marker = f"web {tag} {uuid.uuid4().hex[:8]}"
        ref = self.docker.build(self.repository, tag, marker=marker)
        if broken:
            container = self.docker.run("create", ref).strip()
            try:
                self.docker.run("commit", "--change", 'CMD ["sh", "-c", "echo broken; exit 3"]', container, ref)
            finally:
                self.docker.run("rm", container)
        digest = self.docker.push(ref)
        wait_for_tag(self.stack, self.tenant, self.repository, tag, digest, timeout=WAIT)
        self.pushed[tag] = (digest, marker)
        return digest

    def deploy(self, name, tag, policy):
        spec = dict(SMALL, name=name, image=f"{self.repository}:{tag}", auto_deploy={"policy": policy})
        created = self.rpc("create_deployment", spec)
        return self.until(created["id"], lambda d: d["status"] == "running", "running")

    def rpc(self, method, *args):
        return self.stack.rpc("deployer", method, self.tenant, *args)

    def until(self, deployment_id, predicate, what, timeout=WAIT):
        """The deployment once no operation runs on it and ``predicate`` holds."""

        def check():
            deployment = self.rpc("get_deployment", deployment_id)
            settled = deployment["status"] in SETTLED and deployment["operation"] is None
            return deployment if settled and predicate(deployment) else None

        return wait_until(check, timeout=timeout, interval=0.1, what=f"deployment {deployment_id} {what}")

    def serving(self, deployment_id, tag):
        """Wait until the deployment serves ``tag`` as pushed, answering with its marker."""
        digest, marker = self.pushed[tag]
        return self.until(
            deployment_id,
            lambda d: (
                d["status"] == "running"
                and d["serving_digest"] == digest
                and [answers(i["address"]) for i in d["instances"]] == [marker]
            ),
            f"serving {tag}",
        )

    def revisions(self, deployment_id):
        return [
            (r["revision"], r["tag"], r["status"], r["trigger"])
            for r in self.rpc("list_revisions", deployment_id)["items"]
        ]

    def decided(self, tag, deployment_id):
        """The deployer's log line on what the push of ``tag`` did to the deployment (once handled)."""

        def line():
            return next(
                (
                    entry
                    for entry in self.stack.services["deployer"].messages()
                    if f"({self.repository}:{tag} -> " in entry and f"deployment {deployment_id} " in entry
                ),
                None,
            )

        return wait_until(line, timeout=WAIT, interval=0.1, what=f"the deployer's decision on {tag}")


@pytest.fixture
def web(stack, docker_cli, tenant):
    return Web(stack, docker_cli, tenant)


@pytest.fixture
def tag_indexed(stack):
    """Every tag_indexed the catalog dispatches on the stack's broker, as received."""
    received = []

    class Observer:
        name = f"e2e_observer_{uuid.uuid4().hex[:8]}"

        @event_handler(CATALOG, TAG_INDEXED)
        def on_tag_indexed(self, payload):
            received.append(payload)

    container = ServiceContainer(Observer, {"AMQP_URI": stack.role_uri("platform"), "max_workers": 1})
    container.start()
    yield received
    container.kill()


class TestPoliciesFollowPushes:
    def test_semver_minor_takes_v1_1_not_v2_0_and_rolls_back_a_broken_v1_2(self, stack, web):
        web.push("v1.0")
        minor = web.deploy("minor", "v1.0", "semver:minor")["id"]
        never = web.deploy("never", "v1.0", "never")["id"]

        web.push("v1.1")
        moved = web.serving(minor, "v1.1")
        assert (moved["revision"], moved["serving_revision"]) == (2, 2)

        web.push("v2.0")
        assert web.decided("v2.0", minor).endswith(
            "stays: v2.0 is outside semver:minor of v1.1 (another major version)"
        )
        assert web.rpc("get_deployment", minor)["serving_digest"] == web.pushed["v1.1"][0]

        web.push("v1.2", broken=True)
        back = web.until(minor, lambda d: d["status"] == "rolled_back", "rolled back")
        assert (back["revision"], back["serving_revision"], back["serving_digest"]) == (3, 2, web.pushed["v1.1"][0])
        # Seen exited, or caught after its restart policy had started it again (a loaded machine).
        assert back["reason"].startswith(
            (
                f"revision 3 (auto-deploy of {web.repository}:v1.2) failed: container exited with code 3",
                f"revision 3 (auto-deploy of {web.repository}:v1.2) failed: container kept exiting and was restarted",
            )
        ), back["reason"]
        assert "broken" in back["reason"] and back["reason"].endswith("rolled back to revision 2")
        assert [answers(i["address"]) for i in back["instances"]] == [web.pushed["v1.1"][1]]
        assert web.revisions(minor) == [
            (3, "v1.2", "failed", "auto-deploy"),
            (2, "v1.1", "running", "auto-deploy"),
            (1, "v1.0", "superseded", "create"),
        ]
        [pushed] = [r["push"] for r in web.rpc("list_revisions", minor)["items"] if r["revision"] == 2]
        assert (pushed["tag"], pushed["digest"], pushed["policy"]) == ("v1.1", web.pushed["v1.1"][0], "semver:minor")

        # `never` saw every push and stayed.
        unmoved = web.rpc("get_deployment", never)
        assert (unmoved["revision"], unmoved["status"], unmoved["serving_digest"]) == (
            1,
            "running",
            web.pushed["v1.0"][0],
        )
        assert [answers(i["address"]) for i in unmoved["instances"]] == [web.pushed["v1.0"][1]]
        table = imagehub(stack, "--tenant", web.tenant, "revisions", "minor").stdout
        assert " failed      auto-deploy" in table and " running     auto-deploy" in table

    def test_force_on_latest_picks_up_a_re_push(self, web):
        web.push("latest")
        force = web.deploy("force", "latest", "force")["id"]

        web.push("latest")  # new content, same tag

        moved = web.serving(force, "latest")
        assert web.revisions(force) == [(2, "latest", "running", "auto-deploy"), (1, "latest", "superseded", "create")]
        assert moved["image"] == f"{web.repository}:latest"


class TestDuplicates:
    def test_the_same_tag_indexed_delivered_twice_rolls_out_once(self, stack, web, tag_indexed):
        web.push("1.0.0")
        patch = web.deploy("patch", "1.0.0", "semver:patch")["id"]
        digest = web.push("1.0.1")
        web.serving(patch, "1.0.1")
        [payload] = wait_until(
            lambda: [p for p in tag_indexed if p["digest"] == digest],
            timeout=WAIT,
            what="the catalog's tag_indexed for 1.0.1",
        )

        dispatch = event_dispatcher({"AMQP_URI": stack.amqp_uri})
        dispatch(CATALOG, TAG_INDEXED, payload)  # as the catalog's outbox relay may send it again
        dispatch(CATALOG, TAG_INDEXED, payload)

        duplicate = f"tag_indexed {payload['event_id']} ({web.repository}:1.0.1 -> {digest[:19]}): duplicate"
        wait_until(
            lambda: stack.services["deployer"].log().count(duplicate) == 2,
            timeout=WAIT,
            what="both copies recognised as duplicates",
        )
        after = web.rpc("get_deployment", patch)
        assert (after["revision"], after["status"], after["serving_digest"]) == (2, "running", digest)
        assert web.revisions(patch) == [(2, "1.0.1", "running", "auto-deploy"), (1, "1.0.0", "superseded", "create")]
        assert (
            json.loads(imagehub(stack, "--tenant", web.tenant, "--json", "deployment", "patch").stdout)["revision"] == 2
        )


def test_the_cli_sets_a_policy_that_the_next_push_follows(stack, web):
    web.push("v1.0")
    deployed = json.loads(
        imagehub(
            stack,
            "--tenant",
            web.tenant,
            "--json",
            "deploy",
            f"{web.repository}:v1.0",
            "--name",
            "cli",
            "--port",
            "8080",
            "--memory",
            "32m",
            "--health",
            "http:/",
            "--wait-timeout",
            str(WAIT),
        ).stdout
    )
    assert deployed["auto_deploy"] == {"policy": "never"}

    said = imagehub(stack, "--tenant", web.tenant, "auto-deploy", "cli", "glob:v1.*").stdout
    assert said == f"Auto-deploy of cli ({deployed['id'][:8]}): glob:v1.*\n"

    web.push("v1.1")
    web.serving(deployed["id"], "v1.1")
    refused = imagehub(stack, "--tenant", web.tenant, "auto-deploy", "cli", "sometimes", check=False)
    assert (refused.returncode, refused.stderr.splitlines()[0]) == (
        1,
        "error: policy must be one of never, force, semver:major|minor|patch (optionally +prerelease, e.g. "
        "'semver:minor+prerelease'), glob:<pattern> or regexp:<expression>; got 'sometimes'",
    )


@pytest.fixture(autouse=True)
def no_leftover_containers(stack, tenant):
    """Each test's deployments are removed with it (the stack removes anything left at the end)."""
    yield
    for deployment in stack.rpc("deployer", "list_deployments", tenant)["items"]:
        stack.rpc("deployer", "delete_deployment", tenant, deployment["id"])
