"""Settling a message on a connection that just died, or one that cannot be decoded, must not
kill a service.

nameko 2.14's ``QueueConsumer.ack_message`` / ``requeue_message`` check that the message's
connection is still open and then catch ``amqp.exceptions.ConnectionError`` only. When the broker
goes away while a worker is finishing, the check passes and the socket write raises
``ConnectionResetError`` / ``BrokenPipeError`` (``OSError``) instead: it escapes the worker thread
and nameko kills the whole container, so ``nameko run`` exits and the service stays down after the
broker is back (seen in tests/e2e/test_faults.py: catalog and deployer both died when RabbitMQ was
stopped during a burst of pushes).

Nothing is lost by ignoring the failure: a message that was not acknowledged is redelivered by
the broker when the connection closes, and every handler here is idempotent on its event id.
Each service package calls ``install()`` on import (not ``shared`` itself: the CLI imports
``shared`` and must not pull in nameko and eventlet).
"""

import logging
from collections.abc import Callable
from typing import Any

from amqp.exceptions import ConnectionError as AMQPConnectionError
from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)

# What a settle on a lost connection raises: amqp's own errors, and the socket's.
LOST_CONNECTION = (AMQPConnectionError, OSError)


def _tolerant(settle: Callable[[Any, Any], Any], verb: str) -> Callable[[Any, Any], Any]:
    def tolerant(self: Any, message: Any) -> Any:
        try:
            return settle(self, message)
        except LOST_CONNECTION as exc:
            log.warning(
                "could not %s a message (delivery tag %s): the broker connection was lost "
                "(%r); the broker redelivers it",
                verb,
                getattr(message, "delivery_tag", "?"),
                exc,
            )

    # Marks read by the tests and by install(), which must not wrap twice.
    setattr(tolerant, "imagehub_tolerant", True)  # noqa: B010
    setattr(tolerant, "__wrapped__", settle)  # noqa: B010
    return tolerant


def _undecodable(provider: Any) -> Callable[[Any, Exception], None]:
    """What a consumer does with a message its content type says it cannot decode (a body that
    is not JSON): kombu would raise in the consumer's thread and nameko would kill the whole
    container, and the broker would hand the same message to the next one. The provider's own
    ``on_undecodable(message, exc)`` if it has one (the dead-letter desk files it as it is); else
    the message is rejected without requeue, which a queue of the suite dead-letters (the desk
    files it, ``reason: "rejected"``) and any other drops, logged."""

    def on_decode_error(message: Any, exc: Exception) -> None:
        handler = getattr(provider, "on_undecodable", None)
        if handler is not None:
            handler(message, exc)
            return
        log.error(
            "a message on %s could not be decoded (%s: %s); rejected, to its dead-letter exchange if it has one",
            getattr(getattr(provider, "queue", None), "name", "?"),
            type(exc).__name__,
            exc,
        )
        message.reject(requeue=False)

    return on_decode_error


def _with_decode_errors_handled(get_consumers: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(self: Any, consumer_cls: Any, channel: Any) -> Any:
        consumers = get_consumers(self, consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_decode_error = _undecodable(provider)
        return consumers

    setattr(wrapped, "imagehub_tolerant", True)  # noqa: B010
    return wrapped


def install() -> None:
    """Idempotent: wraps ``QueueConsumer.ack_message``, ``requeue_message`` and ``get_consumers``
    once."""
    for name, verb in (("ack_message", "acknowledge"), ("requeue_message", "requeue")):
        method = getattr(QueueConsumer, name)
        if not getattr(method, "imagehub_tolerant", False):
            setattr(QueueConsumer, name, _tolerant(method, verb))
    if not getattr(QueueConsumer.get_consumers, "imagehub_tolerant", False):
        QueueConsumer.get_consumers = _with_decode_errors_handled(QueueConsumer.get_consumers)
