"""shared.schemas: the paging arguments every listing takes, and the strict integer they use."""
import pytest
from marshmallow import Schema, ValidationError

from shared.schemas import MAX_PAGE_SIZE, Paging, StrictInteger


class TestPaging:
    def test_first_page_of_fifty_by_default(self):
        assert Paging().load({}) == {"page": 1, "page_size": 50}

    @pytest.mark.parametrize("page_size", [1, MAX_PAGE_SIZE])
    def test_bounds_are_inclusive(self, page_size):
        assert Paging().load({"page": 7, "page_size": page_size}) == {"page": 7, "page_size": page_size}

    @pytest.mark.parametrize("arguments, errors", [
        ({"page": 0}, {"page": ["must be 1 or more, got 0"]}),
        ({"page_size": 0}, {"page_size": ["must be from 1 to 200, got 0"]}),
        ({"page_size": 201}, {"page_size": ["must be from 1 to 200, got 201"]}),
        ({"page": "2", "page_size": 2.5}, {"page": ["must be an integer"], "page_size": ["must be an integer"]}),
    ])
    def test_out_of_range_or_not_an_int_is_refused(self, arguments, errors):
        with pytest.raises(ValidationError) as exc:
            Paging().load(arguments)
        assert exc.value.normalized_messages() == errors

    def test_a_schema_extends_it_with_its_own_arguments(self):
        class Listing(Paging):
            pass

        assert Listing().load({"page": 2}) == {"page": 2, "page_size": 50}


class TestStrictInteger:
    class Count(Schema):
        n = StrictInteger()

    def test_an_int_is_taken(self):
        assert self.Count().load({"n": 3}) == {"n": 3}

    @pytest.mark.parametrize("value", ["3", 3.0, True])
    def test_anything_else_is_refused(self, value):
        with pytest.raises(ValidationError):
            self.Count().load({"n": value})
