"""The webhook in a real nameko container against the real RabbitMQ, and a listener on its events."""

import os
import warnings

import pytest
import yaml

from tests.integration.webhook.helpers import EventListener, WebhookClient
from tests.support import free_port, notification_envelope, push_notification
from webhook.service import WebhookService

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "../../../services/webhook/config.yml")


@pytest.fixture
def service_config(monkeypatch, webhook_token):
    """config.yml read as `nameko run` reads it: the given broker, a free port, the test token."""
    with warnings.catch_warnings():  # nameko's CLI imports pkg_resources, deprecated: cosmetic
        warnings.simplefilter("ignore", UserWarning)
        from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()

    def load(amqp_uri):
        monkeypatch.setenv("AMQP_URI", amqp_uri)
        monkeypatch.setenv("WEBHOOK_ADDRESS", f"127.0.0.1:{free_port()}")
        monkeypatch.setenv("WEBHOOK_TOKEN", webhook_token)
        monkeypatch.setenv("WEBHOOK_BROKER_PROBE_INTERVAL", "0.2")
        with open(CONFIG_PATH) as f:
            config = yaml.safe_load(f)
        del config["LOGGING"]  # pytest's log capture stays in charge
        return config

    return load


@pytest.fixture
def start_webhook(container_factory, service_config, webhook_token):
    """Start the webhook service against ``amqp_uri``; returns a client for its HTTP address."""

    def start(amqp_uri):
        config = service_config(amqp_uri)
        container = container_factory(WebhookService, config)
        container.start()
        return WebhookClient(config["WEB_SERVER_ADDRESS"], webhook_token)

    return start


@pytest.fixture
def webhook(start_webhook, rabbit_config):
    return start_webhook(rabbit_config["AMQP_URI"])


@pytest.fixture
def listener(rabbit_config):
    listener = EventListener(rabbit_config["AMQP_URI"])
    yield listener
    listener.close()


@pytest.fixture
def nothing_else_dispatched(webhook, listener):
    """Check that nothing was dispatched since the last event read: a marker event posted now
    must be the very next one the listener gets (one publisher, one queue: order is kept)."""

    def check():
        event = push_notification("acme/marker", "sha256:" + "f" * 64, tag="marker")
        assert webhook.post_events(notification_envelope(event)).status_code == 200
        received = listener.next()
        assert (received.event_type, received.payload["source_event_id"]) == ("image_pushed", event["id"])

    return check
