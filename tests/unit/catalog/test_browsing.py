"""Reading the catalogue: latest-tag choice, tenant rules, pages, tag views."""

import pytest

from catalog import browsing, indexing
from shared.contracts.errors import Forbidden, InvalidReference, NotFound
from tests.unit.catalog.conftest import at, pushed

HOST = "registry.example:5000"


@pytest.fixture
def push(session, registry):
    def push(repository, tag, content="x", seconds=0, **kwargs):
        image = registry.add_image(repository, content, **kwargs)
        indexing.record_push(session, registry, pushed(repository, image["digest"], tag=tag, pushed_at=at(seconds)))
        session.commit()
        return image

    return push


def get_repository(session, tenant_id, repository):
    return browsing.get_repository(session, tenant_id, repository, HOST)


class TestLatestTag:
    def test_the_tag_named_latest_wins_over_newer_pushes(self, session, push):
        push("t1/app", "latest", "a", seconds=1)
        push("t1/app", "v2", "b", seconds=2)
        repository = get_repository(session, "t1", "t1/app")
        assert (repository["latest_tag"], repository["tag_count"]) == ("latest", 2)
        assert repository["pull_command"] == f"docker pull {HOST}/t1/app:latest"

    def test_without_latest_the_most_recent_push_wins(self, session, push):
        push("t1/app", "v1", "a", seconds=1)
        push("t1/app", "v3", "c", seconds=3)
        push("t1/app", "v2", "b", seconds=2)
        assert get_repository(session, "t1", "t1/app")["latest_tag"] == "v3"

    def test_a_repository_without_tags_has_no_latest_and_no_pull_command(self, session, registry):
        image = registry.add_image("t1/app")
        indexing.record_push(session, registry, pushed("t1/app", image["digest"]))
        session.commit()
        repository = get_repository(session, "t1", "t1/app")
        assert (repository["tag_count"], repository["latest_tag"], repository["pull_command"]) == (0, None, None)

    def test_list_items_carry_the_same_fields_per_repository(self, session, push):
        push("t1/app", "v1", "a", seconds=1)
        push("t1/app", "latest", "a", seconds=2)
        push("t1/web", "v9", "w", seconds=3)
        items = browsing.list_repositories(session, "t1", None, 1, 50, None, HOST)["items"]
        assert [(i["repository"], i["tag_count"], i["latest_tag"]) for i in items] == [
            ("t1/app", 2, "latest"),
            ("t1/web", 1, "v9"),
        ]
        assert items[0] == get_repository(session, "t1", "t1/app")


class TestTenantRules:
    def test_another_tenants_repository_is_forbidden_even_when_missing(self, session, push):
        push("t1/app", "v1")
        for repository in ("t1/app", "t1/does-not-exist"):
            with pytest.raises(Forbidden, match="tenant 't2' may not read"):
                get_repository(session, "t2", repository)

    def test_anonymous_callers_read_the_library_only(self, session, push):
        push("library/nginx", "latest")
        push("t1/app", "v1")
        assert get_repository(session, None, "library/nginx")["is_public"] is True
        assert get_repository(session, "t9", "library/nginx")["repository"] == "library/nginx"
        with pytest.raises(Forbidden, match="anonymous"):
            get_repository(session, None, "t1/app")

    def test_own_missing_repository_is_not_found(self, session):
        with pytest.raises(NotFound, match="t1/nope"):
            get_repository(session, "t1", "t1/nope")

    def test_bad_repository_name_is_an_invalid_reference(self, session):
        with pytest.raises(InvalidReference, match="lower-case"):
            get_repository(session, "t1", "t1/App")

    def test_list_repositories_shows_own_namespace_only(self, session, push):
        push("t1/app", "v1")
        push("t2/app", "v1")
        push("library/nginx", "latest")
        listed = browsing.list_repositories(session, "t1", None, 1, 50, None, HOST)
        assert [i["repository"] for i in listed["items"]] == ["t1/app"]
        public = browsing.list_public_repositories(session, None, 1, 50, HOST)
        assert [i["repository"] for i in public["items"]] == ["library/nginx"]


class TestListing:
    @pytest.fixture
    def five_repositories(self, push):
        for name in ("alpha", "beta", "java_ownbase", "gamma", "node_ownbase"):
            push(f"t1/{name}", "v1", name)

    def test_pages_split_the_list_and_report_the_total(self, session, five_repositories):
        pages = [browsing.list_repositories(session, "t1", None, page, 2, None, HOST) for page in (1, 2, 3, 4)]
        assert [[i["name"] for i in p["items"]] for p in pages] == [
            ["alpha", "beta"],
            ["gamma", "java_ownbase"],
            ["node_ownbase"],
            [],
        ]
        assert {(p["total"], p["page_size"]) for p in pages} == {(5, 2)}
        assert [p["page"] for p in pages] == [1, 2, 3, 4]

    def test_ownbase_filters_custom_base_images(self, session, five_repositories):
        own = browsing.list_repositories(session, "t1", None, 1, 50, True, HOST)
        other = browsing.list_repositories(session, "t1", None, 1, 50, False, HOST)
        assert [i["name"] for i in own["items"]] == ["java_ownbase", "node_ownbase"]
        assert [i["name"] for i in other["items"]] == ["alpha", "beta", "gamma"]

    def test_query_is_a_literal_substring_of_the_name(self, session, five_repositories):
        found = browsing.list_repositories(session, "t1", "_OWN", 1, 50, None, HOST)
        assert [i["name"] for i in found["items"]] == ["java_ownbase", "node_ownbase"]
        assert browsing.list_repositories(session, "t1", "a%a", 1, 50, None, HOST)["total"] == 0


class TestTags:
    def test_tags_are_listed_most_recently_pushed_first(self, session, push):
        push("t1/app", "old", "a", seconds=1)
        push("t1/app", "new", "b", seconds=3)
        push("t1/app", "mid", "c", seconds=2)
        listed = browsing.list_tags(session, "t1", "t1/app", 1, 2, HOST)
        assert [t["tag"] for t in listed["items"]] == ["new", "mid"]
        assert listed["total"] == 3

    def test_tag_detail_names_the_other_tags_on_its_digest(self, session, push):
        image = push("t1/app", "1.0", "same", author="ci")
        push("t1/app", "latest", "same", author="ci")
        push("t1/app", "2.0", "other")
        detail = browsing.get_tag(session, "t1", "t1/app", "1.0", HOST)
        assert detail["other_tags"] == ["latest"]
        assert (detail["digest"], detail["image_id"], detail["layers"], detail["creator"]) == (
            image["digest"],
            image["image_id"],
            image["layers"],
            "ci",
        )
        assert detail["pull_command"] == f"docker pull {HOST}/t1/app:1.0"
        assert detail["platforms"] is None

    def test_index_detail_lists_its_platforms_with_their_sizes(self, session, registry):
        children = [
            dict(registry.add_image("t1/multi", arch, architecture=arch, layer_size=size), architecture=arch)
            for arch, size in (("amd64", 1000), ("arm64", 2000))
        ]
        index = registry.add_index("t1/multi", children)
        for digest, tag in [(c["digest"], None) for c in children] + [(index, "1.0")]:
            indexing.record_push(session, registry, pushed("t1/multi", digest, tag=tag))
        session.commit()

        detail = browsing.get_tag(session, "t1", "t1/multi", "1.0", HOST)
        assert [(p["architecture"], p["size"]) for p in detail["platforms"]] == [
            ("amd64", children[0]["size"]),
            ("arm64", children[1]["size"]),
        ]
        assert detail["size"] == children[0]["size"] + children[1]["size"]
        [listed] = browsing.list_tags(session, "t1", "t1/multi", 1, 50, HOST)["items"]
        assert listed["size"] == detail["size"]

    def test_missing_tag_is_not_found(self, session, push):
        push("t1/app", "v1")
        with pytest.raises(NotFound, match="'v2'"):
            browsing.get_tag(session, "t1", "t1/app", "v2", HOST)
