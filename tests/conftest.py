"""Fixtures every suite may use: databases (SQLite and PostgreSQL) and real registries."""

import os
import uuid
from contextlib import contextmanager
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from kombu.mixins import ConsumerMixin

from shared.ops import broker_topology
from shared.ops.broker_access import operator_management
from tests.support import RegistryProcess, free_port

# A nameko container the tests start in-process stops its queue consumers one after the other,
# and each stops only when its kombu loop next wakes: ``drain_events`` waits up to
# ``safety_interval`` (1 s) for a message. The catalog has two, so every test that stopped one
# waited 2 s (tests/integration/catalog/test_rpc.py: 100 of its 125 s, in teardown). The same
# loop, woken every 0.1 s instead; the services the e2e tests run as processes keep kombu's 1 s.
_consume = ConsumerMixin.consume


def _consume_waking_often(self, limit=None, timeout=None, safety_interval=0.1, **kwargs):
    return _consume(self, limit=limit, timeout=timeout, safety_interval=safety_interval, **kwargs)


ConsumerMixin.consume = _consume_waking_often  # type: ignore[method-assign]


def _test_pg_url():
    """``IMAGEHUB_TEST_PG_URL``, else the imagehub role with the password scripts/infra.sh made."""
    if os.environ.get("IMAGEHUB_TEST_PG_URL"):
        return os.environ["IMAGEHUB_TEST_PG_URL"]
    try:
        with open(os.environ.get("IMAGEHUB_PG_PASSWORD_FILE") or "/etc/imagehub/postgres-imagehub") as f:
            password = f.read().strip()
    except FileNotFoundError:
        password = "imagehub"  # a machine set up before the password was generated
    return f"postgresql://imagehub:{quote(password, safe='')}@127.0.0.1:5432/imagehub_test"


TEST_PG_URL = _test_pg_url()


@contextmanager
def postgres_schema():
    """A fresh PostgreSQL schema (as a URL whose search_path points at it), dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(TEST_PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in TEST_PG_URL else "?"
    try:
        yield f"{TEST_PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def rabbit_config(rabbit_config):
    """nameko's per-test vhost, with the suite's exchanges and queues declared as the set-up does
    (``shared.ops.broker_topology``): quorum queues with their dead-letter exchange, which the
    handlers' own declarations must match, and queues for the suite's events to go to."""
    broker_topology.declare(operator_management(), rabbit_config["vhost"])
    return rabbit_config


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """An empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/test.db"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture
def pg_url():
    """An empty PostgreSQL schema, for behaviour only PostgreSQL has (row locks, SKIP LOCKED)."""
    with postgres_schema() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/test.db"


@pytest.fixture(scope="session")
def webhook_token():
    return "test-token-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def registry_factory(tmp_path_factory):
    """Start real registries; each notifies the given webhook URL. Stopped after the module."""
    started = []

    def start(webhook_url=None, token="unused"):
        url = webhook_url or f"http://127.0.0.1:{free_port()}/registry/events"
        reg = RegistryProcess(url, token, workdir=str(tmp_path_factory.mktemp("registry")))
        started.append(reg)
        return reg.start()

    yield start
    for reg in started:
        reg.cleanup()
