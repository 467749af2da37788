"""`imagehub describe`: what it sends the catalog, from options, a file or standard input, and
what a refusal prints."""

import json

from shared.contracts.errors import Forbidden, InvalidRequest
from tests.unit.cli import test_browse

APP = dict(test_browse.APP, description="Our app.", overview="# App\n\nRuns **it**.")


def test_sets_the_description_only_and_shows_the_repository(run, rpc):
    rpc.answer("set_repository_info", APP)

    result = run("describe", "t1/app", "--description", "Our app.", "--tenant", "t1")

    assert result.exit_code == 0, result.output
    assert rpc.calls == [
        ("catalog", "set_repository_info", ("t1", "t1/app"), {"description": "Our app.", "overview": None})
    ]
    assert "│ Description  Our app. " in result.stdout and "─ Overview ─" in result.stdout


def test_the_overview_comes_from_a_file_with_unix_line_ends(run, rpc, tmp_path):
    rpc.answer("set_repository_info", APP)
    overview = tmp_path / "README.md"
    overview.write_bytes(b"# App\r\n\r\nRuns **it**.\r\n")

    result = run("--json", "describe", "t1/app", "--overview-file", str(overview), "--tenant", "t1")

    assert result.exit_code == 0, result.output
    assert rpc.calls[0][3] == {"description": None, "overview": "# App\n\nRuns **it**.\n"}
    assert json.loads(result.stdout) == APP


def test_a_library_overview_from_standard_input_needs_no_tenant(run, rpc):
    rpc.answer("set_repository_info", dict(APP, repository="library/busybox", namespace="library"))

    result = run("describe", "library/busybox", "--overview-file", "-", "--description", "", input="# BusyBox\n")

    assert result.exit_code == 0, result.output
    assert rpc.calls == [
        ("catalog", "set_repository_info", (None, "library/busybox"), {"description": "", "overview": "# BusyBox\n"})
    ]


def test_nothing_to_set_or_no_tenant_is_a_usage_error_before_any_call(run, rpc):
    nothing = run("describe", "t1/app", "--tenant", "t1")
    no_tenant = run("describe", "t1/app", "--description", "x")

    assert (nothing.exit_code, no_tenant.exit_code) == (2, 2)
    assert "give --description, --overview-file or both" in nothing.stderr
    assert "--tenant" in no_tenant.stderr
    assert rpc.calls == []


def test_a_refusal_names_the_field(run, rpc):
    rpc.answer("set_repository_info", InvalidRequest("overview must not contain raw HTML, got '<b>'"))
    refused = run("describe", "t1/app", "--overview-file", "-", "--tenant", "t1", input="<b>x</b>")
    rpc.answer("set_repository_info", Forbidden("only a platform admin describes 'library/busybox'"))
    forbidden = run("describe", "library/busybox", "--description", "Mine.", "--tenant", "t1")

    assert (refused.exit_code, forbidden.exit_code) == (1, 1)
    assert refused.stderr.startswith("error: overview must not contain raw HTML, got '<b>'\n")
    assert forbidden.stderr.startswith("error: only a platform admin describes 'library/busybox'")
