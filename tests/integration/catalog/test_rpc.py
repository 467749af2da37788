"""The RPC contract as another platform component sees it: results, and errors as their own types."""

import re

import pytest

from shared.contracts.errors import Conflict, Forbidden, InvalidReference, InvalidRequest, NotFound
from shared.contracts.events import TAG_REMOVED
from tests.support import push_image, wait_until


@pytest.fixture
def nginx(registry, webhook):
    webhook.push(push_image(registry.url, "library/nginx", "latest", content=b"nginx"))


class TestBrowsing:
    def test_repository_detail(self, app, rpc, registry, tenant):
        repository = rpc.get_repository(tenant, app[0])
        assert {
            k: repository[k]
            for k in (
                "repository",
                "namespace",
                "name",
                "is_public",
                "is_ownbase",
                "description",
                "tag_count",
                "latest_tag",
                "pull_command",
            )
        } == {
            "repository": app[0],
            "namespace": tenant,
            "name": "app",
            "is_public": False,
            "is_ownbase": False,
            "description": "",
            "tag_count": 3,
            "latest_tag": "v2",
            "pull_command": f"docker pull {registry.host}/{app[0]}:v2",
        }
        assert repository["updated_at"].endswith("+00:00")

    def test_public_library_is_curated_and_readable_by_anyone(self, nginx, rpc, registry):
        public = rpc.list_public_repositories(query="ngin")
        [listed] = public["items"]
        assert (public["total"], public["page"], public["page_size"]) == (1, 1, 50)
        assert (listed["repository"], listed["is_public"], listed["latest_tag"]) == ("library/nginx", True, "latest")
        assert "HTTP server" in listed["description"] and listed["overview"]
        assert listed["pull_command"] == f"docker pull {registry.host}/library/nginx:latest"
        assert rpc.get_repository(None, "library/nginx") == listed
        assert rpc.get_tag("someone-else", "library/nginx", "latest")["tag"] == "latest"

    def test_tags_newest_first_in_pages(self, app, rpc, tenant):
        first = rpc.list_tags(tenant, app[0], page=1, page_size=2)
        second = rpc.list_tags(tenant, app[0], page=2, page_size=2)
        assert [t["tag"] for t in first["items"] + second["items"]] == ["v2", "stable", "v1"]
        assert (first["total"], second["page"]) == (3, 2)
        assert set(first["items"][0]) == {
            "repository",
            "tag",
            "digest",
            "image_id",
            "size",
            "created",
            "creator",
            "pushed_at",
            "updated_at",
            "media_type",
            "architecture",
            "os",
            "variant",
            "pull_command",
        }

    def test_parse_reference(self, catalog, rpc):
        assert rpc.parse_reference("127.0.0.1:5000/t1/java_ownbase:1.0") == {
            "registry": "127.0.0.1:5000",
            "namespace": "t1",
            "name": "java_ownbase",
            "repository": "t1/java_ownbase",
            "tag": "1.0",
            "digest": None,
            "is_ownbase": True,
            "is_public": False,
        }
        with pytest.raises(InvalidReference, match="lower-case"):
            rpc.parse_reference("t1/Java")


class TestCallerErrors:
    def test_another_tenant_is_forbidden(self, app, rpc, tenant):
        for call in (
            lambda: rpc.get_repository("intruder", app[0]),
            lambda: rpc.list_tags("intruder", app[0]),
            lambda: rpc.get_tag("intruder", app[0], "v1"),
            lambda: rpc.get_tag(None, app[0], "v1"),
        ):
            with pytest.raises(Forbidden):
                call()
        assert rpc.list_repositories("intruder")["total"] == 0

    def test_missing_repository_and_tag_are_not_found(self, app, rpc, tenant):
        with pytest.raises(NotFound, match="nope"):
            rpc.get_repository(tenant, f"{tenant}/nope")
        with pytest.raises(NotFound, match="v9"):
            rpc.get_tag(tenant, app[0], "v9")

    @pytest.mark.parametrize("page_size", [0, 201, "10"])
    def test_bad_page_size_is_an_invalid_request_naming_it(self, catalog, rpc, tenant, page_size):
        with pytest.raises(InvalidRequest, match="page_size"):
            rpc.list_repositories(tenant, page_size=page_size)
        with pytest.raises(InvalidRequest, match="page_size"):
            rpc.list_public_repositories(page_size=page_size)

    def test_bad_names_are_invalid_references(self, catalog, rpc, tenant):
        with pytest.raises(InvalidReference, match="'<namespace>/<name>'"):
            rpc.get_repository(tenant, "just-a-name")
        with pytest.raises(InvalidReference, match="tag"):
            rpc.get_tag(tenant, f"{tenant}/app", "-bad")
        with pytest.raises(InvalidRequest, match="tenant_id is required"):
            rpc.list_repositories(None)


class TestDeleteTag:
    def test_sibling_tags_conflict_and_nothing_is_deleted(self, app, rpc, registry, tenant):
        with pytest.raises(Conflict, match="'stable'"):
            rpc.delete_tag(tenant, app[0], "v1")
        assert registry.tags(app[0]) == ["stable", "v1", "v2"]
        assert rpc.get_repository(tenant, app[0])["tag_count"] == 3

    def test_force_deletes_in_registry_and_catalogue_at_once(self, app, rpc, registry, observed, tenant):
        repository, a, b = app
        result = rpc.delete_tag(tenant, repository, "v1", force=True)
        assert result == {"repository": repository, "tag": "v1", "digest": a, "deleted_tags": ["stable", "v1"]}
        assert registry.tags(repository) == ["v2"]
        assert registry.manifest_digest(repository, a) is None
        assert [t["tag"] for t in rpc.list_tags(tenant, repository)["items"]] == ["v2"]
        assert sorted(p["tag"] for p in observed.wait_for(TAG_REMOVED, 2)) == ["stable", "v1"]

    def test_the_registrys_later_notifications_are_no_ops(self, app, rpc, webhook, observed, tenant):
        repository, _, b = app
        rpc.delete_tag(tenant, repository, "v2")
        webhook.delete(repository, digest=b)
        webhook.delete(repository, tag="v2")
        history = rpc.list_tag_history(tenant, repository, "v2")["items"]
        assert [(h["action"], h["actor"]) for h in history] == [("removed", tenant), ("pushed", None)]
        assert len(observed.wait_for(TAG_REMOVED)) == 1

    def test_only_the_owner_deletes_and_the_library_is_read_only(self, app, nginx, rpc, registry, tenant):
        with pytest.raises(Forbidden):
            rpc.delete_tag("intruder", app[0], "v2")
        with pytest.raises(Forbidden, match="public library"):
            rpc.delete_tag(tenant, "library/nginx", "latest")
        assert registry.tags(app[0]) == ["stable", "v1", "v2"]
        assert registry.tags("library/nginx") == ["latest"]


class TestRepositoryInfo:
    """``set_repository_info``: who may describe which repository, and what text is taken."""

    OVERVIEW = "# nginx\n\nServes `<html>` fast.\n\n```\n<script>shown, not run</script>\n```\n"

    def test_an_admin_describes_a_library_repository_and_every_reader_sees_it(self, nginx, rpc, as_developer):
        admin = as_developer("ana", None, admin=True)
        answer = admin.set_repository_info(None, "library/nginx", description="The web server.", overview=self.OVERVIEW)
        assert (answer["description"], answer["overview"]) == ("The web server.", self.OVERVIEW)
        assert answer == rpc.get_repository(None, "library/nginx")
        [listed] = as_developer("dev", "t-reader").list_public_repositories(query="nginx")["items"]
        assert (listed["description"], listed["overview"]) == ("The web server.", self.OVERVIEW)
        record = wait_until(
            lambda: rpc.list_audit(action="catalog.set_repository_info")["items"], what="the audit record"
        )[0]
        assert (record["actor"], record["target"], record["outcome"]) == ("ana (admin)", "library/nginx", "ok")

    def test_a_tenant_describes_its_own_and_what_is_not_given_is_kept(self, app, rpc, as_developer, tenant):
        developer = as_developer("dev", tenant)
        developer.set_repository_info(tenant, app[0], description="Our app.")
        answer = developer.set_repository_info(tenant, app[0], overview="**Runs** the app.")
        assert (answer["description"], answer["overview"]) == ("Our app.", "**Runs** the app.")
        assert answer["tag_count"] == 3
        [listed] = rpc.list_repositories(tenant)["items"]
        assert (listed["description"], listed["overview"]) == ("Our app.", "**Runs** the app.")
        cleared = developer.set_repository_info(tenant, app[0], description="")
        assert (cleared["description"], cleared["overview"]) == ("", "**Runs** the app.")

    def test_an_admin_describes_a_tenants_repository(self, app, as_developer, tenant):
        answer = as_developer("ana", None, admin=True).set_repository_info(tenant, app[0], description="Curated.")
        assert answer["description"] == "Curated."

    def test_only_admins_describe_the_library_and_only_the_owner_its_own(self, app, nginx, rpc, as_developer, tenant):
        before = rpc.get_repository(None, "library/nginx")
        with pytest.raises(Forbidden, match="platform admin"):
            as_developer("dev", tenant).set_repository_info(tenant, "library/nginx", description="Mine now.")
        with pytest.raises(Forbidden, match="platform admin"):
            rpc.set_repository_info(None, "library/nginx", description="A service's.")
        intruder = as_developer("eve", "intruder")
        with pytest.raises(Forbidden):
            intruder.set_repository_info("intruder", app[0], description="Hijacked.")
        with pytest.raises(Forbidden):
            intruder.set_repository_info(tenant, app[0], description="Hijacked.")
        with pytest.raises(Forbidden):  # another tenant's name tells nothing, whether it exists or not
            intruder.set_repository_info("intruder", f"{tenant}/nope", description="Hijacked.")
        assert rpc.get_repository(None, "library/nginx") == before
        assert rpc.get_repository(tenant, app[0])["description"] == ""

    @pytest.mark.parametrize(
        ("given", "field", "why"),
        [
            ({"description": "x" * 101}, "description", "at most 100 characters, got 101"),
            ({"description": "two\nlines"}, "description", "one line"),
            ({"overview": "Hi <img src=x onerror=alert(1)>"}, "overview", "raw HTML"),
            ({"overview": "<script>alert(1)</script>"}, "overview", "raw HTML"),
            ({"overview": "[docs](javascript:alert(1))"}, "overview", "javascript:"),
            ({"overview": "x" * 25_001}, "overview", "at most 25000 characters"),
        ],
    )
    def test_bad_text_is_refused_naming_the_field_and_nothing_changes(
        self, app, rpc, as_developer, tenant, given, field, why
    ):
        developer = as_developer("dev", tenant)
        developer.set_repository_info(tenant, app[0], description="Kept.", overview="Kept too.")
        with pytest.raises(InvalidRequest, match=rf"^{field} .*{re.escape(why)}"):
            developer.set_repository_info(tenant, app[0], **given)
        found = rpc.get_repository(tenant, app[0])
        assert (found["description"], found["overview"]) == ("Kept.", "Kept too.")

    def test_an_unknown_repository_is_not_found(self, catalog, as_developer, tenant):
        with pytest.raises(NotFound, match="nope"):
            as_developer("dev", tenant).set_repository_info(tenant, f"{tenant}/nope", description="Hello.")
        with pytest.raises(NotFound, match="nope"):
            as_developer("ana", None, admin=True).set_repository_info(None, "library/nope", description="Hello.")
