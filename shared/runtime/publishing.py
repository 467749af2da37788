"""Publishing the suite's events so that none is lost: confirmed, bounded in time, mandatory.

``ConfirmedEventDispatcher`` is nameko's ``EventDispatcher`` with three changes, used by every
service that publishes (the webhook directly, the catalog and the deployer from their outboxes):

* **bounded**: connecting, writing and waiting for the publisher confirm each take at most the
  config's ``<timeout_key>`` seconds, retried ``<retries_key>`` times without pause (one retry is what
  survives a pooled connection the broker dropped since the last publish). nameko's defaults wait
  for a confirm without limit, which would hold an outbox row (and its lock) as long as the broker
  is slow;
* **mandatory** for the events a handler of the suite consumes (``shared.contracts.topology``):
  RabbitMQ confirms *and drops* a message no queue is bound for; mandatory makes it come back as
  ``UndeliverableMessage``, so the caller keeps it (the webhook answers 503 and the registry
  retries; an outbox keeps the row and tries again later). Events only other components consume
  go without: whether someone listens is theirs;
* **without identity** (``EventDispatcherWithoutIdentity``), and optionally as another service
  (``source_service``: the deployer's worker publishes as ``deployer``).

It does not connect at set-up to declare its exchange (nameko's does): every publish declares it
(once per connection), so a service started while the broker is down comes up and retries later.
"""

from collections.abc import Callable, Mapping
from typing import Any

from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.constants import AMQP_SSL_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.standalone.events import get_event_exchange

from shared.contracts.topology import has_subscribers
from shared.runtime.identity import EventDispatcherWithoutIdentity

# What a publish raises when the broker is down, unreachable, slow to confirm, refuses us, or
# returns a mandatory message no queue took.
BROKER_ERRORS = (KombuError, AMQPError, OSError, UndeliverableMessage)

Dispatch = Callable[[str, Mapping[str, Any]], None]


def bounded_publisher(
    amqp_uri: str,
    timeout: float,
    retry_policy: Mapping[str, Any],
    publisher_cls: type[Publisher] = Publisher,
    **options: Any,
) -> Publisher:
    """A nameko ``Publisher`` that waits for the broker's confirm, each step of a publish
    (connecting, writing, the confirm) bounded by ``timeout`` seconds, retried by ``retry_policy``.
    Every publisher of the suite is one: the dispatchers here, the consumers' dead-letter parking
    and the desk's replays (``shared.runtime.consumer``)."""
    publisher = publisher_cls(
        amqp_uri, use_confirms=True, retry=True, retry_policy=dict(retry_policy), confirm_timeout=timeout, **options
    )
    # Connection settings of the pooled publisher connections. kombu merges the retry policy
    # into them on every publish, so they hold the same values and the pool key stays stable.
    publisher.transport_options = dict(
        retry_policy, confirm_publish=True, connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout
    )
    return publisher


class ConfirmedEventDispatcher(EventDispatcherWithoutIdentity):
    """See the module. ``timeout_key``/``retries_key`` name the config's settings; without them,
    ``timeout`` seconds and ``retries`` retries."""

    def __init__(
        self,
        source_service: str | None = None,
        timeout_key: str | None = None,
        retries_key: str | None = None,
        timeout: float = 5.0,
        retries: int = 1,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.source_service = source_service
        self.timeout_key, self.retries_key = timeout_key, retries_key
        self.default_timeout, self.default_retries = timeout, retries

    def read_settings(self, config: Mapping[str, Any]) -> tuple[float, int]:
        """``(timeout, retries)``: from the config's keys when given, else the defaults."""
        timeout = float(config[self.timeout_key]) if self.timeout_key else self.default_timeout
        retries = int(config[self.retries_key]) if self.retries_key else self.default_retries
        return timeout, retries

    def setup(self) -> None:
        config = self.container.config
        timeout, retries = self.read_settings(config)
        retry_policy = {"max_retries": retries, "interval_start": 0, "interval_step": 0.1, "interval_max": 0.1}
        self.source = self.source_service or self.container.service_name
        self.exchange = get_event_exchange(self.source, config)
        self.declare.append(self.exchange)
        self.publisher = bounded_publisher(
            self.amqp_uri,
            timeout,
            retry_policy,
            publisher_cls=self.publisher_cls,
            serializer=self.options.pop("serializer", self.serializer),
            exchange=self.exchange,
            declare=self.declare,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            **self.options,
        )

    def get_dependency(self, worker_ctx: Any) -> Dispatch:
        headers = self.get_message_headers(worker_ctx)

        def dispatch(event_type: str, event_data: Mapping[str, Any]) -> None:
            """Publish and wait for the broker's confirm; one of ``BROKER_ERRORS`` if it did not come."""
            self.publisher.publish(
                event_data,
                exchange=self.exchange,
                routing_key=event_type,
                extra_headers=headers,
                mandatory=has_subscribers(self.source, event_type),
            )

        return dispatch
