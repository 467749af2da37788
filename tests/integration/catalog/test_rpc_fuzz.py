"""Every RPC method of the catalog fuzzed with generated arguments, through a real RPC on a real
RabbitMQ vhost, on SQLite and PostgreSQL (issue 6, "bad input").

For each method, hypothesis draws every argument either from its valid values or from junk:
None, booleans, integers (negative, zero, past 64 bits), floats (NaN, infinities), decimals,
bytes, UUIDs and datetimes (kombu's JSON carries these as themselves), unicode and lone
surrogates, NUL characters, overlong strings, lists, dicts, hostile names. An oracle written from
docs/catalog-api.md says which arguments are bad; then:

* a call with a bad argument raises the documented type — ``InvalidRequest`` naming every bad
  argument checked by shape (``tenant_id``, ``page``, ``query``, …), else ``InvalidReference``
  for a bad repository, tag or reference;
* any other call returns a result or raises an error of ``shared.contracts.errors``: never a bare
  ``RemoteError``/``UnexpectedError``, never a timeout;
* the service still answers afterwards.
"""

import decimal
import re
import unicodedata

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from nameko.exceptions import RemoteError

from shared.contracts.errors import (
    Conflict,
    Forbidden,
    ImagehubError,
    InvalidReference,
    InvalidRequest,
    NotFound,
    RegistryUnavailable,
)
from tests.integration.webhook.test_fuzz import (
    COMPONENT,
    HOSTILE_NAMES,
    HOSTILE_TAGS,
    TAG,
    fuzz_settings,
    unseeded_vhost_names,
    valid_repository,
)

assert unseeded_vhost_names  # an autouse fixture of this module too

MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 200
MAX_ID = 2**31 - 1
BAD, GOOD, UNKNOWN = False, True, None

# -- junk ------------------------------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**200), -1),
    st.integers(2**63 - 2, 2**200),
    st.just(0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf")]),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.binary(max_size=16),
    st.uuids(),
    st.datetimes(),
    st.text(max_size=20),
    st.text(min_size=256, max_size=600).map(lambda s: (s * 3)[:600]),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "t1\x00",
            "\ud800",
            "t1\ud800",
            "LIBRARY",
            "library",
            "-",
            "../..",
            "' OR 1=1 --",
            "%",
            "_",
            "\\",
            "a" * 129,
            "a" * 256,
            "a" * 10000,
            "\u00e9",
            "\U0001f600",
        ]
    ),
    st.sampled_from(HOSTILE_NAMES),
    st.sampled_from(HOSTILE_TAGS),
    st.lists(st.integers() | st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers() | st.none(), max_size=3),
)
tenants = st.from_regex(r"t[a-z0-9]{1,8}", fullmatch=True)
pages = st.integers(1, 3) | st.just(MAX_PAGE)
page_sizes = st.integers(1, MAX_PAGE_SIZE)
queries = st.none() | st.text(alphabet="abc_%-.", max_size=10)


# -- the oracle: one check per kind of argument, from docs/catalog-api.md ---------------------------


def _bytes_or(check):
    """kombu's JSON carries bytes as bytes, and marshmallow reads bytes as text for a string
    argument: whether b"t1" is a good tenant_id is left open."""
    return lambda value: UNKNOWN if isinstance(value, bytes) else check(value)


def _int_in(low, high):
    return lambda value: type(value) is int and low <= value <= high


def _unicode(value):
    try:
        value.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def tenant_check(required):
    def check(value):
        if value is None:
            return not required
        return (
            isinstance(value, str)
            and len(value) <= 128
            and value != "library"
            and COMPONENT.fullmatch(value) is not None
        )

    return _bytes_or(check)


SHAPE_CHECKS = {  # InvalidRequest naming the argument
    "page": _int_in(1, MAX_PAGE),
    "page_size": _int_in(1, MAX_PAGE_SIZE),
    "query": _bytes_or(
        lambda v: v is None or (isinstance(v, str) and len(v) <= 255 and "\x00" not in v and _unicode(v))
    ),
    "ownbase": lambda v: v is None or type(v) is bool,
    "force": lambda v: type(v) is bool,
    "wait": lambda v: type(v) is bool,
    "items": lambda v: type(v) is bool,
    "pass_id": lambda v: v is None or (type(v) is int and 1 <= v <= MAX_ID),
    "namespace": _bytes_or(
        lambda v: v is None or (isinstance(v, str) and len(v) <= 255 and COMPONENT.fullmatch(v) is not None)
    ),
}


def _curated_text(limit, allowed_controls):
    """A description or overview (docs/catalog-api.md, ``set_repository_info``): text within
    ``limit`` characters without control characters besides ``allowed_controls``; whether text
    holding ``<`` or ``:`` is safe Markdown is the catalog's to say (unit-tested in test_curation)."""

    def check(value):
        if value is None:
            return True
        if not isinstance(value, str) or len(value) > limit or not _unicode(value):
            return False
        if any(c not in allowed_controls and unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
            return False
        return UNKNOWN if "<" in value or ":" in value else True

    return _bytes_or(check)


SHAPE_CHECKS["description"] = _curated_text(100, "")
SHAPE_CHECKS["overview"] = _curated_text(25_000, "\n\t")
NAME_CHECKS = {  # InvalidReference
    "repository": lambda v: isinstance(v, str) and valid_repository(v),
    "tag": lambda v: isinstance(v, str) and TAG.fullmatch(v) is not None,
    "history_tag": lambda v: v is None or (isinstance(v, str) and TAG.fullmatch(v) is not None),
    "reference": lambda v: False if not isinstance(v, str) else UNKNOWN,
}

# method -> {argument: (check name, strategy of its valid values)}
METHODS = {
    "list_public_repositories": {
        "query": ("query", queries),
        "page": ("page", pages),
        "page_size": ("page_size", page_sizes),
    },
    "list_repositories": {
        "tenant_id": ("tenant_id", tenants),
        "query": ("query", queries),
        "page": ("page", pages),
        "page_size": ("page_size", page_sizes),
        "ownbase": ("ownbase", st.none() | st.booleans()),
    },
    "get_repository": {
        "tenant_id": ("optional_tenant_id", st.none() | tenants),
        "repository": ("repository", st.sampled_from(["t1/app", "library/nginx", "t2/x_ownbase"])),
    },
    "set_repository_info": {
        "tenant_id": ("optional_tenant_id", st.none() | tenants),
        "repository": ("repository", st.sampled_from(["t1/app", "library/nginx"])),
        "description": ("description", st.none() | st.sampled_from(["", "A web server.", "é" * 100])),
        "overview": ("overview", st.none() | st.sampled_from(["", "# nginx\n\nServes `<html>`.\n", "x" * 25_000])),
    },
    "list_tags": {
        "tenant_id": ("optional_tenant_id", st.none() | tenants),
        "repository": ("repository", st.sampled_from(["t1/app", "library/nginx"])),
        "page": ("page", pages),
        "page_size": ("page_size", page_sizes),
    },
    "get_tag": {
        "tenant_id": ("optional_tenant_id", st.none() | tenants),
        "repository": ("repository", st.sampled_from(["t1/app", "library/nginx"])),
        "tag": ("tag", st.sampled_from(["v1", "latest", "1.0-rc.1"])),
    },
    "delete_tag": {
        "tenant_id": ("tenant_id", tenants),
        "repository": ("repository", st.just("t1/app")),
        "tag": ("tag", st.just("v1")),
        "force": ("force", st.booleans()),
    },
    "list_tag_history": {
        "tenant_id": ("optional_tenant_id", st.none() | tenants),
        "repository": ("repository", st.just("t1/app")),
        "tag": ("history_tag", st.none() | st.just("v1")),
        "page": ("page", pages),
        "page_size": ("page_size", page_sizes),
    },
    "parse_reference": {
        "reference": (
            "reference",
            st.sampled_from(["t1/app", "127.0.0.1:5000/t1/java_ownbase:1.0", "library/nginx@sha256:" + "a" * 64]),
        )
    },
    "list_set_aside_events": {"page": ("page", pages), "page_size": ("page_size", page_sizes)},
    # Only bad values for resync's arguments: a good call would start a pass over the registry.
    "resync": {"namespace": ("namespace", st.nothing()), "wait": ("wait", st.nothing())},
    "get_resync": {"pass_id": ("pass_id", st.none() | st.integers(1, 5)), "items": ("items", st.booleans())},
}
CHECKS = dict(SHAPE_CHECKS, tenant_id=tenant_check(True), optional_tenant_id=tenant_check(False), **NAME_CHECKS)
SHAPE = set(SHAPE_CHECKS) | {"tenant_id", "optional_tenant_id"}
# What a call whose arguments are all good may still meet (docs/catalog-api.md).
GOOD_CALL_ERRORS = (NotFound, Forbidden, Conflict, RegistryUnavailable, InvalidReference)


@st.composite
def calls(draw, method):
    """``(arguments, {argument: GOOD/BAD/UNKNOWN})``: each argument valid or junk, at least one junk
    (bad arguments are the point; a method's good calls are tested in test_rpc.py)."""
    spec = METHODS[method]
    names = sorted(spec)
    # Mostly one bad argument (so that none hides another's problem), sometimes several.
    junk_args = draw(st.sampled_from(names).map(lambda name: {name}) | st.sets(st.sampled_from(names), min_size=1))
    arguments, verdicts = {}, {}
    for name, (check, valid) in spec.items():
        value = draw(junk) if name in junk_args or valid.is_empty else draw(valid)
        arguments[name] = value
        verdicts[name] = CHECKS[check](value)
    if any(valid.is_empty for _, valid in spec.values()):  # bad calls only (resync)
        assume(any(ok is BAD for ok in verdicts.values()))
    return arguments, verdicts


def call(rpc, method, arguments):
    """``(result, error)`` of the call over RPC."""
    try:
        return getattr(rpc, method)(**arguments), None
    except Exception as exc:  # judged by the caller
        return None, exc


def judge(method, arguments, verdicts, result, error):
    """Assert the answer is the one the oracle expects."""
    shape_bad = sorted(name for name, ok in verdicts.items() if ok is BAD and METHODS[method][name][0] in SHAPE)
    names_bad = [name for name, ok in verdicts.items() if ok is BAD and METHODS[method][name][0] not in SHAPE]
    unknown = any(ok is UNKNOWN for ok in verdicts.values())
    assert not isinstance(error, RemoteError), f"{method}({arguments!r}) -> bare {error!r}"
    assert error is None or isinstance(error, ImagehubError), f"{method}({arguments!r}) -> untyped {error!r}"
    if shape_bad and not unknown:
        assert isinstance(error, InvalidRequest), f"{method}({arguments!r}) -> {result or error!r}"
        for name in shape_bad:  # every bad argument is named
            assert re.search(rf"(^|; ){name} ", str(error)), f"{name} not named in {error}"
    elif shape_bad or names_bad:
        expected = (InvalidRequest, InvalidReference) if unknown else (InvalidReference,)
        if not unknown or error is not None:
            assert isinstance(error, expected), f"{method}({arguments!r}) -> {result or error!r}"
    elif error is not None:
        assert isinstance(error, GOOD_CALL_ERRORS + (InvalidRequest,)), f"{method}({arguments!r}) -> {error!r}"
    if error is None:
        assert isinstance(result, dict)


def assert_still_answers(rpc):
    assert rpc.list_public_repositories() == {"items": [], "total": 0, "page": 1, "page_size": 50}
    with pytest.raises(InvalidRequest, match="^page_size must be from 1 to 200, got 0$"):
        rpc.list_public_repositories(page_size=0)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_bad_arguments_get_typed_errors(rpc, method):
    seen = {}

    @fuzz_settings(60)
    @given(drawn=calls(method))
    def run(drawn):
        arguments, verdicts = drawn
        result, error = call(rpc, method, arguments)
        key = type(error).__name__ if error is not None else "result"
        seen[key] = seen.get(key, 0) + 1
        judge(method, arguments, verdicts, result, error)

    run()
    print(f"\n[fuzz] catalog.{method}: {sum(seen.values())} calls, answers {dict(sorted(seen.items()))}")
    assert "InvalidRequest" in seen or "InvalidReference" in seen
    assert_still_answers(rpc)


class TestRegressions:
    """Bad arguments that reached the database before the fuzzing found them."""

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("query", ["a\x00b", "\ud800", "x\udfff"])
    def test_a_query_the_database_cannot_take_is_an_invalid_request(self, rpc, query):
        for method, args in (("list_public_repositories", ()), ("list_repositories", ("t1",))):
            with pytest.raises(InvalidRequest, match="^query must be text"):
                getattr(rpc, method)(*args, query=query)

    @pytest.mark.timeout(60)
    @pytest.mark.parametrize("pass_id", [2**31, 2**63, 2**100])
    def test_a_pass_id_past_any_pass_is_an_invalid_request(self, rpc, pass_id):
        with pytest.raises(InvalidRequest, match=f"^pass_id must be at most {MAX_ID}, got {pass_id}$"):
            rpc.get_resync(pass_id)

    @pytest.mark.timeout(60)
    def test_a_namespace_longer_than_any_repository_name_is_an_invalid_request(self, rpc):
        with pytest.raises(InvalidRequest, match="^namespace must be at most 255 characters"):
            rpc.resync("a" * 256)

    @pytest.mark.timeout(60)
    def test_a_call_with_the_wrong_arguments_is_nameko_incorrect_signature(self, rpc):
        from nameko.exceptions import IncorrectSignature

        with pytest.raises(IncorrectSignature):
            rpc.get_tag("t1", "t1/app")
        with pytest.raises(IncorrectSignature):
            rpc.list_public_repositories(colour="blue")
        assert_still_answers(rpc)


def test_the_oracle_knows_the_documented_cases():
    assert CHECKS["tenant_id"]("t1") and not CHECKS["tenant_id"]("library") and not CHECKS["tenant_id"](None)
    assert CHECKS["optional_tenant_id"](None) and CHECKS["tenant_id"](b"t1") is UNKNOWN
    assert not CHECKS["page"](True) and not CHECKS["page"](0) and CHECKS["page"](MAX_PAGE)
    assert not CHECKS["page"](1.0) and not CHECKS["page"](decimal.Decimal(1)) and not CHECKS["page_size"](201)
    assert not CHECKS["repository"]("t1/App") and CHECKS["repository"]("t1/app")
    assert not CHECKS["tag"]("-v1") and CHECKS["history_tag"](None)
