"""Where the suite's events go on the broker: its own subscriptions, their queues, dead letters.

One table (``SUBSCRIPTIONS``) names every handler of the suite's services: the event it consumes
and the service class and method that handle it. From it come

* each handler's queue: nameko's name for it (``evt-<source>-<type>--<service>.<method>``), made a
  **quorum queue** with a delivery limit and a dead-letter exchange (``queue_arguments``). The set-up
  (``shared.ops.broker_access apply``: ``make up`` and the tests' stack) declares these queues and
  their bindings before any service starts, so an event published while its consumer is down (or
  before it ever ran) waits in its queue; the handlers (``shared.runtime.consumer``) declare the same
  queue with the same arguments, and a handler missing from this table refuses to start, so a
  renamed handler cannot quietly leave events in a queue nobody reads;
* which events are published **mandatory** (``has_subscribers``): an event of the suite's own
  subscribers that no queue takes comes back to its publisher, which keeps it in its outbox and
  tries again later. An event only other components subscribe to (``tag_removed``,
  ``deployment_status_changed``) is published without, since whether anyone listens is theirs.

Dead letters. A message delivered more than ``DELIVERY_LIMIT`` times without being settled
(its handler failing each time, or its process dying on it) is dead-lettered by RabbitMQ itself
to ``DEAD_LETTER_EXCHANGE`` with its queue's name as routing key; a handler that fails for good
(a bad payload, a bug, or the last retry of a transient failure) parks it there itself, with the
reason in ``REASON_HEADER`` and friends. Both land in ``DEAD_LETTER_QUEUE``, where the catalog's
dead-letter desk files them for operators; a replay goes through ``REPLAY_EXCHANGE`` (direct, each
handler's queue bound under its own name) back to the one handler that failed it.
"""

from dataclasses import dataclass

from shared.contracts.events import (
    CATALOG,
    DEPLOYER,
    EVENT_SET_ASIDE,
    IMAGE_DELETED,
    IMAGE_PUSHED,
    ROLLOUT_REQUESTED,
    TAG_INDEXED,
    WEBHOOK,
)

DEAD_LETTER_EXCHANGE = "imagehub.dlx"
DEAD_LETTER_QUEUE = "imagehub.dead-letters"
REPLAY_EXCHANGE = "imagehub.replay"

# Unsuccessful deliveries a message may have before RabbitMQ dead-letters it: its first delivery
# and this many more. With the consumers' back-off (``retry_delay``) the last one comes about two
# and a half minutes after the first, so a database or registry outage of a minute is ridden out
# and a poison event is parked in the same time, never blocking the events behind it.
DELIVERY_LIMIT = 10
RETRY_BASE_DELAY = 0.5  # seconds before the first retry, doubled for each one after
RETRY_MAX_DELAY = 30.0

# Headers of a message a handler parked itself (RabbitMQ's own dead-lettering adds ``x-death``).
REASON_HEADER = "x-imagehub-reason"  # "rejected" (failed for good) or "delivery_limit"
ERROR_HEADER = "x-imagehub-error"  # the exception, as "Type: message"
QUEUE_HEADER = "x-imagehub-queue"  # the queue it was taken from
DELIVERIES_HEADER = "x-imagehub-deliveries"  # how many times it had been delivered
EVENT_TYPE_HEADER = "x-imagehub-event-type"
SOURCE_HEADER = "x-imagehub-source"
# On a replayed message: the dead letter's ID at the desk.
REPLAY_HEADER = "x-imagehub-replay-of"
# Set by RabbitMQ on a quorum queue's redelivery: how many deliveries came before this one.
DELIVERY_COUNT_HEADER = "x-delivery-count"


@dataclass(frozen=True)
class Subscription:
    source: str  # the publishing service: its exchange is "<source>.events"
    event_type: str  # the routing key
    service: str  # the nameko service class's ``name``
    method: str  # its handler

    @property
    def exchange(self) -> str:
        return f"{self.source}.events"

    @property
    def queue(self) -> str:
        """nameko's name for a service-pool handler's queue (``nameko.events.EventHandler.setup``)."""
        return f"evt-{self.source}-{self.event_type}--{self.service}.{self.method}"


SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(WEBHOOK, IMAGE_PUSHED, "catalog", "handle_image_pushed"),
    Subscription(WEBHOOK, IMAGE_DELETED, "catalog", "handle_image_deleted"),
    Subscription(WEBHOOK, EVENT_SET_ASIDE, "catalog", "handle_event_set_aside"),
    Subscription(CATALOG, TAG_INDEXED, "deployer_worker", "handle_tag_indexed"),
    Subscription(DEPLOYER, ROLLOUT_REQUESTED, "deployer_worker", "handle_rollout_requested"),
)


class UnknownSubscription(LookupError):
    """A handler that ``SUBSCRIPTIONS`` does not name."""


def subscription(source: str, event_type: str, service: str, method: str) -> Subscription:
    """The entry of ``SUBSCRIPTIONS`` for this handler; ``UnknownSubscription`` if there is none."""
    wanted = Subscription(source, event_type, service, method)
    if wanted not in SUBSCRIPTIONS:
        raise UnknownSubscription(
            f"{service}.{method} handles {source}.{event_type} but shared/contracts/topology.py "
            f"SUBSCRIPTIONS does not name it: add it there, so that the set-up declares its queue"
        )
    return wanted


def has_subscribers(source: str, event_type: str) -> bool:
    """Whether a handler of the suite consumes this event (then it is published mandatory)."""
    return any(s.source == source and s.event_type == event_type for s in SUBSCRIPTIONS)


def queue_arguments() -> dict[str, object]:
    """The arguments of every handler's queue: declared alike by the set-up and by the handler,
    since RabbitMQ refuses a declaration whose arguments differ from the queue's."""
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": DELIVERY_LIMIT,
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
    }


def retry_delay(deliveries_before: int, base: float = RETRY_BASE_DELAY, ceiling: float = RETRY_MAX_DELAY) -> float:
    """Seconds a handler waits before returning a message it failed on to its queue, when it had
    been delivered ``deliveries_before`` times before this delivery."""
    return float(min(base * 2**deliveries_before, ceiling))


def is_last_delivery(deliveries_before: int) -> bool:
    """Whether RabbitMQ dead-letters the message if this delivery fails too."""
    return deliveries_before >= DELIVERY_LIMIT
