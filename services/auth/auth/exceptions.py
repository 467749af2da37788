"""What can go wrong at the token endpoint, and the one table that maps it to an HTTP status.

The errors a platform component sees over RPC are ``shared.contracts.errors``' (``NotFound``,
``Conflict``, ``InvalidRequest``, ...). These ones are the HTTP edge's: the docker client reads
a 401 as "wrong credentials", a 429 as "slow down".
"""

from shared.contracts.errors import ImagehubError, InvalidRequest

# One answer for every failed login: the same words whether the account exists, is disabled,
# belongs to a disabled tenant, or the password is wrong.
LOGIN_FAILED = "incorrect username or password"


class Unauthorized(ImagehubError):
    """The credentials (password, robot secret, refresh token) do not open an account."""

    oauth_error = "invalid_grant"

    def __init__(self, message: str = LOGIN_FAILED) -> None:
        super().__init__(message)

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Basic realm="imagehub"'}


class TooManyAttempts(ImagehubError):
    """Too many failed logins for this user name lately: try again in ``retry_after`` seconds."""

    oauth_error = "slow_down"

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after))  # never crosses RPC: an HTTP answer only
        super().__init__(f"too many failed logins for this account: try again in {self.retry_after} s")

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UnsupportedGrantType(InvalidRequest):
    """``POST /token`` with a ``grant_type`` other than ``password`` or ``refresh_token``."""

    oauth_error = "unsupported_grant_type"


class SettingMissing(Exception):
    """A required setting is empty or unusable: the service refuses to start.

    Not nameko's ``ConfigurationError``: ``nameko run`` prints that one and exits 0, which a
    supervisor reads as a clean stop; this one ends the process with a traceback and status 1.
    """


# The one place that maps an error to an HTTP status (and the registry-style error code the
# docker client prints). Anything not listed is a bug: 500.
HTTP_STATUSES = (
    (Unauthorized, 401, "UNAUTHORIZED"),
    (TooManyAttempts, 429, "TOOMANYREQUESTS"),
    (InvalidRequest, 400, "INVALID_REQUEST"),
)

# Errors a caller causes: logged as warnings by nameko, not as crashes.
EXPECTED_ERRORS = tuple(cls for cls, _, _ in HTTP_STATUSES)


def http_status_for(exc: BaseException) -> tuple[int, str]:
    """``(status, code)`` for an exception."""
    for cls, status, code in HTTP_STATUSES:
        if isinstance(exc, cls):
            return status, code
    return 500, "UNKNOWN"
