"""Regressions found by fuzzing the catalog's RPC (tests/integration/catalog/test_rpc_fuzz.py):
arguments that reached the database, or were taken for what they are not."""

from decimal import Decimal

import pytest

from catalog import schemas
from shared.contracts.errors import InvalidRequest


class TestQueryText:
    @pytest.mark.parametrize(
        "query, message",
        [
            ("a\x00b", "query must be text without NUL characters"),  # PostgreSQL refuses it in a literal
            ("\ud800", "query must be text without unpaired surrogates"),  # no UTF-8 encoder takes it
            ("a" * 256, "query must be at most 255 characters"),
        ],
    )
    def test_text_the_database_cannot_take_is_refused(self, query, message):
        with pytest.raises(InvalidRequest, match=f"^{message}"):
            schemas.load_args(schemas.PublicRepositoryQuery, query=query)

    def test_any_other_unicode_is_a_query(self):
        assert (
            schemas.load_args(schemas.PublicRepositoryQuery, query="\u00e9\U0001f600%_")["query"]
            == "\u00e9\U0001f600%_"
        )


class TestBooleans:
    @pytest.mark.parametrize("value", [0, 1, 0.0, 1.0, Decimal(0), "true", None])
    def test_only_true_and_false_are_booleans(self, value):
        with pytest.raises(InvalidRequest, match="^force must be true or false$"):
            schemas.load_args(schemas.DeleteTag, tenant_id="t1", repository="t1/app", tag="v1", force=value)

    def test_true_and_false_are(self):
        assert (
            schemas.load_args(schemas.DeleteTag, tenant_id="t1", repository="t1/app", tag="v1", force=True)["force"]
            is True
        )


class TestResyncArguments:
    @pytest.mark.parametrize("pass_id", [2**31, 2**63, 2**100])
    def test_a_pass_id_past_any_row_id_is_refused(self, pass_id):
        with pytest.raises(InvalidRequest, match=f"^pass_id must be at most {2**31 - 1}, got {pass_id}$"):
            schemas.load_args(schemas.ResyncQuery, pass_id=pass_id)

    def test_a_namespace_longer_than_a_repository_name_is_refused(self):
        with pytest.raises(InvalidRequest, match="^namespace must be at most 255 characters, got 256$"):
            schemas.load_args(schemas.ResyncArgs, namespace="a" * 256)
