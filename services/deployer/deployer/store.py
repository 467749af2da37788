"""Queries shared by the RPC logic, the rollout worker, the reconciler and auto-deploy.

Plain reads on a session, plus the processed-event record of ``tag_indexed``. Every change to a
deployment, its revisions and its instances goes through ``deployer.aggregate.Deployment``.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from deployer.models import AUTO_DEPLOY, FAILED, Deployment, Instance, ProcessedEvent, Revision
from shared.contracts.errors import NotFound


def live_deployment_named(session: Session, tenant_id: str, name: str) -> Deployment | None:
    return session.scalar(
        sa.select(Deployment).where(
            Deployment.tenant_id == tenant_id, Deployment.name == name, Deployment.deleted_at.is_(None)
        )
    )


def revision(session: Session, deployment_id: str, number: int) -> Revision | None:
    return session.scalar(sa.select(Revision).where(Revision.deployment_id == deployment_id, Revision.number == number))


def recorded_revision(session: Session, deployment_id: str, number: int) -> Revision:
    """Revision ``number`` of the deployment, which its own records name (the newest, the serving
    one, a rollout's target): ``NotFound`` only if the records contradict themselves."""
    found = revision(session, deployment_id, number)
    if found is None:
        raise NotFound(f"deployment {deployment_id} has no revision {number}")
    return found


def revisions(session: Session, deployment_id: str) -> list[Revision]:
    return list(
        session.scalars(
            sa.select(Revision).where(Revision.deployment_id == deployment_id).order_by(Revision.number.desc())
        )
    )


def instances(session: Session, deployment_id: str) -> list[Instance]:
    return list(
        session.scalars(
            sa.select(Instance)
            .where(Instance.deployment_id == deployment_id)
            .order_by(Instance.host, Instance.created_at)
        )
    )


def base_revision(session: Session, deployment: Deployment) -> Revision:
    """What a change builds on: the serving revision, or the newest if none ever served."""
    return recorded_revision(session, deployment.id, deployment.serving_revision or deployment.revision)


def following(session: Session, repository: str) -> list[tuple[Deployment, Revision]]:
    """``[(deployment, base revision)]`` of the live deployments whose base revision runs
    ``repository``, rows locked for the transaction (concurrent pushes decide one at a time)."""
    base_number = sa.func.coalesce(Deployment.serving_revision, Deployment.revision)
    rows = session.execute(
        sa.select(Deployment, Revision)
        .join(Revision, sa.and_(Revision.deployment_id == Deployment.id, Revision.number == base_number))
        .where(Deployment.deleted_at.is_(None), Revision.repository == repository)
        .order_by(Deployment.id)
        .with_for_update(of=Deployment)
    )
    return [(deployment, base) for deployment, base in rows]


def failed_automatically(session: Session, deployment_id: str, digest: str) -> bool:
    """Whether an auto-deploy of ``digest`` already failed on the deployment."""
    count = session.scalar(
        sa.select(sa.func.count())
        .select_from(Revision)
        .where(
            Revision.deployment_id == deployment_id,
            Revision.digest == digest,
            Revision.trigger == AUTO_DEPLOY,
            Revision.status == FAILED,
        )
    )
    return (count or 0) > 0


def already_processed(session: Session, event_id: str) -> bool:
    return session.get(ProcessedEvent, event_id) is not None


def mark_processed(session: Session, event_id: str, event_type: str, now: datetime) -> None:
    """Record the event as acted on, at once (a concurrent duplicate then fails on the primary key
    or, on PostgreSQL, waits for this transaction)."""
    session.add(ProcessedEvent(event_id=event_id, event_type=event_type, processed_at=now))
    session.flush()


def pool_instances(session: Session, pool_name: str) -> list[Instance]:
    return list(session.scalars(sa.select(Instance).where(Instance.pool == pool_name)))
