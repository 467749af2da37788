"""The one clock of the suite: aware UTC datetimes.

Logic takes ``now`` as an argument where a test wants to set it; otherwise it asks here, so that
no code ever meets a naive datetime (``shared.runtime.db.UTCDateTime`` stores them naive, in UTC).
"""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
