"""RabbitMQ stopped: the webhook answers 503 so the registry keeps the event and retries; once the
broker is back the registry's retry gets the push indexed. Nothing is lost."""

import subprocess
import time

import pytest
import requests

from shared.ops.broker_access import operator
from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support import notification_envelope, push_image, push_notification, wait_until


def rabbitmqctl(*args):
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=120)


def broker_answers():
    import socket

    with socket.create_connection(("127.0.0.1", 5672), timeout=1):
        return True


def management_answers():
    return requests.get("http://127.0.0.1:15672/api/overview", auth=operator(), timeout=2).ok


@pytest.mark.exclusive  # stops the machine's RabbitMQ: every other test would see it gone
class TestBrokerOutage:
    def test_503_while_down_then_registry_retry_indexes_the_push(self, stack, tenant):
        repository = f"{tenant}/outage"
        session = stack.session(tenant)
        rabbitmqctl("stop_app")
        try:
            wait_until(lambda: not _answers_quietly(), timeout=30, what="broker down")
            started = time.monotonic()
            resp = stack.post_events(
                notification_envelope(push_notification(repository, "sha256:" + "0" * 64, tag="never"))
            )
            elapsed = time.monotonic() - started
            assert resp.status_code == 503
            assert elapsed < 2.0, f"503 took {elapsed:.2f}s; the registry gives up after 2s"

            # A real push while the broker is down: the registry's notification is refused (503)
            # and stays in the registry's queue. The token service answers over HTTP meanwhile.
            pushed = push_image(stack.registry.url, repository, "v1", content=b"during-outage", session=session)
            time.sleep(2)
        finally:
            rabbitmqctl("start_app")
            wait_until(broker_answers, timeout=60, what="broker back")
            wait_until(management_answers, timeout=60, what="management API back")

        tag = wait_for_tag(stack, tenant, repository, "v1", pushed["digest"], timeout=60)
        assert tag["image_id"] == pushed["image_id"]


def _answers_quietly():
    try:
        return broker_answers()
    except OSError:
        return False
