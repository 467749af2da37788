"""Checks on the request itself: token, content type, size and envelope shape (no server)."""

import io
import json

import pytest

from shared.contracts.errors import InvalidRequest
from webhook.exceptions import PayloadTooLarge, Unauthorized, UnsupportedMediaType
from webhook.intake import check_content_type, check_token, parse_envelope, read_body

TOKEN = "s3cret-token"


class TestToken:
    @pytest.mark.parametrize("header", [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"  Bearer   {TOKEN} "])
    def test_right_token_passes(self, header):
        assert check_token(header, TOKEN) is None

    @pytest.mark.parametrize(
        "header, message",
        [
            (None, "missing Authorization header"),
            ("", "missing Authorization header"),
            ("Bearer", "must be 'Bearer <token>'"),
            ("Bearer   ", "must be 'Bearer <token>'"),
            (f"Basic {TOKEN}", "must be 'Bearer <token>'"),
            (TOKEN, "must be 'Bearer <token>'"),
        ],
    )
    def test_missing_or_malformed_header_is_a_plain_challenge(self, header, message):
        with pytest.raises(Unauthorized, match=message) as caught:
            check_token(header, TOKEN)
        assert caught.value.headers == {"WWW-Authenticate": "Bearer"}

    @pytest.mark.parametrize("token", ["wrong", TOKEN + "x", TOKEN[:-1], TOKEN.upper(), "é" + TOKEN])
    def test_wrong_token_is_an_invalid_token_challenge(self, token):
        with pytest.raises(Unauthorized, match="invalid bearer token") as caught:
            check_token(f"Bearer {token}", TOKEN)
        assert caught.value.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}


class TestContentType:
    @pytest.mark.parametrize(
        "content_type",
        [
            "application/vnd.docker.distribution.events.v1+json",
            "application/vnd.docker.distribution.events.v2+json",
            "application/json",
            "application/json; charset=utf-8",
            "Application/VND.docker.distribution.events.v1+JSON",
        ],
    )
    def test_notification_types_pass(self, content_type):
        assert check_content_type(content_type) is None

    @pytest.mark.parametrize(
        "content_type",
        [
            None,
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "application/vnd.docker.distribution.events.v3+json",
            "json",
        ],
    )
    def test_anything_else_is_unsupported(self, content_type):
        with pytest.raises(UnsupportedMediaType, match="is not a registry notification"):
            check_content_type(content_type)


class CountingStream:
    """An endless body that counts what was read from it."""

    def __init__(self):
        self.read_bytes = 0

    def read(self, size):
        self.read_bytes += size
        return b"x" * size


class TestBodySize:
    def test_body_up_to_the_limit_is_read_whole(self):
        assert read_body(io.BytesIO(b"a" * 100), 100, max_bytes=100) == b"a" * 100
        assert read_body(io.BytesIO(b"a" * 100), None, max_bytes=100) == b"a" * 100

    def test_declared_length_over_the_limit_is_refused_unread(self):
        stream = CountingStream()
        with pytest.raises(PayloadTooLarge, match="body of 101 bytes exceeds the limit of 100 bytes"):
            read_body(stream, 101, max_bytes=100)
        assert stream.read_bytes == 0

    def test_undeclared_length_is_read_one_byte_past_the_limit_at_most(self):
        stream = CountingStream()
        with pytest.raises(PayloadTooLarge, match="exceeds the limit of 200000 bytes"):
            read_body(stream, None, max_bytes=200000)
        assert stream.read_bytes == 200001


class TestEnvelope:
    def test_events_list_is_returned(self):
        events = [{"id": "1"}, {"id": "2"}]
        assert parse_envelope(json.dumps({"events": events, "extra": 1}).encode()) == events

    def test_empty_events_list_is_fine(self):
        assert parse_envelope(b'{"events": []}') == []

    @pytest.mark.parametrize(
        "body, message",
        [
            (b"", "body is not valid JSON"),
            (b"{not json", "body is not valid JSON"),
            (b"\xff\xfe\x00garbage", "body is not valid JSON"),
            (b"[" * 100000 + b"]" * 100000, "body is not valid JSON"),
            (b'[{"events": []}]', "body must be a JSON object with an 'events' list, not a list"),
            (b'"events"', "not a string"),
            (b"{}", "body has no 'events' list"),
            (b'{"events": "nope"}', "'events' must be a list, not a string"),
            (b'{"events": null}', "'events' must be a list, not null"),
            (b'{"events": {"id": "1"}}', "'events' must be a list, not an object"),
            (b'{"events": [{"id": "1"}, 7]}', r"events\[1\] must be an object, not a number"),
        ],
        ids=[
            "empty",
            "garbage",
            "not utf-8",
            "too deep",
            "list",
            "string",
            "no events",
            "events a string",
            "events null",
            "events an object",
            "event not an object",
        ],
    )
    def test_not_an_envelope_is_an_invalid_request(self, body, message):
        with pytest.raises(InvalidRequest, match=message):
            parse_envelope(body)
