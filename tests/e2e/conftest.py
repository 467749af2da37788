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
def tenant():
    """A fresh tenant ID per test, so tests never see each other's repositories."""
    return str(uuid.uuid4().int)[:8]


class DockerCLI:
    """The real docker client against the machine's engine."""

    def __init__(self, registry_host):
        self.registry_host = registry_host
        self.built = []

    def run(self, *args, timeout=120):
        result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def build(self, repository, tag, marker=None):
        """Build a busybox image locally and tag it for the test registry; returns the reference."""
        ref = f"{self.registry_host}/{repository}:{tag}"
        subprocess.run(["bash", os.path.join(ROOT, "scripts/busybox-image.sh"), ref,
                        marker or f"{repository}:{tag}:{uuid.uuid4()}"],
                       check=True, capture_output=True, timeout=60)
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
def docker_cli(stack):
    cli = DockerCLI(stack.registry.host)
    yield cli
    cli.cleanup()
