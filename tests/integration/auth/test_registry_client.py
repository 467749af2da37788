"""shared.runtime.registry_auth.RegistryTokenAuth (the catalogue's registry client uses it) against the real
registry and token service: a requests session that fetches, caches and renews registry tokens
by itself."""

import pytest
import requests

from shared.runtime.registry_auth import RegistryAuthError, RegistryTokenAuth
from tests.integration.auth.conftest import PASSWORDS
from tests.integration.auth.helpers import MANIFEST_TYPES
from tests.support import push_image


@pytest.fixture
def images_of_two_tenants(tokens, accounts, name):
    pushed = {}
    for repository, user in ((f"acme/{name}", "alice"), (f"globex/{name}", "bob")):
        session = requests.Session()
        token = tokens.token(f"repository:{repository}:pull,push", auth=(user, PASSWORDS[user]))
        session.headers["Authorization"] = f"Bearer {token}"
        pushed[repository] = push_image(
            tokens.registry_url, repository, "v1", content=repository.encode(), session=session
        )
    return pushed


def session_for(username, password):
    session = requests.Session()
    session.auth = RegistryTokenAuth(username, password)
    return session


class TestCatalogueRobot:
    def test_reads_manifests_and_blobs_of_every_tenant_lists_and_deletes(
        self, registry, accounts, images_of_two_tenants
    ):
        session = session_for("_platform+catalog", accounts["_platform+catalog"])
        for repository, image in images_of_two_tenants.items():
            manifest = session.get(
                f"{registry.url}/v2/{repository}/manifests/{image['digest']}",
                headers={"Accept": MANIFEST_TYPES},
                timeout=10,
            )
            assert manifest.status_code == 200
            assert manifest.json()["config"]["digest"] == image["image_id"]
            config = session.get(f"{registry.url}/v2/{repository}/blobs/{image['image_id']}", timeout=10)
            assert config.status_code == 200 and config.json()["architecture"] == "amd64"
        listed = session.get(f"{registry.url}/v2/_catalog", timeout=10)
        assert set(images_of_two_tenants) <= set(listed.json()["repositories"])
        repository, image = next(iter(images_of_two_tenants.items()))
        deleted = session.delete(f"{registry.url}/v2/{repository}/manifests/{image['digest']}", timeout=10)
        assert deleted.status_code == 202

    def test_a_token_is_asked_for_once_per_repository_and_method_then_renewed_without_the_secret(
        self, registry, accounts, images_of_two_tenants
    ):
        auth = RegistryTokenAuth("_platform+catalog", accounts["_platform+catalog"])
        session = requests.Session()
        session.auth = auth
        first, second = images_of_two_tenants
        for _ in range(3):
            assert session.get(f"{registry.url}/v2/{first}/tags/list", timeout=10).json()["tags"] == ["v1"]
        assert auth.token_requests == 1
        assert auth.refresh_token is not None
        auth.password = "no-longer-the-secret"  # a new scope now comes from the refresh token
        assert session.get(f"{registry.url}/v2/{second}/tags/list", timeout=10).status_code == 200
        assert auth.token_requests == 2


class TestTenantAccount:
    def test_gets_its_own_tenants_images_and_a_401_for_another_tenants(self, registry, images_of_two_tenants):
        session = session_for("alice", PASSWORDS["alice"])
        own, other = images_of_two_tenants
        assert session.get(f"{registry.url}/v2/{own}/tags/list", timeout=10).status_code == 200
        refused = session.get(f"{registry.url}/v2/{other}/tags/list", timeout=10)
        assert refused.status_code == 401  # asked once, refused: no loop
        assert len(refused.history) == 1

    def test_wrong_credentials_raise_from_the_token_service(self, registry, images_of_two_tenants):
        session = session_for("alice", "wrong-password")
        with pytest.raises(RegistryAuthError, match="refused alice .*: 401 .*incorrect username or password"):
            session.get(f"{registry.url}/v2/{next(iter(images_of_two_tenants))}/tags/list", timeout=10)
