"""What callers get back: JSON-safe dicts built from the records inside their session."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from deployer import store
from deployer.models import Deployment, Instance, Revision
from deployer.settings import Settings
from deployer.units import format_memory


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def runtime_view(runtime: dict[str, Any]) -> dict[str, Any]:
    """A revision's runtime as a caller writes it (memory as '256m'; bytes alongside)."""
    view = dict(runtime)
    view["memory"] = format_memory(runtime["memory"])
    view["memory_bytes"] = runtime["memory"]
    return view


def instance_view(instance: Instance, settings: Settings) -> dict[str, Any]:
    host = settings.host(instance.host) if instance.address is None else None
    address = instance.address or (host.address if host is not None else None)
    port = next((p["host_port"] for p in instance.ports if p.get("host_port")), None)
    return {
        "id": instance.id,
        "host": instance.host,
        "container_id": instance.container_id,
        "container_name": instance.container_name,
        "state": instance.state,
        "reason": instance.reason,
        "revision": instance.revision,
        "address": f"{address}:{port}" if address and port else None,
        "ports": [dict(p) for p in instance.ports],
        "started_at": _iso(instance.started_at),
    }


def revision_view(revision: Revision) -> dict[str, Any]:
    return {
        "revision": revision.number,
        "image": revision.image,
        "repository": revision.repository,
        "tag": revision.tag,
        "digest": revision.digest,
        "pull_ref": revision.pull_ref,
        "spec": runtime_view(revision.spec),
        "status": revision.status,
        "reason": revision.reason,
        "trigger": revision.trigger,
        "rollback_to": revision.rollback_to,
        # auto-deploy: the push followed: tag, digest, actor (who pushed), pushed_at, event_id, policy
        "push": dict(revision.push) if revision.push else None,
        "created_at": _iso(revision.created_at),
        "finished_at": _iso(revision.finished_at),
    }


def deployment_view(session: Session, deployment: Deployment, settings: Settings) -> dict[str, Any]:
    """``image``/``digest``/``spec`` are the newest revision's (the one ``status`` is about);
    ``serving_image``/``serving_digest`` the serving revision's (None until one ran)."""
    newest = store.recorded_revision(session, deployment.id, deployment.revision)
    serving = None
    if deployment.serving_revision is not None:
        serving = (
            newest
            if deployment.serving_revision == newest.number
            else store.recorded_revision(session, deployment.id, deployment.serving_revision)
        )
    return {
        "id": deployment.id,
        "tenant_id": deployment.tenant_id,
        "name": deployment.name,
        "pool": deployment.pool,
        "image": newest.image,
        "repository": newest.repository,
        "tag": newest.tag,
        "digest": newest.digest,
        "revision": deployment.revision,
        "serving_revision": deployment.serving_revision,
        "serving_image": serving.image if serving is not None else None,
        "serving_digest": serving.digest if serving is not None else None,
        "replicas": deployment.replicas,
        "status": deployment.status,
        "reason": deployment.reason,
        "operation": deployment.operation,
        "spec": runtime_view(newest.spec),
        "auto_deploy": dict(deployment.auto_deploy),
        # A push the policy follows, waiting for the operation in progress to end.
        "pending_push": dict(deployment.pending_push) if deployment.pending_push else None,
        "instances": [instance_view(i, settings) for i in store.instances(session, deployment.id)],
        "created_at": _iso(deployment.created_at),
        "updated_at": _iso(deployment.updated_at),
        "deleted_at": _iso(deployment.deleted_at),
    }
