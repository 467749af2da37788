"""The deployer and the real catalog in nameko containers, on the real broker, database, registry
and the machine's two Docker engines.

Per module (and per database: SQLite, then PostgreSQL): a private RabbitMQ vhost, a registry,
two busybox httpd images pushed to it with the docker CLI (``<tenant>/web:v1`` and ``:v2``, each
serving its own marker), the catalog indexing them from ``image_pushed`` events, and the deployer
with its own ``DEPLOYER_ID``. Every container carrying that ID is removed from both engines when
the module ends, whatever happened, and so are the images pulled from the test registry.
"""

import os
import subprocess
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import docker
import pytest
import requests
import sqlalchemy as sa
from nameko.containers import ServiceContainer
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher

from catalog.migrate import upgrade as upgrade_catalog
from catalog.service import CatalogService
from deployer.migrate import load_config
from deployer.migrate import upgrade as upgrade_deployer
from deployer.service import DeployerService, DeployerWorker
from shared.contracts.events import DEPLOYER, DEPLOYMENT_STATUS_CHANGED, IMAGE_PUSHED, WEBHOOK, ImagePushed, make_event
from shared.ops import broker_topology
from shared.ops.broker_access import operator_management
from shared.runtime.identity import IdentifiedClusterRpcProxy
from tests.conftest import TEST_PG_URL
from tests.e2e.stack import ROOT
from tests.support import DOCKER_MANIFEST_V2, wait_until

ENGINES = {"local-1": "unix:///var/run/docker.sock", "local-2": "unix:///var/run/imagehub-docker2.sock"}
WAIT = 40  # seconds for a rollout to settle: generous on a loaded machine, well inside pytest-timeout
SETTLED = ("running", "failed", "rollout_failed", "rolled_back", "stopped", "degraded", "deleted")
# Small reservations so that every test's deployments fit in the pool together.
SMALL = {"cpu": 0.1, "memory": "32m"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request, tmp_path_factory):
    """``(deployer URL, catalog URL)``, both migrated: SQLite files, or fresh PostgreSQL schemas."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("deployer-db")
        urls = (f"sqlite:///{folder}/deployer.db", f"sqlite:///{folder}/catalog.db")
        schemas = []
    else:
        schemas = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
        admin = sa.create_engine(TEST_PG_URL)
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in TEST_PG_URL else "?"
        urls = tuple(f"{TEST_PG_URL}{sep}options={quote(f'-csearch_path={schema}')}" for schema in schemas)
    upgrade_deployer(urls[0])
    upgrade_catalog(urls[1])
    yield urls
    if schemas:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="module")
def registry(registry_factory):
    return registry_factory()


@pytest.fixture(scope="module")
def tenant():
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def engines():
    clients = {name: docker.DockerClient(base_url=url, version="1.41", timeout=30) for name, url in ENGINES.items()}
    yield clients
    for client in clients.values():
        client.close()


def docker_cli(*args, timeout=120):
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"docker {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def build_and_push(registry, tenant, tag, built):
    """A busybox httpd image serving its own marker, built here and pushed with the docker CLI to
    ``<registry>/<tenant>/web:<tag>``; ``(digest, marker)``. The reference is added to ``built``."""
    ref = f"{registry.host}/{tenant}/web:{tag}"
    marker = f"web-{tag}-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["bash", os.path.join(ROOT, "scripts/busybox-image.sh"), ref, marker],
        check=True,
        capture_output=True,
        timeout=60,
    )
    built.append(ref)
    out = docker_cli("push", ref)
    return [line.split("digest: ")[1].split()[0] for line in out.splitlines() if "digest: " in line][-1], marker


def announce_push(vhost_config, tenant, tag, digest):
    """The ``image_pushed`` the webhook sends for a push (actor ``it``), to the catalog."""
    event_dispatcher(vhost_config)(
        WEBHOOK,
        IMAGE_PUSHED,
        make_event(
            ImagePushed,
            namespace=tenant,
            repository=f"{tenant}/web",
            tag=tag,
            digest=digest,
            media_type=DOCKER_MANIFEST_V2,
            size=500,
            actor="it",
            request_id=str(uuid.uuid4()),
            source_event_id=str(uuid.uuid4()),
            pushed_at=datetime.now(UTC).isoformat(),
        ),
    )


@pytest.fixture(scope="module")
def images(registry, tenant):
    """``{"v1": (digest, marker), "v2": ...}``: busybox httpd images built here and pushed with
    the docker CLI to ``<registry>/<tenant>/web``."""
    built = []
    try:
        yield {tag: build_and_push(registry, tenant, tag, built) for tag in ("v1", "v2")}
    finally:
        if built:
            subprocess.run(["docker", "rmi", "-f", *built], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def vhost_config():
    vhost = f"imagehub-deployer-{uuid.uuid4().hex[:8]}"
    broker = operator_management()
    broker.create_vhost(vhost)
    broker_topology.declare(broker, vhost)
    yield {"AMQP_URI": broker.amqp_uri(vhost)}
    broker.delete_vhost(vhost)


@pytest.fixture(scope="module")
def deployer_id():
    return "it-" + uuid.uuid4().hex[:10]


class StatusEvents:
    """Every deployment_status_changed the deployer dispatched, in arrival order."""

    def __init__(self):
        self.received = []

    def of(self, deployment_id):
        return [(p["revision"], p["status"]) for p in self.received if p["deployment_id"] == deployment_id]


@pytest.fixture(scope="module")
def status_events(vhost_config):
    events = StatusEvents()

    class Observer:
        name = "deployer_observer"

        @event_handler(DEPLOYER, DEPLOYMENT_STATUS_CHANGED)
        def on_status(self, payload):
            events.received.append(payload)

    container = ServiceContainer(Observer, dict(vhost_config, max_workers=1))
    container.start()
    yield events
    container.kill()


@pytest.fixture(scope="module")
def services(containers):
    """The deployer's configuration, with the catalog and the deployer running."""
    return containers["deployer"].config


@pytest.fixture(scope="module")
def deployer_overrides():
    """Extra deployer configuration for a module's containers; a test module may override it."""
    return {}


@pytest.fixture(scope="module")
def containers(vhost_config, database, registry, deployer_id, status_events, engines, deployer_overrides):
    """The catalog and the deployer's two service classes (``{"catalog": …, "deployer": …,
    "deployer_worker": …}`` nameko containers, as ``nameko run deployer.service`` starts both),
    configured from their own config.yml with test overrides."""
    deployer_url, catalog_url = database
    catalog_config = load_config(os.path.join(ROOT, "services/catalog/config.yml"))
    catalog_config.update(
        vhost_config,
        DB_URIS={"catalog:Base": catalog_url},
        REGISTRY_URL=registry.url,
        REGISTRY_PUBLIC_HOST=registry.host,
        REGISTRY_TIMEOUT=5,
    )
    deployer_config = load_config(os.path.join(ROOT, "services/deployer/config.yml"))
    deployer_config.update(
        vhost_config,
        DB_URIS={"deployer:Base": deployer_url},
        DEPLOYER_ID=deployer_id,
        DEFAULT_POOL="engines",
        REGISTRY_PULL_HOST=registry.host,
        REGISTRY_PUBLIC_HOST=registry.host,
        STOP_TIMEOUT=1,
        RECONCILE_INTERVAL=1,
        HEALTH_SECONDS=1,
        max_workers=10,
        **deployer_overrides,
    )
    deployer_config["POOLS"]["engines"]["hosts"][0]["base_url"] = ENGINES["local-1"]
    deployer_config["POOLS"]["engines"]["hosts"][1]["base_url"] = ENGINES["local-2"]
    started = {
        "catalog": ServiceContainer(CatalogService, catalog_config),
        "deployer": ServiceContainer(DeployerService, deployer_config),
        "deployer_worker": ServiceContainer(DeployerWorker, deployer_config),
    }
    try:
        for container in started.values():
            container.start()
        yield started
    finally:
        for container in reversed(list(started.values())):
            container.kill()
        remove_everything(engines, deployer_id, registry.host)


def remove_everything(engines, deployer_id, registry_host):
    """Every container with this run's deployer ID, and the images pulled from the test registry."""

    def leftovers():
        found = [
            c
            for client in engines.values()
            for c in client.containers.list(all=True, filters={"label": f"imagehub.deployer={deployer_id}"})
        ]
        for container in found:
            try:
                container.remove(force=True)
            except docker.errors.APIError:  # gone meanwhile, or its removal already under way
                pass
        return not found

    wait_until(leftovers, timeout=30, interval=0.2, what=f"no container labelled imagehub.deployer={deployer_id}")
    # The low-level listing: the SDK's images.list() inspects each image after listing them, and
    # fails when another test process removes one of its own images in between.
    for client in engines.values():
        for image in client.api.images():
            tags = [t for t in image.get("RepoTags") or [] if t != "<none>:<none>"]
            if any(ref.startswith(registry_host + "/") for ref in image.get("RepoDigests") or []) and not tags:
                try:
                    client.api.remove_image(image["Id"], force=True)
                except docker.errors.APIError:
                    pass  # still used by another run's container: it goes with that run


@pytest.fixture(scope="module")
def rpc(services, vhost_config):
    import shared.contracts.errors  # noqa: F401 - registers the typed errors, as a platform component would

    with IdentifiedClusterRpcProxy(vhost_config, timeout=20) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def indexed(services, rpc, vhost_config, images, tenant):
    """The pushed tags, indexed by the real catalog from image_pushed events (as the webhook sends)."""
    for tag, (digest, _) in images.items():
        announce_push(vhost_config, tenant, tag, digest)
    for tag, (digest, _) in images.items():
        wait_until(
            lambda tag=tag, digest=digest: rpc.catalog.get_tag(tenant, f"{tenant}/web", tag)["digest"] == digest,
            timeout=20,
            what=f"{tenant}/web:{tag} in the catalog",
        )
    return images


class Deployer:
    """The deployer's RPC as a platform component calls it, with waits for its asynchronous work.

    Deployments created here are deleted when the test ends (the module's teardown removes any
    container left behind on the engines).
    """

    def __init__(self, rpc, tenant, images):
        self.rpc = rpc
        self.call = rpc.deployer
        self.tenant = tenant
        self.images = images
        self.created = []

    def create(self, name=None, **spec):
        spec = dict(
            {
                "name": name or f"web-{uuid.uuid4().hex[:6]}",
                "image": f"{self.tenant}/web:v1",
                "replicas": 2,
                "ports": [{}],
                "health": {"type": "http", "timeout": 15},
                **SMALL,
            },
            **spec,
        )
        created = self.call.create_deployment(self.tenant, spec)
        self.created.append(created["id"])
        return created

    def get(self, deployment_id):
        return self.call.get_deployment(self.tenant, deployment_id)

    def settle(self, deployment_id, timeout=WAIT):
        """Wait until no operation runs on the deployment and its status is final; returns it."""
        return wait_until(
            lambda: (lambda d: d if d["status"] in SETTLED and d["operation"] is None else None)(
                self.get(deployment_id)
            ),
            timeout=timeout,
            interval=0.1,
            what=f"deployment {deployment_id} to settle",
        )

    def running(self, timeout=WAIT, **spec):
        deployment = self.settle(self.create(**spec)["id"], timeout)
        assert deployment["status"] == "running", deployment
        return deployment

    def cleanup(self):
        for deployment_id in self.created:
            try:
                self.call.delete_deployment(self.tenant, deployment_id)
            except Exception:  # the module teardown removes whatever is left
                pass


@pytest.fixture
def deployer(rpc, tenant, indexed):
    client = Deployer(rpc, tenant, indexed)
    yield client
    client.cleanup()


def answer(address, timeout=1.0):
    """The body served at ``http://<address>/``, or None if nothing answers."""
    try:
        resp = requests.get(f"http://{address}/", timeout=timeout)
    except requests.RequestException:
        return None
    return resp.text.strip() if resp.ok else None


def labelled(engines, deployment_id, all_states=False):
    """``{engine: [container]}`` carrying the deployment's label."""
    return {
        name: client.containers.list(all=all_states, filters={"label": f"imagehub.deployment={deployment_id}"})
        for name, client in engines.items()
    }


def poll(predicate, timeout=WAIT, what="condition"):
    return wait_until(predicate, timeout=timeout, interval=0.1, what=what)
