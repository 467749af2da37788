"""`imagehub deploy`: the spec built from the options, and following the deployment to its end.

The fake clock (conftest) makes each poll 0.5 s later than the one before without sleeping, so
the progress lines are pinned to the tenth of a second.
"""

import json

import pytest

from shared.contracts.errors import Conflict, InvalidRequest
from tests.unit.cli.conftest import DEPLOYMENT_ID, deployment, instance

GET = ("deployer", "get_deployment", ("t1", DEPLOYMENT_ID), {})
HEADLINE = f"Deploying t1/app:1.0 as web (id {DEPLOYMENT_ID}): revision 1, 2 replica(s) on pool default"
RUNNING = deployment(
    status="running",
    serving_revision=1,
    operation=None,
    instances=[instance("local-1", 20000), instance("local-2", 20001)],
)
INSTANCES = [
    "HOST     ADDRESS          STATE    REVISION  CONTAINER     REASON",
    "local-1  127.0.0.1:20000  running         1  c0ffeec0ffee  -",
    "local-2  127.0.0.1:20001  running         1  c0ffeec0ffee  -",
]


def deploy(run, *options):
    return run("deploy", "t1/app:1.0", "--name", "web", "--tenant", "t1", *options)


def created(rpc, *statuses):
    """create_deployment answers ``pending``; get_deployment then answers ``statuses`` in turn."""
    rpc.answer("create_deployment", deployment())
    rpc.answer_each("get_deployment", *statuses)


class TestSpec:
    def test_only_what_was_given_is_sent(self, run, rpc):
        rpc.answer("create_deployment", deployment())

        result = deploy(run, "--no-wait")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("deployer", "create_deployment", ("t1", {"name": "web", "image": "t1/app:1.0"}), {})]

    def test_every_option_becomes_its_spec_field(self, run, rpc):
        rpc.answer("create_deployment", deployment())

        result = deploy(
            run,
            "--pool",
            "edge",
            "--replicas",
            "3",
            "--env",
            "GREETING=hello world",
            "--env",
            "URL=http://x/?a=b",
            "--env",
            "EMPTY=",
            "--port",
            "8080",
            "--port",
            "9090:20001",
            "--port",
            "9091:0",
            "--cpu",
            "0.5",
            "--memory",
            "512m",
            "--restart",
            "always",
            "--health",
            "http:/healthz",
            "--auto-deploy",
            "semver:minor",
            "--command",
            "httpd -f -p '8080' -h /www",
            "--update-strategy",
            "stop-first",
            "--constraint",
            "node.labels.imagehub.host==local-2",
            "--constraint",
            "node.role!=manager",
            "--max-per-node",
            "1",
            "--no-wait",
        )

        assert result.exit_code == 0, result.output
        [(_, _, (tenant, spec), _)] = rpc.calls
        assert tenant == "t1"
        assert spec == {
            "name": "web",
            "image": "t1/app:1.0",
            "pool": "edge",
            "replicas": 3,
            "env": {"GREETING": "hello world", "URL": "http://x/?a=b", "EMPTY": ""},
            "ports": [
                {"container_port": 8080, "host_port": 0},
                {"container_port": 9090, "host_port": 20001},
                {"container_port": 9091, "host_port": 0},
            ],
            "cpu": 0.5,
            "memory": "512m",
            "restart_policy": "always",
            "health": {"type": "http", "path": "/healthz"},
            "auto_deploy": {"policy": "semver:minor"},
            "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
            "update_strategy": "stop-first",
            "placement": {
                "constraints": ["node.labels.imagehub.host==local-2", "node.role!=manager"],
                "max_per_node": 1,
            },
        }

    def test_the_last_value_of_a_variable_wins_as_with_docker_run(self, run, rpc):
        rpc.answer("create_deployment", deployment())

        deploy(run, "--env", "A=1", "--env", "A=2", "--no-wait")

        assert rpc.calls[0][2][1]["env"] == {"A": "2"}

    @pytest.mark.parametrize(
        "health, sent",
        [
            ("running:10", {"type": "running", "seconds": 10}),
            ("running:2.5", {"type": "running", "seconds": 2.5}),
            ("running:0", {"type": "running", "seconds": 0}),
            ("http:/", {"type": "http", "path": "/"}),
        ],
    )
    def test_health_checks(self, run, rpc, health, sent):
        rpc.answer("create_deployment", deployment())

        deploy(run, "--health", health, "--no-wait")

        assert rpc.calls[0][2][1]["health"] == sent

    @pytest.mark.parametrize("image", ["t1/app", "127.0.0.1:5000/t1/app:1.0", "library/busybox:1.36"])
    def test_the_image_is_sent_as_written(self, run, rpc, image):
        rpc.answer("create_deployment", deployment())

        run("deploy", image, "--name", "web", "--tenant", "t1", "--no-wait")

        assert rpc.calls[0][2][1]["image"] == image

    def test_replicas_zero_is_allowed(self, run, rpc):
        rpc.answer("create_deployment", deployment())

        deploy(run, "--replicas", "0", "--no-wait")

        assert rpc.calls[0][2][1]["replicas"] == 0


class TestProgress:
    def test_one_line_per_status_change_then_the_instances(self, run, rpc, clock):
        starting = deployment(status="starting", instances=[instance("local-1", 20000, state="starting")])
        created(rpc, deployment(), deployment(status="pulling"), deployment(status="pulling"), starting, RUNNING)

        result = deploy(run)

        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            HEADLINE,
            "   0.0s  pending",
            "   1.0s  pulling",
            "   2.0s  starting",
            "   2.5s  running",
            *INSTANCES,
        ]
        assert result.stderr == ""
        assert rpc.calls[0][1] == "create_deployment"
        assert rpc.calls[1:] == [GET] * 5
        assert clock.sleeps == [0.5] * 5

    def test_a_failure_exits_1_with_its_reason(self, run, rpc):
        reason = "container exited with code 1 on local-1: sh: httpd: not found"
        created(rpc, deployment(status="pulling"), deployment(status="failed", reason=reason, operation=None))

        result = deploy(run)

        assert result.exit_code == 1
        assert result.stdout.splitlines() == [
            HEADLINE,
            "   0.0s  pending",
            "   0.5s  pulling",
            f"   1.0s  failed: {reason}",
            "no instances",
        ]
        assert result.stderr == f"error: deployment web failed: {reason}\n"

    def test_a_new_reason_for_the_same_status_is_a_line_of_its_own(self, run, rpc):
        created(rpc, deployment(status="starting"), deployment(status="starting", reason="1 of 2 healthy"), RUNNING)

        result = deploy(run)

        assert result.stdout.splitlines()[1:5] == [
            "   0.0s  pending",
            "   0.5s  starting",
            "   1.0s  starting: 1 of 2 healthy",
            "   1.5s  running",
        ]

    @pytest.mark.parametrize(
        "status, reason, message",
        [
            (
                "degraded",
                "local-2 is unreachable; 1 of 2 instance(s) running",
                "deployment web is degraded: local-2 is unreachable; 1 of 2 instance(s) running",
            ),
            ("deleted", None, "deployment web was removed"),
            ("paused", None, "deployment web is paused"),  # a status this CLI does not know yet
        ],
    )
    def test_any_other_end_exits_1(self, run, rpc, status, reason, message):
        created(rpc, deployment(status=status, reason=reason))

        result = deploy(run)

        assert result.exit_code == 1
        assert result.stderr == f"error: {message}\n"

    def test_gives_up_after_the_wait_timeout_and_says_how_to_keep_watching(self, run, rpc, clock):
        created(rpc, deployment(status="pulling"))

        result = deploy(run, "--wait-timeout", "1.2")

        assert result.exit_code == 1
        assert result.stdout.splitlines() == [HEADLINE, "   0.0s  pending", "   0.5s  pulling", "no instances"]
        assert result.stderr == (
            "error: deployment web is still pulling after 1.2 s (--wait-timeout); the deployer carries on in the "
            "background\n"
            f"hint: keep watching with `imagehub deployment {DEPLOYMENT_ID} --wait --tenant t1`\n"
        )
        assert clock.sleeps == [0.5, 0.5, pytest.approx(0.2)]  # the last poll falls on the deadline
        assert len(rpc.calls) == 1 + 3

    def test_the_wait_timeout_counts_from_the_request(self, run, rpc, clock):
        def slow_create():
            clock.time += 1.0  # the deployer took a second to answer
            return deployment()

        rpc.answer("create_deployment", slow_create)
        rpc.answer("get_deployment", deployment(status="pulling"))

        result = deploy(run, "--wait-timeout", "2")

        assert result.stdout.splitlines()[1:3] == ["   1.0s  pending", "   1.5s  pulling"]
        assert clock.sleeps == [0.5, 0.5]

    def test_interrupting_the_wait_leaves_the_deployment_alone(self, run, rpc, clock):
        created(rpc, deployment(status="pulling"))

        def interrupted(seconds):
            raise KeyboardInterrupt

        clock.sleep = interrupted

        result = deploy(run)

        assert result.exit_code == 1
        assert result.stderr == (
            "error: stopped watching deployment web; the deployer carries on\n"
            f"hint: keep watching with `imagehub deployment {DEPLOYMENT_ID} --wait --tenant t1`\n"
        )
        assert [call[1] for call in rpc.calls] == ["create_deployment"]

    def test_no_replicas_ends_stopped(self, run, rpc):
        created(rpc, deployment(replicas=0, status="stopped", serving_revision=1, operation=None))

        result = deploy(run, "--replicas", "0")

        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[-2:] == ["   0.5s  stopped", "no instances"]


class TestNoWait:
    def test_says_where_it_stands_and_how_to_follow(self, run, rpc):
        rpc.answer("create_deployment", deployment())

        result = deploy(run, "--no-wait")

        assert result.exit_code == 0
        assert result.stdout.splitlines() == [
            HEADLINE,
            f"status pending; follow it with `imagehub deployment {DEPLOYMENT_ID} --wait --tenant t1`",
        ]
        assert [call[1] for call in rpc.calls] == ["create_deployment"]

    def test_json_is_the_create_result(self, run, rpc):
        rpc.answer("create_deployment", deployment())

        result = deploy(run, "--no-wait", "--json")

        assert json.loads(result.stdout) == deployment()


class TestJson:
    def test_prints_the_final_deployment_and_reports_progress_on_stderr(self, run, rpc):
        created(rpc, deployment(status="starting"), RUNNING)

        result = deploy(run, "--json")

        assert result.exit_code == 0
        assert result.stdout == json.dumps(RUNNING, indent=2, sort_keys=True) + "\n"
        assert result.stderr.splitlines() == [HEADLINE, "   0.0s  pending", "   0.5s  starting", "   1.0s  running"]

    def test_a_failure_still_prints_the_deployment(self, run, rpc):
        failed = deployment(status="failed", reason="image not found", operation=None)
        created(rpc, failed)

        result = deploy(run, "--json")

        assert result.exit_code == 1
        assert json.loads(result.stdout) == failed
        assert result.stderr.splitlines()[-1] == "error: deployment web failed: image not found"


class TestRefusals:
    @pytest.mark.parametrize(
        "error",
        [
            InvalidRequest("memory must be a size such as '256m'; pool 'x' is unknown"),
            Conflict("tenant 't1' already has a deployment named 'web'"),
        ],
    )
    def test_the_deployers_message_exit_1(self, run, rpc, error):
        rpc.answer("create_deployment", error)

        result = deploy(run)

        assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {error}\n")


def usage_error(result):
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    return result.stderr.splitlines()[-1]


class TestUsageErrors:
    @pytest.mark.parametrize(
        "options, message",
        [
            (["--env", "DEBUG"], "Error: Invalid value for '--env': 'DEBUG' is not KEY=VALUE"),
            (["--env", "=1"], "Error: Invalid value for '--env': '=1' is not KEY=VALUE"),
            (
                ["--port", "http"],
                "Error: Invalid value for '--port': 'http': 'http' is not a port number from 1 to 65535",
            ),
            (["--port", "0"], "Error: Invalid value for '--port': '0': '0' is not a port number from 1 to 65535"),
            (
                ["--port", "70000"],
                "Error: Invalid value for '--port': '70000': '70000' is not a port number from 1 to 65535",
            ),
            (
                ["--port", "8080:"],
                "Error: Invalid value for '--port': '8080:': '' is not a port number from 0 to 65535",
            ),
            (
                ["--port", "8080:65536"],
                "Error: Invalid value for '--port': '8080:65536': '65536' is not a port number from 0 to 65535",
            ),
            (["--port", "-1"], None),  # click takes it for an option: a usage error all the same
            (
                ["--health", "tcp:80"],
                "Error: Invalid value for '--health': 'tcp:80' is neither running:SECONDS (a number, "
                "0 or more) nor http:PATH (a path starting with '/')",
            ),
            (
                ["--health", "running:soon"],
                "Error: Invalid value for '--health': 'running:soon' is neither "
                "running:SECONDS (a number, 0 or more) nor http:PATH (a path starting with "
                "'/')",
            ),
            (["--health", "running:-1"], None),
            (["--health", "running:inf"], None),
            (["--health", "http:healthz"], None),
            (
                ["--command", ""],
                "Error: Invalid value for '--command': is empty; leave it out to run the image's own command",
            ),
            (
                ["--command", "sh -c 'echo"],
                "Error: Invalid value for '--command': \"sh -c 'echo\" cannot be split into "
                "words: No closing quotation",
            ),
            (["--replicas", "-1"], None),
            (["--replicas", "two"], None),
            (["--cpu", "half"], None),
            (["--wait-timeout", "0"], None),
        ],
    )
    def test_option_shapes_are_checked_before_any_call(self, run, rpc, options, message):
        line = usage_error(deploy(run, *options))

        if message is not None:
            assert line == message
        assert rpc.opened_with is None

    @pytest.mark.parametrize(
        "image, message",
        [
            (
                "t1/app@sha256:" + "0" * 64,
                "Error: Invalid value for 'NS/NAME[:TAG]': 't1/app@sha256:"
                + "0" * 64
                + "' names a digest; give a tag (the deployer pins the tag's digest itself)",
            ),
            ("T1/app:1.0", "Error: Invalid value for 'NS/NAME[:TAG]': namespace 'T1' must be lower-case"),
            ("app", None),
        ],
    )
    def test_the_image_reference_is_checked(self, run, rpc, image, message):
        line = usage_error(run("deploy", image, "--name", "web", "--tenant", "t1"))

        if message is not None:
            assert line == message
        assert rpc.opened_with is None

    def test_a_name_is_required(self, run, rpc):
        assert usage_error(run("deploy", "t1/app:1.0", "--tenant", "t1")) == "Error: Missing option '--name'."

    def test_a_tenant_is_required(self, run, rpc):
        line = usage_error(run("deploy", "t1/app:1.0", "--name", "web"))

        assert line == "Error: --tenant (or $IMAGEHUB_TENANT) is required: deployments belong to a tenant"
        assert rpc.opened_with is None
