"""The catalog's gauges, read from its database when Prometheus scrapes (``shared.runtime.metrics``):
its outbox's backlog, and the suite's dead letters waiting for an operator."""

from typing import Any

from sqlalchemy.orm import Session

from catalog import dead_letters
from catalog.models import OutboxEvent
from shared.runtime import outbox
from shared.runtime.metrics import gauge_callback


def register_gauges(service: str, engine: Any) -> None:
    outbox.register_gauges(service, engine, OutboxEvent)

    def waiting() -> list[tuple[tuple[str, ...], float]]:
        with Session(engine) as session:
            return [((), dead_letters.waiting(session))]

    gauge_callback(
        "imagehub_dead_letters",
        "Dead letters of the suite parked and not replayed since (imagehub dead-letters).",
        [],
        waiting,
    )
