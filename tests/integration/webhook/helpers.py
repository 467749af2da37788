"""A registry-like HTTP client for the webhook, and a listener on the events it dispatches."""

import json
import uuid
from dataclasses import dataclass

import requests
from kombu import Connection, Exchange, Queue

NOTIFICATION_TYPE = "application/vnd.docker.distribution.events.v1+json"


class WebhookClient:
    """What the registry does: POST envelopes with the bearer token. (nameko's web_session
    fixture is broken on werkzeug 3.)"""

    def __init__(self, address, token):
        self.url = f"http://{address}"
        self.token = token
        self.session = requests.Session()

    def post_events(self, body, token=None, content_type=NOTIFICATION_TYPE):
        headers = {"Content-Type": content_type} if content_type else {}
        if token is not False:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = json.dumps(body) if isinstance(body, dict) else body
        return self.session.post(f"{self.url}/registry/events", data=data, headers=headers, timeout=5)

    def health(self):
        return self.session.get(f"{self.url}/health", timeout=5)


@dataclass
class Received:
    event_type: str
    payload: dict
    delivery_mode: int


class EventListener:
    """A queue bound to every event of the webhook's exchange, as a consumer service would be."""

    def __init__(self, amqp_uri):
        self.connection = Connection(amqp_uri)
        exchange = Exchange("webhook.events", type="topic", durable=True)  # as nameko declares it
        queue = Queue(f"test-webhook-{uuid.uuid4().hex}", exchange, routing_key="#", exclusive=True, auto_delete=True)
        self.queue = self.connection.SimpleQueue(queue)

    def next(self, timeout=5):
        """The next dispatched event; ``SimpleQueue.Empty`` after ``timeout`` seconds."""
        message = self.queue.get(block=True, timeout=timeout)
        message.ack()
        return Received(message.delivery_info["routing_key"], message.payload, message.properties["delivery_mode"])

    def next_events(self, count, timeout=5):
        return [self.next(timeout) for _ in range(count)]

    def close(self):
        self.queue.close()
        self.connection.release()
