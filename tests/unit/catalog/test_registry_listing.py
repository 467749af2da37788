"""RegistryClient's listings and tag lookups, on answers shaped as Docker Distribution gives them
(a fake HTTP session; the real registry is in tests/integration/catalog/test_registry_client.py)."""

import hashlib
import json

import pytest
import requests

from catalog.dependencies import ACCEPT_MANIFESTS, RegistryClient
from catalog.exceptions import UnusableManifest
from shared.contracts.errors import RegistryUnavailable

BASE = "http://registry.test:5000"
DIGEST = "sha256:" + "d" * 64


def answer(status=200, body=b"", headers=None):
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    resp.headers.update(headers or {})
    return resp


class FakeHTTP:
    """Stands in for requests.Session: answers from ``routes`` by (method, url), records the calls."""

    def __init__(self, routes):
        self.routes = routes
        self.calls = []

    def request(self, method, url, timeout=None, headers=None):
        self.calls.append((method, url, (headers or {}).get("Accept")))
        return self.routes[method, url]


def client(routes):
    http = FakeHTTP(routes)
    return RegistryClient(http, BASE + "/", timeout=5), http


class TestRepositoryPages:
    def test_follows_the_link_header_until_there_is_none(self):
        registry, http = client(
            {
                ("GET", f"{BASE}/v2/_catalog?n=2"): answer(
                    body={"repositories": ["t1/a", "t1/b"]},
                    headers={"Link": '</v2/_catalog?last=t1%2Fb&n=2>; rel="next"'},
                ),
                ("GET", f"{BASE}/v2/_catalog?last=t1%2Fb&n=2"): answer(body={"repositories": ["t2/c"]}),
            }
        )

        assert list(registry.repository_pages(2)) == [["t1/a", "t1/b"], ["t2/c"]]
        assert [url for _, url, _ in http.calls] == [f"{BASE}/v2/_catalog?n=2", f"{BASE}/v2/_catalog?last=t1%2Fb&n=2"]

    def test_an_empty_registry_is_one_empty_page(self):
        registry, _ = client({("GET", f"{BASE}/v2/_catalog?n=100"): answer(body={"repositories": []})})
        assert list(registry.repository_pages(100)) == [[]]

    def test_a_registry_error_is_unavailable_and_a_non_json_answer_unusable(self):
        registry, _ = client({("GET", f"{BASE}/v2/_catalog?n=5"): answer(503, b"down")})
        with pytest.raises(RegistryUnavailable, match="503"):
            list(registry.repository_pages(5))
        registry, _ = client({("GET", f"{BASE}/v2/_catalog?n=5"): answer(200, b"<html>")})
        with pytest.raises(UnusableManifest, match="no JSON object"):
            list(registry.repository_pages(5))


class TestTagPages:
    def test_pages_as_distribution_3_gives_them(self):
        registry, _ = client(
            {
                ("GET", f"{BASE}/v2/t1/app/tags/list?n=1"): answer(
                    body={"name": "t1/app", "tags": ["v1"]},
                    headers={"Link": f'<{BASE}/v2/t1/app/tags/list?last=v1&n=1>; rel="next"'},
                ),
                ("GET", f"{BASE}/v2/t1/app/tags/list?last=v1&n=1"): answer(body={"name": "t1/app", "tags": ["v2"]}),
            }
        )
        assert list(registry.tag_pages("t1/app", 1)) == [["v1"], ["v2"]]

    def test_every_tag_deleted_is_null_tags_and_an_unknown_repository_nothing(self):
        registry, _ = client(
            {
                ("GET", f"{BASE}/v2/t1/app/tags/list?n=10"): answer(body={"name": "t1/app", "tags": None}),
                ("GET", f"{BASE}/v2/t1/gone/tags/list?n=10"): answer(404, {"errors": [{"code": "NAME_UNKNOWN"}]}),
            }
        )
        assert list(registry.tag_pages("t1/app", 10)) == [[]]
        assert list(registry.tag_pages("t1/gone", 10)) == []


class TestTagDigest:
    def test_the_digest_header_of_a_head_by_tag_accepting_every_manifest_type(self):
        registry, http = client(
            {("HEAD", f"{BASE}/v2/t1/app/manifests/v1"): answer(headers={"Docker-Content-Digest": DIGEST})}
        )
        assert registry.tag_digest("t1/app", "v1") == DIGEST
        assert http.calls == [("HEAD", f"{BASE}/v2/t1/app/manifests/v1", ACCEPT_MANIFESTS)]

    def test_no_such_tag_is_none(self):
        registry, _ = client({("HEAD", f"{BASE}/v2/t1/app/manifests/v9"): answer(404)})
        assert registry.tag_digest("t1/app", "v9") is None

    def test_without_the_header_the_body_is_hashed(self):
        body = b'{"schemaVersion": 2}'
        registry, _ = client(
            {
                ("HEAD", f"{BASE}/v2/t1/app/manifests/v1"): answer(),
                ("GET", f"{BASE}/v2/t1/app/manifests/v1"): answer(body=body),
            }
        )
        assert registry.tag_digest("t1/app", "v1") == "sha256:" + hashlib.sha256(body).hexdigest()
