"""The deployer: two nameko service classes, started together by
``nameko run --config services/deployer/config.yml deployer.service`` (it starts every service
class of the module), each with its own pool of workers.

``DeployerService`` (``deployer``): deployments over RPC, the reconciler and the outbox relay on
timers. Every call
returns at once (checks, one short transaction, events), so its pool (``max_workers``) is always
free to answer, and to read the catalog's replies to its own calls.

``DeployerWorker`` (``deployer_worker``): the long work, on its own pool (``WORKER_MAX_WORKERS``).
Rollouts run in ``handle_rollout_requested`` (an event the deployer dispatches once a request is
committed), so a request accepted by one deployer process is carried out even if that process
stops: the event waits in its queue. ``handle_tag_indexed`` moves the deployments whose
auto-deploy policy follows a pushed tag. A rollout holds a worker for its whole length (pulls,
health checks); in nameko 2.14 a container whose pool is full stops reading every queue it
consumes, so these must not share a container with the RPC.

Events (``deployment_status_changed``, ``rollout_requested``) go through the transactional outbox
(``deployer.outbox``): written in the transaction of the change they report, sent by whichever
class committed it, and left-overs sent by the ``relay_outbox`` timer of ``DeployerService``.

Entrypoints only translate: load the arguments with a schema, hand the logic a ``Runtime`` made
of this worker's dependencies, return what it returns.
"""

import logging
from datetime import timedelta
from typing import Any

from nameko.dependency_providers import Config
from sqlalchemy.exc import DataError, DBAPIError

from deployer import autodeploy, deployments, outbox, reconcile, rollout, schemas
from deployer.dependencies import (
    DeployerDatabase,
    PullCredentials,
    ResourcePools,
    WorkerPoolSize,
    http_ok,
    run_all,
)
from deployer.metrics import register_gauges
from deployer.models import AuditRecord, Base
from deployer.runtime import Runtime
from shared.contracts.errors import USER_ERRORS, ServiceUnavailable
from shared.contracts.events import (
    CATALOG,
    DEPLOYER,
    ROLLOUT_REQUESTED,
    TAG_INDEXED,
    RolloutRequested,
    TagIndexed,
    load_event,
)
from shared.runtime import audit  # the module, not its classes: `nameko run` takes every class here
from shared.runtime.audit import AuditTrail, target_from
from shared.runtime.bounded_rpc import BoundedRpcProxy
from shared.runtime.consumer import consumes
from shared.runtime.identity import Caller, rpc
from shared.runtime.metrics import DatabaseGauges, Metrics
from shared.runtime.publishing import ConfirmedEventDispatcher
from shared.runtime.timers import config_timer

log = logging.getLogger(__name__)

# Worth another try for an event: the database away. Anything else parks it as a dead letter.
TRANSIENT_ERRORS = (DBAPIError,)
# ... except the database's refusal of a value: the same again.
PERMANENT_ERRORS = (DataError,)
# The calls that ask the catalog: it may not answer (down) within CATALOG_RPC_TIMEOUT.
CATALOG_ERRORS = USER_ERRORS + (ServiceUnavailable,)


class _Deployer:
    """What both service classes are made of: the database (``DB_URIS["deployer:Base"]``), the
    pools' engines, and events published as ``deployer``. No entrypoint: not a service itself."""

    db = DeployerDatabase(Base, service_name=DEPLOYER)
    pools = ResourcePools()
    pull_auth = PullCredentials()
    dispatch = ConfirmedEventDispatcher(DEPLOYER)
    metrics = Metrics()
    config = Config()
    catalog: Any = None

    def _runtime(self) -> Runtime:
        return Runtime(
            settings=self.pools.settings,
            transaction=lambda: self.db.get_session(close_on_exit=True),
            engine=self.pools.engine,
            swarm=self.pools.swarm,
            http_ok=http_ok,
            catalog=self.catalog,
            publish=self.dispatch,
            run_all=run_all,
            pull_auth=self.pull_auth,
        )


class DeployerService(_Deployer, audit.AuditListing):
    """The RPC API and the reconciler: short work only, on the ``max_workers`` pool."""

    name = DEPLOYER
    gauges = DatabaseGauges("db", register_gauges)

    catalog = BoundedRpcProxy("catalog", timeout_key="CATALOG_RPC_TIMEOUT")
    caller = Caller()
    audit_model = AuditRecord
    audit_trail = AuditTrail(
        AuditRecord,
        {
            "create_deployment": lambda a: (
                (a.get("spec") or {}).get("name") if isinstance(a.get("spec"), dict) else None
            ),
            "update_deployment": target_from("deployment_id"),
            "set_auto_deploy": target_from("deployment_id", "policy"),
            "scale_deployment": target_from("deployment_id", "replicas"),
            "rollback_deployment": target_from("deployment_id", "revision"),
            "delete_deployment": target_from("deployment_id"),
        },
    )

    # -- RPC -----------------------------------------------------------------------------------

    @rpc(expected_exceptions=USER_ERRORS)
    def list_pools(self) -> dict[str, Any]:
        """Every resource pool: ``{"items": [{name, network_mode, shared_network_namespace, default,
        hosts: [{name, base_url, address, reachable, error, capacity, reserved, free, instances}]}],
        "total", "page", "page_size"}``. A host that does not answer is ``reachable: false`` with
        the error; its capacity is still reported."""
        _ = self.caller.identity  # any verified caller
        return deployments.list_pools(self._runtime())

    @rpc(expected_exceptions=CATALOG_ERRORS)
    def create_deployment(self, tenant_id: Any, spec: Any) -> dict[str, Any]:
        """Deploy an image version; returns the deployment (status ``pending``, revision 1) at once.

        ``InvalidRequest`` naming each bad spec field; ``Forbidden``/``NotFound`` for an image the
        tenant may not use or the catalogue does not have; ``Conflict`` for a name in use or a
        pool without room for every replica; ``ServiceUnavailable`` when the catalog does not
        answer within ``CATALOG_RPC_TIMEOUT`` (nothing is recorded: try again).
        """
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(schemas.CreateArgs, tenant_id=tenant_id, spec=spec)
        return deployments.create_deployment(self._runtime(), **args)

    @rpc(expected_exceptions=USER_ERRORS)
    def get_deployment(self, tenant_id: Any, deployment_id: Any) -> dict[str, Any]:
        """The deployment with its instances (host, container_id, state, address).
        ``Forbidden`` for another tenant's, ``NotFound``. A deleted one shows status ``deleted``."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(schemas.DeploymentRef, tenant_id=tenant_id, deployment_id=deployment_id)
        return deployments.get_deployment(self._runtime(), **args)

    @rpc(expected_exceptions=USER_ERRORS)
    def list_deployments(self, tenant_id: Any, page: Any = 1, page_size: Any = 50) -> dict[str, Any]:
        """The tenant's deployments (not deleted ones), by name, each as ``get_deployment``."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(schemas.TenantPage, tenant_id=tenant_id, page=page, page_size=page_size)
        return deployments.list_deployments(self._runtime(), **args)

    @rpc(expected_exceptions=CATALOG_ERRORS)
    def update_deployment(self, tenant_id: Any, deployment_id: Any, changes: Any) -> dict[str, Any]:
        """A new revision: the serving one with ``changes`` (image or tag, env, command, ports, cpu,
        memory, restart_policy, health, auto_deploy) applied, rolled out host by host; returns the
        deployment (status ``pending``). ``Conflict`` while another operation runs on it;
        ``ServiceUnavailable`` when a new image or tag needs the catalog and it does not answer."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(schemas.UpdateArgs, tenant_id=tenant_id, deployment_id=deployment_id, changes=changes)
        return deployments.update_deployment(self._runtime(), **args)

    @rpc(expected_exceptions=USER_ERRORS)
    def set_auto_deploy(self, tenant_id: Any, deployment_id: Any, policy: Any) -> dict[str, Any]:
        """Set the deployment's auto-deploy policy (``"never"``, ``"force"``, ``"semver:minor"``,
        ``"semver:patch+prerelease"``, ``"glob:v1.*"``, ``"regexp:…"``); returns the deployment. No
        revision is made, and it is accepted while an operation runs; the next push is judged by
        it. ``InvalidRequest`` for a policy that is not one, ``NotFound`` for a deleted deployment."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(
            schemas.AutoDeployArgs, tenant_id=tenant_id, deployment_id=deployment_id, policy=policy
        )
        return deployments.set_auto_deploy(self._runtime(), **args)

    @rpc(expected_exceptions=USER_ERRORS)
    def scale_deployment(self, tenant_id: Any, deployment_id: Any, replicas: Any) -> dict[str, Any]:
        """Set the number of instances (0 stops them all); returns the deployment (``pending``)."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(schemas.ScaleArgs, tenant_id=tenant_id, deployment_id=deployment_id, replicas=replicas)
        return deployments.scale_deployment(self._runtime(), **args)

    @rpc(expected_exceptions=USER_ERRORS)
    def rollback_deployment(self, tenant_id: Any, deployment_id: Any, revision: Any = None) -> dict[str, Any]:
        """A new revision with an earlier one's digest and settings (by default the one that
        served before the serving one). ``Conflict`` when there is none, ``NotFound`` for an
        unknown revision number."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(
            schemas.RollbackArgs, tenant_id=tenant_id, deployment_id=deployment_id, revision=revision
        )
        return deployments.rollback_deployment(self._runtime(), **args)

    @rpc(expected_exceptions=USER_ERRORS)
    def list_revisions(self, tenant_id: Any, deployment_id: Any, page: Any = 1, page_size: Any = 50) -> dict[str, Any]:
        """The deployment's revisions, newest first: image, digest, spec, status, reason, trigger."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(
            schemas.RevisionPage, tenant_id=tenant_id, deployment_id=deployment_id, page=page, page_size=page_size
        )
        return deployments.list_revisions(self._runtime(), **args)

    @rpc(expected_exceptions=USER_ERRORS)
    def delete_deployment(self, tenant_id: Any, deployment_id: Any) -> dict[str, Any]:
        """Remove the deployment: status ``deleting`` at once, ``deleted`` once every container it
        made is gone from every host. Deleting a deleted deployment returns it unchanged."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(schemas.DeploymentRef, tenant_id=tenant_id, deployment_id=deployment_id)
        return deployments.delete_deployment(self._runtime(), **args)

    @config_timer("OUTBOX_RELAY_INTERVAL")
    def relay_outbox(self) -> None:
        """Send the events the normal path left in the outbox (broker down, process died), oldest
        first, once they are ``OUTBOX_RELAY_MIN_AGE`` seconds old; the next tick retries a failure.

        Here rather than in ``DeployerWorker``: this pool only ever runs short calls, so a tick
        always finds a free worker, whereas every worker of ``deployer_worker`` may be held by long
        rollouts (and a nameko timer waits for a free worker), which would hold back the very
        ``rollout_requested`` events that let those queued operations proceed. Both classes
        dispatch after their commits; on PostgreSQL the outbox's row locks keep each row to one
        sender, however many deployer processes run a relay."""
        try:
            outbox.relay(self._runtime(), timedelta(seconds=self.pools.settings.outbox_relay_min_age))
        except Exception:  # the next tick tries again
            log.exception("outbox relay tick failed")

    @config_timer("RECONCILE_INTERVAL")
    def reconcile_engines(self) -> None:
        try:
            reconcile.reconcile(self._runtime())
        except Exception:  # the next tick tries again
            log.exception("reconciler pass failed")


class DeployerWorker(_Deployer):
    """Rollouts and auto-deploy, on their own pool of ``WORKER_MAX_WORKERS``: however many run,
    the RPC answers. Asks nothing of the catalog (no RPC proxy: no replies to wait for)."""

    name = "deployer_worker"

    pool_size = WorkerPoolSize("WORKER_MAX_WORKERS")

    # -- work ----------------------------------------------------------------------------------

    @consumes(DEPLOYER, ROLLOUT_REQUESTED, transient=TRANSIENT_ERRORS, permanent=PERMANENT_ERRORS)
    def handle_rollout_requested(self, payload: Any) -> None:
        """Failures of the rollout itself are recorded on the deployment. A database outage
        returns the event to its queue (after a back-off); anything else unforeseen parks it as a
        dead letter (``shared.runtime.consumer``), and the reconciler requests the operation again
        once its claim goes stale."""
        request = load_event(RolloutRequested, payload)
        rollout.handle(self._runtime(), request)

    @consumes(CATALOG, TAG_INDEXED, transient=TRANSIENT_ERRORS, permanent=PERMANENT_ERRORS)
    def handle_tag_indexed(self, payload: Any) -> autodeploy.Outcome:
        """Move the deployments whose auto-deploy policy follows the pushed tag.

        A push is not lost to a database outage: the decisions and the event's ID are committed in
        one transaction, so an event returned to its queue before that commit is decided again in
        full, and one delivered again after it is recognised and ignored; a failure starting one
        deployment's rollout after the commit is caught there (its push stays pending for the
        reconciler) and never fails the event. Anything else unforeseen parks it as a dead letter,
        rather than acknowledging and forgetting it."""
        event = load_event(TagIndexed, payload)
        return autodeploy.handle_tag_indexed(self._runtime(), event)
