"""`imagehub resync` and `imagehub resync-status`: the RPC calls, the progress lines while a pass
runs, the report table, and the exit code of a pass that did not finish."""

import json

from shared.contracts.errors import Conflict, NotFound
from tests.unit.cli.conftest import DIGEST

OLD = "sha256:" + "0f" * 32
STARTED = "2024-06-01T10:00:00+00:00"
COUNTS = {"added": 0, "moved": 0, "removed": 0, "pending_removal": 0, "skipped": 0}


def resync_pass(status="running", scanned=0, total=None, tags=0, items=False, namespace=None, **counts):
    """A get_resync answer as the catalog builds it (catalog.resync.pass_view)."""
    lists = {
        "added": [{"repository": "t1/app", "tag": "v2", "digest": DIGEST}],
        "moved": [{"repository": "t1/app", "tag": "latest", "digest": DIGEST, "previous_digest": OLD}],
        "removed": [],
        "pending_removal": [{"repository": "t2/old", "tag": "1.0", "digest": OLD, "missing_since_pass": 7}],
        "skipped": [
            {
                "repository": "noslash",
                "tag": None,
                "reason": "not indexed: repository 'noslash' must be '<namespace>/<name>'",
            }
        ],
    }
    answer = {
        "pass_id": 7,
        "namespace": namespace,
        "trigger": "rpc",
        "status": status,
        "started_at": STARTED,
        "finished_at": None if status == "running" else "2024-06-01T10:00:03.250000+00:00",
        "repositories_total": total,
        "repositories_scanned": scanned,
        "tags_scanned": tags,
        "error": None,
        "counts": dict(COUNTS, **counts),
    }
    for name in lists:
        answer[name] = (lists[name] if answer["counts"][name] else []) if items else None
    return answer


STARTING = resync_pass()
HALFWAY = resync_pass(scanned=60, total=120, tags=118, added=1)
DONE = dict(added=1, moved=1, pending_removal=1, skipped=1)
FINISHED = resync_pass("finished", scanned=120, total=120, tags=240, **DONE)
REPORT = resync_pass("finished", scanned=120, total=120, tags=240, items=True, **DONE)


class TestFollowingAPass:
    def test_progress_lines_then_the_report_as_a_table(self, run, rpc):
        rpc.answer("resync", dict(STARTING, added=[], moved=[], removed=[], pending_removal=[], skipped=[]))
        rpc.answer_each("get_resync", STARTING, HALFWAY, HALFWAY, FINISHED, REPORT)

        result = run("resync")

        assert result.exit_code == 0, result.output
        assert rpc.calls[0] == ("catalog", "resync", (), {"namespace": None, "wait": False})
        assert rpc.calls[1:] == [("catalog", "get_resync", (), {"pass_id": 7, "items": False})] * 4 + [
            ("catalog", "get_resync", (), {"pass_id": 7, "items": True})
        ]
        assert result.stdout.splitlines() == [
            "Resync pass 7 (the whole registry)",
            "   0.0s  running: repositories 0/?, tags 0; 0 added, 0 moved, 0 removed, 0 pending removal, 0 skipped",
            "   1.0s  running: repositories 60/120, tags 118; 1 added, 0 moved, 0 removed, 0 pending removal,"
            " 0 skipped",
            "   2.0s  finished: repositories 120/120, tags 240; 1 added, 1 moved, 0 removed, 1 pending removal, "
            "1 skipped",
            "Resync pass 7 (the whole registry) finished in 3.2 s: 120 repositories, 240 tags; 1 added, 1 moved, "
            "0 removed, 1 pending removal, 1 skipped",
            "CHANGE           REPOSITORY  TAG     DIGEST               DETAIL",
            "added            t1/app      v2      sha256:a1a1a1a1a1a1  -",
            "moved            t1/app      latest  sha256:a1a1a1a1a1a1  was sha256:0f0f0f0f0f0f",
            "pending removal  t2/old      1.0     sha256:0f0f0f0f0f0f  not in the registry (pass 7); removed if",
            "                                                          the next pass misses it too",
            "skipped          noslash     -       -                    not indexed: repository 'noslash' must be",
            "                                                          '<namespace>/<name>'",
        ]
        assert result.stderr == ""

    def test_a_namespace_is_passed_on_and_named(self, run, rpc):
        rpc.answer("resync", resync_pass(namespace="t1"))
        rpc.answer_each(
            "get_resync",
            resync_pass("finished", namespace="t1", scanned=3, total=3, tags=5),
            resync_pass("finished", namespace="t1", scanned=3, total=3, tags=5, items=True),
        )

        result = run("resync", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls[0] == ("catalog", "resync", (), {"namespace": "t1", "wait": False})
        assert result.stdout.splitlines()[0] == "Resync pass 7 (namespace t1)"
        # Nothing changed: the summary says so, and there is no table.
        assert result.stdout.splitlines()[-1] == (
            "Resync pass 7 (namespace t1) finished in 3.2 s: 3 repositories, 5 tags; 0 added, 0 moved, 0 removed, "
            "0 pending removal, 0 skipped"
        )

    def test_json_keeps_stdout_for_the_report(self, run, rpc):
        rpc.answer("resync", STARTING)
        rpc.answer_each("get_resync", FINISHED, REPORT)

        result = run("resync", "--json")

        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == REPORT
        assert result.stderr.splitlines()[0] == "Resync pass 7 (the whole registry)"

    def test_a_failed_pass_shows_what_it_did_and_exits_1(self, run, rpc):
        failed = dict(
            resync_pass("failed", scanned=40, total=120, tags=80, items=True, added=1),
            error="RegistryUnavailable: registry http://127.0.0.1:5000 unreachable",
        )
        rpc.answer("resync", STARTING)
        rpc.answer_each("get_resync", dict(failed, added=None), failed)

        result = run("resync")

        assert result.exit_code == 1
        assert result.stdout.splitlines()[-3:] == [
            "Resync pass 7 (the whole registry) failed in 3.2 s: 40 repositories, 80 tags; 1 added, 0 moved, "
            "0 removed, 0 pending removal, 0 skipped",
            "CHANGE  REPOSITORY  TAG  DIGEST               DETAIL",
            "added   t1/app      v2   sha256:a1a1a1a1a1a1  -",
        ]
        assert result.stderr == (
            "error: resync pass 7 failed: RegistryUnavailable: registry http://127.0.0.1:5000 unreachable\n"
        )

    def test_still_running_after_the_wait_timeout_exits_1_with_a_way_to_follow_it(self, run, rpc):
        rpc.answer("resync", STARTING)
        rpc.answer("get_resync", HALFWAY)

        result = run("resync", "--wait-timeout", "2")

        assert result.exit_code == 1
        assert result.stderr == (
            "error: resync pass 7 is still running after 2 s (--wait-timeout); the catalog "
            "carries on\nhint: follow it with `imagehub resync-status 7 --wait`\n"
        )
        assert [call[2:] for call in rpc.calls[1:]] == [((), {"pass_id": 7, "items": False})] * 4


class TestStarting:
    def test_no_wait_answers_with_the_pass_number(self, run, rpc):
        rpc.answer("resync", STARTING)

        result = run("resync", "--no-wait")

        assert result.exit_code == 0, result.output
        assert [call[1] for call in rpc.calls] == ["resync"]
        assert result.stdout == (
            "Resync pass 7 (the whole registry) started; follow it with `imagehub resync-status 7 --wait`\n"
        )

    def test_a_pass_already_running_is_an_error_with_a_way_to_follow_it(self, run, rpc):
        rpc.answer(
            "resync",
            Conflict(
                "resync pass 6 (the whole registry) is running since 2024-06-01T09:59:00+00:00; "
                "one pass at a time: follow it with get_resync(6)"
            ),
        )

        result = run("resync", "t1")

        assert result.exit_code == 1
        assert result.stderr.splitlines() == [
            "error: resync pass 6 (the whole registry) is running since 2024-06-01T09:59:00+00:00; one pass at a "
            "time: follow it with get_resync(6)",
            "hint: follow it with `imagehub resync-status --wait`",
        ]

    def test_a_bad_namespace_is_a_usage_error_before_any_call(self, run, rpc):
        result = run("resync", "T1")

        assert result.exit_code == 2
        assert "Invalid value for 'NAMESPACE': namespace 'T1' must be lower-case" in result.stderr
        assert rpc.calls == []


class TestStatus:
    def test_the_latest_pass_without_a_number(self, run, rpc):
        rpc.answer("get_resync", REPORT)

        result = run("resync-status")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("catalog", "get_resync", (), {"pass_id": None, "items": True})]
        assert result.stdout.startswith("Resync pass 7 (the whole registry) finished in 3.2 s: ")

    def test_a_running_pass_shows_its_changes_so_far(self, run, rpc):
        rpc.answer("get_resync", resync_pass(scanned=60, total=120, tags=118, items=True, added=1))

        result = run("resync-status", "7")

        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[0] == (
            "Resync pass 7 (the whole registry) running: 60 repositories, "
            "118 tags; 1 added, 0 moved, 0 removed, 0 pending removal, 0 skipped"
        )

    def test_wait_follows_it_to_its_end(self, run, rpc):
        rpc.answer_each("get_resync", HALFWAY, FINISHED, REPORT)

        result = run("resync-status", "7", "--wait")

        assert result.exit_code == 0, result.output
        assert [call[2:] for call in rpc.calls] == [((), {"pass_id": 7, "items": False})] * 2 + [
            ((), {"pass_id": 7, "items": True})
        ]
        assert result.stdout.splitlines()[0].startswith("   0.0s  running: repositories 60/120")

    def test_an_unknown_pass(self, run, rpc):
        rpc.answer("get_resync", NotFound("resync pass 9 not found"))

        result = run("resync-status", "9")

        assert (result.exit_code, result.stderr) == (1, "error: resync pass 9 not found\n")
