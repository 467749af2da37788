"""The auth service's settings, read from its config.yml (whose defaults are the only ones).

Plain values in, a checked ``Settings`` out, ``SettingMissing`` naming the key otherwise: no
nameko imports, so every rule is testable without a container.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from auth.exceptions import SettingMissing

TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0", ""}

Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class LoginPolicy:
    """How repeated failed logins for one user name are slowed down.

    The first ``free_failures`` failures within ``window`` seconds cost nothing; after the
    n-th one beyond them no attempt for that name is checked for ``first_delay * 2**(n-1)``
    seconds (at most ``max_delay``) and each is answered 429 with ``Retry-After``. A success
    clears the count; so does ``window`` seconds without a failure.
    """

    free_failures: int = 5
    max_delay: float = 60.0
    window: float = 900.0
    first_delay: float = 1.0
    # Failures from one client address, whatever names they tried, before that address waits.
    address_free_failures: int = 20

    def for_address(self) -> "LoginPolicy":
        """The policy counted per client address over all names."""
        return replace(self, free_failures=self.address_free_failures)

    def delay_after(self, failures: int) -> float:
        beyond = failures - self.free_failures
        if beyond <= 0:
            return 0.0
        return float(min(self.first_delay * 2 ** min(beyond - 1, 30), self.max_delay))


@dataclass(frozen=True)
class Settings:
    issuer: str
    service: str
    key_file: str
    cert_file: str
    token_ttl: int
    refresh_token_ttl: int  # 0: no refresh tokens (docker then keeps the password)
    robot_credential_max_ttl: int
    anonymous_pull: bool
    login: LoginPolicy
    identity_ttl: int  # seconds a developer identity from sign_in is valid
    trusted_proxies: frozenset[str]  # addresses whose X-Forwarded-For names the client
    hash_time_cost: int
    hash_memory_kib: int
    hash_parallelism: int


def _text(config: Mapping[str, Any], key: str, required: bool = True) -> str:
    value = config.get(key)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise SettingMissing(f"setting {key} is empty; see services/auth/config.yml")
    return value


def _number(config: Mapping[str, Any], key: str, convert: Callable[[Any], Number], minimum: float) -> Number:
    try:
        value = convert(config[key])
    except KeyError:
        raise SettingMissing(f"setting {key} is missing from the service configuration") from None
    except (TypeError, ValueError) as exc:
        raise SettingMissing(f"setting {key}={config[key]!r} is not a number: {exc}") from None
    if value < minimum:
        raise SettingMissing(f"setting {key} must be at least {minimum}, got {value}")
    return value


def _flag(config: Mapping[str, Any], key: str) -> bool:
    value = config.get(key)
    if isinstance(value, bool):
        return value
    text = "" if value is None else str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise SettingMissing(f"setting {key}={value!r} must be true or false")


def load_settings(config: Mapping[str, Any]) -> Settings:
    """``Settings`` from the service's config (a dict as nameko loads config.yml)."""
    return Settings(
        issuer=_text(config, "AUTH_ISSUER"),
        service=_text(config, "AUTH_SERVICE"),
        key_file=_text(config, "AUTH_KEY_FILE"),
        cert_file=_text(config, "AUTH_CERT_FILE"),
        token_ttl=_number(config, "AUTH_TOKEN_TTL", int, 1),
        refresh_token_ttl=_number(config, "AUTH_REFRESH_TOKEN_TTL", int, 0),
        robot_credential_max_ttl=_number(config, "AUTH_ROBOT_CREDENTIAL_MAX_TTL", int, 1),
        anonymous_pull=_flag(config, "AUTH_ANONYMOUS_PULL"),
        login=LoginPolicy(
            free_failures=_number(config, "AUTH_LOGIN_FREE_FAILURES", int, 0),
            max_delay=_number(config, "AUTH_LOGIN_MAX_DELAY", float, 0),
            window=_number(config, "AUTH_LOGIN_FAILURE_WINDOW", float, 1),
            first_delay=_number(config, "AUTH_LOGIN_FIRST_DELAY", float, 0),
            address_free_failures=_number(config, "AUTH_LOGIN_ADDRESS_FREE_FAILURES", int, 0),
        ),
        identity_ttl=_number(config, "AUTH_IDENTITY_TTL", int, 1),
        trusted_proxies=frozenset(
            a.strip() for a in _text(config, "AUTH_TRUSTED_PROXIES", required=False).split(",") if a.strip()
        ),
        **hash_parameters(config),
    )


def hash_parameters(config: Mapping[str, Any]) -> dict[str, int]:
    """The Argon2id parameters (``Settings.hash_*``), alone: what ``auth.manage`` needs."""
    return dict(
        hash_time_cost=_number(config, "AUTH_HASH_TIME_COST", int, 1),
        hash_memory_kib=_number(config, "AUTH_HASH_MEMORY_KIB", int, 8 * 1024),
        hash_parallelism=_number(config, "AUTH_HASH_PARALLELISM", int, 1),
    )
