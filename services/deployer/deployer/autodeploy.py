"""Auto-deploy: a pushed tag (the catalog's ``tag_indexed``) moves the deployments that follow it.

``handle_tag_indexed`` decides, in one transaction, which deployments the push moves and records
each decision as the deployment's *pending push*, together with the event's ID in
``processed_events`` (a redelivered event finds it and changes nothing). Then each chosen
deployment is started on its own (``start_pending``): its lock taken, revision n+1 recorded (the
serving revision with the pushed digest, ``trigger`` auto-deploy), and its rollout requested like
any update's. A deployment busy with another operation keeps its pending push; the rollout that
holds the lock starts it when it ends, and the reconciler starts any left behind (a process that
died between the commit and the start). While it waits, a better push replaces it (a higher
version, a later push of the tag): one waiting push per deployment, never a queue of them.

A push moves a deployment when all of these hold (``consider``):

* the deployment's base revision (the serving one; the newest if none ever served) runs the
  pushed repository, and its tenant may use the image: a ``library`` push may move any tenant's
  deployment, a tenant's private push only that tenant's;
* the policy wants the pushed tag (``deployer.policy``: never lower than the running version);
* the pushed digest is not the one the base runs, and is not one whose auto-deploy already
  failed on this deployment (a manual update may still try it);
* the push is not older than the newest push the deployment was moved to (``pushed_at``; the
  catalog's outbox may deliver an older event after a newer one);
* it is not beaten by the push already waiting, if any.

Everything is decided again when a pending push starts: the policy, the base or the deployment
may have changed while it waited.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from deployer import deployments, store
from deployer.aggregate import Deployment
from deployer.models import Deployment as DeploymentRow
from deployer.models import Revision
from deployer.policy import SEMVER, PolicyError, Verdict, follow, parse_policy, stay
from deployer.runtime import Runtime
from shared.contracts.events import TAG_INDEXED

log = logging.getLogger(__name__)

LIBRARY = "library"


@dataclass(frozen=True)
class Decision:
    deployment_id: str
    verdict: Verdict


@dataclass(frozen=True)
class Outcome:
    """What one tag_indexed did: ``duplicate`` (already processed), else a decision per
    deployment of the repository, and the revisions started (``{deployment_id: number}``)."""

    duplicate: bool = False
    decisions: tuple = ()
    started: tuple = ()

    @property
    def moved(self) -> list[str]:
        return [d.deployment_id for d in self.decisions if d.verdict.move]


def push_record(event: dict[str, Any]) -> dict[str, Any]:
    """The fields of a tag_indexed a waiting push and an auto-deploy revision keep (JSON-safe)."""
    return {
        "event_id": str(event["event_id"]),
        "namespace": event["namespace"],
        "repository": event["repository"],
        "tag": event["tag"],
        "digest": event["digest"],
        "actor": event.get("actor"),
        "pushed_at": event["pushed_at"].isoformat(),
    }


def consider(session: Session, deployment: DeploymentRow, base: Revision, push: dict[str, Any]) -> Verdict:
    """The ``Verdict`` for one deployment (row in ``session``) and its base revision."""
    if push["namespace"] not in (LIBRARY, deployment.tenant_id):
        return stay(f"tenant {deployment.tenant_id} may not use {push['repository']}")
    try:
        policy = parse_policy((deployment.auto_deploy or {}).get("policy", "never"))
    except PolicyError as exc:  # stored before a rule changed: act as never, say why
        return stay(f"unusable policy: {exc}")
    if push["digest"] == base.digest:
        return stay(f"it runs {push['digest']} already")
    pushed_at = datetime.fromisoformat(push["pushed_at"])
    if deployment.last_pushed_at is not None and pushed_at < deployment.last_pushed_at:
        return stay(
            f"stale: pushed at {push['pushed_at']}, before the push it was last moved to "
            f"({deployment.last_pushed_at.isoformat()})"
        )
    verdict = policy.wants(base.tag, push["tag"])
    if not verdict.move:
        return verdict
    if store.failed_automatically(session, deployment.id, push["digest"]):
        return stay(f"an auto-deploy of {push['digest']} already failed on it")
    waiting = deployment.pending_push
    if waiting and waiting != push:
        better = policy.wants(waiting["tag"], push["tag"])
        if not better.move:
            return stay(f"the waiting push of {waiting['tag']} is preferred: {better.reason}")
        # Versions aside (semver takes the highest whenever it was pushed), the latest push wins.
        if policy.kind != SEMVER and pushed_at < datetime.fromisoformat(waiting["pushed_at"]):
            return stay(f"a later push ({waiting['tag']}) waits already")
    return follow(verdict.reason)


def handle_tag_indexed(rt: Runtime, event: dict[str, Any]) -> Outcome:
    """Carry out a ``tag_indexed`` event (loaded with ``shared.contracts.events.TagIndexed``); its ``Outcome``."""
    push = push_record(event)
    what = f"tag_indexed {push['event_id']} ({push['repository']}:{push['tag']} -> {push['digest'][:19]})"
    try:
        with rt.transaction() as session:
            if store.already_processed(session, push["event_id"]):
                log.info("%s: duplicate, already processed: ignored", what)
                return Outcome(duplicate=True)
            store.mark_processed(session, push["event_id"], TAG_INDEXED, rt.now())
            decisions = []
            for deployment, base in store.following(session, push["repository"]):
                verdict = consider(session, deployment, base, push)
                decisions.append(Decision(deployment.id, verdict))
                if verdict.move:
                    Deployment(session, deployment).hold_push(push)
    except IntegrityError:  # the same event, processed meanwhile by another worker
        log.info("%s: duplicate, processed concurrently: ignored", what)
        return Outcome(duplicate=True)
    for decision in decisions:
        log.info(
            "%s: deployment %s %s: %s",
            what,
            decision.deployment_id,
            "follows" if decision.verdict.move else "stays",
            decision.verdict.reason,
        )
    moved = [d.deployment_id for d in decisions if d.verdict.move]
    started = rt.run_all(lambda deployment_id: (deployment_id, start_safely(rt, deployment_id)), moved)
    return Outcome(decisions=tuple(decisions), started=tuple((i, n) for i, n in started if n is not None))


def start_safely(rt: Runtime, deployment_id: str) -> int | None:
    """``start_pending``, its failures logged: one deployment's trouble does not stop the others,
    and its push stays pending for the reconciler."""
    try:
        return start_pending(rt, deployment_id)
    except Exception:
        log.exception("auto-deploy of deployment %s could not start; the reconciler tries again", deployment_id)
        return None


def start_pending(rt: Runtime, deployment_id: str) -> int | None:
    """Roll out the deployment's pending push if nothing else runs on it; the new revision's
    number, or None (nothing pending, busy: left waiting, or no longer wanted: dropped)."""
    with rt.transaction() as session:
        aggregate = Deployment.get(session, deployment_id)
        push = aggregate.row.pending_push if aggregate is not None else None
        if aggregate is None or push is None:
            return None
        if aggregate.is_busy(rt.now(), rt.settings.operation_stale_after):
            return None
        deployment = aggregate.row
        base = store.base_revision(session, deployment)
        aggregate.hold_push(None)  # judged again as a newcomer, not against itself
        verdict = consider(session, deployment, base, push) if deployment.deleted_at is None else stay("deleted")
        if not verdict.move:
            log.info(
                "pending push %s:%s dropped for deployment %s: %s",
                push["repository"],
                push["tag"],
                deployment_id,
                verdict.reason,
            )
            return None
        aggregate.hold_push(push)
        session.flush()
        session.expunge_all()
    return deployments.auto_update(rt, deployment, base, push)
