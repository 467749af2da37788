"""Every way a call can end badly: typed errors, no answer, no broker, usage mistakes."""

import pytest

from imagehub.rpc import RpcFailure, Unavailable
from shared.contracts.errors import Conflict, Forbidden, InvalidReference, InvalidRequest, NotFound, RegistryUnavailable


class TestTypedErrors:
    @pytest.mark.parametrize(
        "error", [NotFound, Forbidden, InvalidRequest, InvalidReference, Conflict, RegistryUnavailable]
    )
    def test_print_their_message_and_exit_1(self, run, rpc, error):
        rpc.answer("get_repository", error("something about t2/app"))

        result = run("repo", "t2/app", "--tenant", "t1")

        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == "error: something about t2/app\n"

    def test_also_with_json(self, run, rpc):
        rpc.answer("list_tags", Forbidden("tenant t1 may not read t2/app"))

        result = run("tags", "t2/app", "--json", "--tenant", "t1")

        assert (result.exit_code, result.stdout, result.stderr) == (1, "", "error: tenant t1 may not read t2/app\n")


class TestTransportFailures:
    def test_no_answer_in_time(self, run, rpc):
        rpc.answer(
            "list_public_repositories",
            Unavailable("catalog service did not answer within 10 s; is it running? (make up)"),
        )

        result = run("library")

        assert result.exit_code == 1
        assert result.stderr == "error: catalog service did not answer within 10 s; is it running? (make up)\n"

    def test_service_failure(self, run, rpc):
        rpc.answer("list_set_aside_events", RpcFailure("catalog.list_set_aside_events failed: KeyError: 'x'"))

        result = run("set-aside")

        assert (result.exit_code, result.stderr) == (1, "error: catalog.list_set_aside_events failed: KeyError: 'x'\n")

    def test_the_connection_is_closed_after_the_command(self, run, rpc):
        rpc.answer("list_public_repositories", NotFound("x"))

        run("library")

        assert rpc.closed


class TestUsageErrors:
    def test_unknown_command_exits_2(self, run, rpc):
        result = run("deploi")

        assert result.exit_code == 2
        assert "No such command 'deploi'" in result.stderr

    def test_bad_page_exits_2_before_any_call(self, run, rpc):
        result = run("library", "--page", "0")

        assert result.exit_code == 2
        assert "Invalid value for '--page'" in result.stderr
        assert rpc.calls == []

    def test_bad_timeout_exits_2(self, run, rpc):
        result = run("--timeout", "0", "library")

        assert result.exit_code == 2
        assert "Invalid value for '--timeout'" in result.stderr
