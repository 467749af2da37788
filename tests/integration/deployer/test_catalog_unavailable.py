"""A catalog that does not answer: the deployer's RPC gives up within CATALOG_RPC_TIMEOUT.

A real deployer in a nameko container on a private vhost where the catalog's RPC queue exists
(as it does once the catalog has run on a broker) but nothing consumes it: the catalog is down.
No catalog and no engine are involved: the deployer gives up before it would ping a host.
"""

import os
import time
import uuid
from datetime import UTC, datetime

import pytest
from kombu import Connection, Exchange, Queue
from nameko.containers import ServiceContainer
from nameko_sqlalchemy.database import Session
from sqlalchemy.orm import sessionmaker

from deployer.migrate import load_config, upgrade
from deployer.models import Deployment, Revision
from deployer.service import DeployerService, DeployerWorker
from shared.contracts.errors import ServiceUnavailable
from shared.runtime import db
from shared.runtime.identity import IdentifiedClusterRpcProxy
from tests.e2e.stack import ROOT
from tests.support import wait_until

TIMEOUT = 1  # CATALOG_RPC_TIMEOUT of this deployer, seconds
DIGEST = "sha256:" + "1" * 64


@pytest.fixture(scope="module")
def catalog_queue(vhost_config):
    """The catalog's RPC queue, bound as nameko binds it, with no consumer: ``message_count()``."""
    queue = Queue(
        "rpc-catalog",
        exchange=Exchange("nameko-rpc", type="topic", durable=True),
        routing_key="catalog.*",
        durable=True,
    )
    with Connection(vhost_config["AMQP_URI"], connect_timeout=5) as conn:
        queue(conn.default_channel).declare()

    def message_count():
        with Connection(vhost_config["AMQP_URI"], connect_timeout=5) as conn:
            return queue(conn.default_channel).queue_declare(passive=True).message_count

    return message_count


@pytest.fixture(scope="module")
def deployer_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('deployer-down-db')}/deployer.db"
    upgrade(url)
    return url


@pytest.fixture(scope="module")
def deployer(vhost_config, catalog_queue, deployer_url):
    config = load_config(os.path.join(ROOT, "services/deployer/config.yml"))
    config.update(
        vhost_config,
        DB_URIS={"deployer:Base": deployer_url},
        CATALOG_RPC_TIMEOUT=TIMEOUT,
        DEPLOYER_ID="it-" + uuid.uuid4().hex[:10],
        RECONCILE_INTERVAL=3600,
    )
    containers = [ServiceContainer(DeployerService, config), ServiceContainer(DeployerWorker, config)]
    for container in containers:
        container.start()
    try:
        import shared.contracts.errors  # noqa: F401 - registers the typed errors, as a platform component would

        with IdentifiedClusterRpcProxy(vhost_config, timeout=15) as proxy:  # far above TIMEOUT: a hang fails, bounded
            yield proxy.deployer
    finally:
        for container in containers:
            container.kill()


@pytest.fixture
def recorded(deployer_url):
    """A deployment at revision 1 written straight into the deployer's database (creating one
    would need the catalog)."""
    engine = db.create_engine(deployer_url)
    now = datetime.now(UTC)
    deployment_id = str(uuid.uuid4())
    with sessionmaker(bind=engine, class_=Session)() as session, session.begin():
        session.add(
            Deployment(
                id=deployment_id,
                tenant_id="t1",
                name=f"web-{deployment_id[:6]}",
                pool="engines",
                replicas=0,
                revision=1,
                serving_revision=1,
                status="stopped",
                reason=None,
                auto_deploy={"policy": "never"},
                operation=None,
                operation_id=None,
                operation_at=None,
                created_at=now,
                updated_at=now,
                deleted_at=None,
            )
        )
        session.add(
            Revision(
                deployment_id=deployment_id,
                number=1,
                image="t1/web:v1",
                repository="t1/web",
                tag="v1",
                digest=DIGEST,
                pull_ref=f"127.0.0.1:5000/t1/web@{DIGEST}",
                spec={
                    "env": {},
                    "command": None,
                    "ports": [],
                    "cpu": 0.1,
                    "memory": 32 * 1024**2,
                    "restart_policy": "unless-stopped",
                    "health": {"type": "running", "seconds": 1},
                },
                status="running",
                reason=None,
                trigger="create",
                rollback_to=None,
                created_at=now,
                finished_at=now,
            )
        )
    engine.dispose()
    return deployment_id


def timed(call):
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as raised:
        call()
    return raised.value, time.monotonic() - started


class TestCatalogDown:
    def test_create_gives_up_with_service_unavailable(self, deployer, catalog_queue):
        error, took = timed(lambda: deployer.create_deployment("t1", {"name": "web", "image": "t1/web:v1"}))
        assert f"the catalog service did not answer catalog.get_tag within {TIMEOUT} s" in str(error)
        assert TIMEOUT <= took < TIMEOUT + 5
        assert deployer.list_deployments("t1")["total"] == 0  # nothing recorded
        # The request nobody took expires in the broker instead of waiting for the catalog.
        wait_until(lambda: catalog_queue() == 0, timeout=10, interval=0.2, what="the stale request to expire")

    def test_update_to_a_new_tag_gives_up_with_service_unavailable(self, deployer, recorded):
        error, took = timed(lambda: deployer.update_deployment("t1", recorded, {"tag": "v2"}))
        assert "did not answer catalog.get_tag" in str(error)
        assert took < TIMEOUT + 5
        got = deployer.get_deployment("t1", recorded)
        assert (got["revision"], got["status"], got["operation"]) == (1, "stopped", None)

    def test_the_deployer_keeps_answering_what_needs_no_catalog(self, deployer, recorded):
        assert deployer.update_deployment("t1", recorded, {"auto_deploy": {"policy": "force"}})["auto_deploy"] == {
            "policy": "force"
        }
