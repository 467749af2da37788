"""shared.contracts.schemas: loading RPC arguments, the tenant_id check, paging and the strict integer."""

import pytest
from marshmallow import Schema, ValidationError, fields

from shared.contracts.errors import InvalidRequest
from shared.contracts.schemas import MAX_PAGE_SIZE, Paging, StrictInteger, load_args, validate_tenant_id


class Listing(Paging):
    tenant_id = fields.String(
        required=True,
        validate=validate_tenant_id,
        error_messages={"required": "is required", "invalid": "must be a string"},
    )


class TestLoadArgs:
    def test_arguments_come_back_loaded(self):
        assert load_args(Listing, tenant_id="t1", page=2) == {"tenant_id": "t1", "page": 2, "page_size": 50}

    def test_each_bad_argument_is_named_once_in_order(self):
        with pytest.raises(InvalidRequest) as exc:
            load_args(Listing, page=0, page_size="x")
        assert str(exc.value) == ("page must be 1 or more, got 0; page_size must be an integer; tenant_id is required")

    def test_a_message_that_names_its_argument_is_not_prefixed_again(self):
        with pytest.raises(InvalidRequest) as exc:
            load_args(Listing, tenant_id="Acme")
        assert str(exc.value).startswith("tenant_id 'Acme' must be lower-case")

    def test_an_unknown_argument_is_refused(self):
        with pytest.raises(InvalidRequest, match="^colour Unknown field"):
            load_args(Listing, tenant_id="t1", colour="red")


class TestTenantId:
    @pytest.mark.parametrize("tenant_id", ["t1", "acme-corp"])
    def test_a_namespace_is_a_tenant(self, tenant_id):
        validate_tenant_id(tenant_id)

    @pytest.mark.parametrize(
        "tenant_id, message",
        [
            ("", "tenant_id is empty"),
            ("a/b", "tenant_id 'a/b' must be lower-case letters"),
            ("library", "'library' is the public library, not a tenant"),
        ],
    )
    def test_anything_else_is_refused(self, tenant_id, message):
        with pytest.raises(ValidationError, match=message):
            validate_tenant_id(tenant_id)


class TestPaging:
    def test_first_page_of_fifty_by_default(self):
        assert Paging().load({}) == {"page": 1, "page_size": 50}

    @pytest.mark.parametrize("page_size", [1, MAX_PAGE_SIZE])
    def test_bounds_are_inclusive(self, page_size):
        assert Paging().load({"page": 7, "page_size": page_size}) == {"page": 7, "page_size": page_size}

    @pytest.mark.parametrize(
        "arguments, errors",
        [
            ({"page": 0}, {"page": ["must be 1 or more, got 0"]}),
            ({"page_size": 0}, {"page_size": ["must be from 1 to 200, got 0"]}),
            ({"page_size": 201}, {"page_size": ["must be from 1 to 200, got 201"]}),
            ({"page": "2", "page_size": 2.5}, {"page": ["must be an integer"], "page_size": ["must be an integer"]}),
        ],
    )
    def test_out_of_range_or_not_an_int_is_refused(self, arguments, errors):
        with pytest.raises(ValidationError) as exc:
            Paging().load(arguments)
        assert exc.value.normalized_messages() == errors

    def test_a_schema_extends_it_with_its_own_arguments(self):
        assert Listing().load({"tenant_id": "t1", "page": 2}) == {"tenant_id": "t1", "page": 2, "page_size": 50}


class TestStrictInteger:
    class Count(Schema):
        n = StrictInteger()

    def test_an_int_is_taken(self):
        assert self.Count().load({"n": 3}) == {"n": 3}

    @pytest.mark.parametrize("value", ["3", 3.0, True])
    def test_anything_else_is_refused(self, value):
        with pytest.raises(ValidationError):
            self.Count().load({"n": value})


class TestBounds:
    """Arguments that would overflow a database's OFFSET or a column get InvalidRequest, not a crash."""

    def test_a_page_past_the_last_possible_one_is_refused(self):
        from shared.contracts.schemas import MAX_PAGE, Paging, load_args

        assert load_args(Paging, page=MAX_PAGE)["page"] == MAX_PAGE
        with pytest.raises(InvalidRequest, match=r"page must be at most 1000000, got 1000000000000000000"):
            load_args(Paging, page=10**18)

    def test_an_overlong_tenant_id_is_refused(self):
        from marshmallow import ValidationError

        from shared.contracts.schemas import MAX_TENANT_ID_LENGTH, validate_tenant_id

        validate_tenant_id("a" * MAX_TENANT_ID_LENGTH)
        with pytest.raises(ValidationError, match="at most 128 characters, got 300"):
            validate_tenant_id("a" * 300)
