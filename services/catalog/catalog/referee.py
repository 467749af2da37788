"""The registry as referee: what to do when a notification disagrees with the catalogue's tag.

The catalogue orders a tag's pushes and deletes by the registry's timestamps. Those come from the
clock of whichever registry replica handled the request, so a replica with a slow clock stamps a
newer push earlier than the one the catalogue holds, and the time rule alone would ignore it until
the next resync. When a notification disagrees with the tag — a push stamped earlier than the
tag's push but naming another digest; a tag delete stamped earlier than the tag's push, or naming
a digest the tag does not point at — the catalogue asks the registry what the tag points at *now*
(``RegistryClient.tag_digest``) and makes the tag match the answer:

* the registry names the digest the catalogue holds → the notification is stale: nothing changes;
* it names another digest (the event's, or a third one) → the tag moves to it;
* it has no such tag → a delete removes the tag; a push leaves it as stored, and the tag delete
  the registry sent (or the next resync) settles it — a push cannot tell that the tag was deleted
  after it rather than never linked.

This module is the decision only (no session, no writes); ``catalog.indexing`` asks before its
first write and applies the ruling.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

PUSH, DELETE = "push", "delete"
# The ``trigger`` of a ``tag_indexed`` when the tag moved to a digest the registry named and the
# notification did not (a third digest, or a tag delete answered with a digest).
REFEREE = "referee"


def disagrees(
    action: str, event_digest: str | None, event_at: datetime, stored_digest: str, stored_at: datetime
) -> bool:
    """Whether a notification about a tag the catalogue holds (on ``stored_digest``, pushed at
    ``stored_at``) needs the registry's word rather than the time rule.

    A push disagrees when it names another digest and is stamped earlier than the stored push; a
    tag delete when it is stamped earlier than the stored push or names another digest.
    """
    if action == PUSH:
        return event_digest != stored_digest and event_at < stored_at
    return event_at < stored_at or event_digest not in (None, stored_digest)


@dataclass(frozen=True)
class Ruling:
    """The registry's answer about a tag, with what the event and the catalogue said."""

    action: str  # PUSH or DELETE: the notification's
    repository: str
    tag: str
    event_id: str
    event_digest: str | None  # a tag delete may name none
    event_at: datetime
    stored_digest: str
    stored_at: datetime
    registry_digest: str | None  # what the registry's tag points at now; None: no such tag

    @property
    def moves_to(self) -> str | None:
        """The digest the tag must move to, or None when it stays (or, for a delete, goes)."""
        return None if self.registry_digest in (None, self.stored_digest) else self.registry_digest

    @property
    def removes(self) -> bool:
        return self.action == DELETE and self.registry_digest is None

    @property
    def pushed_at(self) -> datetime:
        """The moved tag's ``pushed_at``: the later of the two stamps. The stamps come from two
        clocks and the registry says which came last, so the earlier stamp would put the tag back
        in time: a delayed notification stamped between the two would then pass the time rule
        unasked and undo the move, and consumers that drop a ``tag_indexed`` older than the one
        they acted on (the deployer's auto-deploy) would drop this one."""
        return max(self.event_at, self.stored_at)

    @property
    def decision(self) -> str:
        if self.removes:
            return "remove the tag"
        if self.moves_to is not None:
            return f"move the tag to {self.moves_to}"
        if self.registry_digest is None:
            return "leave the tag for the tag delete (or the next resync) to settle"
        return "keep the tag: the notification is stale"

    def stands_for(self, current_digest: str) -> bool:
        """Whether the ruling still applies to the tag as it is now: it was made about the tag on
        ``stored_digest``; a concurrent worker may have moved it since the registry was asked."""
        return current_digest == self.stored_digest


def ask(
    registry: Any,
    action: str,
    repository: str,
    tag: str,
    event_id: str,
    event_digest: str | None,
    event_at: datetime,
    stored_digest: str,
    stored_at: datetime,
) -> Ruling:
    """The registry's ruling on a disagreement (``disagrees``); logged with both stamps and the
    answer. ``RegistryUnavailable`` (transient: the event is retried) if the registry cannot say."""
    ruling = Ruling(
        action=action,
        repository=repository,
        tag=tag,
        event_id=event_id,
        event_digest=event_digest,
        event_at=event_at,
        stored_digest=stored_digest,
        stored_at=stored_at,
        registry_digest=registry.tag_digest(repository, tag),
    )
    log.info(
        "referee: %s of %s:%s (event %s, digest %s, stamped %s) against the catalogue's %s (pushed %s);"
        " the registry says %s: %s",
        action,
        repository,
        tag,
        event_id,
        event_digest,
        event_at.isoformat(),
        stored_digest,
        stored_at.isoformat(),
        ruling.registry_digest or "no such tag",
        ruling.decision,
    )
    return ruling
