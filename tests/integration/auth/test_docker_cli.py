"""The real docker CLI and engine against a real registry whose authentication is the auth service:
logins, pushes and pulls, each checked against the tenant of the account."""

import docker as docker_sdk
import pytest

from tests.integration.auth.conftest import PASSWORDS

pytestmark = pytest.mark.docker

DENIED = "denied: requested access to the resource is denied"


def registry_tags(tokens, repository):
    """The repository's tags as the registry has them (read with an admin's token)."""
    token = tokens.token(f"repository:{repository}:pull", auth=("root", PASSWORDS["root"]))
    resp = tokens.registry("GET", f"{repository}/tags/list", token)
    if resp.status_code == 404:
        return []
    assert resp.status_code == 200, resp.text
    return sorted(resp.json().get("tags") or [])


class TestDockerLogin:
    def test_succeeds_with_the_right_password_and_keeps_a_refresh_token_not_the_password(
        self, docker, registry, accounts
    ):
        cli = docker()
        done = cli.login("alice", PASSWORDS["alice"])
        assert done.returncode == 0, done.stderr
        assert "Login Succeeded" in done.stdout
        entry = cli.config()["auths"][registry.host]
        assert entry["identitytoken"].count(".") == 2  # the refresh token
        assert PASSWORDS["alice"] not in str(cli.config())

    @pytest.mark.parametrize(
        "username, password",
        [
            ("alice", "not-her-password"),
            ("nobody-at-all", "whatever-password"),
        ],
    )
    def test_fails_with_a_wrong_password_or_unknown_account_saying_the_same(self, docker, accounts, username, password):
        done = docker().login(username, password)
        assert done.returncode != 0
        assert "unauthorized: incorrect username or password" in done.stderr

    def test_a_robot_logs_in_with_its_secret(self, docker, accounts):
        done = docker().login("acme+deployer", accounts["acme+deployer"])
        assert done.returncode == 0, done.stderr

    def test_a_disabled_account_cannot_log_in_until_enabled(self, docker, rpc, accounts):
        rpc.auth.create_account("erin", "erin-password", tenant_id="acme")
        rpc.auth.disable_account("erin")
        assert "incorrect username or password" in docker().login("erin", "erin-password").stderr
        rpc.auth.enable_account("erin")
        assert docker().login("erin", "erin-password").returncode == 0


class TestPush:
    def test_an_account_pushes_to_its_tenant_and_is_the_events_actor(
        self, logged_in, images, base_image, tokens, sink, name
    ):
        ref = images.tag(base_image, f"acme/{name}")
        done = logged_in("alice").push(ref)
        assert done.returncode == 0, done.stderr
        assert registry_tags(tokens, f"acme/{name}") == ["v1"]
        from tests.support import wait_until

        pushes = wait_until(lambda: sink.pushes(f"acme/{name}"), timeout=15, what="the push notification")
        assert {event["actor"].get("name") for event in pushes} == {"alice"}

    @pytest.mark.parametrize("namespace", ["globex", "library"])
    def test_an_account_is_denied_another_tenants_namespace_and_the_library(
        self, logged_in, images, base_image, tokens, name, namespace
    ):
        ref = images.tag(base_image, f"{namespace}/{name}")
        done = logged_in("alice").push(ref)
        assert done.returncode != 0
        assert DENIED in done.stderr
        assert registry_tags(tokens, f"{namespace}/{name}") == []

    def test_an_admin_pushes_to_the_library(self, logged_in, images, base_image, tokens, sink, name):
        ref = images.tag(base_image, f"library/{name}")
        done = logged_in("root").push(ref)
        assert done.returncode == 0, done.stderr
        assert registry_tags(tokens, f"library/{name}") == ["v1"]

    def test_a_pull_only_robot_cannot_push_even_to_its_tenant(self, logged_in, images, base_image, tokens, name):
        ref = images.tag(base_image, f"acme/{name}")
        done = logged_in("acme+deployer").push(ref)
        assert DENIED in done.stderr
        assert registry_tags(tokens, f"acme/{name}") == []


class TestPull:
    @pytest.fixture
    def globex_private(self, logged_in, images, base_image, name):
        """An image bob pushed to globex, then removed locally."""
        ref = images.build(f"globex/{name}")
        assert logged_in("bob").push(ref).returncode == 0
        images.remove(ref)
        return ref

    @pytest.fixture
    def acme_private(self, logged_in, images, name):
        ref = images.build(f"acme/{name}")
        assert logged_in("alice").push(ref).returncode == 0
        images.remove(ref)
        return ref

    @pytest.fixture
    def library_image(self, logged_in, images, name):
        ref = images.build(f"library/{name}")
        assert logged_in("root").push(ref).returncode == 0
        images.remove(ref)
        return ref

    def test_another_tenants_private_image_is_denied(self, logged_in, images, globex_private):
        done = logged_in("alice").pull(globex_private)
        assert done.returncode != 0
        assert "pull access denied" in done.stderr and DENIED in done.stderr
        assert not images.exists(globex_private)

    def test_the_own_tenants_image_and_the_library_are_pulled(self, logged_in, images, globex_private, library_image):
        bob = logged_in("bob")
        for ref in (globex_private, library_image):
            done = bob.pull(ref)
            assert done.returncode == 0, done.stderr
            assert images.exists(ref)

    def test_without_login_nothing_is_pulled_not_even_the_library(self, docker, images, library_image, acme_private):
        anonymous = docker()
        for ref in (library_image, acme_private):
            done = anonymous.pull(ref)
            assert done.returncode != 0 and "pull access denied" in done.stderr
            assert not images.exists(ref)


class TestRobotCredentials:
    """How the deployer pulls: the engine's API with ``auth_config``, no docker login."""

    @pytest.fixture
    def engine(self):
        client = docker_sdk.DockerClient(base_url="unix:///var/run/docker.sock", timeout=60)
        yield client
        client.close()

    @pytest.fixture
    def pushed(self, logged_in, images, name):
        refs = {}
        for namespace, user in (("acme", "alice"), ("globex", "bob")):
            ref = images.build(f"{namespace}/{name}")
            assert logged_in(user).push(ref).returncode == 0
            images.remove(ref)
            refs[namespace] = ref
        return refs

    def pull(self, engine, ref, username, password):
        repository, tag = ref.rsplit(":", 1)
        return engine.images.pull(repository, tag=tag, auth_config={"username": username, "password": password})

    def test_a_stored_robot_pulls_its_tenants_private_image_only(self, engine, images, pushed, accounts):
        image = self.pull(engine, pushed["acme"], "acme+deployer", accounts["acme+deployer"])
        assert pushed["acme"] in image.tags
        with pytest.raises(docker_sdk.errors.APIError, match="denied"):
            self.pull(engine, pushed["globex"], "acme+deployer", accounts["acme+deployer"])
        assert not images.exists(pushed["globex"])

    def test_an_issued_credential_pulls_for_its_tenant_until_it_expires(self, engine, images, pushed, rpc):
        credential = rpc.auth.issue_robot_credential("globex", ttl=120)
        assert (credential["username"], credential["actions"]) == ("globex+deployer", ["pull"])
        image = self.pull(engine, pushed["globex"], credential["username"], credential["password"])
        assert pushed["globex"] in image.tags
        with pytest.raises(docker_sdk.errors.APIError, match="denied"):
            self.pull(engine, pushed["acme"], credential["username"], credential["password"])

    def test_a_wrong_secret_is_refused(self, engine, pushed):
        with pytest.raises(docker_sdk.errors.APIError, match="incorrect username or password"):
            self.pull(engine, pushed["acme"], "acme+deployer", "not-the-secret")
