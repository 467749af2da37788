"""Following a job the catalog runs in a worker of its own (a resync pass, a library sync) until
it ends: a progress line per change, then the caller shows the result."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from imagehub import waiting
from imagehub.common import CommandError, Session, say


@dataclass(frozen=True)
class Job:
    what: str  # "resync pass 7", "library sync 4": how the messages name it
    fetch: Callable[[], dict[str, Any]]  # the job as it stands (counters only)
    progress_line: Callable[[float, Mapping[str, Any]], str]
    state: Callable[[Mapping[str, Any]], object]  # a new line whenever this changes
    hint: str  # how to follow it later


def follow(session: Session, job: Job, answer: dict[str, Any], started: float, wait_timeout: float) -> None:
    """Report the job's progress until its status is no longer ``running``; ``CommandError`` if
    the user stops watching or ``wait_timeout`` passes first (the catalog carries on)."""
    try:
        outcome = waiting.watch(
            job.fetch,
            answer,
            lambda elapsed, report: say(session, job.progress_line(elapsed, report)),
            wait_timeout,
            waiting.CLOCK,
            started,
            done=lambda report: report.get("status") != "running",
            state=job.state,
        )
    except KeyboardInterrupt:
        raise CommandError(f"stopped watching {job.what}; the catalog carries on", hint=job.hint) from None
    if outcome.timed_out:
        raise CommandError(
            f"{job.what} is still running after {wait_timeout:g} s (--wait-timeout); the catalog carries on",
            hint=job.hint,
        )
