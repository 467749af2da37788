"""The RPC answers while rollouts fill the worker pool.

In nameko 2.14 a container whose worker pool is full stops reading every queue it consumes (its
consumer thread waits for a free worker): RPC requests, the timer, and the replies to its own
calls to the catalog. Rollouts hold a worker for their whole length, so they run in their own
service class (``deployer_worker``, its own pool of ``WORKER_MAX_WORKERS``) and the RPC
(``deployer``, ``max_workers``) keeps answering.

Here the worker pool has 2 workers and 3 rollouts are asked for, each waiting out a long
``running`` health check: two hold the pool, the third waits in its queue. Meanwhile
``get_deployment`` and ``list_pools`` answer, and ``create_deployment`` resolves its image
through the catalog, each well within a bound far below the proxy's own timeout. The module's
teardown removes every container this deployer made, rollouts in progress included.
"""

import uuid

import eventlet
import pytest

from shared.runtime.identity import IdentifiedClusterRpcProxy
from tests.integration.deployer.conftest import poll

pytestmark = pytest.mark.docker

WORKERS = 2  # the worker pool: fewer than the rollouts asked for
# Seconds each rollout waits on its "running" health check, holding its worker: far longer than
# the test (which does not wait for them; the module's teardown removes their containers).
HEALTH = 90
ANSWER = 5  # seconds within which a call must return: a bound, not a benchmark


@pytest.fixture(scope="module")
def deployer_overrides():
    return {"WORKER_MAX_WORKERS": WORKERS}


def bounded(vhost_config, call):
    """What ``call(deployer proxy)`` returns, asked on a fresh proxy; fails past ``ANSWER`` seconds."""
    with (
        IdentifiedClusterRpcProxy(vhost_config, timeout=ANSWER + 10) as proxy,
        eventlet.Timeout(ANSWER, False),
    ):
        return call(proxy.deployer)
    pytest.fail(f"no answer within {ANSWER} s while the worker pool is full")


def test_the_worker_pool_has_its_own_size(containers):
    assert (containers["deployer_worker"].max_workers, containers["deployer"].max_workers) == (WORKERS, 10)


def test_rpc_answers_and_the_catalog_is_asked_while_rollouts_fill_the_worker_pool(deployer, vhost_config):
    slow = {"replicas": 1, "health": {"type": "running", "seconds": HEALTH}}
    ids = [deployer.create(**slow)["id"] for _ in range(WORKERS + 1)]

    def saturated():
        statuses = [deployer.get(i)["status"] for i in ids]
        return statuses if statuses.count("starting") == WORKERS else None

    statuses = poll(saturated, timeout=40, what=f"{WORKERS} rollouts waiting on their health check")
    assert statuses.count("pending") == 1, statuses  # the third waits for a worker

    assert bounded(vhost_config, lambda d: d.get_deployment(deployer.tenant, ids[0]))["id"] == ids[0]
    pools = bounded(vhost_config, lambda d: d.list_pools())
    assert "engines" in [p["name"] for p in pools["items"]]
    spec = {
        "name": f"busy-{uuid.uuid4().hex[:6]}",
        "image": f"{deployer.tenant}/web:v1",
        "replicas": 1,
        "ports": [{}],
        "cpu": 0.1,
        "memory": "32m",
    }
    created = bounded(vhost_config, lambda d: d.create_deployment(deployer.tenant, spec))
    deployer.created.append(created["id"])
    assert (created["status"], created["revision"], created["digest"]) == ("pending", 1, deployer.images["v1"][0])

    # Still the same rollouts holding the pool: the answers came while it was full.
    assert [deployer.get(i)["status"] for i in ids].count("starting") == WORKERS
