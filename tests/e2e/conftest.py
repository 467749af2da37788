import os
import subprocess
import uuid

import pytest

from tests.e2e.stack import ROOT, Stack

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(str(tmp_path_factory.mktemp("stack")))
    try:
        yield stack.start()
    finally:  # also when start() failed half-way: no process, registry or vhost left behind
        stack.stop()


@pytest.fixture
def tenant(stack):
    """A fresh tenant per test, so tests never see each other's repositories: made in the auth
    service with a developer account (``stack.accounts[tenant]``)."""
    tenant_id = str(uuid.uuid4().int)[:8]
    stack.add_tenant(tenant_id)
    return tenant_id


@pytest.fixture(scope="module")
def developers(stack):
    """Two fresh tenants, each with a developer signed in through the ``gateway`` broker user as
    the gateway will: ``{tenant: (account, identity)}``."""
    signed_in = {}
    for _ in range(2):
        tenant = str(uuid.uuid4().int)[:8]
        account = stack.add_tenant(tenant)
        with stack.proxy("gateway") as rpc:
            answer = rpc.auth.sign_in(account.name, account.password)
        assert (answer["account"], answer["tenant_id"], answer["is_admin"]) == (account.name, tenant, False)
        signed_in[tenant] = (account, answer["identity"])
    return signed_in


class DockerCLI:
    """The real docker client against the machine's engine, with a configuration directory of its
    own (``docker --config``): its logins never touch ~/.docker or another test's."""

    def __init__(self, registry_host, config_dir=None):
        self.registry_host = registry_host
        self.config_dir = config_dir
        self.built = []
        if config_dir:
            os.makedirs(config_dir, mode=0o700, exist_ok=True)

    def command(self, *args):
        return ["docker", *(["--config", self.config_dir] if self.config_dir else []), *args]

    def run(self, *args, timeout=120, stdin=None):
        result = subprocess.run(self.command(*args), input=stdin, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def login(self, username, password):
        """`docker login` to the test registry; docker keeps the token service's refresh token
        (identity token) and uses it for every later push, so the password is checked once."""
        self.run("login", self.registry_host, "--username", username, "--password-stdin", stdin=password)
        return self

    def build(self, repository, tag, marker=None):
        """Build a busybox image locally and tag it for the test registry; returns the reference."""
        ref = f"{self.registry_host}/{repository}:{tag}"
        subprocess.run(
            [
                "bash",
                os.path.join(ROOT, "scripts/busybox-image.sh"),
                ref,
                marker or f"{repository}:{tag}:{uuid.uuid4()}",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.built.append(ref)
        return ref

    def tag(self, source, repository, tag):
        ref = f"{self.registry_host}/{repository}:{tag}"
        self.run("tag", source, ref)
        self.built.append(ref)
        return ref

    def push(self, ref):
        """`docker push`; returns the manifest digest the CLI printed."""
        out = self.run("push", ref)
        digests = [line.split("digest: ")[1].split()[0] for line in out.splitlines() if "digest: " in line]
        assert digests, out
        return digests[-1]

    def inspect(self, ref):
        import json

        return json.loads(self.run("image", "inspect", ref))[0]

    def cleanup(self):
        if self.built:
            subprocess.run(["docker", "rmi", "-f", *self.built], capture_output=True, timeout=60)


@pytest.fixture
def docker_cli(stack, tenant, tmp_path):
    """The docker CLI logged in as the test tenant's developer account."""
    cli = DockerCLI(stack.registry.host, config_dir=str(tmp_path / "docker-config"))
    cli.login(*stack.accounts[tenant])
    yield cli
    cli.cleanup()
