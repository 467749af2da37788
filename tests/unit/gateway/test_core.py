"""The gateway's edge without a broker: problems, sessions and CSRF, request validation, the
OpenAPI document and its routes."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import openapi, problems, schemas, sessions
from gateway.service import GatewayService, allowed_methods
from gateway.web import load_json, load_query
from shared.contracts.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
)
from shared.runtime.http import client_address
from shared.runtime.identity import IdentityVerifier, identity_audience

ISSUER = "test-issuer"
KEY = ec.generate_private_key(ec.SECP256R1())
VERIFIER = IdentityVerifier(KEY.public_key(), ISSUER)
TOKENS = sessions.VerifiedTokens(VERIFIER, "gw")
CSRF_KEY = b"k" * 32


def identity_token(**claims):
    now = datetime.now(UTC)
    body = {
        "iss": ISSUER,
        "aud": identity_audience(ISSUER),
        "token_use": "identity",
        "sub": "alice",
        "tenant": "acme",
        "admin": False,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, KEY, algorithm="ES256")


def request(method="GET", path="/api/v1/library", headers=None, cookies=None, **kwargs):
    builder = EnvironBuilder(method=method, path=path, headers=headers or {}, **kwargs)
    environ = builder.get_environ()
    if cookies:
        environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return Request(environ)


# -- problems ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc, status",
    [
        (InvalidRequest("page must be 1 or more"), 400),
        (Unauthorized("sign in"), 401),
        (Forbidden("no"), 403),
        (NotFound("gone"), 404),
        (Conflict("taken"), 409),
        (RateLimited("slow down", 7), 429),
        (ServiceUnavailable("catalog down"), 503),
        (problems.MethodNotAllowed("no", ["GET"]), 405),
        (problems.UnsupportedMediaType("json please"), 415),
        (KeyError("bug"), 500),
    ],
)
def test_each_error_has_one_status_and_a_problem_body(exc, status):
    got, body, headers = problems.problem(exc, "/api/v1/x", "rid-1")
    assert got == status == body["status"]
    assert body["type"].startswith(problems.TYPE_PREFIX) and body["instance"] == "/api/v1/x"
    assert body["request_id"] == "rid-1"
    if status == 500:
        assert "bug" not in body["detail"]  # nothing of a bug reaches the caller
    else:
        assert body["detail"] == str(exc)


def test_transient_errors_say_when_to_come_back():
    assert problems.problem(RateLimited("slow down", 7), "/", "")[2]["Retry-After"] == "7"
    status, body, headers = problems.problem(ServiceUnavailable("down"), "/", "")
    assert headers["Retry-After"] == str(body["retry_after"]) == str(problems.RETRY_AFTER_SECONDS)
    assert problems.problem(Unauthorized("x"), "/", "")[2]["WWW-Authenticate"].startswith("Bearer")
    assert problems.problem(problems.MethodNotAllowed("no", ["GET", "HEAD"]), "/", "")[2]["Allow"] == "GET, HEAD"


def test_invalid_request_names_each_field():
    exc = InvalidRequest("memory must be at least 6m; ports[0].host_port must be a port; something else went wrong")
    body = problems.problem(exc, "/", "")[1]
    assert body["errors"] == [
        {"field": "memory", "message": "must be at least 6m"},
        {"field": "ports[0].host_port", "message": "must be a port"},
        {"field": "something", "message": "else went wrong"},
    ]


def test_a_delete_conflict_names_the_sibling_tags():
    body = problems.problem(Conflict("shares its digest", {"sibling_tags": ["v1", "latest"]}), "/", "")[1]
    assert body["status"] == 409 and body["sibling_tags"] == ["v1", "latest"]
    assert Conflict("plain").details == {}


# -- sessions ---------------------------------------------------------------------------------------


def test_a_bearer_token_is_a_session_and_needs_no_csrf():
    token = identity_token()
    developer = sessions.authenticate(request("DELETE", headers={"Authorization": f"Bearer {token}"}), TOKENS, CSRF_KEY)
    assert (developer.account, developer.tenant, developer.admin, developer.by_cookie) == (
        "alice",
        "acme",
        False,
        False,
    )
    assert developer.csrf_token == sessions.csrf_token(CSRF_KEY, developer.identity.session)


def test_a_cookie_change_needs_the_sessions_csrf_token():
    token = identity_token()
    cookies = {sessions.COOKIE: token}

    def post(csrf):
        return sessions.authenticate(request("POST", cookies=cookies, headers={"X-CSRF-Token": csrf}), TOKENS, CSRF_KEY)

    assert sessions.authenticate(request("GET", cookies=cookies), TOKENS, CSRF_KEY).by_cookie
    with pytest.raises(sessions.CsrfRejected):
        sessions.authenticate(request("POST", cookies=cookies), TOKENS, CSRF_KEY)
    other = sessions.csrf_token(CSRF_KEY, "another-session")
    with pytest.raises(sessions.CsrfRejected):
        sessions.authenticate(request("POST", cookies=cookies, headers={"X-CSRF-Token": other}), TOKENS, CSRF_KEY)
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    right = sessions.csrf_token(CSRF_KEY, jti)
    assert sessions.authenticate(request("POST", cookies=cookies, headers={"X-CSRF-Token": right}), TOKENS, CSRF_KEY)
    form = request("POST", cookies=cookies, data={"csrf_token": right})
    assert sessions.authenticate(form, TOKENS, CSRF_KEY).account == "alice"


@pytest.mark.parametrize(
    "headers, cookies",
    [
        ({}, {}),
        ({"Authorization": "Basic YTpi"}, {}),
        ({"Authorization": "Bearer "}, {}),
        ({"Authorization": "Bearer not-a-token"}, {}),
        ({"Authorization": "Bearer " + "x" * (sessions.MAX_TOKEN_LENGTH + 1)}, {}),
        ({}, {sessions.COOKIE: "garbage"}),
    ],
)
def test_no_or_a_bad_session_is_unauthorized(headers, cookies):
    with pytest.raises(Unauthorized):
        sessions.authenticate(request(headers=headers, cookies=cookies), TOKENS, CSRF_KEY)


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": int((datetime.now(UTC) - timedelta(seconds=1)).timestamp())},
        {"aud": "someone-else"},
        {"token_use": "refresh"},
        {"jti": None},
    ],
)
def test_an_expired_foreign_or_sessionless_token_is_refused(claims):
    with pytest.raises(Unauthorized):
        sessions.authenticate(
            request(headers={"Authorization": f"Bearer {identity_token(**claims)}"}), TOKENS, CSRF_KEY
        )


def test_a_token_of_another_key_is_refused():
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode({"sub": "alice", "iss": ISSUER, "aud": identity_audience(ISSUER)}, other, algorithm="ES256")
    with pytest.raises(Unauthorized):
        sessions.authenticate(request(headers={"Authorization": f"Bearer {token}"}), TOKENS, CSRF_KEY)


def test_open_sessions_are_trusted_for_the_recheck_time_only():
    now = [100.0]
    book = sessions.OpenSessions(5, clock=lambda: now[0])
    assert not book.fresh("s1")
    book.confirmed("s1")
    now[0] += 4.9
    assert book.fresh("s1")
    now[0] += 0.2
    assert not book.fresh("s1")
    book.confirmed("s1")
    book.forget("s1")
    assert not book.fresh("s1")


def test_the_session_cookie_is_httponly_and_lax():
    cookie = sessions.session_cookie("t", 60, secure=True)
    assert (cookie["httponly"], cookie["samesite"], cookie["secure"], cookie["path"]) == (True, "Lax", True, "/")


def test_only_a_trusted_proxy_names_the_client():
    req = request(headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}, environ_base={"REMOTE_ADDR": "127.0.0.9"})
    assert client_address(req, frozenset()) == "127.0.0.9"
    assert client_address(req, frozenset({"127.0.0.9"})) == "203.0.113.9"


# -- request validation -----------------------------------------------------------------------------


def test_a_query_is_checked_field_by_field():
    assert load_query(request(query_string="page=2&query=ng"), schemas.LibraryQuery) == {
        "page": 2,
        "page_size": 50,
        "query": "ng",
    }
    for query, field in (("page=0", "page"), ("page_size=999", "page_size"), ("nope=1", "nope"), ("page=x", "page")):
        with pytest.raises(problems.FieldProblems) as caught:
            load_query(request(query_string=query), schemas.LibraryQuery)
        assert [e["field"] for e in caught.value.field_errors] == [field]
    with pytest.raises(problems.FieldProblems, match="more than once"):
        load_query(request(query_string="page=1&page=2"), schemas.LibraryQuery)


def test_a_body_must_be_a_json_object_of_known_fields():
    def post(data, content_type="application/json"):
        return request("POST", data=data, content_type=content_type)

    assert load_json(post(json.dumps({"replicas": 3})), schemas.Scale) == {"replicas": 3}
    with pytest.raises(problems.UnsupportedMediaType):
        load_json(post("replicas=3", "application/x-www-form-urlencoded"), schemas.Scale)
    for body, field in (("{", ""), ("[1]", ""), ('{"replicas": "3"}', "replicas"), ('{"x": 1}', "x")):
        with pytest.raises(problems.FieldProblems) as caught:
            load_json(post(body), schemas.Scale)
        assert field in [e["field"] for e in caught.value.field_errors]


# -- the OpenAPI document ---------------------------------------------------------------------------


def test_the_openapi_document_lists_every_api_route_with_its_schemas():
    document = openapi.document_of(GatewayService)
    assert document["openapi"] == "3.1.0"
    routes = openapi.api_routes(GatewayService)
    documented = {(m.lower(), openapi.openapi_path(u)) for m, u, _ in routes}
    listed = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert documented == listed and len(listed) >= 20
    tag = document["paths"]["/api/v1/repositories/{namespace}/{name}/tags/{tag}"]
    assert tag["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TagDetailOut"
    }
    assert {p["name"] for p in tag["get"]["parameters"]} == {"namespace", "name", "tag"}
    assert "409" in tag["delete"]["responses"] and document["paths"]["/api/v1/session"]["post"]["security"] == []
    assert "query" in {p["name"] for p in document["paths"]["/api/v1/library"]["get"]["parameters"]}
    assert set(document["components"]["schemas"]["DeploymentSpec"]["required"]) == {"name", "image"}


def test_a_known_path_with_another_method_is_405_and_an_unknown_one_404():
    assert allowed_methods("/api/v1/library") == ["GET", "HEAD"]
    assert allowed_methods("/api/v1/deployments/abc") == ["DELETE", "GET", "HEAD", "PATCH"]
    assert allowed_methods("/api/v1/nothing-here") == []


def test_a_verified_token_is_remembered_until_it_expires():
    now = [1000.0]
    checked = []

    class Counting(IdentityVerifier):
        def read(self, token, now_=None):
            checked.append(token)
            return super().read(token)

    tokens = sessions.VerifiedTokens(Counting(KEY.public_key(), ISSUER), "gw", clock=lambda: now[0])
    token = identity_token(exp=1060)
    with pytest.raises(Unauthorized):  # the real clock says it expired long ago: never remembered
        tokens.identity(token)
    fresh = identity_token()
    first = tokens.identity(fresh)
    assert tokens.identity(fresh) is first and checked.count(fresh) == 1
    now[0] = first.expires_at + 1  # past its expiry: checked again (the verifier then judges it)
    tokens.identity(fresh)
    assert checked.count(fresh) == 2
