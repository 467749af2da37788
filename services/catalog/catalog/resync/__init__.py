"""Reconciliation: compare the catalogue with the registry and repair it.

Notifications alone can be lost (the registry keeps its queue in memory), so a *pass* walks the
registry and fixes what the catalogue got wrong. It lists the registry's repositories
(``/v2/_catalog``, page by page), then, one repository at a time, its tags (``tags/list``) and
each tag's digest (``HEAD`` of the manifest by tag), and compares them with the catalogue:

* **added / moved** — a tag the catalogue lacks, or has on another digest, is indexed through the
  path an ``image_pushed`` takes (``indexing.record_push``: manifest and config by digest, history,
  ``tag_indexed`` in the outbox). Its event_id is derived from (repository, tag, digest) and the
  tag's last history row, so a pass repeating the same repair (two passes that overlapped after a
  stale lock was taken over) finds it processed and emits nothing; a real re-push of the same
  digest after a delete has a new history row, and so a new id.
* **pending_removal / removed** — a catalogue tag the registry lacks is marked in
  ``resync_missing`` with the pass's number. It is removed (history, ``tag_removed``) only by a
  later pass that misses it again on the same digest; a pass that finds it present drops the mark.
  "Consecutive" counts the passes that looked at the tag: a pass limited to another namespace
  leaves its mark alone.
* **skipped** — what the pass left for an event or the next pass, with the reason.

Events win (rules for changes that land while a pass runs):

1. Every write re-checks, inside its transaction and after its last read, what it acts on: the tag
   row as it is now, and the registry's digest for the tag now (a second ``HEAD``). If the registry
   no longer says what the pass saw, the tag is skipped.
2. A tag with a history row written since the pass started (pushed, moved or removed by an
   event) is skipped: the event is newer news than the pass's listing.
3. So a push landing during a pass is never removed (the re-check sees the tag in the registry, or
   the tag row changed, or the push's transaction finds the tag gone and creates it again), and a
   delete landing during a pass is not undone (the re-check sees the tag gone from the registry,
   or the history row of the removal). On PostgreSQL the repository row is locked by the pass's
   write and by a delete, so that the two take turns; SQLite has one writer at a time, and the
   window left there (a registry delete between the re-check and the write, a few milliseconds)
   is repaired by the next two passes.

A tag gets ``pushed_at`` = the moment the pass saw it (the registry does not say when a tag was
pushed): a delayed notification of an older push then does not move it back.

One pass at a time: ``start_pass`` takes the single ``resync_lock`` row with a conditional UPDATE;
a second caller gets ``Conflict``. A pass refreshes the lock as it progresses; a lock silent for
longer than ``LOCK_STALE_AFTER`` (its process died) may be taken over, and its pass is marked
``abandoned``.

The package: ``lease`` (one pass at a time: the ``resync_lock`` row, a ``shared.runtime.lease``),
``scan`` (the pass itself), ``report`` (what ``get_resync`` shows), ``queries`` (the catalogue
reads the scan compares with). Plain functions and one class driven by callables, no framework:
``transaction(work)`` runs ``work(session)`` in one transaction (retrying races), ``send(outgoing)``
dispatches a committed transaction's events, ``cancelled()`` says the service is stopping.
"""

from catalog.resync.lease import LOCK_ID, LOCK_STALE_AFTER, RPC, TIMER, start_pass, start_periodic_pass
from catalog.resync.report import LISTS, get_pass, pass_view
from catalog.resync.scan import (
    DEFAULT_MAX_REMOVAL_FRACTION,
    PROGRESS_EVERY,
    Pass,
    PassEnded,
    derived_event_id,
    removal_guard,
    resync_event_id,
)

__all__ = [
    "DEFAULT_MAX_REMOVAL_FRACTION",
    "LISTS",
    "LOCK_ID",
    "LOCK_STALE_AFTER",
    "PROGRESS_EVERY",
    "RPC",
    "TIMER",
    "Pass",
    "PassEnded",
    "derived_event_id",
    "get_pass",
    "pass_view",
    "removal_guard",
    "resync_event_id",
    "start_pass",
    "start_periodic_pass",
]
