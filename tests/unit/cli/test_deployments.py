"""The deployer commands besides `deploy`: lists, the detail view, operations that are followed to
their end like a deploy, and DEPLOYMENT given as an ID, the start of one, or a name."""

import json

import pytest

from shared.contracts.errors import Conflict, Forbidden, InvalidRequest, NotFound
from tests.unit.cli.conftest import DEPLOYMENT_ID, DIGEST, LAYER, deployment, instance, page

OTHER_ID = "9abc0d1e-0000-4000-8000-000000000001"
RUNNING = deployment(
    status="running",
    serving_revision=1,
    operation=None,
    instances=[instance("local-1", 20000), instance("local-2", 20001)],
)
GET = ("deployer", "get_deployment", ("t1", DEPLOYMENT_ID), {})


def lines(output):
    return output.splitlines()


def revision(number, tag, digest, status, trigger, reason=None, rollback_to=None, created="2024-06-01T10:00:00Z"):
    return {
        "revision": number,
        "image": f"t1/app:{tag}",
        "repository": "t1/app",
        "tag": tag,
        "digest": digest,
        "pull_ref": f"127.0.0.1:5000/t1/app@{digest}",
        "spec": {},
        "status": status,
        "reason": reason,
        "trigger": trigger,
        "rollback_to": rollback_to,
        "created_at": created,
        "finished_at": None,
    }


def host(name, reachable=True, free_cpus=1.5, free_memory=3584 * 1024**2, instances=2, error=None):
    return {
        "name": name,
        "base_url": f"unix:///run/{name}.sock",
        "address": "127.0.0.1",
        "reachable": reachable,
        "error": error,
        "capacity": {"cpus": 2.0, "memory": "4g", "memory_bytes": 4 * 1024**3},
        "reserved": {"cpus": 2.0 - free_cpus, "memory_bytes": 4 * 1024**3 - free_memory},
        "free": {"cpus": free_cpus, "memory": "3584m", "memory_bytes": free_memory},
        "instances": instances,
    }


class TestDeployments:
    def test_lists_the_tenants_deployments_as_rows(self, run, rpc):
        failed = deployment(
            id=OTHER_ID,
            name="api",
            image="library/busybox:1.36",
            revision=4,
            replicas=1,
            status="failed",
            reason="image not found",
            updated_at="2024-06-02T08:15:00+02:00",
        )
        rpc.answer("list_deployments", page([failed, RUNNING]))

        result = run("deployments", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("deployer", "list_deployments", ("t1",), {"page": 1, "page_size": 50})]
        assert lines(result.stdout) == [
            "ID        NAME  IMAGE                 REVISION  REPLICAS  STATUS   UPDATED",
            "9abc0d1e  api   library/busybox:1.36         4       0/1  failed   2024-06-02 06:15",
            "3f2a9c1e  web   t1/app:1.0                   1       2/2  running  2024-06-01 10:00",
            "2 of 2 deployments, page 1 of 1",
        ]

    def test_paging(self, run, rpc):
        rpc.answer("list_deployments", page([RUNNING], total=3, page=2, page_size=1))

        result = run("deployments", "--page", "2", "--page-size", "1", env={"IMAGEHUB_TENANT": "t1"})

        assert rpc.calls == [("deployer", "list_deployments", ("t1",), {"page": 2, "page_size": 1})]
        assert lines(result.stdout)[-1] == "1 of 3 deployments, page 2 of 3 (--page 3 for more)"

    def test_empty(self, run, rpc):
        rpc.answer("list_deployments", page([]))

        assert run("deployments", "--tenant", "t1").stdout == "no deployments for tenant t1\n"

    def test_json(self, run, rpc):
        rpc.answer("list_deployments", page([RUNNING]))

        assert json.loads(run("deployments", "--tenant", "t1", "--json").stdout) == page([RUNNING])


class TestDeployment:
    def test_detail_with_settings_and_instances(self, run, rpc):
        reason = "revision 3 failed: container exited with code 127 on local-2; revision 2 is still serving"
        unreachable = "host local-2 cannot be reached: Error while fetching server API version: connection refused"
        rpc.answer(
            "get_deployment",
            deployment(
                status="rollout_failed",
                reason=reason,
                revision=3,
                serving_revision=2,
                operation=None,
                spec={
                    "env": {"B": "2", "A": "x y"},
                    "command": ["sh", "-c", "httpd -f -p $PORT"],
                    "ports": [{"container_port": 8080, "host_port": 0}, {"container_port": None, "host_port": 20005}],
                    "cpu": 1.0,
                    "memory": "1g",
                    "memory_bytes": 1024**3,
                    "restart_policy": "always",
                    "health": {"type": "http", "path": "/healthz", "port_index": 0, "timeout": 30.0},
                    "update_strategy": "stop-first",
                    "placement": {"constraints": ["node.labels.imagehub.host==local-2"], "max_per_node": 1},
                },
                auto_deploy={"policy": "glob:v*"},
                instances=[
                    instance("local-1", 20000, revision=2),
                    instance("local-2", None, state="unknown", revision=2, reason=unreachable),
                ],
            ),
        )

        result = run("deployment", DEPLOYMENT_ID, "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [GET]
        assert lines(result.stdout) == [
            "╭─ web ────────────────────────────────────────────────────────────────────────────────────────────╮",
            f"│ ID           {DEPLOYMENT_ID}                                                │",
            "│ Revision     3 (revision 2 serving)                                                              │",
            "│ Image        t1/app:1.0                                                                          │",
            f"│ Digest       {DIGEST}             │",
            "│ Pool         default                                                                             │",
            "│ Replicas     2 (1 running)                                                                       │",
            "│ Status       rollout_failed                                                                      │",
            "│ Reason       revision 3 failed: container exited with code 127 on local-2; revision 2 is still   │",
            "│              serving                                                                             │",
            "│ Command      sh -c 'httpd -f -p $PORT'                                                           │",
            "│ Env          A=x y                                                                               │",
            "│              B=2                                                                                 │",
            "│ Ports        8080 -> host port allocated, host 20005                                             │",
            "│ CPUs         1                                                                                   │",
            "│ Memory       1.0 GiB                                                                             │",
            "│ Restart      always                                                                              │",
            "│ Health       http GET /healthz on ports[0], answered within 30 s                                 │",
            "│ Update       stop-first                                                                          │",
            "│ Placement    node.labels.imagehub.host==local-2, at most 1 per node                              │",
            "│ Auto-deploy  glob:v*                                                                             │",
            "│ Created      2024-06-01 10:00:00 UTC                                                             │",
            "│ Updated      2024-06-01 10:00:00 UTC                                                             │",
            "╰──────────────────────────────────────────────────────────────────────────────────────────────────╯",
            "",
            "HOST     ADDRESS          STATE    REVISION  CONTAINER     REASON",
            "local-1  127.0.0.1:20000  running         2  c0ffeec0ffee  -",
            "local-2  -                unknown         2  c0ffeec0ffee  host local-2 cannot be reached: Error",
            "                                                           while fetching server API version:",
            "                                                           connection refused",
        ]

    def test_defaults_and_no_instances(self, run, rpc):
        rpc.answer("get_deployment", deployment())

        result = run("deployment", DEPLOYMENT_ID, "--tenant", "t1")

        assert "│ Command      (the image's own) " in result.stdout
        assert "│ Env          - " in result.stdout
        assert "│ Health       running for 3 s " in result.stdout
        assert "│ Memory       256.0 MiB " in result.stdout
        assert "Deleted" not in result.stdout
        assert lines(result.stdout)[-1] == "no instances"

    def test_a_removed_deployment_says_when(self, run, rpc):
        rpc.answer("get_deployment", deployment(status="deleted", deleted_at="2024-06-01T12:00:00Z"))

        result = run("deployment", DEPLOYMENT_ID, "--tenant", "t1")

        assert "│ Deleted      2024-06-01 12:00:00 UTC " in result.stdout

    def test_wait_follows_it_then_shows_it(self, run, rpc):
        rpc.answer_each("get_deployment", deployment(status="starting"), RUNNING)

        result = run("deployment", DEPLOYMENT_ID, "--wait", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert lines(result.stdout)[:2] == ["   0.0s  starting", "   0.5s  running"]
        assert lines(result.stdout)[2].startswith("╭─ web ─")
        assert "│ Status       running " in result.stdout
        assert rpc.calls == [GET, GET]

    def test_wait_follows_a_restore_that_starts_as_degraded(self, run, rpc):
        reason = "container ih-t1-web-r1-45671f5d on local-1 exited"
        rpc.answer_each(
            "get_deployment",
            deployment(status="degraded", reason=reason, operation="rollout"),
            deployment(status="pulling"),
            deployment(status="starting"),
            RUNNING,
        )

        result = run("deployment", DEPLOYMENT_ID, "--wait", "--tenant", "t1", "--json")

        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines() == [
            f"   0.0s  degraded: {reason}",
            "   0.5s  pulling",
            "   1.0s  starting",
            "   1.5s  running",
        ]
        assert json.loads(result.stdout) == RUNNING

    def test_wait_exits_1_when_it_ends_failed(self, run, rpc):
        rpc.answer("get_deployment", deployment(status="failed", reason="pull denied"))

        result = run("deployment", DEPLOYMENT_ID, "--wait", "--tenant", "t1", "--json")

        assert result.exit_code == 1
        assert json.loads(result.stdout)["status"] == "failed"
        assert result.stderr == "   0.0s  failed: pull denied\nerror: deployment web failed: pull denied\n"

    def test_wait_exits_1_when_a_push_it_followed_was_rolled_back(self, run, rpc):
        reason = (
            "revision 3 (auto-deploy of t1/app:1.2) failed: container exited with code 3 (instance on "
            "local-1); rolled back to revision 2"
        )
        rpc.answer_each(
            "get_deployment",
            deployment(status="starting", revision=3, serving_revision=2),
            dict(RUNNING, status="rolled_back", reason=reason, revision=3, serving_revision=2),
        )

        result = run("deployment", DEPLOYMENT_ID, "--wait", "--tenant", "t1")

        assert result.exit_code == 1
        assert lines(result.stdout)[:2] == ["   0.0s  starting", f"   0.5s  rolled_back: {reason}"]
        assert "│ Revision     3 (revision 2 serving) " in result.stdout
        assert result.stderr == f"error: deployment web was rolled back: {reason}\n"

    def test_a_push_waiting_for_the_operation_in_progress_is_shown(self, run, rpc):
        rpc.answer(
            "get_deployment",
            deployment(
                status="starting",
                auto_deploy={"policy": "semver:minor"},
                pending_push={"tag": "1.2", "digest": DIGEST, "actor": "alice"},
            ),
        )

        result = run("deployment", DEPLOYMENT_ID, "--tenant", "t1")

        assert "│ Auto-deploy  semver:minor " in result.stdout
        assert (
            "│ Pending      push of 1.2 (sha256:a1a1a1a1a1a1), rolled out when the operation in progress ends "
            in result.stdout
        )

    @pytest.mark.parametrize(
        "error", [NotFound(f"deployment {DEPLOYMENT_ID} not found"), Forbidden("deployment belongs to another tenant")]
    )
    def test_refusals(self, run, rpc, error):
        rpc.answer("get_deployment", error)

        result = run("deployment", DEPLOYMENT_ID, "--tenant", "t1")

        assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {error}\n")


class TestDeploymentArgument:
    """DEPLOYMENT: a full ID goes as it is; anything else is looked up among the tenant's deployments."""

    @pytest.fixture
    def listed(self, rpc):
        rpc.answer("list_deployments", page([deployment(id=OTHER_ID, name="api"), RUNNING]))
        rpc.answer("get_deployment", RUNNING)

    def test_a_full_id_is_not_looked_up(self, run, rpc, listed):
        run("deployment", DEPLOYMENT_ID.upper(), "--tenant", "t1")

        assert rpc.calls == [("deployer", "get_deployment", ("t1", DEPLOYMENT_ID.upper()), {})]

    @pytest.mark.parametrize("given", ["web", "3f2a9c1e", "3F2A", "3f2a9c1e-5b7d"])
    def test_a_name_or_the_start_of_an_id(self, run, rpc, listed, given):
        result = run("deployment", given, "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("deployer", "list_deployments", ("t1",), {"page": 1, "page_size": 200}), GET]

    def test_a_name_wins_over_the_start_of_an_id(self, run, rpc):
        rpc.answer("list_deployments", page([deployment(id=OTHER_ID, name="3f2a"), RUNNING]))
        rpc.answer("get_deployment", RUNNING)

        run("deployment", "3f2a", "--tenant", "t1")

        assert rpc.calls[-1] == ("deployer", "get_deployment", ("t1", OTHER_ID), {})

    def test_no_match(self, run, rpc, listed):
        result = run("scale", "nope", "2", "--tenant", "t1")

        assert result.exit_code == 1
        assert result.stderr == (
            "error: tenant t1 has no deployment named 'nope' or with an ID starting with it\n"
            "hint: `imagehub deployments --tenant t1` lists them\n"
        )
        assert [call[1] for call in rpc.calls] == ["list_deployments"]

    def test_an_ambiguous_start(self, run, rpc):
        rpc.answer(
            "list_deployments", page([deployment(id="3f2a0000-0000-4000-8000-000000000000", name="api"), RUNNING])
        )

        result = run("undeploy", "3f2a", "--yes", "--tenant", "t1")

        assert result.exit_code == 1
        assert result.stderr == (
            "error: '3f2a' starts the ID of 2 deployments: api (3f2a0000-0000-4000-8000-000000000000), "
            f"web ({DEPLOYMENT_ID}); give more of the ID\n"
        )

    def test_every_page_is_searched(self, run, rpc):
        first = [deployment(id=f"00000000-0000-4000-8000-{n:012d}", name=f"d{n}") for n in range(200)]
        rpc.answer_each(
            "list_deployments", page(first, total=201, page_size=200), page([RUNNING], total=201, page=2, page_size=200)
        )
        rpc.answer("list_revisions", page([]))

        run("revisions", "web", "--tenant", "t1")

        assert rpc.calls == [
            ("deployer", "list_deployments", ("t1",), {"page": 1, "page_size": 200}),
            ("deployer", "list_deployments", ("t1",), {"page": 2, "page_size": 200}),
            ("deployer", "list_revisions", ("t1", DEPLOYMENT_ID), {"page": 1, "page_size": 50}),
        ]

    @pytest.mark.parametrize(
        "command",
        [
            ["deployment"],
            ["scale", "1"],
            ["rollback"],
            ["revisions"],
            ["undeploy", "--yes"],
            ["update", "--tag", "2.0"],
        ],
    )
    def test_every_deployment_command_needs_a_tenant(self, run, rpc, command):
        result = run(command[0], DEPLOYMENT_ID, *command[1:])

        assert result.exit_code == 2
        assert "Error: --tenant (or $IMAGEHUB_TENANT) is required: deployments belong to a tenant" in result.stderr
        assert rpc.opened_with is None


class TestScale:
    def test_scales_and_follows(self, run, rpc):
        rpc.answer("scale_deployment", deployment(status="pending", serving_revision=1))
        rpc.answer_each("get_deployment", deployment(status="starting"), RUNNING)

        result = run("scale", DEPLOYMENT_ID, "2", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("deployer", "scale_deployment", ("t1", DEPLOYMENT_ID, 2), {}), GET, GET]
        assert lines(result.stdout)[:4] == [
            "Scaling web (3f2a9c1e) to 2 replica(s)",
            "   0.0s  pending",
            "   0.5s  starting",
            "   1.0s  running",
        ]

    def test_to_zero_ends_stopped(self, run, rpc):
        rpc.answer("scale_deployment", deployment(status="pending", replicas=0))
        rpc.answer("get_deployment", deployment(status="stopped", replicas=0))

        result = run("scale", DEPLOYMENT_ID, "0", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert lines(result.stdout)[-2:] == ["   0.5s  stopped", "no instances"]

    def test_no_wait(self, run, rpc):
        rpc.answer("scale_deployment", deployment(status="pending", replicas=3))

        result = run("scale", DEPLOYMENT_ID, "3", "--no-wait", "--tenant", "t1")

        assert [call[1] for call in rpc.calls] == ["scale_deployment"]
        assert lines(result.stdout)[0] == "Scaling web (3f2a9c1e) to 3 replica(s)"

    def test_busy(self, run, rpc):
        rpc.answer("scale_deployment", Conflict("deployment is busy (rollout of revision 2 in progress)"))

        result = run("scale", DEPLOYMENT_ID, "3", "--tenant", "t1")

        assert (result.exit_code, result.stderr) == (
            1,
            "error: deployment is busy (rollout of revision 2 in progress)\n",
        )

    @pytest.mark.parametrize("replicas", ["-1", "two"])
    def test_replicas_must_be_a_count(self, run, rpc, replicas):
        result = run("scale", DEPLOYMENT_ID, replicas, "--tenant", "t1")

        assert result.exit_code == 2
        assert rpc.opened_with is None


class TestRollback:
    def test_to_the_previous_revision_by_default(self, run, rpc):
        rpc.answer("rollback_deployment", deployment(revision=3, serving_revision=2))
        rpc.answer("get_deployment", dict(RUNNING, revision=3, serving_revision=3))

        result = run("rollback", DEPLOYMENT_ID, "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls[0] == ("deployer", "rollback_deployment", ("t1", DEPLOYMENT_ID), {"revision": None})
        assert lines(result.stdout)[0] == "Rolling back web (3f2a9c1e): revision 3, t1/app:1.0"

    def test_to_a_given_revision_that_fails_leaves_the_serving_one(self, run, rpc):
        reason = "revision 4 failed: health check failed on local-1; revision 3 is still serving"
        rpc.answer("rollback_deployment", deployment(revision=4, serving_revision=3))
        rpc.answer(
            "get_deployment", dict(RUNNING, revision=4, serving_revision=3, status="rollout_failed", reason=reason)
        )

        result = run("rollback", DEPLOYMENT_ID, "--revision", "1", "--tenant", "t1")

        assert rpc.calls[0] == ("deployer", "rollback_deployment", ("t1", DEPLOYMENT_ID), {"revision": 1})
        assert result.exit_code == 1
        assert lines(result.stdout)[-3:] == [
            "HOST     ADDRESS          STATE    REVISION  CONTAINER     REASON",
            "local-1  127.0.0.1:20000  running         1  c0ffeec0ffee  -",
            "local-2  127.0.0.1:20001  running         1  c0ffeec0ffee  -",
        ]
        assert result.stderr == f"error: deployment web could not roll out: {reason}\n"

    def test_revision_must_be_1_or_more(self, run, rpc):
        assert run("rollback", DEPLOYMENT_ID, "--revision", "0", "--tenant", "t1").exit_code == 2
        assert rpc.opened_with is None


class TestUpdate:
    def test_sends_only_the_given_changes(self, run, rpc):
        rpc.answer("update_deployment", deployment(revision=2, serving_revision=1, image="t1/app:2.0"))
        rpc.answer("get_deployment", dict(RUNNING, revision=2, serving_revision=2, image="t1/app:2.0"))

        result = run("update", DEPLOYMENT_ID, "--tag", "2.0", "--env", "MODE=prod", "--memory", "1g", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls[0] == (
            "deployer",
            "update_deployment",
            ("t1", DEPLOYMENT_ID, {"tag": "2.0", "env": {"MODE": "prod"}, "memory": "1g"}),
            {},
        )
        assert lines(result.stdout)[:2] == ["Updating web (3f2a9c1e): revision 2, t1/app:2.0", "   0.0s  pending"]

    def test_every_setting(self, run, rpc):
        rpc.answer("update_deployment", deployment(revision=2))

        run(
            "update",
            DEPLOYMENT_ID,
            "--image",
            "library/busybox:1.36",
            "--port",
            "80:8080",
            "--cpu",
            "2",
            "--restart",
            "no",
            "--health",
            "running:5",
            "--auto-deploy",
            "never",
            "--command",
            "sleep 1",
            "--no-wait",
            "--tenant",
            "t1",
        )

        assert rpc.calls == [
            (
                "deployer",
                "update_deployment",
                (
                    "t1",
                    DEPLOYMENT_ID,
                    {
                        "image": "library/busybox:1.36",
                        "ports": [{"container_port": 80, "host_port": 8080}],
                        "cpu": 2.0,
                        "restart_policy": "no",
                        "health": {"type": "running", "seconds": 5},
                        "auto_deploy": {"policy": "never"},
                        "command": ["sleep", "1"],
                    },
                ),
                {},
            )
        ]

    @pytest.mark.parametrize(
        "options, message",
        [
            ([], "Error: nothing to change: give --image, --tag or a setting (--env, --port, …)"),
            (
                ["--image", "t1/app:2.0", "--tag", "2.0"],
                "Error: give --image or --tag, not both (put the tag in the image reference)",
            ),
            (
                ["--tag", "bad tag"],
                "Error: Invalid value for '--tag': tag 'bad tag' must be 1-128 characters of letters, "
                "digits, '_', '.' or '-', not starting with '.' or '-'",
            ),
            (["--image", "t1/App"], "Error: Invalid value for '--image': image name 'App' must be lower-case"),
            (["--env", "X"], "Error: Invalid value for '--env': 'X' is not KEY=VALUE"),
        ],
    )
    def test_usage_errors(self, run, rpc, options, message):
        result = run("update", DEPLOYMENT_ID, *options, "--tenant", "t1")

        assert result.exit_code == 2
        assert result.stderr.splitlines()[-1] == message
        assert rpc.opened_with is None


class TestRevisions:
    def test_an_automatic_revision_says_who_pushed_what_it_follows(self, run, rpc):
        pushed = dict(
            revision(2, "1.1", LAYER, "running", "auto-deploy"),
            push={"tag": "1.1", "digest": LAYER, "actor": "alice", "policy": "semver:minor"},
        )
        anonymous = dict(revision(3, "1.2", DIGEST, "failed", "auto-deploy"), push={"tag": "1.2", "actor": None})
        rpc.answer("list_revisions", page([anonymous, pushed, revision(1, "1.0", DIGEST, "superseded", "create")]))

        result = run("revisions", DEPLOYMENT_ID, "--tenant", "t1")

        assert lines(result.stdout)[:4] == [
            "REVISION  IMAGE       DIGEST               STATUS      TRIGGER               CREATED",
            "       3  t1/app:1.2  sha256:a1a1a1a1a1a1  failed      auto-deploy           2024-06-01 10:00",
            "       2  t1/app:1.1  sha256:c3c3c3c3c3c3  running     auto-deploy by alice  2024-06-01 10:00",
            "       1  t1/app:1.0  sha256:a1a1a1a1a1a1  superseded  create                2024-06-01 10:00",
        ]

    def test_newest_first_with_why_a_revision_failed(self, run, rpc):
        reason = "container exited with code 127 on local-1: sh: httpd: not found (last output: sh: httpd: not found)"
        rpc.answer(
            "list_revisions",
            page(
                [
                    revision(3, "2.0", LAYER, "failed", "update", reason=reason, created="2024-06-01T11:00:00Z"),
                    revision(2, "1.0", DIGEST, "running", "rollback", rollback_to=1, created="2024-06-01T10:30:00Z"),
                    revision(1, "1.0", DIGEST, "superseded", "create"),
                ]
            ),
        )

        result = run("revisions", DEPLOYMENT_ID, "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("deployer", "list_revisions", ("t1", DEPLOYMENT_ID), {"page": 1, "page_size": 50})]
        assert lines(result.stdout) == [
            "REVISION  IMAGE       DIGEST               STATUS      TRIGGER        CREATED",
            "       3  t1/app:2.0  sha256:c3c3c3c3c3c3  failed      update         2024-06-01 11:00",
            "       2  t1/app:1.0  sha256:a1a1a1a1a1a1  running     rollback to 1  2024-06-01 10:30",
            "       1  t1/app:1.0  sha256:a1a1a1a1a1a1  superseded  create         2024-06-01 10:00",
            f"revision 3: {reason}",
            "3 of 3 revisions, page 1 of 1",
        ]


class TestAutoDeploy:
    def test_sets_the_policy_and_says_so(self, run, rpc):
        rpc.answer("set_auto_deploy", dict(RUNNING, auto_deploy={"policy": "semver:minor+prerelease"}))

        result = run("auto-deploy", DEPLOYMENT_ID, "semver:minor+prerelease", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("deployer", "set_auto_deploy", ("t1", DEPLOYMENT_ID, "semver:minor+prerelease"), {})]
        assert result.stdout == "Auto-deploy of web (3f2a9c1e): semver:minor+prerelease\n"

    def test_by_name_with_json(self, run, rpc):
        answer = dict(RUNNING, auto_deploy={"policy": "never"})
        rpc.answer("list_deployments", page([RUNNING]))
        rpc.answer("set_auto_deploy", answer)

        result = run("auto-deploy", "web", "never", "--tenant", "t1", "--json")

        assert rpc.calls[-1] == ("deployer", "set_auto_deploy", ("t1", DEPLOYMENT_ID, "never"), {})
        assert json.loads(result.stdout) == answer

    def test_a_policy_the_deployer_refuses(self, run, rpc):
        message = "policy must be one of never, force, semver:major|minor|patch …; got 'sometimes'"
        rpc.answer("set_auto_deploy", InvalidRequest(message))

        result = run("auto-deploy", DEPLOYMENT_ID, "sometimes", "--tenant", "t1")

        assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"error: {message}\n")

    def test_needs_a_tenant_and_a_policy(self, run, rpc):
        assert run("auto-deploy", DEPLOYMENT_ID, "force").exit_code == 2
        assert run("auto-deploy", DEPLOYMENT_ID, "--tenant", "t1").exit_code == 2
        assert rpc.opened_with is None


class TestUndeploy:
    def test_asks_then_removes_and_waits_until_deleted(self, run, rpc):
        rpc.answer_each(
            "get_deployment",
            RUNNING,
            deployment(status="deleting"),
            deployment(status="deleted", deleted_at="2024-06-01T12:00:00Z"),
        )
        rpc.answer("delete_deployment", deployment(status="deleting"))

        result = run("undeploy", DEPLOYMENT_ID, "--tenant", "t1", input="y\n")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [GET, ("deployer", "delete_deployment", ("t1", DEPLOYMENT_ID), {}), GET, GET]
        assert result.stderr == (
            "Remove deployment web (3f2a9c1e): 2 instance(s) of t1/app:1.0 on pool default? [y/N]: y\n"
        )
        assert lines(result.stdout) == [
            "Removing web (3f2a9c1e) and every container it made",
            "   0.0s  deleting",
            "   1.0s  deleted",
        ]

    def test_no_keeps_it(self, run, rpc):
        rpc.answer("get_deployment", RUNNING)

        result = run("undeploy", DEPLOYMENT_ID, "--tenant", "t1", input="n\n")

        assert result.exit_code == 1
        assert result.stderr.endswith("Aborted!\n")
        assert [call[1] for call in rpc.calls] == ["get_deployment"]

    def test_yes_skips_the_question(self, run, rpc):
        rpc.answer("delete_deployment", deployment(status="deleting"))
        rpc.answer("get_deployment", deployment(status="deleted"))

        result = run("undeploy", DEPLOYMENT_ID, "-y", "--tenant", "t1", "--json")

        assert result.exit_code == 0
        assert [call[1] for call in rpc.calls] == ["delete_deployment", "get_deployment"]
        assert json.loads(result.stdout)["status"] == "deleted"

    def test_a_deleted_deployment_with_a_warning_still_exits_0(self, run, rpc):
        warning = (
            "containers may remain on unreachable host(s) local-2; the reconciler removes them once the host answers"
        )
        rpc.answer("delete_deployment", deployment(status="deleting"))
        rpc.answer("get_deployment", deployment(status="deleted", reason=warning))

        result = run("undeploy", DEPLOYMENT_ID, "-y", "--tenant", "t1")

        assert result.exit_code == 0
        assert lines(result.stdout)[-1] == f"   0.5s  deleted: {warning}"

    def test_no_wait(self, run, rpc):
        rpc.answer("delete_deployment", deployment(status="deleting"))

        result = run("undeploy", DEPLOYMENT_ID, "-y", "--no-wait", "--tenant", "t1")

        assert [call[1] for call in rpc.calls] == ["delete_deployment"]
        assert lines(result.stdout)[1] == (
            f"status deleting; follow it with `imagehub deployment {DEPLOYMENT_ID} --wait --tenant t1`"
        )

    def test_gives_up_after_the_wait_timeout(self, run, rpc):
        rpc.answer("delete_deployment", deployment(status="deleting"))
        rpc.answer("get_deployment", deployment(status="deleting"))

        result = run("undeploy", DEPLOYMENT_ID, "-y", "--wait-timeout", "1", "--tenant", "t1")

        assert result.exit_code == 1
        assert result.stderr.startswith("error: deployment web is still deleting after 1 s (--wait-timeout)")


class TestPools:
    def test_one_row_per_host_or_node_with_free_and_total_capacity(self, run, rpc):
        gib = 1024**3
        node = dict(
            role="worker",
            address="127.0.0.1",
            capacity={"cpus": 2.0, "memory_bytes": 4 * gib},
            free={"cpus": 1.75, "memory_bytes": 3 * gib},
            instances=1,
        )
        rpc.answer(
            "list_pools",
            {
                "items": [
                    {
                        "name": "swarm",
                        "kind": "swarm",
                        "network_mode": "host",
                        "default": True,
                        "hosts": [],
                        "reachable": True,
                        "nodes": [
                            dict(node, name="local-1", state="ready", availability="active"),
                            dict(node, name="local-2", state="down", availability="drain", instances=0),
                        ],
                    },
                    {
                        "name": "default",
                        "kind": "engines",
                        "network_mode": "host",
                        "shared_network_namespace": True,
                        "default": False,
                        "hosts": [
                            host("local-1"),
                            host(
                                "local-2",
                                reachable=False,
                                free_cpus=2.0,
                                free_memory=4 * 1024**3,
                                instances=0,
                                error="Error while fetching server API version: connection refused",
                            ),
                        ],
                    },
                ],
                "total": 2,
                "page": 1,
                "page_size": 2,
            },
        )

        result = run("pools")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("deployer", "list_pools", (), {})]
        assert lines(result.stdout) == [
            "POOL     KIND     HOST     ADDRESS    STATE         CPUS FREE/TOTAL  MEMORY FREE/TOTAL  INSTANCES",
            "swarm    swarm    local-1  127.0.0.1  ready/active           1.75/2    3.0 GiB/4.0 GiB          1",
            "swarm    swarm    local-2  127.0.0.1  down/drain             1.75/2    3.0 GiB/4.0 GiB          0",
            "default  engines  local-1  127.0.0.1  yes                     1.5/2    3.5 GiB/4.0 GiB          2",
            "default  engines  local-2  127.0.0.1  no                        2/2    4.0 GiB/4.0 GiB          0",
            "default pool: swarm",
            "local-2 is unreachable: Error while fetching server API version: connection refused",
            "2 of 2 pools, page 1 of 1",
        ]

    def test_json(self, run, rpc):
        answer = {"items": [], "total": 0, "page": 1, "page_size": 1}
        rpc.answer("list_pools", answer)

        assert json.loads(run("pools", "--json").stdout) == answer
        assert run("pools").stdout == "no resource pools\n"
