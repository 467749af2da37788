"""`imagehub delete`: confirmation, --force, and what a refused delete explains."""

import json

from shared.contracts.errors import Conflict, NotFound
from tests.unit.cli.conftest import DIGEST

CURRENT = {"repository": "t1/app", "tag": "1.0", "digest": DIGEST, "other_tags": []}
SHARED = dict(CURRENT, other_tags=["latest", "stable"])
DELETED = {"repository": "t1/app", "tag": "1.0", "digest": DIGEST, "deleted_tags": ["1.0"]}


class TestConfirmation:
    def test_asks_then_deletes(self, run, rpc):
        rpc.answer("get_tag", CURRENT)
        rpc.answer("delete_tag", DELETED)

        result = run("delete", "t1/app:1.0", "--tenant", "t1", input="y\n")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [
            ("catalog", "get_tag", ("t1", "t1/app", "1.0"), {}),
            ("catalog", "delete_tag", ("t1", "t1/app", "1.0"), {"force": False}),
        ]
        assert result.stderr == "Delete t1/app:1.0 (sha256:a1a1a1a1a1a1)? [y/N]: y\n"
        assert result.stdout == f"Deleted from t1/app: 1.0 (digest {DIGEST})\n"

    def test_no_keeps_the_tag(self, run, rpc):
        rpc.answer("get_tag", CURRENT)

        result = run("delete", "t1/app:1.0", "--tenant", "t1", input="n\n")

        assert result.exit_code == 1
        assert [call[1] for call in rpc.calls] == ["get_tag"]
        assert result.stderr.endswith("Aborted!\n")

    def test_yes_skips_the_lookup_and_the_question(self, run, rpc):
        rpc.answer("delete_tag", DELETED)

        result = run("delete", "t1/app", "1.0", "--yes", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("catalog", "delete_tag", ("t1", "t1/app", "1.0"), {"force": False})]
        assert result.stderr == ""

    def test_a_missing_tag_is_reported_before_asking(self, run, rpc):
        rpc.answer("get_tag", NotFound("tag t1/app:9.9 not found"))

        result = run("delete", "t1/app:9.9", "--tenant", "t1")

        assert result.exit_code == 1
        assert result.stderr == "error: tag t1/app:9.9 not found\n"
        assert [call[1] for call in rpc.calls] == ["get_tag"]

    def test_question_names_the_tags_sharing_the_digest(self, run, rpc):
        rpc.answer("get_tag", SHARED)
        rpc.answer("delete_tag", dict(DELETED, deleted_tags=["1.0", "latest", "stable"]))

        plain = run("delete", "t1/app:1.0", "--tenant", "t1", input="n\n")
        forced = run("delete", "t1/app:1.0", "--force", "--tenant", "t1", input="y\n")

        assert plain.stderr.startswith(
            "Delete t1/app:1.0 (sha256:a1a1a1a1a1a1); tags sharing its digest: latest, stable "
            "(without --force the delete is refused)? [y/N]: n\n"
        )
        assert forced.stderr == (
            "Delete t1/app:1.0 (sha256:a1a1a1a1a1a1); tags sharing its digest: latest, stable (deleted too)? [y/N]: y\n"
        )
        assert rpc.calls[-1] == ("catalog", "delete_tag", ("t1", "t1/app", "1.0"), {"force": True})
        assert forced.stdout == f"Deleted from t1/app: 1.0, latest, stable (digest {DIGEST})\n"


class TestConflict:
    def test_explains_that_force_deletes_every_tag_of_the_digest(self, run, rpc):
        rpc.answer("delete_tag", Conflict("tags latest, stable share digest " + DIGEST))

        result = run("delete", "t1/app:1.0", "-y", "--tenant", "t1")

        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            f"error: tags latest, stable share digest {DIGEST}\n"
            "hint: other tags point at the same image digest, and deleting a tag deletes that image "
            "for all of them; `imagehub delete t1/app:1.0 --force` deletes them all\n"
        )


class TestArguments:
    def test_a_tag_is_required(self, run, rpc):
        result = run("delete", "t1/app", "--tenant", "t1", "--yes")

        assert result.exit_code == 2
        assert "Error: Invalid value for 'NS/NAME:TAG': 't1/app' has no tag; give NS/NAME:TAG" in result.stderr
        assert rpc.calls == []

    def test_a_tenant_is_required(self, run, rpc):
        result = run("delete", "t1/app:1.0", "--yes")

        assert result.exit_code == 2
        assert (
            "Error: --tenant (or $IMAGEHUB_TENANT) is required: a tag is deleted on behalf of a tenant" in result.stderr
        )
        assert rpc.calls == []


def test_json_prints_the_delete_result(run, rpc):
    rpc.answer("delete_tag", DELETED)

    result = run("delete", "t1/app:1.0", "--yes", "--json", env={"IMAGEHUB_TENANT": "t1"})

    assert result.exit_code == 0
    assert json.loads(result.stdout) == DELETED
