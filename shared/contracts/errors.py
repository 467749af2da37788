"""Typed errors that cross nameko RPC as themselves.

Each class is registered with nameko's ``deserialize_to_instance``, so a caller that imports
this module gets ``NotFound`` (not a bare ``RemoteError``) back from ``rpc.catalog.get_tag``.
Arguments are positional and JSON-safe: nameko rebuilds the exception as ``cls(*args)``.
"""

from typing import Any

from nameko.exceptions import deserialize_to_instance


class ImagehubError(Exception):
    """Base of every error a caller is expected to handle."""

    @property
    def message(self) -> Any:
        return self.args[0] if self.args else self.__class__.__name__

    @property
    def details(self) -> dict[str, Any]:
        """``Error(message, details)``: a JSON object beside the message that a client can act on
        (``Conflict`` of ``delete_tag``: ``{"sibling_tags": [...]}``); empty when none was given."""
        return dict(self.args[1]) if len(self.args) > 1 and isinstance(self.args[1], dict) else {}

    def __str__(self) -> str:
        return str(self.message)


@deserialize_to_instance
class NotFound(ImagehubError):
    """The repository, tag, deployment or pool does not exist (or is not visible to the caller)."""


@deserialize_to_instance
class Unauthorized(ImagehubError):
    """The call carries no identity the callee can verify (missing, forged or expired): sign in."""


@deserialize_to_instance
class RateLimited(ImagehubError):
    """Too many failed attempts from this caller lately: ``RateLimited(message, retry_after)``."""

    @property
    def retry_after(self) -> int:
        return int(self.args[1]) if len(self.args) > 1 else 1


@deserialize_to_instance
class Forbidden(ImagehubError):
    """The caller's tenant may not read or change this object (the deployer's refusal of another
    tenant's deployment says so in its details: ``{"of_another_tenant": "<deployment id>"}``)."""


@deserialize_to_instance
class InvalidReference(ImagehubError):
    """An image reference or repository name breaks the naming rules; the message names the rule."""


@deserialize_to_instance
class InvalidRequest(ImagehubError):
    """An argument is malformed; the message says which one and why."""


@deserialize_to_instance
class Conflict(ImagehubError):
    """The request contradicts current state (e.g. other tags share the digest being deleted;
    ``delete_tag``'s names them in its details, ``{"sibling_tags": [...]}``)."""


@deserialize_to_instance
class RegistryUnavailable(ImagehubError):
    """The registry could not be reached or answered 5xx: transient, worth retrying."""


@deserialize_to_instance
class ServiceUnavailable(ImagehubError):
    """A service this one depends on did not answer (down, or too slow): transient, worth retrying.

    The message names the service and what was asked of it.
    """


# Every class a service may raise to a caller, for nameko's ``expected_exceptions``.
USER_ERRORS = (NotFound, Unauthorized, Forbidden, InvalidReference, InvalidRequest, Conflict)
