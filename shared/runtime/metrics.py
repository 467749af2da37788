"""Placeholder until the metrics module lands (same interface)."""

from collections.abc import Callable, Iterable, Sequence


def observe_event(service: str, event_type: str, outcome: str, seconds: float) -> None:
    """Count a handled event (placeholder)."""


def gauge_callback(
    name: str, documentation: str, labelnames: Sequence[str], read: Callable[[], Iterable[tuple[Sequence[str], float]]]
) -> None:
    """Register a gauge read at scrape time (placeholder)."""
