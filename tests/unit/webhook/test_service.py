"""The entrypoints with fake dependencies: what is answered, what is dispatched, in what order."""

import json
import logging

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from shared.contracts.errors import InvalidRequest
from tests.support import delete_notification, notification_envelope, push_notification
from webhook.dependencies import Settings
from webhook.exceptions import BrokerUnavailable, PayloadTooLarge, Unauthorized, UnsupportedMediaType
from webhook.service import WebhookService
from webhook.translate import event_id_for

TOKEN = "unit-token"
DIGEST = "sha256:" + "c" * 64
V1 = "application/vnd.docker.distribution.events.v1+json"


class FakeDispatcher:
    """Records what was dispatched; refuses from the ``fail_at``-th event on, as a down broker."""

    def __init__(self, fail_at=None):
        self.dispatched = []
        self.fail_at = fail_at

    def __call__(self, event_type, payload):
        if self.fail_at is not None and len(self.dispatched) + 1 >= self.fail_at:
            raise BrokerUnavailable("the broker did not take it: ConnectionRefusedError")
        self.dispatched.append((event_type, payload))


def make_request(body, token=TOKEN, content_type=V1, method="POST"):
    headers = {"Content-Type": content_type} if content_type else {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request(EnvironBuilder(path="/registry/events", method=method, data=data, headers=headers).get_environ())


@pytest.fixture
def dispatcher():
    return FakeDispatcher()


@pytest.fixture
def service(dispatcher):
    return worker_factory(
        WebhookService,
        settings=Settings(token=TOKEN, max_body_bytes=4096),
        dispatch=dispatcher,
        broker=lambda: {"reachable": True, "error": None, "checked_at": "t"},
    )


def answer(response):
    return response.status_code, json.loads(response.get_data())


class TestReceiveRegistryEvents:
    def test_dispatches_in_order_and_answers_the_counts(self, service, dispatcher):
        push = push_notification("acme/app", DIGEST, tag="v1", event_id="p1")
        tag_delete = delete_notification("acme/app", tag="old", event_id="d1")
        blob = push_notification("acme/app", DIGEST, media_type="application/octet-stream")
        odd = push_notification("acme/team/app", DIGEST, event_id="x1")
        response = service.receive_registry_events(make_request(notification_envelope(push, blob, tag_delete, odd)))

        assert answer(response) == (200, {"accepted": 2, "set_aside": 1, "ignored": 1})
        assert [(t, p["event_id"]) for t, p in dispatcher.dispatched] == [
            ("image_pushed", event_id_for("p1", "image_pushed")),
            ("image_deleted", event_id_for("d1", "image_deleted")),
            ("event_set_aside", event_id_for("x1", "event_set_aside")),
        ]
        assert dispatcher.dispatched[0][1]["tag"] == "v1"
        assert dispatcher.dispatched[1][1]["tag"] == "old"
        assert dispatcher.dispatched[2][1]["payload"] == odd

    def test_set_aside_event_is_logged_as_a_warning(self, service, caplog):
        odd = push_notification("Acme/app", DIGEST, event_id="x2")
        with caplog.at_level(logging.WARNING, logger="webhook.service"):
            service.receive_registry_events(make_request(notification_envelope(odd)))
        assert "registry event x2 set aside: target.repository: namespace 'Acme' must be lower-case" in caplog.text

    def test_broker_failure_stops_the_envelope_and_raises(self, service, dispatcher, caplog):
        dispatcher.fail_at = 2
        events = [push_notification("acme/app", DIGEST, tag=f"v{i}") for i in range(3)]
        with caplog.at_level(logging.WARNING, logger="webhook.service"), pytest.raises(BrokerUnavailable):
            service.receive_registry_events(make_request(notification_envelope(*events)))
        assert len(dispatcher.dispatched) == 1
        assert "answering 503 (1 of 3 events dispatched)" in caplog.text

    def test_token_is_checked_before_anything_else(self, service, dispatcher):
        with pytest.raises(Unauthorized):
            service.receive_registry_events(make_request(b"{garbage", token="wrong", content_type="x/y"))
        with pytest.raises(Unauthorized):
            service.receive_registry_events(make_request(b"{garbage", token=None))
        assert dispatcher.dispatched == []

    def test_content_type_before_size_and_body(self, service):
        with pytest.raises(UnsupportedMediaType):
            service.receive_registry_events(make_request(b"x" * 5000, content_type="text/plain"))

    def test_body_over_the_limit(self, service):
        body = notification_envelope(*[push_notification("acme/app", DIGEST)] * 20)
        with pytest.raises(PayloadTooLarge):
            service.receive_registry_events(make_request(body))

    def test_not_an_envelope(self, service, dispatcher):
        with pytest.raises(InvalidRequest, match="'events' must be a list"):
            service.receive_registry_events(make_request({"events": "nope"}))
        assert dispatcher.dispatched == []


class TestHealth:
    def test_reports_ok_and_the_broker_state(self, service):
        assert answer(service.health(make_request(b"", method="GET"))) == (
            200,
            {"status": "ok", "broker": {"reachable": True, "error": None, "checked_at": "t"}},
        )
