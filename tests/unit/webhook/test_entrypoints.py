"""One table maps errors to HTTP statuses; every error answer is a JSON body."""

import json

import pytest

from shared.contracts.errors import InvalidReference, InvalidRequest, NotFound
from webhook.entrypoints import HttpEntrypoint
from webhook.exceptions import BrokerUnavailable, PayloadTooLarge, Unauthorized, UnsupportedMediaType, http_status_for


class TestStatusTable:
    @pytest.mark.parametrize(
        "exc, status",
        [
            (Unauthorized("no token"), 401),
            (InvalidRequest("not an envelope"), 400),
            (PayloadTooLarge("too big"), 413),
            (UnsupportedMediaType("text/plain"), 415),
            (BrokerUnavailable("refused"), 503),
            (InvalidReference("bad name"), 500),  # never raised at this edge: a bug if it is
            (NotFound("x"), 500),
            (KeyError("x"), 500),
        ],
    )
    def test_status(self, exc, status):
        assert http_status_for(exc) == status


class TestErrorResponses:
    def respond(self, exc):
        response = HttpEntrypoint("POST", "/registry/events").response_from_exception(exc)
        return response.status_code, response.headers, json.loads(response.get_data())

    def test_json_body_says_what_is_wrong(self):
        status, headers, body = self.respond(InvalidRequest("'events' must be a list, not a string"))
        assert (status, body) == (400, {"error": "'events' must be a list, not a string"})
        assert headers["Content-Type"] == "application/json"

    def test_unauthorized_carries_the_bearer_challenge(self):
        status, headers, body = self.respond(Unauthorized("invalid bearer token", 'Bearer error="x"'))
        assert (status, headers["WWW-Authenticate"], body) == (
            401,
            'Bearer error="x"',
            {"error": "invalid bearer token"},
        )

    def test_a_bug_does_not_leak_its_details(self):
        status, headers, body = self.respond(KeyError("internal detail"))
        assert (status, body) == (500, {"error": "internal error"})
        assert "WWW-Authenticate" not in headers
