"""The suite's event handlers: bounded retries, then a dead letter with its reason; nothing dropped.

``@consumes(source, event_type, transient=(...))`` replaces nameko's ``@event_handler`` for every
handler of the suite. What happens to a message is decided here, once, from how the handler ended:

* it returned → the message is acknowledged;
* it raised one of its ``transient`` errors (the database or the registry away) → the message goes
  back to its queue after a back-off that doubles with each delivery
  (``shared.contracts.topology.retry_delay``, or the config's ``EVENT_RETRY_BASE_DELAY`` and
  ``EVENT_RETRY_MAX_DELAY``): the worker holds it meanwhile, so other messages of
  the queue are handled by other workers and nothing waits behind it;
* it raised anything else (a payload that breaks the contract, a bug), or a transient error on the
  last delivery RabbitMQ allows → the message is **parked**: published, with its reason, to the
  dead-letter exchange under its queue's name (confirmed and mandatory), then acknowledged. The
  catalog's dead-letter desk files it; ``imagehub dead-letters`` shows and replays it.
* the process died while handling it (the one case no code here sees) → RabbitMQ gives it back to
  the queue and counts the delivery; past ``DELIVERY_LIMIT`` it dead-letters it itself.

``@consumes(..., batch=True)`` hands the method the messages that have arrived as one list
(``BatchConsumingHandler``): whatever is there when a batch worker is free, never waiting for
more, so a lone event goes at once and a backlog is taken in batches. The method returns one
outcome per message, and each message is settled from its own outcome as above: one event that
fails does not fail its batch.

Its queue is the one ``shared.contracts.topology`` names (a quorum queue with the delivery limit
and the dead-letter exchange), declared with the same arguments, and a handler that table does not
name refuses to start. Idempotence is each handler's own: the event's ID is recorded in the
transaction of its effect, so a redelivery or a replay changes nothing twice.
"""

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import eventlet
from kombu import Exchange, Queue
from kombu.message import Message
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.events import EventHandler
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import DependencyProvider
from nameko.messaging import Consumer, QueueConsumer
from nameko.standalone.events import get_event_exchange

from shared.contracts import topology
from shared.runtime import logs, metrics
from shared.runtime.publishing import bounded_publisher

log = logging.getLogger(__name__)

# The config's back-off of a retried event (seconds; ``shared.contracts.topology``'s by default).
RETRY_BASE_DELAY_KEY = "EVENT_RETRY_BASE_DELAY"
RETRY_MAX_DELAY_KEY = "EVENT_RETRY_MAX_DELAY"

# Batch handlers (``BatchConsumingHandler``): at most EVENT_BATCH_SIZE events a batch,
# EVENT_BATCH_WORKERS batches of a handler at once, EVENT_BATCH_PREFETCH messages unacknowledged
# (for all the batch handlers of a service together).
BATCH_SIZE_KEY = "EVENT_BATCH_SIZE"
BATCH_WORKERS_KEY = "EVENT_BATCH_WORKERS"
BATCH_PREFETCH_KEY = "EVENT_BATCH_PREFETCH"
DEFAULT_BATCH_SIZE = 100
DEFAULT_BATCH_WORKERS = 2
DEFAULT_BATCH_PREFETCH = 200

# How long a park may take: connecting and the broker's confirm. Past it the message is returned
# to its queue instead, and comes back (RabbitMQ dead-letters it at the limit in any case).
PARK_TIMEOUT = 10.0

ExcInfo = tuple[type[BaseException], BaseException, Any]


def confirmed_publisher(config: Mapping[str, Any], exchange: str, kind: str) -> Publisher:
    """A publisher to ``exchange`` (declared by the set-up, not here: the services may not) that
    waits for the broker's confirm, at most ``PARK_TIMEOUT`` per step, and has a message no queue
    takes returned (mandatory) rather than dropped."""
    return bounded_publisher(
        config[AMQP_URI_CONFIG_KEY],
        PARK_TIMEOUT,
        {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1.0},
        exchange=Exchange(exchange, type=kind, durable=True, no_declare=True),
        mandatory=True,
    )


def deliveries_before(message: Message) -> int:
    """How many times the message had been delivered before this delivery (quorum queues count)."""
    try:
        return int((message.headers or {}).get(topology.DELIVERY_COUNT_HEADER) or 0)
    except (TypeError, ValueError):
        return 0


class ConsumingHandler(EventHandler):
    """nameko's service-pool ``EventHandler`` on the suite's topology (see the module)."""

    def __init__(
        self,
        source_service: str,
        event_type: str,
        transient: tuple[type[BaseException], ...] = (),
        permanent: tuple[type[BaseException], ...] = (),
        **kwargs: Any,
    ) -> None:
        # Expected: nameko logs a transient failure as a warning, not as an error with its trace.
        super().__init__(source_service, event_type, requeue_on_error=True, expected_exceptions=transient, **kwargs)
        self.transient, self.permanent = transient, permanent
        self.base_delay, self.max_delay = topology.RETRY_BASE_DELAY, topology.RETRY_MAX_DELAY
        self.subscription: topology.Subscription | None = None
        self.parker: Publisher | None = None

    def setup(self) -> None:
        sub = topology.subscription(self.source_service, self.event_type, self.container.service_name, self.method_name)
        self.subscription = sub
        config = self.container.config
        self.base_delay = float(config.get(RETRY_BASE_DELAY_KEY, topology.RETRY_BASE_DELAY))
        self.max_delay = float(config.get(RETRY_MAX_DELAY_KEY, topology.RETRY_MAX_DELAY))
        self.queue = Queue(
            sub.queue,
            exchange=get_event_exchange(self.source_service, self.container.config),
            routing_key=self.event_type,
            durable=True,
            auto_delete=False,
            exclusive=False,
            queue_arguments=topology.queue_arguments(),
        )
        self.parker = confirmed_publisher(self.container.config, topology.DEAD_LETTER_EXCHANGE, "topic")
        # Entrypoint.setup, not EventHandler.setup: that one would make nameko's own queue again.
        self.queue_consumer.register_provider(self)

    def handle_message(self, body: Any, message: Message) -> None:
        message.imagehub_received = time.monotonic()  # type: ignore[attr-defined]
        super().handle_message(body, message)

    def handle_result(self, message: Message, worker_ctx: Any, result: Any = None, exc_info: ExcInfo | None = None):  # type: ignore[no-untyped-def]
        self._finish(message, exc_info)
        return result, exc_info

    def _finish(self, message: Message, exc_info: ExcInfo | None) -> None:
        """Settle ``message`` as its handling ended, and count it; the lines logged meanwhile
        carry its event ID (a batch worker's own context names none)."""
        event_id = _event_id(message)
        context = logs.current()
        logs.bind(**{**context, "event_id": event_id})
        try:
            outcome = self._settle(message, exc_info)
            started = getattr(message, "imagehub_received", None)
            elapsed = time.monotonic() - started if started is not None else 0.0
            metrics.observe_event(self.container.service_name, self.event_type, outcome, elapsed)
            if outcome == "handled":  # one line per event: its ID (in the line's context) is what an operator greps
                log.info("%s %s handled in %.0f ms", self.event_type, event_id, elapsed * 1000)
        finally:
            logs.bind(**context)

    def _settle(self, message: Message, exc_info: ExcInfo | None) -> str:
        """Acknowledge, return or park ``message``; the outcome as the metrics name it."""
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return "handled"
        exc = exc_info[1]
        before = deliveries_before(message)
        retryable = isinstance(exc, self.transient) and not isinstance(exc, self.permanent)
        if retryable and not topology.is_last_delivery(before):
            delay = topology.retry_delay(before, self.base_delay, self.max_delay)
            log.warning(
                "%s %s failed (delivery %d of at most %d), returned to its queue in %.1fs: %s",
                self.event_type,
                _event_id(message),
                before + 1,
                topology.DELIVERY_LIMIT + 1,
                delay,
                _describe(exc),
            )
            eventlet.sleep(delay)
            self.queue_consumer.requeue_message(message)
            return "retried"
        reason = "delivery_limit" if retryable else "rejected"
        try:
            self._park(message, reason, exc, before + 1)
        except Exception as park_error:  # noqa: BLE001 - whatever the broker client raises
            log.error(
                "%s %s could not be parked (%s); returned to its queue, RabbitMQ dead-letters it at the limit",
                self.event_type,
                _event_id(message),
                _describe(park_error),
            )
            self.queue_consumer.requeue_message(message)
            return "retried"
        log.error(
            "%s %s parked as a dead letter after %d deliveries (%s): %s",
            self.event_type,
            _event_id(message),
            before + 1,
            reason,
            _describe(exc),
            exc_info=exc_info if reason == "rejected" else None,
        )
        self.queue_consumer.ack_message(message)
        return "dead_lettered"

    def _park(self, message: Message, reason: str, exc: BaseException, deliveries: int) -> None:
        assert self.parker is not None and self.subscription is not None  # set up
        headers = dict(message.headers or {})
        headers.update(
            {
                topology.REASON_HEADER: reason,
                topology.ERROR_HEADER: _describe(exc)[:1000],
                topology.QUEUE_HEADER: self.subscription.queue,
                topology.DELIVERIES_HEADER: deliveries,
                topology.EVENT_TYPE_HEADER: self.event_type,
                topology.SOURCE_HEADER: self.source_service,
            }
        )
        self.parker.publish(
            message.body,
            routing_key=self.subscription.queue,
            headers=headers,
            # The body as it came, undecoded: a payload that is not even JSON is kept as it is.
            serializer=None,
            content_type=message.content_type,
            content_encoding=message.content_encoding,
        )


class BatchQueueConsumer(QueueConsumer):
    """The queue consumer of the batch handlers: a channel of its own, whose prefetch
    (``EVENT_BATCH_PREFETCH``) lets messages gather while a batch is being handled; nameko's
    shared one takes ``max_workers`` messages at a time, one per worker."""

    @property
    def prefetch_count(self) -> int:
        return int(self.container.config.get(BATCH_PREFETCH_KEY, DEFAULT_BATCH_PREFETCH))


class BatchConsumingHandler(ConsumingHandler):
    """A ``ConsumingHandler`` whose method takes the messages that have arrived as one list of
    payloads and returns one outcome per payload, in order: None (handled: acknowledged) or the
    exception the event failed with (settled as the one-at-a-time handler settles a failure:
    returned to the queue after a back-off, or parked). A batch that raises settles each of its
    messages with that exception.

    A batch is whatever has arrived, at most ``EVENT_BATCH_SIZE``: nothing waits for a batch to
    fill. When a batch worker is free the first message goes at once, alone; those arriving while
    ``EVENT_BATCH_WORKERS`` batches are being handled make the next batch together.
    """

    queue_consumer = BatchQueueConsumer()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_size, self.workers = DEFAULT_BATCH_SIZE, DEFAULT_BATCH_WORKERS
        self.pending: list[tuple[Any, Message]] = []
        self.running = 0
        self.stopping = False

    def setup(self) -> None:
        super().setup()
        config = self.container.config
        self.batch_size = max(1, int(config.get(BATCH_SIZE_KEY, DEFAULT_BATCH_SIZE)))
        self.workers = max(1, int(config.get(BATCH_WORKERS_KEY, DEFAULT_BATCH_WORKERS)))

    def stop(self) -> None:
        # Messages not yet in a batch stay unacknowledged: RabbitMQ gives them back when the
        # channel closes.
        self.stopping = True
        super().stop()

    def handle_message(self, body: Any, message: Message) -> None:
        message.imagehub_received = time.monotonic()  # type: ignore[attr-defined]
        self.pending.append((body, message))
        self._start_batches()

    def _start_batches(self) -> None:
        while self.pending and self.running < self.workers and not self.stopping:
            taken, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
            messages = [message for _, message in taken]
            self.running += 1
            try:
                self.container.spawn_worker(
                    self,
                    ([body for body, _ in taken],),
                    {},
                    context_data=self.unpack_message_headers(messages[0]),
                    handle_result=partial(self.handle_batch_result, messages),
                )
            except ContainerBeingKilled:
                self.running -= 1
                for message in messages:
                    self.queue_consumer.requeue_message(message)

    def handle_batch_result(  # type: ignore[no-untyped-def]
        self, messages: list[Message], worker_ctx: Any, result: Any = None, exc_info: ExcInfo | None = None
    ):
        try:
            if exc_info is None and not (isinstance(result, list) and len(result) == len(messages)):
                error = TypeError(f"a batch handler returned {result!r}, not one outcome per message")
                exc_info = (TypeError, error, None)
            outcomes = [exc_info] * len(messages) if exc_info is not None else [_exc_info(o) for o in result]
            for message, outcome in zip(messages, outcomes, strict=True):
                if outcome is None:
                    self._finish(message, None)
                else:  # its back-off must not hold up the batch's other messages, nor the next batch
                    self.container.spawn_managed_thread(partial(self._finish, message, outcome))
        finally:
            self.running -= 1
            self._start_batches()
        return result, exc_info


@dataclass(frozen=True)
class RawMessage:
    """A message as the dead-letter desk files it: nothing decoded, nothing assumed."""

    body: bytes
    headers: dict[str, Any]
    routing_key: str | None
    content_type: str | None


class DeadLetterConsumer(Consumer):
    """Takes the dead-letter queue's messages (declared by the set-up) as ``RawMessage``: a
    message that is not JSON is filed too. A failure to file one (the database away) returns it to
    the queue after ``retry_delay``; the queue has no delivery limit, so it waits as long as it must."""

    def __init__(self, **kwargs: Any) -> None:
        queue = Queue(topology.DEAD_LETTER_QUEUE, no_declare=True)
        super().__init__(queue=queue, requeue_on_error=True, **kwargs)

    def handle_message(self, body: Any, message: Message) -> None:
        raw = RawMessage(
            body=message.body if isinstance(message.body, bytes) else str(message.body).encode(),
            headers=dict(message.headers or {}),
            routing_key=(message.delivery_info or {}).get("routing_key"),
            content_type=message.content_type,
        )
        self.container.spawn_worker(
            self, (raw,), {}, context_data={}, handle_result=partial(self.handle_result, message)
        )

    def on_undecodable(self, message: Message, exc: Exception) -> None:
        """A dead letter that is not what its content type says: filed as it is all the same."""
        self.handle_message(None, message)

    def handle_message_processed(self, message: Message, result: Any = None, exc_info: ExcInfo | None = None) -> None:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        delay = topology.retry_delay(min(deliveries_before(message), 6))
        log.warning(
            "a dead letter could not be filed, returned to its queue in %.1fs: %s", delay, _describe(exc_info[1])
        )
        eventlet.sleep(delay)
        self.queue_consumer.requeue_message(message)


class Replayer(DependencyProvider):
    """``replay(queue, body, headers, content_type)``: send a message back to one handler's queue
    through the replay exchange, confirmed; one of the broker client's errors if it did not go."""

    def setup(self) -> None:
        self.publisher = confirmed_publisher(self.container.config, topology.REPLAY_EXCHANGE, "direct")

    def get_dependency(self, worker_ctx: Any) -> Callable[[str, bytes, dict[str, Any], str | None], None]:
        def replay(queue: str, body: bytes, headers: dict[str, Any], content_type: str | None) -> None:
            self.publisher.publish(
                body,
                routing_key=queue,
                headers=headers,
                serializer=None,
                content_type=content_type or "application/json",
                content_encoding="utf-8",
            )

        return replay


def consume_dead_letters() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate the dead-letter desk's method: it gets each dead letter as a ``RawMessage``."""
    decorator: Callable[[Callable[..., Any]], Callable[..., Any]] = DeadLetterConsumer.decorator()
    return decorator


def consumes(
    source: str,
    event_type: str,
    transient: tuple[type[BaseException], ...] = (),
    permanent: tuple[type[BaseException], ...] = (),
    batch: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a service method as the suite's handler of ``source``'s ``event_type`` (see the
    module): ``transient`` errors are retried, unless they are also ``permanent`` (a subclass
    that retrying cannot help, such as a database's refusal of a value). With ``batch`` the
    method takes a list of payloads and returns one outcome per payload (``BatchConsumingHandler``)."""
    handler = BatchConsumingHandler if batch else ConsumingHandler
    decorator: Callable[[Callable[..., Any]], Callable[..., Any]] = handler.decorator(
        source, event_type, transient=transient, permanent=permanent
    )
    return decorator


def _exc_info(outcome: BaseException | None) -> ExcInfo | None:
    return None if outcome is None else (type(outcome), outcome, outcome.__traceback__)


def _event_id(message: Message) -> str:
    try:
        payload = json.loads(message.body)
    except (TypeError, ValueError):
        return "?"
    return str(payload.get("event_id", "?")) if isinstance(payload, dict) else "?"


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
