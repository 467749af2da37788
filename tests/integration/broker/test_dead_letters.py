"""The suite's topology on the real RabbitMQ: bounded retries, dead letters, queues that wait.

A stand-in for the catalog's ``image_pushed`` handler (``@consumes`` under the catalog's name and
method, so it reads the very queue the set-up declares) fails one poison event for a passing
reason every time, and handles the others; the back-off is shortened through the config so that
ten retries take a second. Each test counts what was sent, what was delivered and what was
handled, prints the counts, and asserts them.
"""

import json
import uuid
from collections import Counter

import kombu
import pytest
from nameko.amqp.publish import UndeliverableMessage
from nameko.standalone.events import event_dispatcher
from sqlalchemy.orm import Session

from catalog import dead_letters
from catalog.migrate import upgrade
from shared.contracts import topology
from shared.contracts.errors import RegistryUnavailable
from shared.contracts.events import IMAGE_PUSHED, WEBHOOK
from shared.ops.broker_access import operator_management
from shared.runtime import db
from shared.runtime.clock import utcnow
from shared.runtime.consumer import consumes
from tests.support import wait_until

QUEUE = topology.subscription(WEBHOOK, IMAGE_PUSHED, "catalog", "handle_image_pushed").queue
WAIT = 30


class Seen:
    def __init__(self):
        self.deliveries = Counter()  # event_id -> times the handler ran on it
        self.handled = []  # event_ids handled without error, in order


def stand_in(seen):
    class Catalog:
        name = "catalog"

        @consumes(WEBHOOK, IMAGE_PUSHED, transient=(RegistryUnavailable,))
        def handle_image_pushed(self, payload):
            seen.deliveries[payload["event_id"]] += 1
            if payload.get("poison"):
                raise RegistryUnavailable("the registry answers 503 for this manifest")
            seen.handled.append(payload["event_id"])

    return Catalog


def fast_retries(rabbit_config):
    return dict(rabbit_config, EVENT_RETRY_BASE_DELAY=0.01, EVENT_RETRY_MAX_DELAY=0.05, max_workers=4)


def events(count, **extra):
    return [dict({"event_id": str(uuid.uuid4())}, **extra) for _ in range(count)]


def take_dead_letters(amqp_uri, expected, timeout=WAIT):
    """The messages of the dead-letter queue (undecoded), once ``expected`` are there (taken off it)."""
    taken = []
    with kombu.Connection(amqp_uri) as connection:
        queue = kombu.Queue(topology.DEAD_LETTER_QUEUE, no_declare=True)(connection.default_channel)

        def drained():
            while (message := queue.get(no_ack=True)) is not None:
                taken.append(message)
            return len(taken) >= expected

        wait_until(drained, timeout=timeout, interval=0.2, what=f"{expected} dead letter(s)")
    return taken


def test_a_poison_event_is_retried_to_the_limit_then_parked_while_the_events_behind_it_are_handled(
    container_factory, rabbit_config
):
    seen = Seen()
    config = fast_retries(rabbit_config)
    container_factory(stand_in(seen), config).start()
    [poison] = events(1, poison=True)
    good = events(20)
    dispatch = event_dispatcher(config)
    for payload in [poison, *good]:
        dispatch(WEBHOOK, IMAGE_PUSHED, payload)

    parked = take_dead_letters(config["AMQP_URI"], 1)
    wait_until(lambda: len(seen.handled) == len(good), timeout=WAIT, what="the good events")
    print(
        f"sent={1 + len(good)} poison_deliveries={seen.deliveries[poison['event_id']]} "
        f"good_handled={len(seen.handled)} good_distinct={len(set(seen.handled))} dead_letters={len(parked)}"
    )
    [letter] = parked
    assert seen.deliveries[poison["event_id"]] == topology.DELIVERY_LIMIT + 1
    assert sorted(seen.handled) == sorted(p["event_id"] for p in good)  # each once, none lost
    assert json.loads(letter.body) == poison
    headers = letter.headers
    assert (
        headers[topology.REASON_HEADER],
        headers[topology.QUEUE_HEADER],
        headers[topology.DELIVERIES_HEADER],
        headers[topology.ERROR_HEADER],
    ) == (
        "delivery_limit",
        QUEUE,
        topology.DELIVERY_LIMIT + 1,
        "RegistryUnavailable: the registry answers 503 for this manifest",
    )


def test_rabbitmq_dead_letters_a_message_whose_consumer_keeps_dying_and_the_desk_reads_why(rabbit_config, sqlite_url):
    """No handler of ours sees this one through: its consumer's channel closes on it each time (as
    when its process is killed), so only RabbitMQ's delivery limit can stop the loop."""
    [payload] = events(1)
    dispatch = event_dispatcher(rabbit_config)
    dispatch(WEBHOOK, IMAGE_PUSHED, payload)
    deliveries = 0
    while deliveries <= topology.DELIVERY_LIMIT + 1:
        with (
            kombu.Connection(rabbit_config["AMQP_URI"]) as connection,
            connection.SimpleQueue(kombu.Queue(QUEUE, no_declare=True)) as simple,
        ):
            try:
                simple.get(timeout=2)
            except simple.Empty:
                break  # dead-lettered: the queue is empty
            deliveries += 1  # left unacknowledged: the connection closes on it
    parked = take_dead_letters(rabbit_config["AMQP_URI"], 1)
    print(f"deliveries_before_dead_letter={deliveries} dead_letters={len(parked)}")
    [letter] = parked
    assert deliveries == topology.DELIVERY_LIMIT + 1
    assert json.loads(letter.body) == payload

    upgrade(sqlite_url)
    engine = db.create_engine(sqlite_url)
    try:
        with Session(engine) as session:
            filed = dead_letters.file(
                session,
                letter.body.encode() if isinstance(letter.body, str) else letter.body,
                letter.headers,
                letter.delivery_info["routing_key"],
                letter.content_type,
                utcnow(),
            )
            assert (filed.queue, filed.source, filed.event_type, filed.reason, filed.event_id) == (
                QUEUE,
                WEBHOOK,
                IMAGE_PUSHED,
                "delivery_limit",
                payload["event_id"],
            )
    finally:
        engine.dispose()


def test_events_published_before_their_consumer_ever_ran_wait_for_it(container_factory, rabbit_config):
    """The set-up declared the queue: a mandatory publish is routed although no consumer ever
    ran, and the consumer started later gets every event once."""
    sent = events(25)
    dispatch = event_dispatcher(rabbit_config, mandatory=True)
    for payload in sent:
        dispatch(WEBHOOK, IMAGE_PUSHED, payload)
    with kombu.Connection(rabbit_config["AMQP_URI"]) as connection:
        waiting = connection.default_channel.queue_declare(QUEUE, passive=True).message_count
    seen = Seen()
    container_factory(stand_in(seen), fast_retries(rabbit_config)).start()
    wait_until(lambda: len(seen.handled) == len(sent), timeout=WAIT, what="every event")
    print(f"sent={len(sent)} waiting_before_start={waiting} handled={len(seen.handled)}")
    assert waiting == len(sent)
    assert sorted(seen.handled) == sorted(p["event_id"] for p in sent)


def test_without_the_set_up_a_mandatory_event_comes_back_instead_of_being_dropped(rabbit_config):
    management = operator_management()
    vhost = f"imagehub-bare-{uuid.uuid4().hex[:8]}"
    management.create_vhost(vhost)  # no topology: no queue is bound for the event
    try:
        exchange = {"type": "topic", "durable": True, "auto_delete": False, "internal": False, "arguments": {}}
        management.put(f"exchanges/{vhost}/webhook.events", exchange)
        dispatch = event_dispatcher({"AMQP_URI": management.amqp_uri(vhost)}, mandatory=True)
        with pytest.raises(UndeliverableMessage):
            dispatch(WEBHOOK, IMAGE_PUSHED, events(1)[0])
    finally:
        management.delete_vhost(vhost)


def test_a_body_that_is_not_json_is_dead_lettered_and_the_consumer_lives_on(container_factory, rabbit_config):
    """kombu cannot decode it; without shared.runtime.amqp's fix the consumer's thread would die
    with the container, and the broker would hand it to the next one."""
    seen = Seen()
    container_factory(stand_in(seen), fast_retries(rabbit_config)).start()
    with kombu.Connection(rabbit_config["AMQP_URI"]) as connection:
        connection.Producer().publish(
            b"{not json",
            exchange=kombu.Exchange("webhook.events", type="topic", no_declare=True),
            routing_key=IMAGE_PUSHED,
            content_type="application/json",
            content_encoding="utf-8",
        )
    [good] = events(1)
    event_dispatcher(rabbit_config)(WEBHOOK, IMAGE_PUSHED, good)
    parked = take_dead_letters(rabbit_config["AMQP_URI"], 1)
    wait_until(lambda: seen.handled == [good["event_id"]], timeout=WAIT, what="the good event")
    print(f"undecodable_dead_letters={len(parked)} handled_after={len(seen.handled)}")
    [letter] = parked
    assert letter.body in (b"{not json", "{not json")
    assert [(d["reason"], d["queue"]) for d in letter.headers["x-death"]] == [("rejected", QUEUE)]
