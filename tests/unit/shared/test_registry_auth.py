"""shared.runtime.registry_auth against a small HTTP server playing registry and token service."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared.runtime.registry_auth import RegistryAuthError, RegistryTokenAuth, parse_challenge, scope_for


class FakeRegistry:
    """``/v2/...`` wants ``Bearer tok-<scope>`` for the scope its path needs; ``/token`` hands
    them out to alice:secret (and counts), refusing anyone else."""

    def __init__(self, expires_in=300, refresh_token=None):
        self.refresh_token = refresh_token
        self.token_requests = []
        self.requests = []
        self.expires_in = expires_in
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/token"):
                    from urllib.parse import parse_qs, urlsplit

                    if self.command == "POST":  # OAuth2 form: a refresh token only
                        form = parse_qs(body.decode())
                        outer.token_requests.append(("POST", form))
                        if form.get("refresh_token") != [outer.refresh_token] or form.get("grant_type") != [
                            "refresh_token"
                        ]:
                            return self._answer(400, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                        scope = form.get("scope", [""])[0]
                        return self._answer(
                            200, json.dumps({"access_token": f"tok-{scope}", "expires_in": outer.expires_in}).encode()
                        )
                    query = parse_qs(urlsplit(self.path).query)
                    outer.token_requests.append((self.headers.get("Authorization"), query))
                    if self.headers.get("Authorization") != "Basic " + base64.b64encode(b"alice:secret").decode():
                        return self._answer(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                    scope = query.get("scope", [""])[0]
                    answer = {"token": f"tok-{scope}", "expires_in": outer.expires_in}
                    if query.get("offline_token") == ["true"] and outer.refresh_token:
                        answer["refresh_token"] = outer.refresh_token
                    return self._answer(200, json.dumps(answer).encode())
                outer.requests.append((self.command, self.path, self.headers.get("Authorization"), body))
                scope = scope_for(self.command, self.path)
                if self.headers.get("Authorization") != f"Bearer tok-{scope}":
                    challenge = (
                        f'Bearer realm="{outer.url}/token",service="test-registry",scope="{scope}"'
                        if scope
                        else f'Bearer realm="{outer.url}/token",service="test-registry"'
                    )
                    return self._answer(401, b'{"errors":[]}', [("WWW-Authenticate", challenge)])
                return self._answer(200, b"ok:" + body)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registry():
    fake = FakeRegistry()
    yield fake
    fake.close()


def session(auth):
    s = requests.Session()
    s.auth = auth
    return s


class TestScopes:
    @pytest.mark.parametrize(
        "method,path,scope",
        [
            ("GET", "/v2/t1/app/manifests/v1", "repository:t1/app:pull"),
            ("HEAD", "/v2/t1/app/blobs/sha256:abc", "repository:t1/app:pull"),
            ("GET", "/v2/t1/app/tags/list?n=5", "repository:t1/app:pull"),
            ("PUT", "/v2/t1/app/manifests/v1", "repository:t1/app:pull,push"),
            ("POST", "/v2/t1/a/b/blobs/uploads/", "repository:t1/a/b:pull,push"),
            ("DELETE", "/v2/t1/app/manifests/sha256:abc", "repository:t1/app:delete"),
            ("GET", "/v2/_catalog?n=100", "registry:catalog:*"),
            ("GET", "/v2/", None),
            ("GET", "/v2/t1/app", None),
        ],
    )
    def test_scope_from_the_path(self, method, path, scope):
        assert scope_for(method, f"http://127.0.0.1:5000{path}") == scope

    @pytest.mark.parametrize(
        "header,expected",
        [
            (
                'Bearer realm="http://127.0.0.1:5001/token",service="reg",scope="repository:a/b:pull"',
                {"realm": "http://127.0.0.1:5001/token", "service": "reg", "scope": "repository:a/b:pull"},
            ),
            ('bearer realm="http://x/token"', {"realm": "http://x/token"}),
            ('Basic realm="registry"', None),
            ('Bearer service="reg"', None),
            ("", None),
            (None, None),
        ],
    )
    def test_challenge_parsing(self, header, expected):
        assert parse_challenge(header) == expected


class TestTokenDance:
    def test_a_challenged_request_is_sent_again_with_a_token(self, registry):
        s = session(RegistryTokenAuth("alice", "secret"))
        resp = s.put(f"{registry.url}/v2/t1/app/manifests/v1", data=b"manifest")
        assert (resp.status_code, resp.content) == (200, b"ok:manifest")
        assert [r[2] for r in registry.requests] == [None, "Bearer tok-repository:t1/app:pull,push"]
        assert registry.requests[1][3] == b"manifest"  # the body went again
        [(basic, query)] = registry.token_requests
        assert query == {
            "service": ["test-registry"],
            "scope": ["repository:t1/app:pull,push"],
            "offline_token": ["true"],
            "client_id": ["imagehub"],
        }

    def test_the_token_is_reused_for_the_same_scope_and_fetched_for_another(self, registry):
        s = session(RegistryTokenAuth("alice", "secret"))
        for _ in range(3):
            assert s.get(f"{registry.url}/v2/t1/app/manifests/v1").status_code == 200
        assert s.get(f"{registry.url}/v2/t1/other/tags/list").status_code == 200
        assert s.delete(f"{registry.url}/v2/t1/app/manifests/sha256:ab").status_code == 200
        assert [q["scope"][0] for _, q in registry.token_requests] == [
            "repository:t1/app:pull",
            "repository:t1/other:pull",
            "repository:t1/app:delete",
        ]
        # one 401 per scope, then straight through
        assert [r[2] is None for r in registry.requests] == [True, False, False, False, True, False, True, False]

    def test_an_expired_token_is_fetched_again(self, registry):
        now = [1000.0]
        registry.expires_in = 60
        s = session(RegistryTokenAuth("alice", "secret", clock=lambda: now[0]))
        s.get(f"{registry.url}/v2/_catalog")
        now[0] += 49  # within expires_in - margin
        s.get(f"{registry.url}/v2/_catalog")
        now[0] += 2  # past it
        assert s.get(f"{registry.url}/v2/_catalog").status_code == 200
        assert len(registry.token_requests) == 2

    def test_refused_credentials_raise_a_clear_error(self, registry):
        s = session(RegistryTokenAuth("alice", "wrong"))
        with pytest.raises(RegistryAuthError, match=r"refused alice for repository:t1/app:pull: 401"):
            s.get(f"{registry.url}/v2/t1/app/manifests/v1")

    def test_anonymous_asks_without_credentials(self, registry):
        s = session(RegistryTokenAuth())
        with pytest.raises(RegistryAuthError, match="refused anonymous"):
            s.get(f"{registry.url}/v2/library/busybox/manifests/latest")
        assert registry.token_requests[0][0] is None

    def test_a_401_after_the_token_is_returned_not_retried_for_ever(self, registry):
        registry_url = registry.url

        class Stale(RegistryTokenAuth):
            def fetch_token(self, realm, service, scope):
                return "not-the-right-token", self.clock() + 300

        s = session(Stale("alice", "secret"))
        resp = s.get(f"{registry_url}/v2/t1/app/manifests/v1")
        assert resp.status_code == 401
        assert len(registry.requests) == 2

    def test_a_registry_without_auth_is_untouched(self):
        class Open(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Open)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            resp = session(RegistryTokenAuth("alice", "secret")).get(
                f"http://127.0.0.1:{server.server_address[1]}/v2/t1/app/tags/list"
            )
            assert (resp.status_code, resp.json(), "Authorization" in resp.request.headers) == (200, {}, False)
        finally:
            server.shutdown()
            server.server_close()


class TestRefreshTokens:
    @pytest.fixture
    def registry(self):
        fake = FakeRegistry(refresh_token="rt-1")
        yield fake
        fake.close()

    def test_the_password_is_sent_once_then_the_refresh_token(self, registry):
        auth = RegistryTokenAuth("alice", "secret")
        s = session(auth)
        for repository in ("a", "b", "c"):
            assert s.get(f"{registry.url}/v2/t1/{repository}/manifests/v1").status_code == 200
        kinds = [kind if kind == "POST" else "Basic" for kind, _ in registry.token_requests]
        assert kinds == ["Basic", "POST", "POST"]
        assert [form["scope"] for kind, form in registry.token_requests[1:]] == [
            ["repository:t1/b:pull"],
            ["repository:t1/c:pull"],
        ]
        assert auth.refresh_token == "rt-1"

    def test_a_refused_refresh_token_falls_back_to_the_password(self, registry):
        auth = RegistryTokenAuth("alice", "secret")
        s = session(auth)
        s.get(f"{registry.url}/v2/t1/a/manifests/v1")
        registry.refresh_token = "rt-2"  # the old one was revoked (say, a password change)
        assert s.get(f"{registry.url}/v2/t1/b/manifests/v1").status_code == 200
        kinds = [kind if kind == "POST" else "Basic" for kind, _ in registry.token_requests]
        assert kinds == ["Basic", "POST", "Basic"]
        assert auth.refresh_token == "rt-2"

    def test_anonymous_asks_for_no_refresh_token(self, registry):
        s = session(RegistryTokenAuth())
        with pytest.raises(RegistryAuthError):
            s.get(f"{registry.url}/v2/library/x/manifests/v1")
        assert "offline_token" not in registry.token_requests[0][1]
