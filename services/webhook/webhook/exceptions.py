"""What can go wrong at the webhook's HTTP edge, and the one table that maps it to a status.

The registry retries an envelope forever on anything but 2xx/3xx, so the statuses are chosen for
it: 4xx only for a request that is not a notification from our registry at all (wrong token,
wrong content type, too big, not an envelope), 503 when the broker could not take the events.
An unusable *event* inside a good envelope is never an error here: it is set aside (2xx).
"""

from shared.contracts.errors import ImagehubError, InvalidRequest
from shared.runtime.http import PayloadTooLarge  # the webhook's body limit, WEBHOOK_MAX_BODY_BYTES


class Unauthorized(ImagehubError):
    """The request has no bearer token, or not the configured one."""

    def __init__(self, message: str, challenge: str = "Bearer") -> None:
        super().__init__(message, challenge)

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.args[1]}


class UnsupportedMediaType(ImagehubError):
    """The body is not declared as a registry notification envelope (or plain JSON)."""


class BrokerUnavailable(ImagehubError):
    """The broker did not confirm an event in time: the registry must retry the envelope."""


class SettingMissing(Exception):
    """A required setting is empty: the service refuses to start.

    Not nameko's ``ConfigurationError``: ``nameko run`` prints that one and exits 0, which a
    supervisor reads as a clean stop; this one ends the process with a traceback and status 1.
    """


# The one place that maps an error to an HTTP status. Anything not listed is a bug: 500.
HTTP_STATUSES = (
    (Unauthorized, 401),
    (InvalidRequest, 400),
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (BrokerUnavailable, 503),
)

# Errors a caller causes (or the broker does): logged as warnings by nameko, not as crashes.
EXPECTED_ERRORS = tuple(cls for cls, _ in HTTP_STATUSES)


def http_status_for(exc: BaseException) -> int:
    for cls, status in HTTP_STATUSES:
        if isinstance(exc, cls):
            return status
    return 500
