"""The deployer's gauges, read from its database when Prometheus scrapes (``shared.runtime.metrics``):
its outbox's backlog, and its deployments by status."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from deployer.models import Deployment, OutboxEvent
from shared.runtime import outbox
from shared.runtime.metrics import gauge_callback


def register_gauges(service: str, engine: Any) -> None:
    outbox.register_gauges(service, engine, OutboxEvent)

    def by_status() -> list[tuple[tuple[str, ...], float]]:
        with Session(engine) as session:
            counted = session.execute(sa.select(Deployment.status, sa.func.count()).group_by(Deployment.status))
            return [((status,), float(count)) for status, count in counted]

    gauge_callback("imagehub_deployments", "Deployments by status.", ["status"], by_status)
