"""Units of work: one transaction for one piece of work, and the retry policy for races, written once.

``Transaction`` wraps a session factory (``lambda: db.get_session(close_on_exit=True)``, which
commits on exit and rolls back on error). ``run(work)`` runs ``work(session)`` in one transaction,
again — after a short, growing, jittered pause — when it lost a race to a concurrent transaction
(``RACES``: a unique key taken, a lock or serialization failure, a row deleted under an UPDATE),
at most ``attempts`` times; any other error, and the last race, go to the caller. Only races are
retried here: an outage is the caller's to handle (requeue, relay on the next tick).
"""

import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

log = logging.getLogger(__name__)

T = TypeVar("T")

RACES: tuple[type[Exception], ...] = (IntegrityError, OperationalError, StaleDataError)
ATTEMPTS = 4


class Transaction:
    def __init__(
        self,
        session: Callable[[], AbstractContextManager[Session]],
        attempts: int = ATTEMPTS,
        races: tuple[type[Exception], ...] = RACES,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.session = session
        self.attempts = attempts
        self.races = races
        self.sleep = sleep  # under eventlet's monkey-patching, time.sleep yields to other workers
        self.rng = rng or random.Random()

    def __call__(self, work: Callable[[Session], T]) -> T:
        return self.run(work)

    def run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one transaction, retried on a lost race; its result."""
        for attempt in range(1, self.attempts + 1):
            try:
                with self.session() as session:
                    return work(session)
            except self.races as exc:
                if attempt == self.attempts:
                    raise
                log.info(
                    "database conflict (attempt %d of %d), retrying: %s",
                    attempt,
                    self.attempts,
                    str(exc).splitlines()[0],
                )
                self.sleep(self.rng.uniform(0.02, 0.1) * attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")
