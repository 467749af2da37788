"""Regressions found by fuzzing the webhook (tests/integration/webhook/test_fuzz.py): bad input
that made it answer 500, which the registry retries for ever."""

import pytest

from shared.contracts.errors import InvalidRequest
from tests.support import DOCKER_MANIFEST_V2
from webhook.intake import read_body
from webhook.translate import DISPATCH, SET_ASIDE, translate_envelope

DIGEST = "sha256:" + "a" * 64


def push(timestamp, **target):
    return {
        "id": "ev-1",
        "timestamp": timestamp,
        "action": "push",
        "target": dict({"repository": "acme/app", "digest": DIGEST, "mediaType": DOCKER_MANIFEST_V2}, **target),
    }


class TestTimestampsAtTheEdgeOfTheCalendar:
    @pytest.mark.parametrize(
        "timestamp", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59.999999999-23:59"]
    )
    def test_a_time_outside_the_calendar_in_utc_is_unreadable_not_a_crash(self, timestamp):
        [decision] = translate_envelope([push(timestamp)])
        assert decision.outcome == DISPATCH
        assert decision.payload["pushed_at"] is None  # as for any unreadable time
        assert decision.payload["occurred_at"].endswith("+00:00")  # the time of receipt

    def test_an_unusable_event_with_such_a_time_is_still_set_aside(self):
        [decision] = translate_envelope([push("0001-01-01T00:00:00+05:00", repository="Acme/app")])
        assert decision.outcome == SET_ASIDE
        assert decision.payload["reason"] == "target.repository: namespace 'Acme' must be lower-case"


class BrokenStream:
    def __init__(self, exc):
        self.exc = exc

    def read(self, size):
        raise self.exc


class TestUnreadableBody:
    @pytest.mark.parametrize(
        "exc",
        [
            ValueError("invalid literal for int() with base 16: b'zz'"),
            OSError("unexpected end of file while parsing chunked data"),
        ],
    )
    def test_a_body_the_server_cannot_decode_is_an_invalid_request(self, exc):
        with pytest.raises(InvalidRequest, match="^body could not be read: "):
            read_body(BrokenStream(exc), None, max_bytes=100)


class TestTextThatIsNotUnicode:
    """JSON may carry a lone UTF-16 surrogate ("\\ud800"): Python reads it into a str that no
    UTF-8 encoder takes (uuid5 of the id made the webhook answer 500)."""

    def test_an_id_that_is_not_unicode_is_no_id_and_the_event_is_set_aside(self):
        event = dict(push("2026-01-02T03:04:05Z"), id="\ud800x")
        [decision] = translate_envelope([event])
        assert (decision.outcome, decision.reason) == (SET_ASIDE, "event has no id (a non-empty string)")
        assert decision.payload["source_event_id"] is None
        assert decision.payload["payload"] == event  # kept as it came

    def test_descriptive_fields_that_are_not_unicode_are_absent(self):
        event = dict(push("2026-01-02T03:04:05Z"), actor={"name": "\udc00"}, request={"id": "r\ud800"})
        [decision] = translate_envelope([event])
        assert decision.outcome == DISPATCH
        assert (decision.payload["actor"], decision.payload["request_id"]) == (None, None)

    def test_a_set_aside_event_carries_only_unicode_fields(self):
        event = dict(push("2026-01-02T03:04:05Z", repository="acme/\ud800"), action="archive\ud800")
        [decision] = translate_envelope([event])
        assert decision.outcome == SET_ASIDE
        assert (decision.payload["action"], decision.payload["repository"]) == (None, None)
        decision.reason.encode("utf-8")  # the reason quotes values with escapes
