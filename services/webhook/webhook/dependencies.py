"""Providers of the webhook: its settings, a fail-fast confirmed event dispatcher, a broker probe."""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar, overload

import eventlet
from amqp.exceptions import AMQPError
from kombu import Connection
from kombu.exceptions import KombuError
from nameko.amqp.publish import UndeliverableMessage
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange

from webhook.exceptions import BrokerUnavailable, SettingMissing

log = logging.getLogger(__name__)

TOKEN_KEY = "WEBHOOK_TOKEN"
MAX_BODY_BYTES_KEY = "WEBHOOK_MAX_BODY_BYTES"
PUBLISH_TIMEOUT_KEY = "WEBHOOK_PUBLISH_TIMEOUT"
PUBLISH_RETRIES_KEY = "WEBHOOK_PUBLISH_RETRIES"
BROKER_PROBE_INTERVAL_KEY = "WEBHOOK_BROKER_PROBE_INTERVAL"

# What a publish raises when the broker is down, unreachable, slow to confirm or refuses us.
BROKER_ERRORS = (KombuError, AMQPError, OSError, UndeliverableMessage)

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


class ConfirmedEventDispatcher(EventDispatcher):
    """nameko's ``EventDispatcher`` (persistent messages, publisher confirms) that fails fast.

    nameko's defaults retry a failed connection 3 times 2 to 5 seconds apart and wait for a
    confirm without limit: far past the registry's 2-second notification timeout, so the registry
    would give up before hearing 503. Here every step of a publish — connecting, writing, waiting
    for the confirm — is bounded by WEBHOOK_PUBLISH_TIMEOUT, and retried WEBHOOK_PUBLISH_RETRIES
    times without pause (one retry is what survives a pooled connection the broker dropped since
    the last publish). Then the worker gets ``BrokerUnavailable``.

    Unlike nameko's, ``setup`` does not connect to declare the exchange: every publish declares it
    (once per connection), and a webhook started while the broker is down comes up and answers
    503 until the broker is back, rather than failing to start.
    """

    def setup(self) -> None:
        config = self.container.config
        timeout = setting(config, PUBLISH_TIMEOUT_KEY, float)
        retries = setting(config, PUBLISH_RETRIES_KEY, int)
        retry_policy = {"max_retries": retries, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
        self.exchange = get_event_exchange(self.container.service_name, config)
        self.declare.append(self.exchange)
        self.publisher = self.publisher_cls(
            self.amqp_uri,
            serializer=self.options.pop("serializer", self.serializer),
            exchange=self.exchange,
            declare=self.declare,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            use_confirms=True,
            # A message no queue is bound for (the catalog not started yet on a fresh broker or
            # vhost, a renamed handler) is confirmed *and dropped* by RabbitMQ: mandatory makes
            # it come back as UndeliverableMessage, so the registry gets 503 and retries.
            mandatory=True,
            retry=True,
            retry_policy=retry_policy,
            confirm_timeout=timeout,
            **self.options,
        )
        # Connection settings of the pooled publisher connections. kombu merges the retry policy
        # into them on every publish, so they hold the same values and the pool key stays stable.
        self.publisher.transport_options = dict(
            retry_policy, confirm_publish=True, connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout
        )

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
