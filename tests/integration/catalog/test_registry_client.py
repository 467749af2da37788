"""The real RegistryClient against a real registry: the port the handlers and the fake rely on."""

import hashlib
import http.server
import threading

import pytest
import requests

from catalog.dependencies import RegistryClient
from catalog.exceptions import NotInRegistry, UnusableManifest
from catalog.manifests import DOCKER_MANIFEST_LIST
from shared.contracts.errors import RegistryUnavailable
from tests.integration.catalog.conftest import CREATED
from tests.support import DOCKER_MANIFEST_V2, free_port, push_image, push_index


@pytest.fixture
def client(registry):
    return RegistryClient(requests.Session(), registry.url, timeout=5)


def sha256(body):
    return "sha256:" + hashlib.sha256(body).hexdigest()


class TestFetching:
    def test_manifest_by_digest_is_the_exact_pushed_body(self, client, registry, tenant):
        image = push_image(registry.url, f"{tenant}/app", None, content=tenant.encode())
        content_type, body = client.get_manifest(f"{tenant}/app", image["digest"])
        assert (content_type, sha256(body), len(body)) == (DOCKER_MANIFEST_V2, image["digest"], image["size"])

    def test_index_comes_back_as_an_index(self, client, registry, tenant):
        index = push_index(registry.url, f"{tenant}/multi", "1.0", content=tenant.encode())
        content_type, body = client.get_manifest(f"{tenant}/multi", index["digest"])
        assert (content_type, sha256(body)) == (DOCKER_MANIFEST_LIST, index["digest"])

    def test_config_blob(self, client, registry, tenant):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        assert sha256(client.get_blob(f"{tenant}/app", image["image_id"])) == image["image_id"]

    def test_a_blob_past_the_limit_is_refused_without_reading_it_all(self, client, registry, tenant):
        from tests.support import _upload_blob

        big = b"x" * (64 * 1024 + 1)
        digest = _upload_blob(requests.Session(), registry.url, f"{tenant}/app", big)
        assert client.get_blob(f"{tenant}/app", digest, max_bytes=len(big)) == big
        with pytest.raises(UnusableManifest, match=f"larger than {64 * 1024} bytes"):
            client.get_blob(f"{tenant}/app", digest, max_bytes=64 * 1024)

    def test_unknown_digest_is_not_in_registry(self, client, tenant):
        with pytest.raises(NotInRegistry):
            client.get_manifest(f"{tenant}/app", "sha256:" + "0" * 64)


class TestDeleting:
    def test_delete_removes_every_tag_on_the_digest_and_says_if_it_was_there(self, client, registry, tenant):
        repository = f"{tenant}/app"
        image = push_image(registry.url, repository, "v1", content=tenant.encode(), created=CREATED)
        assert (
            push_image(registry.url, repository, "stable", content=tenant.encode(), created=CREATED)["digest"]
            == image["digest"]
        )
        assert client.delete_manifest(repository, image["digest"]) is True
        assert registry.tags(repository) == []
        assert client.delete_manifest(repository, image["digest"]) is False


class TestUnavailable:
    def test_nothing_listening_is_registry_unavailable(self):
        client = RegistryClient(requests.Session(), f"http://127.0.0.1:{free_port()}", timeout=2)
        with pytest.raises(RegistryUnavailable, match="unreachable"):
            client.get_manifest("t1/app", "sha256:" + "0" * 64)

    def test_5xx_is_registry_unavailable(self):
        class Failing(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(503)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Failing)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            client = RegistryClient(requests.Session(), f"http://127.0.0.1:{server.server_port}", timeout=2)
            with pytest.raises(RegistryUnavailable, match="503"):
                client.get_blob("t1/app", "sha256:" + "0" * 64)
        finally:
            server.shutdown()
            server.server_close()
