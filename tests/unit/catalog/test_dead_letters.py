"""``catalog.dead_letters``: filing what the dead-letter queue holds, and what a replay sends."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from catalog import dead_letters
from catalog.models import DeadLetter
from shared.contracts import topology
from shared.contracts.errors import Conflict, NotFound

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PUSHED = "evt-webhook-image_pushed--catalog.handle_image_pushed"
INDEXED = "evt-catalog-tag_indexed--deployer_worker.handle_tag_indexed"


def parked_headers(reason="rejected", error="InvalidRequest: bad", queue=PUSHED):
    return {
        "nameko.call_id_stack": ["webhook.receive.1"],
        topology.REASON_HEADER: reason,
        topology.ERROR_HEADER: error,
        topology.QUEUE_HEADER: queue,
        topology.DELIVERIES_HEADER: 1,
        topology.EVENT_TYPE_HEADER: "image_pushed",
        topology.SOURCE_HEADER: "webhook",
    }


def body(event_id="e1", **more):
    return json.dumps({"event_id": event_id, **more}).encode()


def test_a_parked_message_is_filed_with_what_its_handler_said(session):
    letter = dead_letters.file(session, body(), parked_headers(), PUSHED, "application/json", T0)
    assert (
        letter.queue,
        letter.source,
        letter.event_type,
        letter.event_id,
        letter.reason,
        letter.error,
        letter.deliveries,
        letter.deaths,
        letter.status,
    ) == (PUSHED, "webhook", "image_pushed", "e1", "rejected", "InvalidRequest: bad", 1, 1, DeadLetter.PARKED)
    assert json.loads(letter.body) == {"event_id": "e1"}


def test_rabbitmqs_own_dead_letter_is_read_from_its_x_death_header(session):
    x_death = [
        {
            "count": 1,
            "reason": "delivery_limit",
            "queue": INDEXED,
            "time": T0,
            "exchange": "catalog.events",
            "routing-keys": ["tag_indexed"],
        }
    ]
    headers = {"x-death": x_death, "x-delivery-count": 11}
    letter = dead_letters.file(session, body("e2"), headers, "tag_indexed", "application/json", T0)
    assert (letter.queue, letter.source, letter.event_type, letter.reason, letter.error) == (
        INDEXED,
        "catalog",
        "tag_indexed",
        "delivery_limit",
        None,
    )
    assert letter.headers["x-death"][0]["time"] == T0.isoformat()  # stored as JSON holds it


def test_the_same_event_dying_again_counts_on_its_row(session):
    first = dead_letters.file(session, body(), parked_headers(), PUSHED, "application/json", T0)
    dead_letters.mark_replayed(first, "admin alice", T0 + timedelta(minutes=1))
    again = dead_letters.file(
        session, body(), parked_headers(error="KeyError: x"), PUSHED, "application/json", T0 + timedelta(minutes=2)
    )
    assert again.id == first.id
    assert (again.deaths, again.replays, again.status, again.error) == (2, 1, DeadLetter.PARKED, "KeyError: x")
    assert (again.first_dead_at, again.last_dead_at) == (T0, T0 + timedelta(minutes=2))
    assert dead_letters.waiting(session) == 1


def test_a_body_that_is_not_json_or_has_no_event_id_is_filed_by_its_digest(session):
    letter = dead_letters.file(session, b"\xff not json", {}, None, None, T0)
    assert letter.event_id.startswith("sha256:") and len(letter.event_id) == 71
    assert (letter.queue, letter.reason, letter.body) == ("?", "unknown", "\ufffd not json")


def test_a_replay_goes_to_its_queue_without_the_headers_of_its_death(session):
    letter = dead_letters.file(session, body(), parked_headers(), PUSHED, "application/json", T0)
    queue, sent, headers, content_type = dead_letters.replay_message(letter)
    assert (queue, json.loads(sent), content_type) == (PUSHED, {"event_id": "e1"}, "application/json")
    assert headers == {"nameko.call_id_stack": ["webhook.receive.1"], topology.REPLAY_HEADER: letter.id}


def test_a_replay_refuses_a_queue_no_handler_reads(session):
    letter = dead_letters.file(session, body(), parked_headers(queue="evt-x-y--z.w"), "evt-x-y--z.w", None, T0)
    with pytest.raises(Conflict, match="no handler of the suite reads"):
        dead_letters.replay_message(letter)


def test_listing_newest_death_first_filtered_by_status_and_a_missing_one_is_not_found(session):
    older = dead_letters.file(session, body("a"), parked_headers(), PUSHED, None, T0)
    newer = dead_letters.file(session, body("b"), parked_headers(), PUSHED, None, T0 + timedelta(seconds=1))
    dead_letters.mark_replayed(older, "admin alice", T0)
    assert [i["event_id"] for i in dead_letters.list_letters(session, None, 1, 50)["items"]] == ["b", "a"]
    assert [i["id"] for i in dead_letters.list_letters(session, "parked", 1, 50)["items"]] == [newer.id]
    with pytest.raises(NotFound):
        dead_letters.get(session, 999)
