"""`imagehub library-sources` and `imagehub library-sync`: the RPC calls, the rows, the progress
lines while a sync runs, and the exit code of a sync in which a tag or a source failed."""

import json

from shared.contracts.errors import Conflict, InvalidRequest
from tests.unit.cli.conftest import DIGEST

STARTED = "2024-06-01T10:00:00+00:00"
STATUSES = ("pending", "copying", "copied", "unchanged", "failed", "removed", "kept")


def source(name="nginx", **changes):
    return {
        "name": name,
        "library_repository": f"library/{name}",
        "registry": "docker.io",
        "repository": f"library/{name}",
        "tags": ["latest"],
        "pattern": None,
        "versions": ">=1.26",
        "newest": 3,
        "follow_removals": False,
        "enabled": True,
        "insecure": False,
        "credential": None,
        "created_at": STARTED,
        "updated_at": STARTED,
        "updated_by": "admin (admin)",
        **changes,
    }


def sync(status="running", items=None, sources=None, **counts):
    return {
        "sync_id": 4,
        "source": "nginx",
        "trigger": "rpc",
        "status": status,
        "started_at": STARTED,
        "finished_at": None if status == "running" else "2024-06-01T10:00:02.500000+00:00",
        "sources": sources or {"nginx": {"status": "listed", "upstream_tags": 9, "selected": 2, "error": None}},
        "counts": {**dict.fromkeys(STATUSES, 0), **counts},
        "items": items,
        "error": None,
    }


def item(tag, status, attempts=1, error=None):
    return {
        "source": "nginx",
        "tag": tag,
        "digest": DIGEST,
        "status": status,
        "attempts": attempts,
        "error": error,
        "seconds": 1.25,
        "finished_at": STARTED,
    }


class TestSources:
    def test_the_list_shows_each_sources_selection(self, run, rpc):
        rpc.answer("list_library_sources", {"items": [source(), source("alpine", enabled=False, tags=[])], "total": 2})

        result = run("library-sources", "list")

        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[:3] == [
            "LIBRARY         UPSTREAM                  TAGS                           ENABLED  REMOVALS  LOGIN",
            "library/nginx   docker.io/library/nginx   latest + in >=1.26 (newest 3)  yes      keep      —",
            "library/alpine  docker.io/library/alpine  in >=1.26 (newest 3)           no       keep      —",
        ]

    def test_set_passes_every_option_on(self, run, rpc):
        rpc.answer("set_library_source", source(tags=["latest", "stable"], pattern="1.*", credential="hub"))

        result = run(
            *("library-sources", "set", "nginx", "--registry", "docker.io", "--repository", "library/nginx"),
            *("--tag", "latest", "--tag", "stable", "--pattern", "1.*", "--newest", "3", "--credential", "hub"),
            "--follow-removals",
        )

        assert result.exit_code == 0, result.output
        assert rpc.calls == [
            (
                "catalog",
                "set_library_source",
                ("nginx", "docker.io", "library/nginx"),
                {
                    "tags": ["latest", "stable"],
                    "pattern": "1.*",
                    "versions": None,
                    "newest": 3,
                    "follow_removals": True,
                    "enabled": True,
                    "insecure": False,
                    "credential": "hub",
                },
            )
        ]
        assert result.stdout == (
            "library/nginx mirrors docker.io/library/nginx: latest, stable + 1.* in >=1.26 (newest 3)\n"
        )

    def test_a_refused_argument_is_named(self, run, rpc):
        rpc.answer("set_library_source", InvalidRequest("versions '>=1.x' is not a comparator"))

        result = run("library-sources", "set", "nginx", "--registry", "docker.io", "--repository", "x/y", "--tag", "1")

        assert result.exit_code == 1
        assert result.stderr == "error: versions '>=1.x' is not a comparator\n"


class TestSync:
    def test_progress_lines_then_each_tag(self, run, rpc):
        rpc.answer("sync_library", sync())
        rpc.answer_each(
            "get_library_sync",
            sync(pending=2),
            sync(copying=1, copied=1),
            sync("finished", copied=1, unchanged=1),
            sync("finished", copied=1, unchanged=1, items=[item("1.27", "copied"), item("latest", "unchanged")]),
        )

        result = run("library-sync", "nginx")

        assert result.exit_code == 0, result.output
        assert rpc.calls[0] == ("catalog", "sync_library", (), {"source": "nginx", "wait": False})
        assert result.stdout.splitlines() == [
            "Library sync 4 (source nginx)",
            "   0.0s  running: 0 failed",
            "   0.5s  running: 2 pending, 0 failed",
            "   1.0s  running: 1 copying, 1 copied, 0 failed",
            "   1.5s  finished: 1 copied, 1 unchanged, 0 failed",
            "Library sync 4 (source nginx) finished in 2.5 s: 1 copied, 1 unchanged, 0 failed",
            "LIBRARY        TAG     STATUS     DIGEST               TRIES  TOOK  ERROR",
            "library/nginx  1.27    copied     sha256:a1a1a1a1a1a1  1      1.2s  -",
            "library/nginx  latest  unchanged  sha256:a1a1a1a1a1a1  1      1.2s  -",
        ]

    def test_a_failed_tag_or_source_exits_1_after_the_report(self, run, rpc):
        failed_source = {"hub": {"status": "failed", "error": "skopeo list-tags failed: unauthorized"}}
        ended = sync(
            "finished",
            failed=1,
            copied=1,
            items=[item("1.27", "copied"), item("1.28", "failed", 3, "skopeo copy failed: EOF")],
            sources=failed_source,
        )
        rpc.answer("sync_library", sync())
        rpc.answer_each("get_library_sync", dict(ended, items=None), ended)

        result = run("library-sync")

        assert result.exit_code == 1
        assert "source hub not listed: skopeo list-tags failed: unauthorized" in result.stdout.splitlines()
        assert result.stdout.splitlines()[-1].startswith("library/nginx  1.28  failed  sha256:a1a1a1a1a1a1  3")
        assert result.stderr == (
            "error: library sync 4: 1 tag(s) and 1 source(s) failed\n"
            "hint: the next sync tries them again; `imagehub library-sync` runs one now\n"
        )

    def test_another_sync_running_is_an_error_with_a_way_to_follow_it(self, run, rpc):
        rpc.answer("sync_library", Conflict("library sync 3 (of every source) is running since …"))

        result = run("library-sync")

        assert result.exit_code == 1
        assert result.stderr == (
            "error: library sync 3 (of every source) is running since …\n"
            "hint: follow it with `imagehub library-sync-status --wait`\n"
        )

    def test_still_running_after_the_wait_timeout(self, run, rpc):
        rpc.answer("sync_library", sync())
        rpc.answer("get_library_sync", sync(copying=1))

        result = run("library-sync", "--wait-timeout", "1")

        assert result.exit_code == 1
        assert result.stderr == (
            "error: library sync 4 is still running after 1 s (--wait-timeout); the catalog carries on\n"
            "hint: follow it with `imagehub library-sync-status 4 --wait`\n"
        )

    def test_status_as_json(self, run, rpc):
        ended = sync("finished", unchanged=1, items=[item("latest", "unchanged")])
        rpc.answer("get_library_sync", ended)

        result = run("--json", "library-sync-status", "4")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("catalog", "get_library_sync", (), {"sync_id": 4, "items": True})]
        assert json.loads(result.stdout) == ended
