"""The auth service in a nameko container on the real broker (a vhost of its own), a real
``docker-registry`` that delegates authentication to it, and the real docker CLI and engine.

Everything is started once per module: a registry, a database and a set of accounts, which the
tests share with names of their own (each test pushes to repositories no other test uses).
"""

import os
import subprocess
import uuid
import warnings

import pytest
import requests
import yaml
from nameko.containers import ServiceContainer

from auth.migrate import upgrade
from auth.service import AuthService
from shared.ops.broker_access import operator_management
from shared.runtime.identity import IdentifiedClusterRpcProxy
from tests.integration.auth.helpers import ROOT, DockerCLI, LocalImages, TokenAuthRegistry, TokenClient
from tests.support import NotificationSink, free_port, wait_until

CONFIG_PATH = os.path.join(ROOT, "services", "auth", "config.yml")
ISSUER, SERVICE = "imagehub-auth", "imagehub-registry"
# Few free failures and short delays, so that the slow-down can be watched within a test; the
# first delay long enough that the next request surely falls inside it on a loaded machine.
FREE_FAILURES, FIRST_DELAY, MAX_DELAY = 3, 4, 8
# Seconds a silent client keeps its connection: short, so that a test sees it cut.
SOCKET_TIMEOUT = 2

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "dora": "dora-password", "root": "root-password"}


def load_service_config(env):
    """config.yml read as `nameko run` reads it, with ``env`` set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AUTH_"):
                patch.delenv(name)
        for name, value in env.items():
            patch.setenv(name, value)
        with open(CONFIG_PATH) as f:
            config = yaml.safe_load(f)
    del config["LOGGING"]  # pytest's log capture stays in charge
    return config


@pytest.fixture(scope="module")
def key_files(tmp_path_factory):
    """A development key pair made by scripts/auth-keys.sh, as `make up` will make it."""
    var = tmp_path_factory.mktemp("var")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    done = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "auth-keys.sh")],
        env=dict(env, IMAGEHUB_VAR=str(var)),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    exports = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
    assert exports == {
        "AUTH_KEY_FILE": f"{var}/secrets/auth-token.key",
        "AUTH_CERT_FILE": f"{var}/secrets/auth-token.crt",
    }
    return exports


@pytest.fixture(scope="module")
def vhost():
    name = f"imagehub-auth-{uuid.uuid4().hex[:8]}"
    management = operator_management()
    management.create_vhost(name)
    yield management.amqp_uri(name)
    management.delete_vhost(name)


@pytest.fixture(scope="module")
def auth_config(tmp_path_factory, key_files, vhost):
    db_url = f"sqlite:///{tmp_path_factory.mktemp('auth-db')}/auth.db"
    upgrade(db_url)
    return load_service_config(
        dict(
            key_files,
            AMQP_URI=vhost,
            AUTH_ADDRESS=f"127.0.0.1:{free_port()}",
            AUTH_DB_URL=db_url,
            AUTH_LOGIN_FREE_FAILURES=str(FREE_FAILURES),
            AUTH_LOGIN_FIRST_DELAY=str(FIRST_DELAY),
            AUTH_LOGIN_MAX_DELAY=str(MAX_DELAY),
            AUTH_SOCKET_TIMEOUT=str(SOCKET_TIMEOUT),
        )
    )


@pytest.fixture(scope="module")
def auth_service(auth_config):
    container = ServiceContainer(AuthService, auth_config)
    container.start()
    url = f"http://{auth_config['WEB_SERVER_ADDRESS']}"
    wait_until(lambda: requests.get(f"{url}/health", timeout=1).ok, timeout=20, what="auth /health")
    yield url
    container.stop()


@pytest.fixture(scope="module")
def sink():
    sink = NotificationSink(token=uuid.uuid4().hex)
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory, auth_service, key_files, sink):
    registry = TokenAuthRegistry(
        sink.url,
        sink.token,
        realm=f"{auth_service}/token",
        service=SERVICE,
        issuer=ISSUER,
        cert_file=key_files["AUTH_CERT_FILE"],
        workdir=str(tmp_path_factory.mktemp("registry")),
    )
    yield registry.start()
    registry.cleanup()


@pytest.fixture(scope="module")
def rpc(auth_config, auth_service):
    proxy = IdentifiedClusterRpcProxy({"AMQP_URI": auth_config["AMQP_URI"]}, timeout=20)
    yield proxy.start()
    proxy.stop()


@pytest.fixture(scope="module")
def accounts(rpc):
    """Tenants acme and globex; alice (acme), dora (acme, may delete), bob (globex), root (admin);
    robots: acme+deployer (pull), the catalogue's _platform+catalog (pull, delete, _catalog)."""
    rpc.auth.create_tenant("acme", display_name="ACME")
    rpc.auth.create_tenant("globex")
    rpc.auth.create_account("alice", PASSWORDS["alice"], tenant_id="acme")
    rpc.auth.create_account("dora", PASSWORDS["dora"], tenant_id="acme", can_delete=True)
    rpc.auth.create_account("bob", PASSWORDS["bob"], tenant_id="globex")
    rpc.auth.create_account("root", PASSWORDS["root"], is_admin=True)
    secrets = {
        "acme+deployer": rpc.auth.create_robot("acme", "deployer")["secret"],
        "_platform+catalog": rpc.auth.create_robot(None, "catalog", actions=["pull", "delete"], catalog=True)["secret"],
    }
    return dict(PASSWORDS, **secrets)


@pytest.fixture(scope="module")
def images(registry):
    images = LocalImages(registry.host)
    yield images
    images.cleanup()


@pytest.fixture(scope="module")
def base_image(images):
    """One small image built locally once; tests tag it into the repositories they push."""
    return images.build("seed/base")


@pytest.fixture
def docker(tmp_path, registry):
    """``docker(user)``: the docker CLI logged in as ``user`` (None: not logged in), each with a
    DOCKER_CONFIG of its own."""

    def make(username=None, password=None):
        cli = DockerCLI(str(tmp_path / f"docker-{uuid.uuid4().hex[:8]}"), registry.host)
        if username:
            done = cli.login(username, password)
            assert done.returncode == 0, done.stderr
        return cli

    return make


@pytest.fixture
def logged_in(docker, accounts):
    return lambda username: docker(username, accounts[username])


@pytest.fixture
def tokens(auth_service, registry):
    return TokenClient(f"{auth_service}/token", SERVICE, registry.url)


@pytest.fixture
def name():
    """A repository name no other test uses."""
    return f"app-{uuid.uuid4().hex[:8]}"
