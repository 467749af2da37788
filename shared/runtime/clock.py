"""The one clock of the suite: aware UTC datetimes.

Logic takes ``now`` as an argument where a test wants to set it; otherwise it asks here, so that
no code ever meets a naive datetime (``shared.runtime.db.UTCDateTime`` stores them naive, in UTC).
"""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def iso_from_epoch(seconds: int | None) -> str | None:
    """An epoch timestamp (a token's ``exp``, say) as an ISO 8601 string in UTC; None stays None."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()
