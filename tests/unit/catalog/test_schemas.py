"""RPC argument checks: every bad argument is an InvalidRequest that names it."""

import pytest

from catalog import schemas
from shared.contracts.errors import InvalidRequest


class TestPaging:
    def test_defaults(self):
        assert schemas.load_args(schemas.Paging) == {"page": 1, "page_size": 50}

    @pytest.mark.parametrize(
        "page, page_size, message",
        [
            (0, 50, "page must be 1 or more, got 0"),
            (-1, 50, "page must be 1 or more"),
            (1, 0, "page_size must be from 1 to 200, got 0"),
            (1, 201, "page_size must be from 1 to 200, got 201"),
            ("2", 50, "page must be an integer"),
            (1, 2.5, "page_size must be an integer"),
            (True, 50, "page must be an integer"),
            (1, None, "page_size"),
        ],
    )
    def test_out_of_range_or_wrong_type_is_refused(self, page, page_size, message):
        with pytest.raises(InvalidRequest, match=message):
            schemas.load_args(schemas.Paging, page=page, page_size=page_size)

    @pytest.mark.parametrize("page_size", [1, 200])
    def test_bounds_are_inclusive(self, page_size):
        assert schemas.load_args(schemas.Paging, page=3, page_size=page_size)["page_size"] == page_size


class TestTenant:
    @pytest.mark.parametrize(
        "tenant_id, message",
        [
            (None, "tenant_id is required"),
            ("", "tenant_id is empty"),
            ("Acme", "tenant_id 'Acme' must be lower-case"),
            ("a/b", "tenant_id 'a/b' must be lower-case letters"),
            (42, "tenant_id must be a string"),
            ("library", "'library' is the public library"),
        ],
    )
    def test_listing_needs_a_valid_tenant(self, tenant_id, message):
        with pytest.raises(InvalidRequest, match=message):
            schemas.load_args(schemas.TenantRepositoryQuery, tenant_id=tenant_id)

    def test_reading_a_repository_allows_an_anonymous_caller(self):
        assert schemas.load_args(schemas.RepositoryRef, tenant_id=None, repository="library/nginx") == {
            "tenant_id": None,
            "repository": "library/nginx",
        }

    def test_deleting_needs_a_tenant(self):
        with pytest.raises(InvalidRequest, match="tenant_id is required"):
            schemas.load_args(schemas.DeleteTag, tenant_id=None, repository="t1/app", tag="v1")


class TestFlags:
    @pytest.mark.parametrize("value", ["yes", "true", 2])
    def test_ownbase_must_be_a_boolean_or_none(self, value):
        with pytest.raises(InvalidRequest, match="ownbase must be true, false or null"):
            schemas.load_args(schemas.TenantRepositoryQuery, tenant_id="t1", ownbase=value)

    def test_force_must_be_a_boolean(self):
        with pytest.raises(InvalidRequest, match="force must be true or false"):
            schemas.load_args(schemas.DeleteTag, tenant_id="t1", repository="t1/a", tag="v1", force="no")

    def test_several_bad_arguments_are_all_named(self):
        with pytest.raises(InvalidRequest) as exc:
            schemas.load_args(schemas.TenantRepositoryQuery, tenant_id="t1", page=0, page_size=500, query=7)
        assert [p.split()[0] for p in str(exc.value).split("; ")] == ["page", "page_size", "query"]
