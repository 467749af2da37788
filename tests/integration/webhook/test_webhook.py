"""The webhook service in a nameko container, against the real RabbitMQ."""

import json
import socket
import threading
import time

import pytest
from kombu.pools import connections

from shared.ops.broker_access import operator_management
from tests.integration.webhook.helpers import EventListener
from tests.support import (
    DOCKER_MANIFEST_V2,
    delete_manifest,
    delete_notification,
    free_port,
    notification_envelope,
    push_image,
    push_notification,
    wait_until,
)
from webhook.translate import event_id_for

DIGEST = "sha256:" + "d" * 64
TIMESTAMP = "2026-01-02T03:04:05.987654321Z"
TIMESTAMP_UTC = "2026-01-02T03:04:05.987654+00:00"


def push(repository="acme/app", tag="v1", event_id="push-1", **kwargs):
    event = push_notification(repository, DIGEST, tag=tag, event_id=event_id, **kwargs)
    event.update(timestamp=TIMESTAMP)
    event["request"]["id"] = "req-1"
    return event


class TestAuthentication:
    def test_missing_token_is_401_with_a_bearer_challenge(self, webhook, nothing_else_dispatched):
        resp = webhook.post_events(notification_envelope(push()), token=False)
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"] == "Bearer"
        assert resp.json() == {"error": "missing Authorization header (expected 'Bearer <token>')"}
        nothing_else_dispatched()

    def test_wrong_token_is_401(self, webhook, nothing_else_dispatched):
        resp = webhook.post_events(notification_envelope(push()), token="not-the-token")
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert resp.json() == {"error": "invalid bearer token"}
        nothing_else_dispatched()


class TestRefusedRequests:
    def test_other_content_type_is_415(self, webhook):
        resp = webhook.post_events(notification_envelope(push()), content_type="text/plain")
        assert resp.status_code == 415
        assert "'text/plain' is not a registry notification" in resp.json()["error"]

    @pytest.mark.parametrize(
        "content_type", ["application/vnd.docker.distribution.events.v2+json", "application/json; charset=utf-8"]
    )
    def test_3x_and_plain_json_types_are_accepted(self, webhook, content_type):
        resp = webhook.post_events(notification_envelope(), content_type=content_type)
        assert resp.status_code == 200

    def test_body_over_one_mebibyte_is_413(self, webhook):
        resp = webhook.post_events(b" " * (1024 * 1024 + 1))
        assert resp.status_code == 413
        assert resp.json() == {"error": "body of 1048577 bytes exceeds the limit of 1048576 bytes"}

    def test_chunked_body_over_the_limit_is_413(self, webhook):
        chunks = (b" " * 65536 for _ in range(17))  # no Content-Length: read up to the limit only
        resp = webhook.post_events(chunks)
        assert resp.status_code == 413
        assert resp.json() == {"error": "body exceeds the limit of 1048576 bytes"}

    def test_chunked_envelope_is_read(self, webhook, listener):
        body = notification_envelope(push())
        resp = webhook.post_events(iter([json.dumps(body).encode()]))
        assert (resp.status_code, resp.json()) == (200, {"accepted": 1, "set_aside": 0, "ignored": 0})
        assert listener.next().event_type == "image_pushed"

    @pytest.mark.parametrize(
        "body, error",
        [
            (
                b"{not json",
                "body is not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
            ),
            (b"[]", "body must be a JSON object with an 'events' list, not a list"),
            (b'{"events": "nope"}', "'events' must be a list, not a string"),
            (b'{"events": [1]}', "events[0] must be an object, not a number"),
        ],
    )
    def test_not_an_envelope_is_400_saying_why(self, webhook, nothing_else_dispatched, body, error):
        resp = webhook.post_events(body)
        assert (resp.status_code, resp.json()) == (400, {"error": error})
        nothing_else_dispatched()


class TestTranslation:
    def test_noise_is_ignored(self, webhook, nothing_else_dispatched):
        blob = push_notification("acme/app", DIGEST, media_type="application/octet-stream")
        pull = dict(push(), action="pull")
        mount = dict(push(), action="mount")
        resp = webhook.post_events(notification_envelope(blob, pull, mount))
        assert (resp.status_code, resp.json()) == (200, {"accepted": 0, "set_aside": 0, "ignored": 3})
        nothing_else_dispatched()

    def test_manifest_push_is_image_pushed(self, webhook, listener):
        resp = webhook.post_events(notification_envelope(push(actor="alice", size=1234)))
        assert (resp.status_code, resp.json()) == (200, {"accepted": 1, "set_aside": 0, "ignored": 0})
        received = listener.next()
        assert (received.event_type, received.delivery_mode) == ("image_pushed", 2)  # persistent
        assert received.payload == {
            "event_id": event_id_for("push-1", "image_pushed"),
            "occurred_at": TIMESTAMP_UTC,
            "namespace": "acme",
            "repository": "acme/app",
            "tag": "v1",
            "digest": DIGEST,
            "media_type": DOCKER_MANIFEST_V2,
            "size": 1234,
            "actor": "alice",
            "request_id": "req-1",
            "source_event_id": "push-1",
            "pushed_at": TIMESTAMP_UTC,
        }

    def test_the_three_deletes_are_image_deleted(self, webhook, listener):
        deletes = [
            delete_notification("acme/app", digest=DIGEST, event_id="del-m", request_id="r"),
            delete_notification("acme/app", tag="v1", event_id="del-t", request_id="r"),
            delete_notification("acme/app", event_id="del-r", request_id="r2"),
        ]
        resp = webhook.post_events(notification_envelope(*deletes))
        assert (resp.status_code, resp.json()) == (200, {"accepted": 3, "set_aside": 0, "ignored": 0})
        received = listener.next_events(3)
        assert {r.event_type for r in received} == {"image_deleted"}
        common = {"namespace": "acme", "repository": "acme/app", "actor": None}
        assert [{k: v for k, v in r.payload.items() if k != "occurred_at"} for r in received] == [
            dict(
                common,
                event_id=event_id_for("del-m", "image_deleted"),
                digest=DIGEST,
                tag=None,
                request_id="r",
                source_event_id="del-m",
            ),
            dict(
                common,
                event_id=event_id_for("del-t", "image_deleted"),
                digest=None,
                tag="v1",
                request_id="r",
                source_event_id="del-t",
            ),
            dict(
                common,
                event_id=event_id_for("del-r", "image_deleted"),
                digest=None,
                tag=None,
                request_id="r2",
                source_event_id="del-r",
            ),
        ]
        assert [r.payload["occurred_at"] for r in received] == [
            d["timestamp"] for d in deletes
        ]  # UTC "+00:00" both ways

    def test_unusable_event_is_set_aside(self, webhook, listener):
        odd = push(repository="acme/team/app", event_id="odd-1")
        resp = webhook.post_events(notification_envelope(odd, push(event_id="push-2")))
        assert (resp.status_code, resp.json()) == (200, {"accepted": 1, "set_aside": 1, "ignored": 0})
        set_aside, pushed = listener.next_events(2)
        assert set_aside.event_type == "event_set_aside"
        assert set_aside.payload == {
            "event_id": event_id_for("odd-1", "event_set_aside"),
            "occurred_at": TIMESTAMP_UTC,
            "source": "webhook",
            "reason": "target.repository: repository 'acme/team/app' must be '<namespace>/<name>' "
            "(namespace = tenant ID or 'library'), found 3 path component(s)",
            "source_event_id": "odd-1",
            "action": "push",
            "repository": "acme/team/app",
            "payload": odd,
        }
        assert pushed.payload["source_event_id"] == "push-2"

    def test_same_envelope_twice_gives_the_same_event_ids(self, webhook, listener):
        envelope = notification_envelope(
            push(), delete_notification("acme/app", tag="v0"), push(repository="BAD/app", event_id="odd-2")
        )
        first = webhook.post_events(envelope)
        again = webhook.post_events(envelope)
        assert first.status_code == again.status_code == 200
        deliveries = listener.next_events(6)
        assert [d.payload for d in deliveries[:3]] == [d.payload for d in deliveries[3:]]
        assert len({d.payload["event_id"] for d in deliveries}) == 3


class TestHealth:
    def test_ok_and_broker_reachable(self, webhook):
        resp = wait_until(lambda: probed(webhook), timeout=5, what="first broker probe")
        assert resp.status_code == 200
        assert resp.json() == {
            "status": "ok",
            "broker": {"reachable": True, "error": None, "checked_at": resp.json()["broker"]["checked_at"]},
        }


def probed(client):
    """The /health answer once the background probe has checked the broker at least once."""
    resp = client.health()
    return resp if resp.json()["broker"]["checked_at"] else None


def assert_quick_503(client):
    started = time.monotonic()
    resp = client.post_events(notification_envelope(push()))
    elapsed = time.monotonic() - started
    assert resp.status_code == 503
    assert resp.json()["error"].startswith("the broker did not take image_pushed: ")
    assert elapsed < 2.0, f"503 took {elapsed:.2f}s; the registry gives up after 2s"
    return resp


class SilentServer:
    """Accepts TCP connections and never says a word: a broker that hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class TestBrokerUnavailable:
    def test_connection_refused_is_a_quick_503(self, start_webhook):
        client = start_webhook(f"amqp://guest:guest@127.0.0.1:{free_port()}/")  # nothing listens
        assert "ECONNREFUSED" in assert_quick_503(client).json()["error"]
        broker = wait_until(lambda: probed(client), timeout=5, what="first broker probe").json()["broker"]
        assert broker["reachable"] is False
        assert "ECONNREFUSED" in broker["error"]

    def test_broker_that_does_not_answer_is_a_503_within_2s(self, start_webhook):
        silent = SilentServer()
        try:
            client = start_webhook(f"amqp://guest:guest@127.0.0.1:{silent.port}/")
            assert "timed out" in assert_quick_503(client).json()["error"]
        finally:
            silent.close()

    def test_connection_dropped_between_envelopes_is_reopened_without_a_503(
        self, webhook, listener, rabbit_config, rabbit_manager, nothing_else_dispatched
    ):
        assert webhook.post_events(notification_envelope(push(event_id="before"))).status_code == 200
        assert listener.next().payload["source_event_id"] == "before"

        # As a broker restart or a load balancer would: the pooled publisher connection dies.
        listener_port = listener.connection.connection.sock.getsockname()[1]
        webhook_connections = wait_until(
            lambda: [
                c["name"]
                for c in rabbit_manager.get_connections()
                if c["vhost"] == rabbit_config["vhost"] and c["peer_port"] != listener_port
            ],
            timeout=10,
            what="the webhook's connections listed by the management API",
        )
        for name in webhook_connections:
            rabbit_manager.delete_connection(name)
        # The broker has told the client its connection is closed once it stops listing it as
        # running (the management API refreshes connection states every few seconds).
        wait_until(
            lambda: (
                not any(
                    c["name"] in webhook_connections and c["state"] == "running"
                    for c in rabbit_manager.get_connections()
                )
            ),
            timeout=15,
            what="the webhook's connections closed by the broker",
        )

        resp = webhook.post_events(notification_envelope(push(event_id="after")))
        assert resp.status_code == 200
        assert listener.next().payload["source_event_id"] == "after"
        nothing_else_dispatched()

    @pytest.fixture
    def own_vhost(self, rabbit_manager):
        """A vhost of the test's own that it may delete and create again; (amqp_uri, create)."""
        vhost = f"webhook_test_{free_port()}_{int(time.time())}"

        def create():
            rabbit_manager.create_vhost(vhost)
            rabbit_manager.set_vhost_permissions(vhost, operator_management().username, ".*", ".*", ".*")

        create()
        yield operator_management().amqp_uri(vhost), create
        rabbit_manager.delete_vhost(vhost)
        for key, pool in list(connections.items()):  # as nameko's own vhost teardown does
            if isinstance(key, list) and key[4] == vhost:
                pool.force_close_all()

    def test_vhost_deleted_mid_test_is_a_503_then_recovers(self, start_webhook, rabbit_manager, own_vhost):
        amqp_uri, create_vhost = own_vhost
        client = start_webhook(amqp_uri)
        first = EventListener(amqp_uri)  # a bound queue: events are routable
        try:
            assert client.post_events(notification_envelope(push())).status_code == 200
        finally:
            first.close()
        rabbit_manager.delete_vhost(amqp_uri.rsplit("/", 1)[1])  # the broker drops the live connection
        assert_quick_503(client)

        create_vhost()
        listener = EventListener(amqp_uri)
        try:
            resp = client.post_events(notification_envelope(push(event_id="after")))
            assert resp.status_code == 200
            assert listener.next().payload["source_event_id"] == "after"
        finally:
            listener.close()

    def test_an_event_no_queue_is_bound_for_is_a_503_not_a_silent_drop(self, start_webhook, own_vhost):
        """RabbitMQ confirms and drops a message nothing is bound for (the catalog never started on
        this vhost): the registry must hear 503 and keep the event, not 200."""
        amqp_uri, _ = own_vhost
        client = start_webhook(amqp_uri)
        resp = client.post_events(notification_envelope(push(event_id="unbound")))
        assert resp.status_code == 503
        assert "image_pushed" in resp.json()["error"]

        listener = EventListener(amqp_uri)  # the consumer arrives: the registry's retry lands
        try:
            resp = client.post_events(notification_envelope(push(event_id="unbound")))
            assert resp.status_code == 200
            assert listener.next().payload["source_event_id"] == "unbound"
        finally:
            listener.close()


class TestRealRegistry:
    """Docker Distribution 2.8 itself notifying the webhook: its real event shapes, end to end."""

    def test_push_then_delete(self, webhook, listener, registry_factory, nothing_else_dispatched):
        registry = registry_factory(f"{webhook.url}/registry/events", token=webhook.token)
        pushed = push_image(registry.url, "acme/real", "v1", content=b"real registry", author="a")

        received = listener.next(timeout=10)  # blob pushes are filtered (by registry and webhook)
        assert received.event_type == "image_pushed"
        payload = received.payload
        assert {k: payload[k] for k in ("namespace", "repository", "tag", "digest", "media_type", "size")} == {
            "namespace": "acme",
            "repository": "acme/real",
            "tag": "v1",
            "digest": pushed["digest"],
            "media_type": pushed["media_type"],
            "size": pushed["size"],
        }
        assert payload["event_id"] == event_id_for(payload["source_event_id"], "image_pushed")

        delete_manifest(registry.url, "acme/real", pushed["digest"])
        deleted = {(r.event_type, r.payload["digest"], r.payload["tag"]) for r in listener.next_events(2, timeout=10)}
        assert deleted == {("image_deleted", pushed["digest"], None), ("image_deleted", None, "v1")}
        nothing_else_dispatched()
