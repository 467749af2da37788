"""The gateway's JSON API (``/api/v1``) against the whole suite as processes: sessions (sign-in,
one answer for every failed sign-in, throttling, sign-out that ends the session server-side), a
session on every route, tenant isolation on every URL of another tenant's, CSRF on changes made
with the session cookie, deleting a tag that shares its digest, a deployment made through the API
that answers on its port with its env, bad input answered as problems (never a 5xx), and the
security headers.

Set up once for the module (``world``): tenants A and B signed in through the API, A's image
``A/web:v1`` pushed with the real docker CLI, and A's deployment of it (``deployment``), made
through the API: busybox httpd on host networking serving a file written from ``$GREETING``.
Every request goes to 127.0.0.1 with a timeout, and asserts it was not answered 5xx.
"""

import math
import re
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from tests.e2e.conftest import DockerCLI
from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support import wait_until

pytestmark = pytest.mark.docker

V1 = "/api/v1"
TIMEOUT = 15  # seconds for one request to the gateway
WAIT = 60  # seconds for a push to be indexed or a rollout to settle
MAX_BODY_BYTES = 65536  # GATEWAY_MAX_BODY_BYTES's default, the stack's
PROBLEM_JSON = "application/problem+json"
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"
# busybox httpd on the port the deployer hands out ($PORT, host networking), serving $GREETING.
SERVE_GREETING = ["/bin/sh", "-c", 'echo "$GREETING" > /tmp/index.html && exec httpd -f -p 127.0.0.1:$PORT -h /tmp']


class Api:
    """The gateway as an API client sees it: every request with a timeout, none answered 5xx."""

    def __init__(self, base_url):
        self.base_url = base_url

    def request(self, method, path, token=None, cookie=None, csrf=None, headers=None, **kwargs):
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            headers["Cookie"] = f"imagehub_session={cookie}"
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        response = requests.request(
            method, self.base_url + path, headers=headers, timeout=TIMEOUT, allow_redirects=False, **kwargs
        )
        assert response.status_code < 500, f"{method} {path} answered {response.status_code}: {response.text[:500]}"
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def sign_in(self, name, password):
        return self.request("POST", V1 + "/session", json={"name": name, "password": password})

    def signed_in(self, account):
        """The sign-in answer's body for ``account`` (a ``stack.accounts`` entry)."""
        answer = self.sign_in(account.name, account.password)
        assert answer.status_code == 201, answer.text
        return answer.json()


def problem(response, status):
    """The RFC 9457 body of ``response``, once it is checked to be a ``status`` problem."""
    assert response.status_code == status, f"{response.status_code}, not {status}: {response.text[:500]}"
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON), response.headers["Content-Type"]
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:imagehub:problem:")
    assert body["request_id"] == response.headers["X-Request-Id"]
    assert body["instance"] == requests.utils.urlparse(response.url).path
    assert body["detail"]
    return body


def ok(response, status=200):
    assert response.status_code == status, f"{response.status_code}, not {status}: {response.text[:500]}"
    return response.json() if response.content else None


def new_tenant(stack, prefix):
    tenant = f"{prefix}{uuid.uuid4().hex[:8]}"
    return tenant, stack.add_tenant(tenant)


def serves(address):
    try:
        return requests.get(f"http://{address}/", timeout=2).text.strip()
    except requests.RequestException:
        return None


@dataclass
class World:
    A: str
    B: str
    token_a: str
    token_b: str
    docker_a: DockerCLI
    web_ref: str
    web_digest: str


@pytest.fixture(scope="module")
def api(stack):
    return Api(stack.gateway_url)


@pytest.fixture(scope="module")
def world(stack, api, tmp_path_factory):
    """Tenants A and B signed in through the API (bearer tokens); A's ``A/web:v1`` pushed."""
    (a, account_a), (b, account_b) = new_tenant(stack, "ga"), new_tenant(stack, "gb")
    docker_a = DockerCLI(stack.registry.host, config_dir=str(tmp_path_factory.mktemp("docker-a")))
    docker_a.login(*account_a)
    try:
        web_ref = docker_a.build(f"{a}/web", "v1", marker=f"web v1 {a}")
        digest = docker_a.push(web_ref)
        wait_for_tag(stack, a, f"{a}/web", "v1", digest, timeout=WAIT)
        yield World(
            a, b, api.signed_in(account_a)["token"], api.signed_in(account_b)["token"], docker_a, web_ref, digest
        )
    finally:
        docker_a.cleanup()


def push_tags(stack, world, repository, *tags):
    """``A/<repository>`` pushed under ``tags``, all on the web image (one digest); indexed."""
    digests = {world.docker_a.push(world.docker_a.tag(world.web_ref, f"{world.A}/{repository}", t)) for t in tags}
    [digest] = digests
    for tag in tags:
        wait_for_tag(stack, world.A, f"{world.A}/{repository}", tag, digest, timeout=WAIT)
    return digest


@pytest.fixture(scope="module")
def deployment(api, world):
    """A's deployment ``web`` of ``A/web:v1``, made through the API with an env value and an
    allocated port: ``(the create answer, the deployment once running, the $GREETING it serves)``."""
    greeting = f"hello from {world.A} {uuid.uuid4().hex[:6]}"
    created = api.request(
        "POST",
        V1 + "/deployments",
        token=world.token_a,
        json={
            "name": "web",
            "image": f"{world.A}/web:v1",
            "env": {"GREETING": greeting},
            "command": SERVE_GREETING,
            "ports": [{}],
            "cpu": 0.1,
            "memory": "32m",
            "health": {"type": "http", "timeout": 30},
        },
    )
    body = ok(created, 201)

    def running():
        found = ok(api.get(f"{V1}/deployments/{body['id']}", token=world.token_a))
        assert found["status"] not in ("failed", "rollout_failed"), found
        return found if found["status"] == "running" and found["operation"] is None else None

    running_deployment = wait_until(running, timeout=WAIT, interval=0.2, what="the API's deployment running")
    yield created, running_deployment, greeting
    api.request("DELETE", f"{V1}/deployments/{body['id']}", token=world.token_a)


def deployment_state(api, world, deployment_id):
    """What B must not move of A's deployment."""
    found = ok(api.get(f"{V1}/deployments/{deployment_id}", token=world.token_a))
    revisions = ok(api.get(f"{V1}/deployments/{deployment_id}/revisions", token=world.token_a))
    return {key: found[key] for key in ("status", "revision", "replicas", "image", "digest", "spec", "auto_deploy")} | {
        "instances": sorted(i["address"] for i in found["instances"]),
        "revisions": revisions["total"],
    }


# -- sessions ------------------------------------------------------------------------------------


class TestSessions:
    def test_sign_in_gives_one_session_as_token_and_as_cookie(self, stack, api):
        tenant, account = new_tenant(stack, "gs")
        answer = api.sign_in(account.name, account.password)
        body = ok(answer, 201)
        assert (body["account"], body["tenant_id"], body["is_admin"]) == (account.name, tenant, False)
        assert body["registry"] == stack.registry.host
        assert 0 < body["expires_in"] <= 24 * 3600
        assert re.fullmatch(r"[0-9a-f]{64}", body["csrf_token"])
        cookie = answer.cookies.get("imagehub_session")
        assert cookie == body["token"]
        set_cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "Path=/" in set_cookie

        by_token = ok(api.get(V1 + "/session", token=body["token"]))
        by_cookie = ok(api.get(V1 + "/session", cookie=cookie))
        for session in (by_token, by_cookie):
            assert session["account"] == account.name
            assert session["tenant_id"] == tenant
            assert session["csrf_token"] == body["csrf_token"]
            assert session["expires_at"] == body["expires_at"]
            assert "token" not in session

    def test_a_wrong_password_and_an_unknown_name_get_one_answer(self, stack, api):
        _, account = new_tenant(stack, "gw")
        wrong = api.sign_in(account.name, account.password + "x")
        unknown = api.sign_in(f"nobody-{uuid.uuid4().hex[:8]}", account.password)
        details = []
        for answer in (wrong, unknown):
            details.append(problem(answer, 401)["detail"])
            assert answer.headers["WWW-Authenticate"] == 'Bearer realm="imagehub"'
            assert "imagehub_session" not in answer.headers.get("Set-Cookie", "")
        assert details[0] == details[1]
        assert account.name not in details[0]
        ok(api.sign_in(account.name, account.password), 201)  # the account itself is fine

    def test_repeated_failures_are_answered_429_with_retry_after(self, stack, api):
        """The auth service lets 5 failures per name and address go, then waits 1 s, 2 s... and
        answers every attempt meanwhile 429 (the gateway passes the client's address)."""
        _, account = new_tenant(stack, "gt")
        statuses, sent, received = [], [], []
        throttled = None
        for _ in range(9):
            sent.append(time.monotonic())
            answer = api.sign_in(account.name, "not the password")
            received.append(time.monotonic())
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                throttled = answer
                break
        assert throttled is not None, statuses
        assert statuses[:-1] == [401] * (len(statuses) - 1) and len(statuses) >= 7, statuses
        body = problem(throttled, 429)
        retry_after = int(throttled.headers["Retry-After"])
        # The 6th failure starts a wait of 1 s (AUTH_LOGIN_FIRST_DELAY), each later one doubles it. The
        # 429 asks for what is left of the last failure's wait, in whole seconds rounded up: the
        # failure was recorded between the last 401's request and answer, the 429 decided between
        # its own, so what is left lies between these two bounds (one whole number, but at an edge).
        failures_past_the_free = len(statuses) - 1 - 5
        wait = 2 ** (failures_past_the_free - 1)
        least, most = (math.ceil(wait - elapsed) for elapsed in (received[-1] - sent[-2], sent[-1] - received[-2]))
        assert least <= retry_after <= most, (retry_after, least, most, statuses)
        assert body["retry_after"] == retry_after
        # The wait is over after Retry-After: the right password signs in (and clears the count).
        signed_in = wait_until(
            lambda: (lambda r: r if r.status_code == 201 else None)(api.sign_in(account.name, account.password)),
            timeout=retry_after + 10,
            interval=0.5,
            what="sign-in after Retry-After",
        )
        assert signed_in.json()["account"] == account.name

    def test_sign_out_ends_the_session_for_every_client_holding_it(self, stack, api):
        _, account = new_tenant(stack, "go")
        token = api.signed_in(account)["token"]
        first, second = requests.Session(), requests.Session()  # two clients (connections), one token
        for client in (first, second):
            client.headers["Authorization"] = f"Bearer {token}"
            assert client.get(stack.gateway_url + V1 + "/session", timeout=TIMEOUT).status_code == 200

        signed_out = first.delete(stack.gateway_url + V1 + "/session", timeout=TIMEOUT)
        assert signed_out.status_code == 204, signed_out.text
        cleared = signed_out.headers["Set-Cookie"]
        assert cleared.startswith("imagehub_session=;") and "Max-Age=0" in cleared, cleared
        for client in (first, second):
            for path in ("/session", "/repositories", "/deployments"):
                problem(client.get(stack.gateway_url + V1 + path, timeout=TIMEOUT), 401)
        problem(api.get(V1 + "/session", cookie=token), 401)  # the same session as a cookie
        problem(api.request("DELETE", V1 + "/session", token=token), 401)  # and it cannot sign out twice
        ok(api.get(V1 + "/session", token=api.signed_in(account)["token"]))  # a new sign-in is a new session

    def test_a_token_the_auth_service_did_not_sign_is_401(self, api, world):
        header, payload, _ = world.token_a.split(".")
        for token in (f"{header}.{payload}.AAAA", f"{header}.{payload}", "not-a-token", "x" * 4000):
            problem(api.get(V1 + "/session", token=token), 401)
        problem(api.get(V1 + "/session", headers={"Authorization": f"Basic {world.token_a}"}), 401)


# -- a session on every route ---------------------------------------------------------------------


def operations(api):
    document = ok(api.get(V1 + "/openapi.json"))
    assert document["openapi"].startswith("3.1")
    found = [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    return document, found


def fill(path, world, deployment_id):
    values = {"namespace": world.A, "name": "web", "tag": "v1", "deployment_id": deployment_id}
    filled = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)
    assert "{" not in filled, path
    return filled


class TestEveryRouteNeedsASession:
    def test_every_documented_route_but_sign_in_is_401_without_a_session(self, api, world, deployment):
        _, running, _ = deployment
        document, found = operations(api)
        public = {(m, p) for m, p, op in found if op.get("security") == []}
        assert public == {("POST", V1 + "/session")}
        assert len(found) >= 20, [(m, p) for m, p, _ in found]
        before = deployment_state(api, world, running["id"])
        checked = []
        for method, path, operation in found:
            if (method, path) in public:
                continue
            url = fill(path, world, running["id"])
            body = {"json": {}} if "requestBody" in operation else {}
            for headers in ({}, {"Authorization": "Bearer"}, {"Cookie": "imagehub_session=forged"}):
                answer = api.request(method, url, headers=headers, **body)
                problem(answer, 401)
                assert answer.headers["WWW-Authenticate"] == 'Bearer realm="imagehub"'
            assert "401" in operation["responses"], (method, path)
            checked.append((method, path))
        assert ("DELETE", V1 + "/repositories/{namespace}/{name}/tags/{tag}") in checked
        assert ("DELETE", V1 + "/deployments/{deployment_id}") in checked
        # ...and none of them did anything.
        assert ok(api.get(f"{V1}/repositories/{world.A}/web/tags/v1", token=world.token_a))["digest"] == (
            world.web_digest
        )
        assert deployment_state(api, world, running["id"]) == before
        # The document itself and sign-in need none.
        assert ok(api.get(V1 + "/openapi.json")) == document


# -- tenant isolation ----------------------------------------------------------------------------


class TestAnotherTenantsUrls:
    def test_every_url_of_another_tenant_is_404_and_changes_nothing(self, stack, api, world, deployment):
        _, running, greeting = deployment
        a, d = world.A, running["id"]
        before = deployment_state(api, world, d)
        tag_before = ok(api.get(f"{V1}/repositories/{a}/web/tags/v1", token=world.token_a))
        history_before = ok(api.get(f"{V1}/repositories/{a}/web/history", token=world.token_a))
        repo = f"{V1}/repositories/{a}/web"
        refused = [
            ("GET", repo, None),
            ("GET", repo + "/tags", None),
            ("GET", repo + "/tags/v1", None),
            ("GET", repo + "/history", None),
            ("GET", repo + "/history?tag=v1", None),
            ("DELETE", repo + "/tags/v1", None),
            ("DELETE", repo + "/tags/v1?force=true", None),
            ("PATCH", repo, {"description": "owned by B"}),
            ("GET", f"{V1}/deployments/{d}", None),
            ("GET", f"{V1}/deployments/{d}/revisions", None),
            ("PATCH", f"{V1}/deployments/{d}", {"env": {"GREETING": "owned by B"}}),
            ("PATCH", f"{V1}/deployments/{d}", {"tag": "v1"}),
            ("POST", f"{V1}/deployments/{d}/scale", {"replicas": 0}),
            ("POST", f"{V1}/deployments/{d}/rollback", {}),
            ("POST", f"{V1}/deployments/{d}/rollback", {"revision": 1}),
            ("PUT", f"{V1}/deployments/{d}/auto-deploy", {"policy": "semver:minor"}),
            ("DELETE", f"{V1}/deployments/{d}", None),
        ]
        leaks = (world.web_digest, greeting, running["instances"][0]["address"])
        for method, url, body in refused:
            kwargs = {"json": body} if body is not None else {}
            answer = api.request(method, url, token=world.token_b, **kwargs)
            detail = problem(answer, 404)["detail"]
            assert not any(secret in answer.text for secret in leaks), (method, url, answer.text)
            # Word for word what a repository or a deployment that does not exist gets.
            if "/repositories/" in url:
                unknown, names = url.replace(f"{a}/web", f"{a}/nosuch"), (f"{a}/nosuch", f"{a}/web")
            else:
                unknown, names = url.replace(d, UNKNOWN_ID), (UNKNOWN_ID, d)
            nothing = problem(api.request(method, unknown, token=world.token_b, **kwargs), 404)["detail"]
            assert nothing.replace(*names) == detail, (method, url, detail, nothing)

        # Listings naming A's tenant: a developer reads only their own (403), and sees none of A's.
        for url in (
            f"{V1}/repositories?tenant={a}",
            f"{V1}/deployments?tenant={a}",
            f"{V1}/deployments/{d}?tenant={a}",
            f"{V1}/deployments/{d}/revisions?tenant={a}",
        ):
            answer = api.get(url, token=world.token_b)
            problem(answer, 403)
            assert world.web_digest not in answer.text
        own_repositories = ok(api.get(V1 + "/repositories", token=world.token_b))
        assert own_repositories["total"] == 0 and own_repositories["items"] == []
        assert ok(api.get(V1 + "/deployments", token=world.token_b))["total"] == 0

        # A's state is as it was: the tag, its history, the deployment still running and serving.
        assert ok(api.get(repo, token=world.token_a))["description"] != "owned by B"
        assert ok(api.get(f"{V1}/repositories/{a}/web/tags/v1", token=world.token_a)) == tag_before
        assert ok(api.get(f"{V1}/repositories/{a}/web/history", token=world.token_a)) == history_before
        assert stack.registry.manifest_digest(f"{a}/web", "v1") == world.web_digest
        after = deployment_state(api, world, d)
        assert after == before and after["status"] == "running"
        assert [serves(address) for address in after["instances"]] == [greeting]

    def test_a_platform_admin_reads_another_tenant_by_name(self, stack, api, world, deployment):
        _, running, _ = deployment
        admin = ok(api.sign_in(*stack.admin), 201)
        assert admin["is_admin"] is True
        token = admin["token"]
        repositories = ok(api.get(f"{V1}/repositories?tenant={world.A}", token=token))
        assert f"{world.A}/web" in {f"{r['namespace']}/{r['name']}" for r in repositories["items"]}
        deployments = ok(api.get(f"{V1}/deployments?tenant={world.A}", token=token))
        assert [x["id"] for x in deployments["items"]] == [running["id"]]
        assert ok(api.get(f"{V1}/deployments/{running['id']}?tenant={world.A}", token=token))["id"] == running["id"]
        assert ok(api.get(f"{V1}/repositories/{world.A}/web/tags/v1", token=token))["digest"] == world.web_digest
        # Reading only: an admin's change in another tenant's namespace is refused, nothing deleted.
        problem(api.request("DELETE", f"{V1}/repositories/{world.A}/web/tags/v1", token=token), 404)
        # The deployment is not in the admin's tenant (it has none): not found there either.
        problem(api.get(f"{V1}/deployments/{running['id']}?tenant={world.B}", token=token), 404)
        assert stack.registry.manifest_digest(f"{world.A}/web", "v1") == world.web_digest


# -- CSRF ----------------------------------------------------------------------------------------


class TestCsrf:
    def test_changes_by_cookie_need_the_csrf_token(self, stack, api, world, deployment):
        _, running, _ = deployment
        a, d = world.A, running["id"]
        digest = push_tags(stack, world, "csrf", "v1")
        tag_url = f"{V1}/repositories/{a}/csrf/tags/v1"
        cookie = world.token_a
        csrf = ok(api.get(V1 + "/session", cookie=cookie))["csrf_token"]  # a safe method needs none
        before = deployment_state(api, world, d)
        total_before = ok(api.get(V1 + "/deployments", token=world.token_a))["total"]

        changes = [
            ("DELETE", tag_url, None),
            ("DELETE", tag_url + "?force=true", None),
            ("PATCH", f"{V1}/repositories/{a}/csrf", {"description": "changed by a forged form"}),
            ("POST", V1 + "/deployments", {"name": "csrf", "image": f"{a}/csrf:v1", "ports": [{}], "memory": "32m"}),
            ("PATCH", f"{V1}/deployments/{d}", {"env": {"GREETING": "changed by a forged form"}}),
            ("POST", f"{V1}/deployments/{d}/scale", {"replicas": 0}),
            ("PUT", f"{V1}/deployments/{d}/auto-deploy", {"policy": "semver:minor"}),
            ("DELETE", f"{V1}/deployments/{d}", None),
            ("DELETE", V1 + "/session", None),
        ]
        for method, url, body in changes:
            kwargs = {"json": body} if body is not None else {}
            for token in (None, "", "0" * 64, csrf[:-1]):
                answer = api.request(method, url, cookie=cookie, csrf=token, **kwargs)
                assert "X-CSRF-Token" in problem(answer, 403)["detail"], (method, url, token)
            # A form field is no way around it either for a JSON route (the form is not read).
            answer = api.request(method, url, cookie=cookie, data={"csrf_token": "0" * 64})
            problem(answer, 403)

        # Nothing changed: the tag, the deployment, no new deployment, the session still open.
        assert ok(api.get(tag_url, token=world.token_a))["digest"] == digest
        assert ok(api.get(f"{V1}/repositories/{a}/csrf", token=world.token_a))["description"] == ""
        assert deployment_state(api, world, d) == before
        assert ok(api.get(V1 + "/deployments", token=world.token_a))["total"] == total_before
        assert ok(api.get(V1 + "/session", cookie=cookie))["account"] == stack.accounts[a].name

        # With the session's token the same change goes through.
        deleted = ok(api.request("DELETE", tag_url, cookie=cookie, csrf=csrf))
        assert (deleted["repository"], deleted["tag"], deleted["digest"]) == (f"{a}/csrf", "v1", digest)
        problem(api.get(tag_url, token=world.token_a), 404)
        wait_until(lambda: stack.registry.tags(f"{a}/csrf") == [], timeout=WAIT, what="the tag gone from the registry")
        # An API client's bearer token needs no CSRF token (no browser sends it by itself).
        assert ok(api.request("GET", V1 + "/session", token=world.token_a))["csrf_token"] == csrf


# -- describing a repository ------------------------------------------------------------------------


class TestDescribeARepository:
    def test_the_owner_sets_the_text_every_reader_sees_and_bad_markdown_is_400_naming_it(self, stack, api, world):
        url = f"{V1}/repositories/{world.A}/web"
        overview = "# web\n\nServes `<html>`."
        answer = ok(
            api.request("PATCH", url, token=world.token_a, json={"description": "The web app.", "overview": overview})
        )
        assert (answer["description"], answer["overview"]) == ("The web app.", overview)
        assert ok(api.get(url, token=world.token_a)) == answer
        listed = ok(api.get(V1 + "/repositories", token=world.token_a))["items"]
        assert [r["description"] for r in listed if r["name"] == "web"] == ["The web app."]
        refused = problem(
            api.request("PATCH", url, token=world.token_a, json={"overview": "<img src=x onerror=alert(1)>"}), 400
        )
        assert [e["field"] for e in refused["errors"]] == ["overview"] and "raw HTML" in refused["detail"]
        problem(
            api.request(
                "PATCH", V1 + "/repositories/library/nginx", token=world.token_a, json={"description": "Mine."}
            ),
            403,
        )
        assert ok(api.get(url, token=world.token_a))["overview"] == overview


# -- deleting a tag that shares its digest ---------------------------------------------------------


class TestDeleteATagSharingItsDigest:
    def test_409_names_the_siblings_and_force_deletes_them_all(self, stack, api, world):
        a = world.A
        digest = push_tags(stack, world, "shared", "1.0", "stable")
        repo = f"{V1}/repositories/{a}/shared"

        conflict = api.request("DELETE", repo + "/tags/1.0", token=world.token_a)
        body = problem(conflict, 409)
        assert body["sibling_tags"] == ["stable"]
        conflict = api.request("DELETE", repo + "/tags/stable?force=false", token=world.token_a)
        assert problem(conflict, 409)["sibling_tags"] == ["1.0"]
        for tag in ("1.0", "stable"):
            assert ok(api.get(f"{repo}/tags/{tag}", token=world.token_a))["digest"] == digest
        assert stack.registry.tags(f"{a}/shared") == ["1.0", "stable"]

        forced = ok(api.request("DELETE", repo + "/tags/1.0?force=true", token=world.token_a))
        assert forced["digest"] == digest
        assert sorted(forced["deleted_tags"]) == ["1.0", "stable"]
        for tag in ("1.0", "stable"):
            problem(api.get(f"{repo}/tags/{tag}", token=world.token_a), 404)
        assert ok(api.get(repo + "/tags", token=world.token_a))["items"] == []
        assert stack.registry.manifest_digest(f"{a}/shared", digest) is None
        # The web image shares those layers, not that tag: it is still there.
        assert stack.registry.manifest_digest(f"{a}/web", "v1") == world.web_digest


# -- deploying through the API -------------------------------------------------------------------


class TestDeployThroughTheApi:
    def test_the_deployment_runs_and_answers_on_its_port_with_its_env(self, api, world, deployment):
        created, running, greeting = deployment
        body = created.json()
        assert created.headers["Location"] == f"{V1}/deployments/{body['id']}"
        assert (body["status"], body["tenant_id"], body["image"]) == ("pending", world.A, f"{world.A}/web:v1")
        assert body["digest"] == world.web_digest

        assert running["spec"]["env"] == {"GREETING": greeting}
        assert running["spec"]["command"] == SERVE_GREETING
        [instance] = running["instances"]
        [port] = instance["ports"]
        assert instance["state"] == "running"
        assert instance["address"] == f"127.0.0.1:{port['host_port']}"
        assert serves(instance["address"]) == greeting  # $GREETING reached the container

        revisions = ok(api.get(f"{V1}/deployments/{body['id']}/revisions", token=world.token_a))
        assert [(r["revision"], r["status"], r["trigger"], r["digest"]) for r in revisions["items"]] == [
            (1, "running", "create", world.web_digest)
        ]
        listed = ok(api.get(V1 + "/deployments", token=world.token_a))
        assert [x["id"] for x in listed["items"]] == [body["id"]]

    def test_changing_the_own_deployment_to_another_tenants_image_is_refused(self, api, world, deployment):
        """The deployer's refusal of the image stays a 403 (only another tenant's deployment is
        answered 404), and the deployment does not move."""
        _, running, greeting = deployment
        before = deployment_state(api, world, running["id"])
        for changes in ({"image": f"{world.B}/web:v1"}, {"image": f"{world.B}/nosuch:v1"}):
            answer = api.request("PATCH", f"{V1}/deployments/{running['id']}", token=world.token_a, json=changes)
            assert f"may not read '{changes['image'].split(':')[0]}'" in problem(answer, 403)["detail"]
        problem(api.request("PATCH", f"{V1}/deployments/{UNKNOWN_ID}", token=world.token_a, json={"tag": "v1"}), 404)
        after = deployment_state(api, world, running["id"])
        assert after == before
        assert [serves(address) for address in after["instances"]] == [greeting]

    def test_a_deployment_of_an_image_the_tenant_may_not_read_is_refused(self, api, world):
        spec = {"name": "steal", "image": f"{world.A}/web:v1", "ports": [{}], "memory": "32m"}
        refused = problem(api.request("POST", V1 + "/deployments", token=world.token_b, json=spec), 403)
        assert world.web_digest not in refused["detail"]
        # The same answer whether the image exists or not: it tells nothing of A's.
        spec["image"] = f"{world.A}/nosuch:v1"
        nothing = problem(api.request("POST", V1 + "/deployments", token=world.token_b, json=spec), 403)
        assert nothing["detail"].replace("/nosuch", "/web") == refused["detail"]
        assert ok(api.get(V1 + "/deployments", token=world.token_b))["total"] == 0


# -- bad input -----------------------------------------------------------------------------------


class TestBadInput:
    def test_bodies_that_are_not_what_a_route_takes_are_4xx_problems(self, api, world):
        token = world.token_a
        url = V1 + "/deployments"
        before = ok(api.get(url, token=token))["total"]
        json_type = {"Content-Type": "application/json"}

        body = problem(api.request("POST", url, token=token, data="{not json", headers=json_type), 400)
        assert body["errors"] == [{"field": "", "message": "is not JSON"}]
        body = problem(api.request("POST", url, token=token, data="[1, 2]", headers=json_type), 400)
        assert body["errors"] == [{"field": "", "message": "must be an object"}]
        problem(api.request("POST", url, token=token, data=b"\xff\xfe", headers=json_type), 400)

        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": content_type} if content_type else {}
            answer = api.request("POST", url, token=token, data='{"name": "x", "image": "y"}', headers=headers)
            problem(answer, 415)

        answer = api.request("POST", url, token=token, json={"name": "x", "image": f"{world.A}/web:v1", "bogus": 1})
        body = problem(answer, 400)
        assert body["errors"] == [{"field": "bogus", "message": "Unknown field."}]
        assert "bogus" in body["detail"]
        body = problem(api.request("POST", url, token=token, json={"image": f"{world.A}/web:v1"}), 400)
        assert [e["field"] for e in body["errors"]] == ["name"]

        big = {"name": "big", "image": f"{world.A}/web:v1", "env": {"BIG": "x" * MAX_BODY_BYTES}}
        body = problem(api.request("POST", url, token=token, json=big), 413)
        assert str(MAX_BODY_BYTES) in body["detail"]
        problem(api.request("POST", V1 + "/session", json={"name": "x" * MAX_BODY_BYTES, "password": "y"}), 413)

        scale = f"{V1}/deployments/{UNKNOWN_ID}/scale"
        for replicas in ("2", 1.5, -1, None, True):
            body = problem(api.request("POST", scale, token=token, json={"replicas": replicas}), 400)
            assert [e["field"] for e in body["errors"]] == ["replicas"], (replicas, body)
        body = problem(api.request("POST", V1 + "/session", json={"name": "", "password": 5}), 400)
        assert sorted(e["field"] for e in body["errors"]) == ["name", "password"]

        assert ok(api.get(url, token=token))["total"] == before  # nothing was made

    def test_queries_that_are_not_what_a_route_takes_are_400_naming_them(self, api, world):
        token = world.token_a
        for query, field_name in (
            ("page=0", "page"),
            ("page_size=100000", "page_size"),
            ("page=x", "page"),
            ("page=1&page=2", "page"),
            ("bogus=1", "bogus"),
            ("ownbase=maybe", "ownbase"),
            ("query=" + "q" * 300, "query"),
        ):
            body = problem(api.get(f"{V1}/repositories?{query}", token=token), 400)
            assert field_name in [e["field"] for e in body["errors"]], (query, body)
        body = problem(
            api.request("DELETE", f"{V1}/repositories/{world.A}/web/tags/v1?force=perhaps", token=token), 400
        )
        assert [e["field"] for e in body["errors"]] == ["force"]
        assert ok(api.get(f"{V1}/repositories/{world.A}/web/tags/v1", token=token))["digest"] == world.web_digest

    def test_unknown_paths_are_404_and_wrong_methods_405_with_allow(self, api, world):
        token = world.token_a
        for path in ("/api/v1/nothing", "/api/v2/session", "/api/v1/repositories/a/b/c/d/e", "/api/v1/session/x"):
            body = problem(api.get(path, token=token), 404)
            assert "openapi.json" in body["detail"]
        for method, path, allowed in (
            ("PUT", V1 + "/session", {"GET", "HEAD", "POST", "DELETE"}),
            ("DELETE", V1 + "/deployments", {"GET", "HEAD", "POST"}),
            ("PUT", f"{V1}/deployments/{UNKNOWN_ID}", {"GET", "HEAD", "PATCH", "DELETE"}),
            ("GET", f"{V1}/deployments/{UNKNOWN_ID}/scale", {"POST"}),
            ("POST", f"{V1}/repositories/{world.A}/web/tags/v1", {"GET", "HEAD", "DELETE"}),
            ("POST", V1 + "/openapi.json", {"GET", "HEAD"}),
        ):
            answer = api.request(method, path, token=token, json={})
            problem(answer, 405)
            assert {m.strip() for m in answer.headers["Allow"].split(",")} == allowed, (method, path)
        assert ok(api.get(f"{V1}/repositories/{world.A}/web/tags/v1", token=token))["digest"] == world.web_digest

    def test_a_method_no_route_takes_is_a_405_problem_too(self, api, world):
        """Methods beyond the ones the API's routes are declared with (TRACE, WebDAV's, made-up
        ones) are answered like the others: a 405 problem naming the path's methods, with the
        security headers; not a page of the HTTP server's own."""
        for method, path, allowed in (
            ("TRACE", V1 + "/deployments", {"GET", "HEAD", "POST"}),
            ("PROPFIND", f"{V1}/repositories/{world.A}/web", {"GET", "HEAD", "PATCH"}),
            ("PURGE", V1 + "/session", {"GET", "HEAD", "POST", "DELETE"}),
        ):
            answer = api.request(method, path, token=world.token_a)
            problem(answer, 405)
            assert {m.strip() for m in answer.headers["Allow"].split(",")} == allowed, (method, answer.headers)
            assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
            assert answer.headers["X-Content-Type-Options"] == "nosniff"


# -- headers -------------------------------------------------------------------------------------


class TestSecurityHeaders:
    def test_every_answer_carries_the_security_headers_and_a_request_id(self, stack, api, world):
        _, account = new_tenant(stack, "gh")
        answers = [
            api.sign_in(account.name, account.password),  # 201, with a cookie
            api.get(V1 + "/openapi.json"),  # public
            api.get(V1 + "/repositories", token=world.token_a),  # 200
            api.get(V1 + "/repositories"),  # 401
            api.get(V1 + "/nothing", token=world.token_a),  # 404
            api.request("PUT", V1 + "/session", token=world.token_a),  # 405
            api.request("POST", V1 + "/deployments", token=world.token_a, data="x"),  # 415
            api.get("/health"),
        ]
        ids = set()
        for answer in answers:
            headers = answer.headers
            csp = headers["Content-Security-Policy"]
            assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "same-origin"
            assert headers["X-Frame-Options"] == "DENY"
            assert headers["Cache-Control"] == "no-store"
            assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-Id"]), headers["X-Request-Id"]
            ids.add(headers["X-Request-Id"])
        assert len(ids) == len(answers)  # one per request


class TestAServiceDown:
    """Last in the module: it stops the stack's catalog and starts it again."""

    def test_a_service_that_does_not_answer_is_503_with_retry_after_then_answers_again(self, stack, api, world):
        catalog = stack.services["catalog"]
        catalog.stop()
        try:
            started = time.monotonic()
            answer = requests.get(
                f"{stack.gateway_url}{V1}/library", headers={"Authorization": f"Bearer {world.token_a}"}, timeout=60
            )
            waited = time.monotonic() - started
            body = answer.json()
            assert (answer.status_code, body["status"]) == (503, 503), answer.text
            assert answer.headers["Content-Type"].startswith(PROBLEM_JSON)
            assert answer.headers["Retry-After"] == str(body["retry_after"]) and body["retry_after"] > 0
            assert "catalog" in body["detail"] and "did not answer" in body["detail"], body["detail"]
            rpc_timeout = float(stack.env["GATEWAY_RPC_TIMEOUT"])
            assert rpc_timeout <= waited < rpc_timeout + 5  # bounded by GATEWAY_RPC_TIMEOUT, not hung
            ok(api.get(V1 + "/pools", token=world.token_a))  # the deployer still answers
        finally:
            catalog.start()
        wait_until(
            lambda: api.get(V1 + "/library", token=world.token_a).status_code == 200,
            timeout=WAIT,
            what="the catalog answering again",
        )
