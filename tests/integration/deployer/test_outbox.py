"""The deployer's transactional outbox on the real broker and database (SQLite, then PostgreSQL).

A deployment is deleted while the ``deployer`` service's event publisher cannot reach RabbitMQ:
its publisher is pointed at a port of 127.0.0.1 where nothing listens, so every publish meets a
real ``connection refused`` (nothing is stubbed: kombu, nameko and the kernel do the failing).
The RPC answers all the same, the events stay in the outbox, and once the publisher reaches the
broker again the relay sends them: the ``deleting`` status arrives once, with the event_id it was
stored with, and the ``rollout_requested`` behind it gets the deletion carried out (``deleted``).

Deliveries are counted on a queue each test binds to ``deployer.events`` itself
(``tests.support.deliveries``), once the outbox is empty: every publish has been confirmed by
then, so the count is complete without waiting for "long enough".

The deployment is written straight into the deployer's database (a failed one, no containers):
these tests are about the events, not about rollouts, so they need neither registry nor catalog.
"""

import os
import socket
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from nameko.containers import ServiceContainer
from nameko.testing.utils import get_extension
from sqlalchemy.orm import Session

from deployer.migrate import load_config
from deployer.models import Deployment, OutboxEvent, Revision
from deployer.service import DeployerService, DeployerWorker
from shared.contracts.events import DEPLOYER, DEPLOYMENT_STATUS_CHANGED, ROLLOUT_REQUESTED
from shared.runtime import db
from shared.runtime.identity import IdentifiedClusterRpcProxy
from shared.runtime.publishing import ConfirmedEventDispatcher
from tests.e2e.stack import ROOT
from tests.integration.deployer.conftest import ENGINES
from tests.support import wait_until
from tests.support.deliveries import EventQueue

WAIT = 30  # seconds: refused publishes are retried by kombu for a few seconds each
MIN_AGE = 0.5
# A revision's runtime spec as the deployer stores it.
SPEC = {
    "env": {},
    "command": None,
    "ports": [],
    "cpu": 0.1,
    "memory": 32 * 1024 * 1024,
    "restart_policy": "no",
    "health": {"type": "running", "seconds": 1},
}


def closed_port():
    """A port of 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def deployer(vhost_config, database, deployer_id, status_events):
    """The deployer's two service classes, as ``nameko run deployer.service`` starts them, with a
    relay that ticks every 0.2 s and takes events half a second old."""
    config = load_config(os.path.join(ROOT, "services/deployer/config.yml"))
    config.update(
        vhost_config,
        DB_URIS={"deployer:Base": database[0]},
        DEPLOYER_ID=deployer_id,
        DEFAULT_POOL="engines",
        STOP_TIMEOUT=1,
        RECONCILE_INTERVAL=60,
        OUTBOX_RELAY_INTERVAL=0.2,
        OUTBOX_RELAY_MIN_AGE=MIN_AGE,
        max_workers=4,
        WORKER_MAX_WORKERS=2,
    )
    config["POOLS"]["engines"]["hosts"][0]["base_url"] = ENGINES["local-1"]
    config["POOLS"]["engines"]["hosts"][1]["base_url"] = ENGINES["local-2"]
    started = [ServiceContainer(DeployerService, config), ServiceContainer(DeployerWorker, config)]
    try:
        for container in started:
            container.start()
        yield started[0]
    finally:
        for container in reversed(started):
            container.kill()


@pytest.fixture(scope="module")
def rpc(deployer, vhost_config):
    import shared.contracts.errors  # noqa: F401 - registers the typed errors, as a platform component would

    with IdentifiedClusterRpcProxy(vhost_config, timeout=WAIT) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def engine(database):
    engine = db.create_engine(database[0])
    yield engine
    engine.dispose()


@pytest.fixture
def deployment(engine):
    """A failed deployment with no containers, of a tenant of its own; ``(tenant_id, deployment_id)``."""
    tenant_id, deployment_id, now = "t" + uuid.uuid4().hex[:10], str(uuid.uuid4()), datetime.now(UTC)
    with Session(engine) as session:
        session.add(
            Deployment(
                id=deployment_id,
                tenant_id=tenant_id,
                name="web",
                pool="engines",
                replicas=1,
                revision=1,
                serving_revision=None,
                status="failed",
                reason="never started",
                auto_deploy={"policy": "never"},
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()
        session.add(
            Revision(
                deployment_id=deployment_id,
                number=1,
                image=f"{tenant_id}/web:v1",
                repository=f"{tenant_id}/web",
                tag="v1",
                digest="sha256:" + "1" * 64,
                pull_ref=f"127.0.0.1:5000/{tenant_id}/web@sha256:" + "1" * 64,
                spec=SPEC,
                status="failed",
                reason="never started",
                trigger="create",
                created_at=now,
            )
        )
        session.commit()
    return tenant_id, deployment_id


@pytest.fixture
def publisher(deployer):
    """The ``deployer`` service's real event publisher, with ``unreachable()``/``reachable()``."""
    real = get_extension(deployer, ConfirmedEventDispatcher).publisher
    good_uri = real.amqp_uri

    class Control:
        def unreachable(self):
            real.amqp_uri = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"

        def reachable(self):
            real.amqp_uri = good_uri

    yield Control()
    real.amqp_uri = good_uri


@pytest.fixture
def delivered(vhost_config):
    """Every event of the deployer's two types, on a queue of the test's own."""
    queue = EventQueue(vhost_config["AMQP_URI"], DEPLOYER, [DEPLOYMENT_STATUS_CHANGED, ROLLOUT_REQUESTED])
    yield queue
    queue.close()


def relay_attempts(engine, deployment_id):
    """Failed sends of the deployment's oldest outbox row (0 when none is left)."""
    with Session(engine) as session:
        return (
            session.scalar(
                sa.select(OutboxEvent.attempts)
                .where(OutboxEvent.ordering_key == deployment_id)
                .order_by(OutboxEvent.id)
                .limit(1)
            )
            or 0
        )


def settled_deliveries(engine, delivered, deployment_id):
    """The deployment's events as delivered, once it is ``deleted`` and its outbox empty (waited
    for): ``[(event type, payload)]`` in arrival order, every delivery, duplicates included."""

    def done():
        statuses = [p["status"] for p in delivered.payloads(DEPLOYMENT_STATUS_CHANGED, deployment_id=deployment_id)]
        return "deleted" in statuses and outbox_rows(engine, deployment_id) == []

    wait_until(done, timeout=WAIT, what="the deployment deleted and its outbox empty")
    return [(kind, p) for kind, p in delivered.drain() if p.get("deployment_id") == deployment_id]


def outbox_rows(engine, deployment_id):
    with Session(engine) as session:
        return [
            (r.event_type, r.event_id, r.payload, r.ordering_key)
            for r in session.scalars(
                sa.select(OutboxEvent).where(OutboxEvent.ordering_key == deployment_id).order_by(OutboxEvent.id)
            )
        ]


class TestBrokerRefusedAtDispatch:
    def test_the_relay_delivers_the_status_change_once_with_its_event_id(
        self, rpc, deployment, publisher, engine, delivered
    ):
        tenant_id, deployment_id = deployment
        publisher.unreachable()
        answer = rpc.deployer.delete_deployment(tenant_id, deployment_id)
        assert answer["status"] == "deleting"  # the change is committed although nothing could be sent

        rows = outbox_rows(engine, deployment_id)
        assert [(kind, key) for kind, _, _, key in rows] == [
            (DEPLOYMENT_STATUS_CHANGED, deployment_id),
            (ROLLOUT_REQUESTED, deployment_id),
        ]
        stored_id = rows[0][1]
        assert rows[0][2]["status"] == "deleting"
        # The normal path's send and at least one relay tick met the refused connection.
        wait_until(
            lambda: relay_attempts(engine, deployment_id) >= 2, timeout=WAIT, what="two refused sends of the row"
        )
        assert outbox_rows(engine, deployment_id) == rows
        assert delivered.payloads(deployment_id=deployment_id) == []

        publisher.reachable()
        received = settled_deliveries(engine, delivered, deployment_id)
        # Exactly once each: the two stored events, then the deletion's own status change.
        assert Counter(p["event_id"] for _, p in received) == Counter(
            {stored_id: 1, rows[1][1]: 1, received[-1][1]["event_id"]: 1}
        )
        assert [(kind, p.get("status")) for kind, p in received] == [
            (DEPLOYMENT_STATUS_CHANGED, "deleting"),
            (ROLLOUT_REQUESTED, None),
            (DEPLOYMENT_STATUS_CHANGED, "deleted"),
        ]
        assert [p for _, p in received[:2]] == [rows[0][2], rows[1][2]]  # as stored, event_id and occurred_at included
        assert rpc.deployer.get_deployment(tenant_id, deployment_id)["status"] == "deleted"

    def test_with_the_broker_reachable_nothing_waits_for_the_relay(self, rpc, deployment, engine, delivered):
        tenant_id, deployment_id = deployment
        rpc.deployer.delete_deployment(tenant_id, deployment_id)
        # Sent after the commit, before the answer: the outbox holds nothing of the RPC's events.
        assert [
            (kind, payload.get("status"))
            for kind, _, payload, _ in outbox_rows(engine, deployment_id)
            if kind == ROLLOUT_REQUESTED or payload.get("status") == "deleting"
        ] == []
        received = settled_deliveries(engine, delivered, deployment_id)
        assert [(kind, p.get("status")) for kind, p in received] == [
            (DEPLOYMENT_STATUS_CHANGED, "deleting"),
            (ROLLOUT_REQUESTED, None),
            (DEPLOYMENT_STATUS_CHANGED, "deleted"),
        ]
        assert len({p["event_id"] for _, p in received}) == 3
