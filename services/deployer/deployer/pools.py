"""One interface below the Deployment aggregate for every kind of resource pool.

The aggregate (``deployer.aggregate``) owns a deployment's lifecycle whatever runs it; the RPC
(``deployer.deployments``), auto-deploy and the outbox are written once. What a kind of pool does
is four things, and only these differ:

* ``rollout``: carry out a ``rollout_requested`` (bring a revision to ``replicas`` healthy
  instances, or fail, or be rolled back), telling the aggregate each step;
* ``teardown``: remove everything a deleted deployment runs;
* ``reconcile``: compare the records with what runs, on a timer;
* ``describe``: the pool as ``list_pools`` shows it.

``engines`` (``deployer.rollout``, ``deployer.teardown``, ``deployer.reconcile``) is the deployer's
own orchestration over a list of Docker engines; ``swarm`` (``deployer.swarm``) hands the work to
Docker Swarm and follows it. docs/deployer-api.md says how a Kubernetes pool maps onto the same four.
"""

from collections.abc import Mapping
from typing import Any, Protocol

import sqlalchemy as sa

from deployer import reconcile, swarm
from deployer.aggregate import DELETE
from deployer.models import Deployment
from deployer.rollout import Rollout
from deployer.runtime import Runtime
from deployer.settings import ENGINES, SWARM, Pool
from deployer.teardown import Teardown


class PoolKind(Protocol):
    def rollout(self, rt: Runtime, deployment_id: str, operation_id: str, revision: int) -> None: ...

    def teardown(self, rt: Runtime, deployment_id: str, operation_id: str) -> None: ...

    def reconcile(self, rt: Runtime) -> None: ...

    def describe(self, rt: Runtime, pool: Pool) -> dict[str, Any]: ...


class EnginesKind:
    def rollout(self, rt: Runtime, deployment_id: str, operation_id: str, revision: int) -> None:
        Rollout(rt, deployment_id, operation_id, revision).run()

    def teardown(self, rt: Runtime, deployment_id: str, operation_id: str) -> None:
        Teardown(rt, deployment_id, operation_id).run()

    def reconcile(self, rt: Runtime) -> None:
        reconcile.Reconciler(rt).run()

    def describe(self, rt: Runtime, pool: Pool) -> dict[str, Any]:
        raise NotImplementedError("deployer.deployments.list_pools describes an engines pool from its records")


class SwarmKind:
    def rollout(self, rt: Runtime, deployment_id: str, operation_id: str, revision: int) -> None:
        swarm.SwarmRollout(rt, deployment_id, operation_id, revision).run()

    def teardown(self, rt: Runtime, deployment_id: str, operation_id: str) -> None:
        swarm.SwarmTeardown(rt, deployment_id, operation_id).run()

    def reconcile(self, rt: Runtime) -> None:
        swarm.SwarmReconciler(rt).run()

    def describe(self, rt: Runtime, pool: Pool) -> dict[str, Any]:
        return swarm.describe(rt, pool)


KINDS: Mapping[str, PoolKind] = {ENGINES: EnginesKind(), SWARM: SwarmKind()}


def kind_of(rt: Runtime, pool_name: str) -> PoolKind:
    pool = rt.settings.pools.get(pool_name)
    # A pool since removed from the configuration: its deployments' containers are on engines the
    # deployer no longer knows; the engines kind reports them unreachable, rather than a crash.
    return KINDS[pool.kind if pool is not None else ENGINES]


def handle(rt: Runtime, request: Mapping[str, Any]) -> None:
    """Carry out a ``rollout_requested`` event (already loaded with its schema) on its pool's kind."""
    with rt.transaction() as session:
        pool_name = session.scalar(sa.select(Deployment.pool).where(Deployment.id == request["deployment_id"]))
    if pool_name is None:
        return  # no such deployment: nothing to do (the request is stale)
    kind = kind_of(rt, pool_name)
    if request["action"] == DELETE:
        kind.teardown(rt, request["deployment_id"], request["operation_id"])
    else:
        kind.rollout(rt, request["deployment_id"], request["operation_id"], request["revision"])


def reconcile_all(rt: Runtime) -> None:
    """One reconciler pass of each kind (each only over its own pools)."""
    for kind in KINDS.values():
        kind.reconcile(rt)
