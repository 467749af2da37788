"""The console's handlers over fake RPC proxies: signing in and out, tenancy, and what a refused
change answers."""

import re

import pytest

from gateway import console, sessions
from shared.contracts.errors import Conflict, InvalidRequest, NotFound, RateLimited, Unauthorized
from tests.unit.gateway.conftest import Console, make_request


def signin_post(nonce_cookie, nonce_field, **form):
    request = make_request(
        "POST",
        "/signin",
        data={"signin_nonce": nonce_field, **form},
        headers={"Cookie": f"{console.SIGNIN_COOKIE}={nonce_cookie}"} if nonce_cookie else {},
    )
    return request


def cookies(response):
    return response.headers.getlist("Set-Cookie")


def test_the_signin_form_sets_a_strict_httponly_nonce_that_its_hidden_field_repeats():
    response = Console(None).signin_form(make_request("GET", "/signin", query_string={"next": "//evil.example"}))
    assert response.status_code == 200
    (cookie,) = [c for c in cookies(response) if c.startswith(console.SIGNIN_COOKIE + "=")]
    nonce = cookie.split(";")[0].split("=", 1)[1]
    assert len(nonce) >= 32 and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/signin" in cookie
    html = response.get_data(as_text=True)
    assert f'name="signin_nonce" value="{nonce}"' in html
    assert '<input type="hidden" name="next" value="/">' in html


def test_signing_in_sets_the_session_cookie_and_goes_to_a_local_next_only():
    pages = Console(None)
    pages.auth.answers["sign_in"] = {"identity": "signed-token", "expires_in": 3600}
    response = pages.signin(signin_post("n1", "n1", name="alice", password="pw", next="/deployments?page=2"))
    assert response.status_code == 303 and response.headers["Location"] == "/deployments?page=2"
    session = next(c for c in cookies(response) if c.startswith(sessions.COOKIE + "="))
    assert session.startswith("imagehub_session=signed-token;") and "HttpOnly" in session and "SameSite=Lax" in session
    assert pages.auth.calls == [("sign_in", ("alice", "pw", "127.0.0.1"), {})]
    evil = pages.signin(signin_post("n1", "n1", name="alice", password="pw", next="https://evil.example/"))
    assert evil.headers["Location"] == "/"


@pytest.mark.parametrize(("cookie", "field"), [("", "n1"), ("n1", ""), ("n1", "n2")])
def test_signing_in_without_the_matching_nonce_is_refused_before_asking_auth(cookie, field):
    pages = Console(None)
    response = pages.signin(signin_post(cookie, field, name="alice", password="pw"))
    assert response.status_code == 403
    assert pages.auth.calls == []
    assert "form expired" in response.get_data(as_text=True)


def test_a_wrong_password_and_too_many_attempts_are_answered_on_the_form():
    pages = Console(None)
    pages.auth.answers["sign_in"] = Unauthorized("bad")
    wrong = pages.signin(signin_post("n", "n", name="alice", password="pw"))
    assert wrong.status_code == 401 and "Wrong account name or password." in wrong.get_data(as_text=True)
    assert not any(c.startswith(sessions.COOKIE + "=") for c in cookies(wrong))
    pages.auth.answers["sign_in"] = RateLimited("slow down", 42)
    limited = pages.signin(signin_post("n", "n", name="alice", password="pw"))
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "42"
    assert "try again in 42 seconds" in limited.get_data(as_text=True)


def test_an_empty_name_or_password_is_shown_next_to_its_field():
    pages = Console(None)
    response = pages.signin(signin_post("n", "n", name="", password=""))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'data-testid="field-error-name"' in html and 'data-testid="field-error-password"' in html
    assert pages.auth.calls == []


def test_signing_out_ends_the_session_and_deletes_the_cookie(console):
    response = console.signout(make_request("POST", "/signout", data={"csrf_token": "csrf-123"}))
    assert response.status_code == 303 and response.headers["Location"] == "/signin"
    assert console.auth.calls == [("sign_out", (), {})]
    assert console.web.ended_sessions == [console.web.signed_in]
    assert any(c.startswith(sessions.COOKIE + "=;") and "Max-Age=0" in c for c in cookies(response))


def test_a_page_without_a_session_raises_unauthorized_for_the_sign_in_redirect():
    with pytest.raises(Unauthorized):
        Console(None).library(make_request())


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.repository(make_request(), "globex", "app"),
        lambda c: c.tag(make_request(), "globex", "app", "v1"),
        lambda c: c.tag_delete_form(make_request(), "globex", "app", "v1"),
        lambda c: c.tag_delete_form(make_request(), "library", "busybox", "v1"),  # the library is read-only
        lambda c: c.deploy_form(make_request(query_string={"image": "globex/app:v1"})),
    ],
)
def test_another_tenants_repository_is_not_found_and_the_catalog_never_asked(console, call):
    with pytest.raises(NotFound):
        call(console)
    assert console.catalog.calls == []


def test_another_tenants_deployment_is_not_found(console):
    console.deployer.answers["get_deployment"] = NotFound("deployment not found")
    with pytest.raises(NotFound):
        console.deployment(make_request(), "someone-elses")
    assert console.deployer.calls[0] == ("get_deployment", ("acme", "someone-elses"), {})


def test_the_deployers_refusal_re_renders_the_form_with_400_and_each_message_by_its_field(console):
    console.deployer.answers["list_pools"] = {"items": [{"name": "default"}], "total": 1}
    console.deployer.answers["create_deployment"] = InvalidRequest(
        "name must be a DNS label; ports[0].container_port must be a whole number from 1 to 65535, got 0"
    )
    form = dict(console_form(), csrf_token="csrf-123", ports="0")
    response = console.deploy(make_request("POST", "/deploy", data=form))
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'data-testid="field-error-name">\s*<li>must be a DNS label</li>', html)
    assert "[0].container_port must be a whole number from 1 to 65535, got 0" in html
    assert ">0</textarea>" in html  # what was typed stays
    create = next(c for c in console.deployer.calls if c[0] == "create_deployment")
    assert create[1][0] == "acme" and create[1][1]["ports"] == [{"container_port": 0, "host_port": 0}]


def test_a_deployment_made_is_followed_on_its_own_page(console):
    console.deployer.answers["create_deployment"] = {"id": "d-42", "status": "pending"}
    response = console.deploy(make_request("POST", "/deploy", data=console_form()))
    assert response.status_code == 303 and response.headers["Location"] == "/deployments/d-42"


def test_the_form_refuses_what_it_cannot_read_without_asking_the_deployer(console):
    console.deployer.answers["list_pools"] = {"items": [{"name": "default"}, {"name": "edge"}], "total": 2}
    response = console.deploy(make_request("POST", "/deploy", data=dict(console_form(), env="no equals")))
    assert response.status_code == 400
    assert not any(c[0] == "create_deployment" for c in console.deployer.calls)
    assert '<option value="edge">edge</option>' in response.get_data(as_text=True)


def console_form():
    form = console.deploy_form_defaults("acme/app:v1", "app")
    form["name"] = "web"
    return form


def test_deleting_a_tag_that_gained_siblings_asks_again_naming_them(console):
    console.catalog.answers["delete_tag"] = Conflict("shared digest", {"sibling_tags": ["stable", "<b>x</b>"]})
    response = console.tag_delete(make_request("POST", "/x", data={"csrf_token": "csrf-123"}), "acme", "app", "v1")
    html = response.get_data(as_text=True)
    assert response.status_code == 409
    siblings = re.search(r'data-testid="sibling-tags">(.*?)</ul>', html, re.S).group(1)
    assert re.findall(r"<code>(.*?)</code>", siblings) == ["stable", "&lt;b&gt;x&lt;/b&gt;"]
    assert console.catalog.calls == [("delete_tag", ("acme", "acme/app", "v1"), {"force": False})]


def test_deleting_a_tag_with_force_goes_back_to_the_repository(console):
    console.catalog.answers["delete_tag"] = {"deleted_tags": ["v1", "stable"]}
    request = make_request("POST", "/x", data={"csrf_token": "csrf-123", "force": "true"})
    response = console.tag_delete(request, "acme", "app", "v1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/repositories/acme/app?deleted=v1%2C+stable"
    assert console.catalog.calls[0][2] == {"force": True}


def test_a_refused_scale_is_shown_in_the_scale_form(console):
    console.deployer.answers.update(
        get_deployment={"id": "d-1", "name": "web", "repository": "acme/app", "status": "running", "instances": []},
        list_revisions={"items": [], "total": 0},
        scale_deployment=InvalidRequest("replicas must be a whole number from 0 to 50, got 'many'"),
    )
    console.catalog.answers["list_tags"] = {"items": [{"tag": "v1"}], "total": 1}
    response = console.deployment_scale(make_request("POST", "/x", data={"replicas": "many"}), "d-1")
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert re.search(r'data-testid="field-error-scale-replicas">\s*<li>must be a whole number', html)
    assert ("scale_deployment", ("acme", "d-1", "many"), {}) in console.deployer.calls


def test_the_library_passes_search_and_page_and_404s_past_the_last_page(console):
    console.catalog.answers["list_public_repositories"] = {"items": [], "total": 3, "page": 2, "page_size": 50}
    with pytest.raises(NotFound):
        console.library(make_request(query_string={"query": "busy", "page": "2"}))
    assert console.catalog.calls == [("list_public_repositories", (), {"query": "busy", "page": 2, "page_size": 50})]


def test_how_to_push_uses_the_configured_registry(console):
    html = console.how_to_push(make_request()).get_data(as_text=True)
    assert "docker login registry.example:5000 -u alice" in html
