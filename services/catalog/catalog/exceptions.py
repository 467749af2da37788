"""Errors that stay inside the catalog service.

The ones a caller sees live in ``shared.contracts.errors``. These tell an event handler that retrying
cannot help: the event is set aside with the reason instead.
"""


class UnusableEvent(Exception):
    """Permanent: the event refers to something that cannot be indexed."""


class NotInRegistry(UnusableEvent):
    """The registry answered 404 for a manifest or blob (deleted since the event was sent)."""


class UnusableManifest(UnusableEvent):
    """The registry returned a manifest or config the catalogue cannot read."""
