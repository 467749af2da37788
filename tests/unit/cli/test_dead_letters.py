"""`imagehub dead-letters list|show|replay` against a recorded transport."""

import json

from shared.contracts.errors import Forbidden
from tests.unit.cli.conftest import page

PUSHED = "evt-webhook-image_pushed--catalog.handle_image_pushed"


def letter(letter_id=3, **overrides):
    return dict(
        {
            "id": letter_id,
            "queue": PUSHED,
            "source": "webhook",
            "event_type": "image_pushed",
            "event_id": "0b6c0a4e-8f3e-4a59-9a8e-3f1c1a1b2c3d",
            "reason": "rejected",
            "error": "InvalidReference: repository 't1/App' must be lower-case",
            "deliveries": 1,
            "deaths": 1,
            "status": "parked",
            "first_dead_at": "2026-12-04T10:00:00+00:00",
            "last_dead_at": "2026-12-04T10:00:00+00:00",
            "replays": 0,
            "replayed_at": None,
            "replayed_by": None,
        },
        **overrides,
    )


def lines(text):
    return [line.rstrip() for line in text.splitlines()]


def test_list_asks_for_the_status_and_shows_why_each_died(run, rpc):
    rpc.answer("list_dead_letters", page([letter()]))
    result = run("dead-letters", "list", "--status", "parked")
    assert result.exit_code == 0, result.output
    assert rpc.calls == [("catalog", "list_dead_letters", (), {"status": "parked", "page": 1, "page_size": 50})]
    assert lines(result.stdout)[0].split() == ["ID", "DIED", "STATUS", "EVENT", "REASON", "DEATHS", "ERROR"]
    assert lines(result.stdout)[1].split()[:7] == [
        "3",
        "2026-12-04",
        "10:00",
        "parked",
        "webhook.image_pushed",
        "rejected",
        "1",
    ]
    assert "1 of 1 dead letters, page 1 of 1" in result.stdout


def test_list_refuses_an_unknown_status_before_any_call(run, rpc):
    result = run("dead-letters", "list", "--status", "lost")
    assert result.exit_code == 2 and rpc.calls == []


def test_show_prints_the_event_as_it_was_sent(run, rpc):
    rpc.answer("get_dead_letter", dict(letter(), body=json.dumps({"event_id": "e1"}), headers={}, content_type=None))
    result = run("dead-letters", "show", "3")
    assert result.exit_code == 0, result.output
    assert rpc.calls == [("catalog", "get_dead_letter", (3,), {})]
    assert "must be lower-case" in result.stdout and '"event_id": "e1"' in result.stdout


def test_replay_sends_each_and_says_where(run, rpc):
    rpc.answer_each("replay_dead_letter", letter(3, status="replayed"), letter(4, status="replayed"))
    result = run("dead-letters", "replay", "3", "4")
    assert result.exit_code == 0, result.output
    assert [c[1:3] for c in rpc.calls] == [("replay_dead_letter", (3,)), ("replay_dead_letter", (4,))]
    assert lines(result.stdout) == [
        f"Replayed dead letter 3 (image_pushed 0b6c0a4e-8f3e-4a59-9a8e-3f1c1a1b2c3d) to {PUSHED}",
        f"Replayed dead letter 4 (image_pushed 0b6c0a4e-8f3e-4a59-9a8e-3f1c1a1b2c3d) to {PUSHED}",
    ]


def test_a_refusal_is_an_error_line(run, rpc):
    rpc.answer("list_dead_letters", Forbidden("developer alice is not a platform admin"))
    result = run("dead-letters", "list")
    assert result.exit_code == 1
    assert "error: developer alice is not a platform admin" in result.stderr
