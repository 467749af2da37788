"""Reference arguments are checked with shared.contracts.reference before any RPC: usage errors, exit 2."""

import pytest


def usage_error(result):
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    return result.stderr.splitlines()[-1]


class TestRepositoryArguments:
    @pytest.mark.parametrize("command", ["repo", "tags"])
    @pytest.mark.parametrize(
        "argument, message",
        [
            (
                "app",
                "Error: Invalid value for 'NS/NAME': repository 'app' must be '<namespace>/<name>' "
                "(namespace = tenant ID or 'library'), found 1 path component(s)",
            ),
            ("t1/App", "Error: Invalid value for 'NS/NAME': image name 'App' must be lower-case"),
            (
                "t1/app:1.0",
                "Error: Invalid value for 'NS/NAME': 't1/app:1.0' names a version; give the repository only (NS/NAME)",
            ),
            (
                "t1/app@sha256:" + "0" * 64,
                "Error: Invalid value for 'NS/NAME': 't1/app@sha256:"
                + "0" * 64
                + "' names a version; give the repository only (NS/NAME)",
            ),
            (
                "a/b/c",
                "Error: Invalid value for 'NS/NAME': repository 'a/b/c' must be '<namespace>/<name>' "
                "(namespace = tenant ID or 'library'), found 3 path component(s)",
            ),
        ],
    )
    def test_bad_repository_is_refused(self, run, rpc, command, argument, message):
        assert usage_error(run(command, argument)) == message
        assert rpc.calls == []


class TestTagArguments:
    @pytest.mark.parametrize("command", ["tag", "delete"])
    @pytest.mark.parametrize(
        "arguments, message",
        [
            (
                ["t1/app:-bad"],
                "Error: Invalid value for 'NS/NAME:TAG': tag '-bad' must be 1-128 characters of "
                "letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            ),
            (["t1/app", "-x"], None),  # click reads -x as an option: still a usage error
            (
                ["t1/app", "bad tag"],
                "Error: Invalid value for 'TAG': tag 'bad tag' must be 1-128 characters of "
                "letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            ),
            (
                ["t1/app:1.0", "2.0"],
                "Error: Invalid value for 'TAG': the tag is given twice ('1.0' in 't1/app:1.0', and '2.0')",
            ),
            (
                ["t1/app@sha256:" + "0" * 64],
                "Error: Invalid value for 'NS/NAME:TAG': 't1/app@sha256:"
                + "0" * 64
                + "' names a digest; give a tag (`imagehub tags t1/app` lists them)",
            ),
            (["T1/app:1.0"], "Error: Invalid value for 'NS/NAME:TAG': namespace 'T1' must be lower-case"),
        ],
    )
    def test_bad_reference_is_refused(self, run, rpc, command, arguments, message):
        line = usage_error(
            run(command, *arguments, "--tenant", "t1", "--yes") if command == "delete" else run(command, *arguments)
        )
        if message is not None:
            assert line == message
        assert rpc.calls == []

    def test_registry_host_with_port_is_not_a_tag(self, run, rpc):
        rpc.answer("get_tag", {"repository": "library/busybox", "tag": "1.36"})

        run("tag", "127.0.0.1:5000/library/busybox:1.36")
        run("tag", "127.0.0.1:5000/library/busybox")

        assert [call[2] for call in rpc.calls] == [
            (None, "library/busybox", "1.36"),
            (None, "library/busybox", "latest"),
        ]
