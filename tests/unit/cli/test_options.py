"""Where the broker URI, timeout, tenant and --json come from, before or after the command."""

import json

import click

from imagehub.rpc import DEFAULT_AMQP_URI
from tests.unit.cli.conftest import page


class TestConnectionSettings:
    def test_defaults(self, run, rpc):
        rpc.answer("list_public_repositories", page([]))

        run("library")

        assert DEFAULT_AMQP_URI == "amqp://127.0.0.1:5672/imagehub"
        assert rpc.opened_with == (DEFAULT_AMQP_URI, 10.0)

    def test_from_the_environment(self, run, rpc):
        rpc.answer("list_public_repositories", page([]))

        run("library", env={"AMQP_URI": "amqp://u:p@127.0.0.1:5673/v", "IMAGEHUB_TIMEOUT": "2.5"})

        assert rpc.opened_with == ("amqp://u:p@127.0.0.1:5673/v", 2.5)

    def test_options_beat_the_environment_before_or_after_the_command(self, run, rpc):
        rpc.answer("list_public_repositories", page([]))
        env = {"AMQP_URI": "amqp://env@127.0.0.1/", "IMAGEHUB_TIMEOUT": "7"}

        run("--amqp-uri", "amqp://before@127.0.0.1/", "--timeout", "3", "library", env=env)
        before = rpc.opened_with
        run("library", "--amqp-uri", "amqp://after@127.0.0.1/", "--timeout", "4", env=env)
        after = rpc.opened_with
        run("--timeout", "3", "library", "--timeout", "5", env=env)

        assert before == ("amqp://before@127.0.0.1/", 3.0)
        assert after == ("amqp://after@127.0.0.1/", 4.0)
        assert rpc.opened_with == ("amqp://env@127.0.0.1/", 5.0)  # the command's own option wins

    def test_usage_errors_never_connect(self, run, rpc):
        run("tags", "not-a-repository")

        assert rpc.opened_with is None


class TestTenant:
    def test_before_the_command_from_env_or_after(self, run, rpc):
        rpc.answer("list_tags", page([]))

        run("--tenant", "t1", "tags", "t1/app")
        run("tags", "t1/app", env={"IMAGEHUB_TENANT": "t2"})
        run("tags", "t1/app", "--tenant", "t3", env={"IMAGEHUB_TENANT": "t2"})
        run("tags", "library/busybox")

        assert [call[2][0] for call in rpc.calls] == ["t1", "t2", "t3", None]

    def test_an_empty_tenant_is_no_tenant(self, run, rpc):
        result = run("repos", env={"IMAGEHUB_TENANT": ""})

        assert result.exit_code == 2


class TestJson:
    def test_before_the_command_too(self, run, rpc):
        answer = {
            "registry": None,
            "namespace": "library",
            "name": "busybox",
            "tag": "latest",
            "digest": None,
            "is_ownbase": False,
            "is_public": True,
        }
        rpc.answer("parse_reference", answer)

        result = run("--json", "parse", "library/busybox")

        assert json.loads(result.stdout) == answer

    def test_every_command_takes_it(self, run):
        from imagehub.cli import cli

        def leaves(group, prefix=""):
            for name, command in group.commands.items():
                if isinstance(command, click.Group):
                    yield from leaves(command, f"{prefix}{name} ")
                else:
                    yield f"{prefix}{name}", command

        for name, command in leaves(cli):
            assert "--json" in [opt for param in command.params for opt in param.opts], name
