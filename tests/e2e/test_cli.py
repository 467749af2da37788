"""The README walk-through: push with the docker CLI, browse and delete with the imagehub CLI."""

import json
import os
import subprocess
import sys

from tests.e2e.test_push_to_catalog import wait_for_tag

IMAGEHUB = os.path.join(os.path.dirname(sys.executable), "imagehub")


def imagehub(stack, *args, check=True):
    env = dict(os.environ, AMQP_URI=stack.role_uri("admin"), COLUMNS="200")
    result = subprocess.run([IMAGEHUB, *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


class TestWalkThrough:
    def test_push_then_browse_and_delete_with_the_cli(self, stack, docker_cli, tenant):
        repository = f"{tenant}/nginx"
        digest = docker_cli.push(docker_cli.build(repository, "v1"))
        wait_for_tag(stack, tenant, repository, "v1", digest)

        repos = imagehub(stack, "--tenant", tenant, "repos").stdout
        assert repository in repos

        tags = imagehub(stack, "--tenant", tenant, "tags", repository).stdout
        assert "v1" in tags
        assert digest[:19] in tags  # sha256: + 12 hex digits

        detail = json.loads(imagehub(stack, "--tenant", tenant, "--json", "tag", f"{repository}:v1").stdout)
        assert detail["digest"] == digest
        assert detail["pull_command"] == f"docker pull {stack.registry.host}/{repository}:v1"

        shown = imagehub(stack, "--tenant", tenant, "tag", f"{repository}:v1").stdout
        assert digest in shown

        denied = imagehub(stack, "--tenant", "other", "tags", repository, check=False)
        assert denied.returncode == 1
        assert denied.stderr.startswith(f"error: tenant 'other' may not read '{repository}'"), denied.stderr

        deleted = imagehub(stack, "--tenant", tenant, "delete", f"{repository}:v1", "--yes")
        assert stack.registry.tags(repository) == []
        assert "v1" in deleted.stdout
        missing = imagehub(stack, "--tenant", tenant, "tag", f"{repository}:v1", check=False)
        assert missing.returncode == 1

    def test_public_library_lists_a_pushed_library_image_with_its_curated_text(self, stack, docker_cli):
        docker_cli.login(*stack.admin)  # only a platform admin may push to library/
        digest = docker_cli.push(docker_cli.build("library/busybox", "latest"))
        wait_for_tag(stack, None, "library/busybox", "latest", digest)

        listing = json.loads(imagehub(stack, "--json", "library").stdout)
        busybox = [r for r in listing["items"] if r["repository"] == "library/busybox"]
        assert len(busybox) == 1
        assert busybox[0]["description"]  # from the curated library file
        assert busybox[0]["pull_command"] == f"docker pull {stack.registry.host}/library/busybox:latest"
        table = imagehub(stack, "library").stdout
        assert "busybox" in table
