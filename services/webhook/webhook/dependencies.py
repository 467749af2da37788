"""Providers of the webhook: its settings, a fail-fast confirmed event dispatcher, a broker probe."""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar, overload

import eventlet
from kombu import Connection
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.extensions import DependencyProvider

from shared.runtime import publishing
from shared.runtime.publishing import BROKER_ERRORS
from webhook.exceptions import BrokerUnavailable, SettingMissing

log = logging.getLogger(__name__)

TOKEN_KEY = "WEBHOOK_TOKEN"
MAX_BODY_BYTES_KEY = "WEBHOOK_MAX_BODY_BYTES"
PUBLISH_TIMEOUT_KEY = "WEBHOOK_PUBLISH_TIMEOUT"
PUBLISH_RETRIES_KEY = "WEBHOOK_PUBLISH_RETRIES"
BROKER_PROBE_INTERVAL_KEY = "WEBHOOK_BROKER_PROBE_INTERVAL"


T = TypeVar("T")


@overload
def setting(config: Mapping[str, Any], key: str) -> str: ...
@overload
def setting(config: Mapping[str, Any], key: str, convert: Callable[[Any], T]) -> T: ...


def setting(config: Mapping[str, Any], key: str, convert: Callable[[Any], Any] = str) -> Any:
    """A value of config.yml (whose defaults are the only ones); a clear error when absent."""
    try:
        return convert(config[key])
    except KeyError:
        raise SettingMissing(f"setting {key} is missing from the service configuration") from None
    except (TypeError, ValueError) as exc:
        raise SettingMissing(f"setting {key}={config[key]!r} is not valid: {exc}") from None


@dataclass(frozen=True)
class Settings:
    token: str
    max_body_bytes: int


class WebhookSettings(DependencyProvider):
    """The bearer token and body limit; the service refuses to start without a token."""

    def setup(self) -> None:
        config = self.container.config
        token = config.get(TOKEN_KEY)
        # nameko's YAML loader turns an unset ${WEBHOOK_TOKEN} into "" (or None without the
        # !raw_env_var tag): either way there is nothing to authenticate the registry with.
        token = "" if token is None else str(token).strip()
        if not token:
            raise SettingMissing(
                f"{TOKEN_KEY} is empty: set the {TOKEN_KEY} environment variable to the bearer "
                f"token the registry sends (notifications.endpoints[].headers.Authorization); "
                f"the webhook does not run unauthenticated"
            )
        max_body_bytes = setting(config, MAX_BODY_BYTES_KEY, int)
        if max_body_bytes <= 0:
            raise SettingMissing(f"{MAX_BODY_BYTES_KEY} must be a positive number of bytes")
        self.settings = Settings(token=token, max_body_bytes=max_body_bytes)

    def get_dependency(self, worker_ctx: Any) -> Settings:
        return self.settings


class ConfirmedEventDispatcher(publishing.ConfirmedEventDispatcher):
    """The kit's confirmed, bounded, mandatory dispatcher (``shared.runtime.publishing``) that fails
    fast: every step of a publish is bounded by WEBHOOK_PUBLISH_TIMEOUT and retried
    WEBHOOK_PUBLISH_RETRIES times, well within the registry's 2-second notification timeout, and
    then the worker gets ``BrokerUnavailable`` (the registry hears 503 and sends it again). A
    notification no queue would take (the catalog's queues not declared on a fresh vhost) comes
    back the same way, rather than being confirmed and dropped."""

    def read_settings(self, config: Mapping[str, Any]) -> tuple[float, int]:
        return setting(config, PUBLISH_TIMEOUT_KEY, float), setting(config, PUBLISH_RETRIES_KEY, int)

    def get_dependency(self, worker_ctx: Any) -> Callable[[str, Mapping[str, Any]], None]:
        dispatch = super().get_dependency(worker_ctx)

        def dispatch_confirmed(event_type: str, event_data: Mapping[str, Any]) -> None:
            """Publish and wait for the broker's confirm; ``BrokerUnavailable`` if it did not come."""
            try:
                dispatch(event_type, event_data)
            except BROKER_ERRORS as exc:
                raise BrokerUnavailable(f"the broker did not take {event_type}: {type(exc).__name__}: {exc}") from exc

        return dispatch_confirmed


class BrokerHealth(DependencyProvider):
    """Whether the broker answers, probed in the background so that /health never waits on it.

    One long-lived connection; each probe is one round trip (a passive declare of the built-in
    ``amq.topic`` exchange) bounded by WEBHOOK_PUBLISH_TIMEOUT. A failed probe drops the
    connection and the next one reconnects.
    """

    def setup(self) -> None:
        config = self.container.config
        self.amqp_uri = setting(config, AMQP_URI_CONFIG_KEY)
        self.ssl = config.get(AMQP_SSL_CONFIG_KEY)
        self.login_method = config.get(LOGIN_METHOD_CONFIG_KEY)
        self.timeout = setting(config, PUBLISH_TIMEOUT_KEY, float)
        self.interval = setting(config, BROKER_PROBE_INTERVAL_KEY, float)
        self.state: dict[str, Any] = {"reachable": None, "checked_at": None, "error": None}
        self._connection: Connection | None = None
        self._gt: Any = None  # eventlet's GreenThread of _run

    def start(self) -> None:
        self._gt = self.container.spawn_managed_thread(self._run)

    def stop(self) -> None:
        if self._gt is not None:
            self._gt.kill()
            self._gt = None
        self._close(polite=True)

    kill = stop

    def get_dependency(self, worker_ctx: Any) -> Callable[[], dict[str, Any]]:
        return lambda: dict(self.state)

    def _run(self) -> NoReturn:
        while True:
            self.probe()
            eventlet.sleep(self.interval)

    def probe(self) -> None:
        error = None
        try:
            with eventlet.Timeout(self.timeout):
                if self._connection is None:
                    self._connection = Connection(
                        self.amqp_uri,
                        ssl=self.ssl,
                        login_method=self.login_method,
                        connect_timeout=self.timeout,
                        transport_options={"max_retries": 0},
                    )
                self._connection.default_channel.exchange_declare("amq.topic", "topic", passive=True)
        except eventlet.Timeout:
            error = f"no answer within {self.timeout}s"
        except Exception as exc:  # noqa: BLE001  whatever the broker or the socket says, it is not reachable
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            self._close()
            if self.state["reachable"] is not False:
                log.warning("broker unreachable: %s", error)
        elif self.state["reachable"] is False:
            log.info("broker reachable again")
        self.state = {"reachable": error is None, "error": error, "checked_at": datetime.now(UTC).isoformat()}

    def _close(self, polite: bool = False) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if polite:  # say goodbye to a live broker, but never wait on a dead one
            try:
                with eventlet.Timeout(self.timeout):
                    connection.close()
                return
            except (Exception, eventlet.Timeout):  # noqa: BLE001, S110  a dead broker: collect() below
                pass
        try:
            connection.collect()  # drops the socket without talking to the broker
        except Exception:  # noqa: BLE001, S110  nothing more to release
            pass
