"""The public library mirrored from upstream registries, end to end on real parts.

Upstreams are real Docker Distribution registries on loopback (one open, one asking for a basic
login); the catalog copies from them with the real skopeo, pushing as the library robot through
the stack's token service; what it copies reaches the catalogue through the registry's
notifications, and developers pull it with the real docker CLI.
"""

import json
import os
import uuid
from datetime import UTC, datetime

import pytest
import requests
import yaml
from amqp.exceptions import AccessRefused

from shared.contracts.errors import Conflict, Forbidden, InvalidRequest, NotFound
from tests.e2e.conftest import DockerCLI
from tests.e2e.stack import Stack
from tests.e2e.test_cli import imagehub
from tests.e2e.test_push_to_catalog import scrape, value
from tests.support import RegistryProcess, push_image, push_index, token_session, wait_until

pytestmark = pytest.mark.docker

ATTEMPTS = 3  # CATALOG_LIBRARY_SYNC_ATTEMPTS in this module's stack
UPSTREAM_LOGIN = ("mirror-reader", uuid.uuid4().hex)
CREDENTIAL = "secured-upstream"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    registry = RegistryProcess(None, None, workdir=str(tmp_path_factory.mktemp("upstream")), notify=False)
    yield registry.start()
    registry.cleanup()


@pytest.fixture(scope="module")
def secured_upstream(tmp_path_factory):
    registry = RegistryProcess(
        None, None, workdir=str(tmp_path_factory.mktemp("secured")), login=UPSTREAM_LOGIN, notify=False
    )
    yield registry.start()
    registry.cleanup()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, secured_upstream):
    """The stack, its catalog knowing the secured upstream's login by name, retrying a failed
    copy quickly, one tag at a time (so that a sync cut short has copied some tags and not others)."""
    workdir = tmp_path_factory.mktemp("stack")
    credentials = workdir / "library-credentials.yml"
    credentials.write_text(yaml.safe_dump({CREDENTIAL: {"username": UPSTREAM_LOGIN[0], "password": UPSTREAM_LOGIN[1]}}))
    os.chmod(credentials, 0o600)
    stack = Stack(str(workdir))
    stack.services["catalog"].own.update(
        CATALOG_LIBRARY_CREDENTIALS_FILE=str(credentials),
        CATALOG_LIBRARY_SYNC_ATTEMPTS=str(ATTEMPTS),
        CATALOG_LIBRARY_SYNC_RETRY_DELAY="0.25",
        CATALOG_LIBRARY_SYNC_CONCURRENCY="1",
    )
    try:
        yield stack.start()
    finally:
        stack.stop()


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def push_tags(registry, repository, tags):
    """One distinct one-layer image per tag, pushed over the registry API; ``{tag: digest}``."""
    session = registry.session
    return {
        tag: push_image(registry.url, repository, tag, content=f"{repository}:{tag}".encode(), session=session)[
            "digest"
        ]
        for tag in tags
    }


def set_source(stack, name, upstream, repository, **selectors):
    return stack.rpc("catalog", "set_library_source", name, upstream.host, repository, insecure=True, **selectors)


def sync(stack, name):
    """``sync_library(name, wait=True)`` and the sync with its items, by tag."""
    ended = stack.rpc("catalog", "sync_library", name, wait=True)
    report = stack.rpc("catalog", "get_library_sync", ended["sync_id"])
    return report, {item["tag"]: item for item in report["items"]}


def catalogued(stack, repository, expected):
    """Wait until the catalogue's tags of ``repository`` are ``expected`` ({tag: digest})."""

    def tags():
        try:
            found = stack.rpc("catalog", "list_tags", None, repository, page_size=100)["items"]
        except NotFound:
            return None
        return {tag["tag"]: tag["digest"] for tag in found} == expected

    wait_until(tags, timeout=20, what=f"catalogue of {repository} == {expected}")


class TestMirroring:
    def test_selected_tags_land_on_the_upstreams_digests_and_pull(self, stack, upstream, tmp_path):
        name = unique("web")
        repository = f"team/{name}"
        digests = push_tags(upstream, repository, ["1.0", "1.1", "2.0", "latest", "dev"])
        source = set_source(stack, name, upstream, repository, tags=["latest"], versions=">=1.1")
        assert (source["library_repository"], source["tags"], source["versions"]) == (
            f"library/{name}",
            ["latest"],
            ">=1.1",
        )

        report, items = sync(stack, name)
        wanted = {tag: digests[tag] for tag in ("1.1", "2.0", "latest")}
        assert report["status"] == "finished", report
        assert report["sources"][name] == {"status": "listed", "upstream_tags": 5, "selected": 3, "error": None}
        assert {tag: (item["status"], item["digest"]) for tag, item in items.items()} == {
            tag: ("copied", digest) for tag, digest in wanted.items()
        }, report["items"]
        # Pinned: our registry's tags name the upstream's digests, and the others stayed out.
        assert {tag: stack.registry.manifest_digest(f"library/{name}", tag) for tag in wanted} == wanted
        assert stack.registry.tags(f"library/{name}") == sorted(wanted)
        catalogued(stack, f"library/{name}", wanted)

        # A second sync copies nothing.
        again, items = sync(stack, name)
        assert {tag: item["status"] for tag, item in items.items()} == dict.fromkeys(wanted, "unchanged")
        assert (again["counts"]["copied"], again["counts"]["unchanged"]) == (0, 3)

    def test_a_docker_image_mirrored_is_pulled_by_a_developer(self, stack, upstream, tenant, tmp_path):
        name = unique("box")
        pusher = DockerCLI(upstream.host, config_dir=str(tmp_path / "upstream-docker"))
        try:
            ref = pusher.build(f"tools/{name}", "1.0")
            digest = pusher.push(ref)
            set_source(stack, name, upstream, f"tools/{name}", tags=["1.0"])
            _, items = sync(stack, name)
            assert (items["1.0"]["status"], items["1.0"]["digest"]) == ("copied", digest)
        finally:
            pusher.cleanup()

        developer = DockerCLI(stack.registry.host, config_dir=str(tmp_path / "developer"))
        developer.login(*stack.accounts[tenant])
        pulled = f"{stack.registry.host}/library/{name}:1.0"
        developer.built.append(pulled)
        try:
            developer.run("pull", pulled)
            assert f"{stack.registry.host}/library/{name}@{digest}" in developer.inspect(pulled)["RepoDigests"]
        finally:
            developer.cleanup()

    def test_a_multi_arch_index_is_one_version_with_its_platforms(self, stack, upstream):
        name = unique("multi")
        index = push_index(upstream.url, f"team/{name}", "1.0", session=upstream.session)
        set_source(stack, name, upstream, f"team/{name}", tags=["1.0"])

        _, items = sync(stack, name)
        assert (items["1.0"]["status"], items["1.0"]["digest"]) == ("copied", index["digest"])
        catalogued(stack, f"library/{name}", {"1.0": index["digest"]})
        tag = stack.rpc("catalog", "get_tag", None, f"library/{name}", "1.0")
        assert sorted((p["architecture"], p["os"], p["digest"]) for p in tag["platforms"]) == sorted(
            (child["architecture"], child["os"], child["digest"]) for child in index["children"]
        )

    def test_an_upstream_that_wants_a_login_is_read_with_the_named_credential(self, stack, secured_upstream):
        name = unique("secret")
        digests = push_tags(secured_upstream, f"team/{name}", ["1.0"])

        # Without the credential the upstream refuses: the source is reported failed, nothing lands.
        set_source(stack, name, secured_upstream, f"team/{name}", tags=["1.0"])
        refused, items = sync(stack, name)
        assert refused["sources"][name]["status"] == "failed"
        assert "unauthorized" in refused["sources"][name]["error"].lower(), refused["sources"][name]
        assert items == {}
        assert stack.registry.tags(f"library/{name}") == []

        set_source(stack, name, secured_upstream, f"team/{name}", tags=["1.0"], credential=CREDENTIAL)
        _, items = sync(stack, name)
        assert (items["1.0"]["status"], items["1.0"]["digest"]) == ("copied", digests["1.0"])
        catalogued(stack, f"library/{name}", digests)


class TestRemovalsUpstream:
    def test_kept_unless_the_source_follows_removals(self, stack, upstream):
        kept, followed = unique("keep"), unique("follow")
        for name in (kept, followed):
            push_tags(upstream, f"team/{name}", ["1.0", "2.0"])
        set_source(stack, kept, upstream, f"team/{kept}", tags=["1.0", "2.0"])
        set_source(stack, followed, upstream, f"team/{followed}", tags=["1.0", "2.0"], follow_removals=True)
        for name in (kept, followed):
            sync(stack, name)
            upstream.delete_manifest(f"team/{name}", upstream.manifest_digest(f"team/{name}", "1.0"))

        _, items = sync(stack, kept)
        assert {tag: item["status"] for tag, item in items.items()} == {"2.0": "unchanged", "1.0": "kept"}
        assert stack.registry.tags(f"library/{kept}") == ["1.0", "2.0"]

        _, items = sync(stack, followed)
        assert {tag: item["status"] for tag, item in items.items()} == {"2.0": "unchanged", "1.0": "removed"}
        assert stack.registry.tags(f"library/{followed}") == ["2.0"]
        catalogued(stack, f"library/{followed}", {"2.0": stack.registry.manifest_digest(f"library/{followed}", "2.0")})


class TestUpstreamLost:
    def test_stopped_mid_sync_the_rest_fail_after_retries_and_leave_no_tag(self, stack, tmp_path_factory):
        upstream = RegistryProcess(None, None, workdir=str(tmp_path_factory.mktemp("flaky")), notify=False).start()
        try:
            name = unique("flaky")
            tags = [f"1.{n}" for n in range(8)]
            digests = push_tags(upstream, f"team/{name}", tags)
            set_source(stack, name, upstream, f"team/{name}", versions=">=1.0")

            started = stack.rpc("catalog", "sync_library", name)
            wait_until(
                lambda: stack.rpc("catalog", "get_library_sync", started["sync_id"], items=False)["counts"]["copied"],
                timeout=30,
                interval=0.02,
                what="a first tag copied",
            )
            upstream.stop()
            report = wait_until(
                lambda: (
                    (r := stack.rpc("catalog", "get_library_sync", started["sync_id"]))["status"] != "running" and r
                ),
                timeout=60,
                what="the sync's end",
            )
            statuses = {item["tag"]: item for item in report["items"]}
            copied = sorted(tag for tag, item in statuses.items() if item["status"] == "copied")
            failed = sorted(tag for tag, item in statuses.items() if item["status"] == "failed")
            assert report["status"] == "finished"
            assert copied and failed and sorted(copied + failed) == sorted(tags), statuses
            assert {statuses[tag]["attempts"] for tag in failed} == {ATTEMPTS}
            assert all(statuses[tag]["error"] for tag in failed)
            # Nothing half-copied: the library has the copied tags and no other.
            assert stack.registry.tags(f"library/{name}") == sorted(copied)
            catalogued(stack, f"library/{name}", {tag: digests[tag] for tag in copied})

            # The catalog's metrics say how that sync ended, for an alert.
            ended = datetime.fromisoformat(report["finished_at"])
            before = (datetime.now(UTC) - ended).total_seconds()
            page = scrape(stack, "catalog")
            after = (datetime.now(UTC) - ended).total_seconds()
            assert {s: value(page, "imagehub_library_sync_items", status=s) for s in ("copied", "failed")} == {
                "copied": len(copied),
                "failed": len(failed),
            }
            assert before <= value(page, "imagehub_library_sync_age_seconds") <= after

            # The upstream back: the next sync copies what failed, and only that.
            upstream.start()
            _, items = sync(stack, name)
            assert {tag: item["status"] for tag, item in items.items()} == {
                **dict.fromkeys(copied, "unchanged"),
                **dict.fromkeys(failed, "copied"),
            }
            catalogued(stack, f"library/{name}", digests)
        finally:
            upstream.cleanup()


class TestSourcesAndRefusals:
    def test_sources_are_listed_replaced_and_removed(self, stack, upstream):
        name = unique("src")
        set_source(stack, name, upstream, "team/x", tags=["1"])
        replaced = set_source(stack, name, upstream, "team/y", pattern="1.*", newest=2, enabled=False)
        listed = {s["name"]: s for s in stack.rpc("catalog", "list_library_sources")["items"]}
        assert {k: listed[name][k] for k in ("repository", "tags", "pattern", "newest", "enabled", "updated_by")} == {
            "repository": "team/y",
            "tags": [],
            "pattern": "1.*",
            "newest": 2,
            "enabled": False,
            "updated_by": replaced["updated_by"],
        }
        assert "admin" in replaced["updated_by"]
        # The shipped seed file's sources are there, disabled: nothing goes to the internet unasked.
        assert {n: listed[n]["enabled"] for n in ("nginx", "alpine")} == {"nginx": False, "alpine": False}
        assert stack.rpc("catalog", "remove_library_source", name) == {"name": name, "removed": True}
        with pytest.raises(NotFound):
            stack.rpc("catalog", "remove_library_source", name)
        with pytest.raises(NotFound):
            stack.rpc("catalog", "sync_library", name)

    @pytest.mark.parametrize(
        ("arguments", "field"),
        [
            ({"registry": "http://127.0.0.1:5000"}, "registry"),
            ({"repository": "Team/Web"}, "repository"),
            ({"tags": []}, "tags"),
            ({"tags": ["bad tag"]}, "tags"),
            ({"tags": [], "versions": ">=1.x"}, "versions"),
            ({"tags": [], "newest": 0}, "newest"),
            ({"tags": [], "pattern": "a/b"}, "pattern"),
            ({"credential": "nobody-knows-it"}, "credential"),
            ({"name": "Upper"}, "name"),
        ],
    )
    def test_bad_sources_are_refused_naming_the_field(self, stack, arguments, field):
        call = dict(name="good", registry="127.0.0.1:5999", repository="team/web", tags=["1.0"])
        call.update(arguments)
        with pytest.raises(InvalidRequest, match=rf"\b{field}\b"):
            stack.rpc("catalog", "set_library_source", **call)

    def test_developers_may_not_manage_the_library(self, stack, developers, upstream):
        _, (_, identity) = next(iter(developers.items()))
        calls = (
            lambda rpc: rpc.catalog.list_library_sources(),
            lambda rpc: rpc.catalog.set_library_source("mine", upstream.host, "team/web", tags=["1"]),
            lambda rpc: rpc.catalog.sync_library(),
            lambda rpc: rpc.catalog.get_library_sync(),
        )
        # The catalog refuses a developer's identity, even from a broker user allowed the method...
        for call in calls:
            with stack.proxy("admin", identity) as rpc, pytest.raises(Forbidden, match="not a platform admin"):
                call(rpc)
        # ...and the broker refuses the gateway's user the methods outright.
        for call in calls:
            with stack.proxy("gateway", identity) as rpc, pytest.raises(AccessRefused, match="library"):
                call(rpc)

    def test_one_sync_at_a_time(self, stack, upstream):
        name = unique("busy")
        push_tags(upstream, f"team/{name}", [f"1.{n}" for n in range(6)])
        set_source(stack, name, upstream, f"team/{name}", versions=">=1")
        first = stack.rpc("catalog", "sync_library", name)
        try:
            with pytest.raises(Conflict, match=f"library sync {first['sync_id']}"):
                stack.rpc("catalog", "sync_library")
        finally:
            wait_until(
                lambda: stack.rpc("catalog", "get_library_sync", first["sync_id"], items=False)["status"] != "running",
                timeout=60,
                what="the first sync's end",
            )


class TestLibraryRobot:
    def test_pushes_to_the_library_and_nowhere_else(self, stack, tenant):
        robot = stack.services["catalog"].own
        session = token_session(robot["LIBRARY_REGISTRY_USERNAME"], robot["LIBRARY_REGISTRY_PASSWORD"])
        pushed = push_image(stack.registry.url, f"library/{unique('robot')}", "1", content=b"robot", session=session)
        assert stack.registry.manifest_digest(pushed["repository"], "1") == pushed["digest"]
        with pytest.raises(requests.HTTPError) as refused:
            push_image(stack.registry.url, f"{tenant}/app", "1", content=b"robot", session=session)
        assert refused.value.response.status_code == 401
        assert stack.registry.tags(f"{tenant}/app") == []


class TestCommandLine:
    def test_an_admin_sets_a_source_and_syncs_it_with_progress(self, stack, upstream, tenant):
        name = unique("cli")
        digests = push_tags(upstream, f"team/{name}", ["1.0", "1.1", "edge"])
        set_out = imagehub(
            stack,
            *("library-sources", "set", name, "--registry", upstream.host, "--repository", f"team/{name}"),
            *("--versions", ">=1", "--newest", "1", "--tag", "edge", "--insecure"),
        ).stdout
        assert set_out == f"library/{name} mirrors {upstream.host}/team/{name}: edge + in >=1 (newest 1)\n"
        listed = imagehub(stack, "--json", "library-sources", "list").stdout
        assert {s["name"]: s["tags"] for s in json.loads(listed)["items"]}[name] == ["edge"]

        synced = imagehub(stack, "library-sync", name)
        lines = synced.stdout.splitlines()
        assert lines[0].startswith("Library sync ") and lines[0].endswith(f"(source {name})")
        summary = next(line for line in lines if line.startswith("Library sync ") and " finished in " in line)
        assert summary.endswith(": 2 copied, 0 failed"), synced.stdout
        for tag in ("1.1", "edge"):
            assert any(f" {tag} " in line and "copied" in line and digests[tag][7:19] in line for line in lines), (
                synced.stdout
            )

        # A developer gets the catalog's refusal, and a second sync exits 0 having copied nothing.
        refused = imagehub(stack, "library-sources", "list", account=stack.accounts[tenant], check=False)
        assert refused.returncode == 1 and "not a platform admin" in refused.stderr
        again = imagehub(stack, "--json", "library-sync-status", "--wait")
        assert json.loads(again.stdout)["counts"]["copied"] == 2
