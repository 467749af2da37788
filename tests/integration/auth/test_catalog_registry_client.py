"""The catalogue's registry client (catalog.dependencies.Registry, as the service sets it up)
against a real registry with token auth on and the real token service."""

import os
import types

import pytest
import requests

from catalog.dependencies import Registry
from catalog.exceptions import NotInRegistry
from shared.contracts.errors import RegistryUnavailable
from shared.runtime.db import load_config
from shared.runtime.registry_auth import RegistryTokenAuth
from tests.integration.auth.conftest import PASSWORDS
from tests.support import push_image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CATALOG_CONFIG = os.path.join(ROOT, "services", "catalog", "config.yml")


def catalog_client(registry, username, password):
    """``Registry.setup()`` on the catalog's own settings, as ``nameko run`` would give them."""
    provider = Registry()
    provider.container = types.SimpleNamespace(
        config=dict(
            load_config(CATALOG_CONFIG),
            REGISTRY_URL=registry.url,
            REGISTRY_USERNAME=username,
            REGISTRY_PASSWORD=password,
            REGISTRY_TIMEOUT=5,
            max_workers=4,
        )
    )
    provider.setup()
    return provider


@pytest.fixture
def pushed(registry, accounts, name):
    """``acme/<name>:v1`` and ``globex/<name>:v1``, pushed by their tenants' accounts."""
    images = {}
    for repository, user in ((f"acme/{name}", "alice"), (f"globex/{name}", "bob")):
        session = requests.Session()
        session.auth = RegistryTokenAuth(user, PASSWORDS[user])
        images[repository] = push_image(registry.url, repository, "v1", content=repository.encode(), session=session)
    return images


class TestTheCatalogRobot:
    def test_reads_lists_and_deletes_in_every_namespace(self, registry, accounts, pushed):
        provider = catalog_client(registry, "_platform+catalog", accounts["_platform+catalog"])
        client = provider.client
        try:
            for repository, image in pushed.items():
                media_type, body = client.get_manifest(repository, image["digest"])
                assert media_type == "application/vnd.docker.distribution.manifest.v2+json"
                assert b'"config"' in body
                assert client.get_blob(repository, image["image_id"], max_bytes=4096).startswith(b"{")
                assert client.tag_digest(repository, "v1") == image["digest"]
            listed = [name for page in client.repository_pages(100) for name in page]
            assert set(pushed) <= set(listed)
            repository, image = next(iter(pushed.items()))
            client.delete_manifest(repository, image["digest"])
            with pytest.raises(NotInRegistry):
                client.get_manifest(repository, image["digest"])
            # one password check, then the refresh token for every other repository and action
            auth = provider.session.auth
            assert auth.refresh_token and auth.token_requests >= 4
        finally:
            provider.stop()

    def test_refused_credentials_are_registry_unavailable_naming_the_token_service(self, registry, pushed):
        provider = catalog_client(registry, "_platform+catalog", "not-the-secret")
        try:
            repository, image = next(iter(pushed.items()))
            with pytest.raises(RegistryUnavailable, match=r"no registry token .*refused _platform\+catalog.*401"):
                provider.client.get_manifest(repository, image["digest"])
        finally:
            provider.stop()


class TestATenantAccount:
    def test_reads_its_own_namespace_and_is_refused_another(self, registry, pushed):
        provider = catalog_client(registry, "alice", PASSWORDS["alice"])
        try:
            own, other = pushed
            assert provider.client.tag_digest(own, "v1") == pushed[own]["digest"]
            with pytest.raises(RegistryUnavailable, match="answered 401"):
                provider.client.tag_digest(other, "v1")
        finally:
            provider.stop()
