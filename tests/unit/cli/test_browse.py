"""Read commands: the exact RPC each one makes and the exact rows it prints (piped, 100 columns)."""

import json

from tests.unit.cli.conftest import DIGEST, IMAGE_ID, LAYER, page

BUSYBOX = {
    "repository": "library/busybox",
    "name": "busybox",
    "namespace": "library",
    "is_public": True,
    "is_ownbase": False,
    "description": "The Swiss Army Knife of Embedded Linux, tiny and handy in every kind of container",
    "overview": "# BusyBox\n\nSmall **utilities** in one binary.",
    "tag_count": 2,
    "latest_tag": "1.36.1",
    "pull_command": "docker pull 127.0.0.1:5000/library/busybox:1.36.1",
    "updated_at": "2024-05-01T12:34:56.123456+00:00",
}
NGINX = {
    "repository": "library/nginx",
    "name": "nginx",
    "namespace": "library",
    "is_public": True,
    "is_ownbase": False,
    "description": "[red]web[/red] server",
    "overview": "",
    "tag_count": 12,
    "latest_tag": "latest",
    "pull_command": "docker pull 127.0.0.1:5000/library/nginx:latest",
    "updated_at": "2024-05-01T12:34:56",
}
JAVA_BASE = {
    "repository": "t1/java_ownbase",
    "name": "java_ownbase",
    "namespace": "t1",
    "is_public": False,
    "is_ownbase": True,
    "description": "JRE 17 base",
    "overview": None,
    "tag_count": 1,
    "latest_tag": "1.0",
    "pull_command": "docker pull 127.0.0.1:5000/t1/java_ownbase:1.0",
    "updated_at": "2024-06-02T08:00:00Z",
}
APP = {
    "repository": "t1/app",
    "name": "app",
    "namespace": "t1",
    "is_public": False,
    "is_ownbase": False,
    "description": None,
    "overview": None,
    "tag_count": 3,
    "latest_tag": "2.1",
    "pull_command": "docker pull 127.0.0.1:5000/t1/app:2.1",
    "updated_at": "2024-06-03T09:30:00+02:00",
}
TAG_1_0 = {
    "tag": "1.0",
    "digest": DIGEST,
    "image_id": IMAGE_ID,
    "size": 2412345,
    "created": "2024-05-01T10:00:00Z",
    "creator": "alice",
    "pushed_at": "2024-05-01T11:00:00+02:00",
    "media_type": "application/vnd.docker.distribution.manifest.v2+json",
    "pull_command": "docker pull 127.0.0.1:5000/t1/app:1.0",
}
TAG_DETAIL = dict(
    TAG_1_0,
    repository="t1/app",
    architecture="amd64",
    os="linux",
    variant=None,
    layers=[LAYER, DIGEST],
    manifest_size=528,
    platforms=None,
    other_tags=["latest", "stable"],
)


def lines(output):
    return output.splitlines()


class TestLibrary:
    def test_lists_public_repositories_as_rows(self, run, rpc):
        rpc.answer("list_public_repositories", page([BUSYBOX, NGINX], total=3, page_size=2))

        result = run("library")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("catalog", "list_public_repositories", (), {"query": None, "page": 1, "page_size": 50})]
        assert lines(result.stdout) == [
            "NAME     DESCRIPTION                 LATEST  TAGS  PULL COMMAND",
            "busybox  The Swiss Army Knife of E…  1.36.1     2  docker pull 127.0.0.1:5000/library/busybox:1.36.1",
            "nginx    [red]web[/red] server       latest    12  docker pull 127.0.0.1:5000/library/nginx:latest",
            "2 of 3 public repositories, page 1 of 2 (--page 2 for more)",
        ]
        assert result.stderr == ""

    def test_passes_query_and_paging(self, run, rpc):
        rpc.answer("list_public_repositories", page([NGINX], total=3, page=3, page_size=1))

        result = run("library", "ngi", "--page", "3", "--page-size", "1")

        assert rpc.calls == [("catalog", "list_public_repositories", (), {"query": "ngi", "page": 3, "page_size": 1})]
        assert lines(result.stdout)[-1] == "1 of 3 public repositories, page 3 of 3"

    def test_says_so_when_nothing_matches(self, run, rpc):
        rpc.answer("list_public_repositories", page([]))

        result = run("library", "zzz")

        assert result.exit_code == 0
        assert result.stdout == "no public repositories matching 'zzz'\n"

    def test_json_is_the_raw_result(self, run, rpc):
        answer = page([BUSYBOX])
        rpc.answer("list_public_repositories", answer)

        result = run("library", "--json")

        assert result.exit_code == 0
        assert json.loads(result.stdout) == answer
        assert result.stdout == json.dumps(answer, indent=2, sort_keys=True) + "\n"

    def test_description_gives_way_to_a_narrower_terminal(self, run, rpc):
        rpc.answer("list_public_repositories", page([BUSYBOX]))

        result = run("library", env={"COLUMNS": "90"})

        assert lines(result.stdout)[1] == (
            "busybox  The Swiss Army …  1.36.1     2  docker pull 127.0.0.1:5000/library/busybox:1.36.1"
        )
        assert max(len(line) for line in lines(result.stdout)) <= 90


class TestRepos:
    def test_lists_the_tenants_repositories_and_marks_custom_bases(self, run, rpc):
        rpc.answer("list_repositories", page([APP, JAVA_BASE]))

        result = run("repos", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [
            ("catalog", "list_repositories", ("t1",), {"query": None, "page": 1, "page_size": 50, "ownbase": None})
        ]
        assert lines(result.stdout) == [
            "REPOSITORY       KIND         TAGS  LATEST  UPDATED           DESCRIPTION",
            "t1/app           private         3  2.1     2024-06-03 07:30  -",
            "t1/java_ownbase  custom base     1  1.0     2024-06-02 08:00  JRE 17 base",
            "2 of 2 repositories, page 1 of 1",
        ]

    def test_ownbase_filter_and_tenant_from_the_environment(self, run, rpc):
        rpc.answer("list_repositories", page([JAVA_BASE]))

        run("repos", "java", "--ownbase", env={"IMAGEHUB_TENANT": "t1"})
        run("repos", "--no-ownbase", "--page", "2", env={"IMAGEHUB_TENANT": "t1"})

        assert rpc.calls == [
            ("catalog", "list_repositories", ("t1",), {"query": "java", "page": 1, "page_size": 50, "ownbase": True}),
            ("catalog", "list_repositories", ("t1",), {"query": None, "page": 2, "page_size": 50, "ownbase": False}),
        ]

    def test_needs_a_tenant(self, run, rpc):
        result = run("repos")

        assert result.exit_code == 2
        assert "Error: --tenant (or $IMAGEHUB_TENANT) is required" in result.stderr
        assert rpc.calls == []

    def test_empty_list(self, run, rpc):
        rpc.answer("list_repositories", page([]))

        result = run("repos", "--tenant", "t1")

        assert result.stdout == "no repositories for tenant t1\n"


class TestRepo:
    def test_library_image_shows_its_overview(self, run, rpc):
        rpc.answer("get_repository", BUSYBOX)

        result = run("repo", "library/busybox")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("catalog", "get_repository", (None, "library/busybox"), {})]
        out = lines(result.stdout)
        assert out[0].startswith("╭─ library/busybox ─")
        assert {len(line) for line in out} == {100}  # both panels span the width, borders aligned
        assert (
            "│ Description  The Swiss Army Knife of Embedded Linux, tiny and handy in every kind of container "
            in result.stdout
        )
        assert "│ Visibility   public library" in result.stdout
        assert "│ Custom base  no " in result.stdout
        assert "│ Tags         2 " in result.stdout
        assert "│ Pull         docker pull 127.0.0.1:5000/library/busybox:1.36.1 " in result.stdout
        assert "│ Updated      2024-05-01 12:34:56 UTC " in result.stdout
        assert "─ Overview ─" in result.stdout
        assert "Small utilities in one binary." in result.stdout

    def test_private_repository_with_tenant_and_without_overview(self, run, rpc):
        rpc.answer("get_repository", APP)

        result = run("--tenant", "t1", "repo", "t1/app")

        assert rpc.calls == [("catalog", "get_repository", ("t1", "t1/app"), {})]
        assert "│ Visibility   private " in result.stdout
        assert "Overview" not in result.stdout

    def test_title_falls_back_to_namespace_and_name(self, run, rpc):
        rpc.answer("get_repository", {k: v for k, v in APP.items() if k != "repository"})

        result = run("repo", "t1/app", "--tenant", "t1")

        assert lines(result.stdout)[0].startswith("╭─ t1/app ─")

    def test_a_registry_host_in_front_is_accepted(self, run, rpc):
        rpc.answer("get_repository", BUSYBOX)

        run("repo", "127.0.0.1:5000/library/busybox")

        assert rpc.calls[0][2] == (None, "library/busybox")


class TestTags:
    def test_lists_tags_with_short_digests_and_human_sizes(self, run, rpc):
        small = dict(TAG_1_0, tag="latest", size=512, creator=None, created=None)
        rpc.answer("list_tags", page([TAG_1_0, small]))

        result = run("tags", "t1/app", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("catalog", "list_tags", ("t1", "t1/app"), {"page": 1, "page_size": 50})]
        assert lines(result.stdout) == [
            "TAG     DIGEST               IMAGE ID         SIZE  CREATED           PUSHED            CREATOR",
            "1.0     sha256:a1a1a1a1a1a1  b2b2b2b2b2b2  2.3 MiB  2024-05-01 10:00  2024-05-01 09:00  alice",
            "latest  sha256:a1a1a1a1a1a1  b2b2b2b2b2b2    512 B  -                 2024-05-01 09:00  -",
            "2 of 2 tags, page 1 of 1",
        ]

    def test_paging(self, run, rpc):
        rpc.answer("list_tags", page([TAG_1_0], total=120, page=2, page_size=1))

        result = run("tags", "t1/app", "--page", "2", "--page-size", "1")

        assert rpc.calls == [("catalog", "list_tags", (None, "t1/app"), {"page": 2, "page_size": 1})]
        assert lines(result.stdout)[-1] == "1 of 120 tags, page 2 of 120 (--page 3 for more)"

    def test_empty(self, run, rpc):
        rpc.answer("list_tags", page([]))

        assert run("tags", "t1/app").stdout == "no tags in t1/app\n"


class TestTag:
    def test_detail_shows_full_digests_and_layers(self, run, rpc):
        rpc.answer("get_tag", TAG_DETAIL)

        result = run("tag", "t1/app:1.0", "--tenant", "t1")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("catalog", "get_tag", ("t1", "t1/app", "1.0"), {})]
        assert lines(result.stdout) == [
            "╭─ t1/app:1.0 ────────────────────────────────────────────────────────────────────────╮",
            f"│ Digest      {DIGEST} │",
            f"│ Image ID    {IMAGE_ID} │",
            "│ Created     2024-05-01 10:00:00 UTC                                                 │",
            "│ Creator     alice                                                                   │",
            "│ Pushed      2024-05-01 09:00:00 UTC                                                 │",
            "│ Size        2.3 MiB (2,412,345 bytes)                                               │",
            "│ Media type  application/vnd.docker.distribution.manifest.v2+json                    │",
            "│ Platform    linux/amd64                                                             │",
            "│ Platforms   -                                                                       │",
            "│ Layers      2                                                                       │",
            "│ Other tags  latest, stable                                                          │",
            "│ Pull        docker pull 127.0.0.1:5000/t1/app:1.0                                   │",
            "╰─────────────────────────────────────────────────────────────────────────────────────╯",
            "",
            "#  LAYER DIGEST",
            f"1  {LAYER}",
            f"2  {DIGEST}",
        ]

    def test_tag_as_a_second_argument(self, run, rpc):
        rpc.answer("get_tag", TAG_DETAIL)

        run("tag", "t1/app", "1.0")

        assert rpc.calls == [("catalog", "get_tag", (None, "t1/app", "1.0"), {})]

    def test_without_a_tag_reads_latest(self, run, rpc):
        rpc.answer("get_tag", TAG_DETAIL)

        run("tag", "library/busybox")

        assert rpc.calls == [("catalog", "get_tag", (None, "library/busybox", "latest"), {})]

    def test_multi_arch_index_lists_its_platform_manifests(self, run, rpc):
        platforms = [
            {"os": "linux", "architecture": "amd64", "variant": None, "digest": DIGEST, "size": 2048},
            {"os": "linux", "architecture": "arm64", "variant": "v8", "digest": LAYER, "size": None},
        ]
        index = dict(
            TAG_DETAIL,
            platforms=platforms,
            layers=[],
            os=None,
            architecture=None,
            media_type="application/vnd.oci.image.index.v1+json",
        )
        rpc.answer("get_tag", index)

        result = run("tag", "t1/app:1.0")

        out = lines(result.stdout)
        assert "│ Platform    -  " in result.stdout
        assert "│ Platforms   linux/amd64, linux/arm64/v8 " in result.stdout
        assert "│ Layers      -  " in result.stdout
        header = "PLATFORM        " + "MANIFEST DIGEST".ljust(len(DIGEST)) + "     SIZE"
        assert out[out.index(header) :] == [
            header,
            f"linux/amd64     {DIGEST}  2.0 KiB",
            f"linux/arm64/v8  {LAYER}        -",
        ]
        assert "LAYER DIGEST" not in result.stdout

    def test_json(self, run, rpc):
        rpc.answer("get_tag", TAG_DETAIL)

        result = run("tag", "t1/app:1.0", "--json")

        assert json.loads(result.stdout) == TAG_DETAIL


class TestParse:
    def test_shows_the_catalogs_reading(self, run, rpc):
        parsed = {
            "registry": "127.0.0.1:5000",
            "namespace": "t1",
            "name": "java_ownbase",
            "tag": "1.0",
            "digest": None,
            "is_ownbase": True,
            "is_public": False,
        }
        rpc.answer("parse_reference", parsed)

        result = run("parse", "127.0.0.1:5000/t1/java_ownbase:1.0")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("catalog", "parse_reference", ("127.0.0.1:5000/t1/java_ownbase:1.0",), {})]
        assert lines(result.stdout) == [
            "╭─ 127.0.0.1:5000/t1/java_ownbase:1.0 ─╮",
            "│ Registry     127.0.0.1:5000          │",
            "│ Namespace    t1                      │",
            "│ Name         java_ownbase            │",
            "│ Tag          1.0                     │",
            "│ Digest       -                       │",
            "│ Public       no                      │",
            "│ Custom base  yes                     │",
            "╰──────────────────────────────────────╯",
        ]

    def test_leaves_the_verdict_to_the_catalog(self, run, rpc):
        # No local check: `parse` exists to show what the catalog makes of a reference.
        from shared.contracts.errors import InvalidReference

        rpc.answer("parse_reference", InvalidReference("image name 'App' must be lower-case"))

        result = run("parse", "t1/App")

        assert rpc.calls == [("catalog", "parse_reference", ("t1/App",), {})]
        assert result.exit_code == 1
        assert result.stderr == "error: image name 'App' must be lower-case\n"


class TestSetAside:
    def test_lists_events_with_their_reason(self, run, rpc):
        events = [
            {
                "id": 7,
                "source": "webhook",
                "reason": "repository 'Bad/Name' breaks the naming rules",
                "source_event_id": "e-1",
                "action": "push",
                "repository": "Bad/Name",
                "payload": {"x": 1},
                "at": "2024-05-01T10:00:00Z",
            },
            {
                "id": 8,
                "source": "catalog",
                "reason": "manifest not found in the registry",
                "source_event_id": "e-2",
                "action": "push",
                "repository": "t1/app",
                "payload": {},
                "at": "2024-05-01T10:05:00Z",
            },
        ]
        rpc.answer("list_set_aside_events", page(events))

        result = run("set-aside")

        assert result.exit_code == 0, result.output
        assert rpc.calls == [("catalog", "list_set_aside_events", (), {"page": 1, "page_size": 50})]
        assert lines(result.stdout) == [
            "ID  AT                SOURCE   ACTION  REPOSITORY  REASON",
            "7   2024-05-01 10:00  webhook  push    Bad/Name    repository 'Bad/Name' breaks the naming rules",
            "8   2024-05-01 10:05  catalog  push    t1/app      manifest not found in the registry",
            "2 of 2 set-aside events, page 1 of 1",
        ]

    def test_a_long_reason_wraps_in_its_column_instead_of_being_cut(self, run, rpc):
        reason = "NotInRegistry: manifest t1/ghost@sha256:" + "0" * 64 + " is not in the registry (deleted since?)"
        rpc.answer(
            "list_set_aside_events",
            page(
                [
                    {
                        "id": 1,
                        "source": "catalog",
                        "reason": reason,
                        "source_event_id": None,
                        "action": "push",
                        "repository": "t1/ghost",
                        "payload": {},
                        "at": "2024-05-01T10:00:00Z",
                    }
                ]
            ),
        )

        result = run("set-aside")

        assert lines(result.stdout) == [
            "ID  AT                SOURCE   ACTION  REPOSITORY  REASON",
            "1   2024-05-01 10:00  catalog  push    t1/ghost    NotInRegistry: manifest",
            "                                                   t1/ghost@sha256:000000000000000000000000000000000",
            "                                                   0000000000000000000000000000000 is not in the",
            "                                                   registry (deleted since?)",
            "1 of 1 set-aside events, page 1 of 1",
        ]

    def test_empty(self, run, rpc):
        rpc.answer("list_set_aside_events", page([]))

        assert run("set-aside", "--page-size", "10").stdout == "no set-aside events\n"
        assert rpc.calls == [("catalog", "list_set_aside_events", (), {"page": 1, "page_size": 10})]
