"""The catalog's gauges, read from its database when Prometheus scrapes (``shared.runtime.metrics``):
its outbox's backlog, the suite's dead letters waiting for an operator, and how the library's
latest sync with its upstreams ended."""

from typing import Any

from sqlalchemy.orm import Session

from catalog import dead_letters
from catalog.mirror import sync as library_sync
from catalog.models import OutboxEvent
from shared.runtime import outbox
from shared.runtime.clock import utcnow
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

    def latest_sync() -> list[tuple[tuple[str, ...], float]]:
        with Session(engine) as session:
            ended = library_sync.latest_ended(session)
        return [] if ended is None else [((status,), count) for status, count in sorted(ended[0].items())]

    def since_sync() -> list[tuple[tuple[str, ...], float]]:
        with Session(engine) as session:
            ended = library_sync.latest_ended(session)
        return [] if ended is None else [((), (utcnow() - ended[1]).total_seconds())]

    gauge_callback(
        "imagehub_library_sync_items",
        "Tags of the library's latest ended sync with its upstreams, by how they ended (imagehub library-sync-status).",
        ["status"],
        latest_sync,
    )
    gauge_callback(
        "imagehub_library_sync_age_seconds",
        "Seconds since the library's latest sync with its upstreams ended (none before the first).",
        [],
        since_sync,
    )
