"""shared.runtime.amqp: a settle on a lost connection is logged, not raised (it killed the container)."""

from unittest import mock

import pytest
from amqp.exceptions import ConnectionForced, PreconditionFailed
from nameko.messaging import QueueConsumer

import catalog  # noqa: F401  (a service package installs the wrapper)
from shared.runtime import amqp


def message_failing_with(exc):
    message = mock.Mock(delivery_tag=7)
    message.channel.connection = object()  # looks open, as it does in the race
    message.ack.side_effect = exc
    message.requeue.side_effect = exc
    return message


@pytest.mark.parametrize("method", ["ack_message", "requeue_message"])
@pytest.mark.parametrize(
    "exc", [ConnectionResetError(104, "Connection reset by peer"), BrokenPipeError(32, "Broken pipe")]
)
def test_a_lost_connection_is_logged_not_raised(method, exc, caplog):
    message = message_failing_with(exc)
    assert getattr(QueueConsumer, method)(mock.Mock(), message) is None
    assert (message.ack.call_count + message.requeue.call_count) == 1
    [record] = [r for r in caplog.records if r.name == "shared.runtime.amqp"]
    assert "delivery tag 7" in record.getMessage() and "redelivers" in record.getMessage()


@pytest.mark.parametrize("method", ["ack_message", "requeue_message"])
def test_amqp_connection_errors_are_still_ignored(method):
    assert getattr(QueueConsumer, method)(mock.Mock(), message_failing_with(ConnectionForced("closed"))) is None


@pytest.mark.parametrize("method", ["ack_message", "requeue_message"])
def test_other_errors_still_raise(method):
    with pytest.raises(PreconditionFailed):
        getattr(QueueConsumer, method)(mock.Mock(), message_failing_with(PreconditionFailed("unknown tag")))


def test_a_settle_that_works_is_unchanged():
    message = mock.Mock()
    QueueConsumer.ack_message(mock.Mock(), message)
    message.ack.assert_called_once_with()


def test_installed_once_however_often_it_is_called():
    before = QueueConsumer.ack_message
    amqp.install()
    amqp.install()
    assert QueueConsumer.ack_message is before
    assert QueueConsumer.ack_message.__wrapped__.__module__ == "nameko.messaging"


@pytest.mark.parametrize("service", ["catalog", "deployer", "webhook", "auth"])
def test_every_service_package_installs_it(service):
    """In a fresh interpreter, as `nameko run <service>.service` imports it."""
    import subprocess
    import sys

    code = (
        f"import {service}; from nameko.messaging import QueueConsumer as Q; "
        "print(getattr(Q.ack_message, 'imagehub_tolerant', False),"
        " getattr(Q.requeue_message, 'imagehub_tolerant', False))"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, "True True"), out.stderr[-2000:]


def test_importing_shared_does_not_import_eventlet():
    """The CLI imports shared; eventlet (and its deprecation warning on stderr) only when it
    makes an RPC call."""
    import subprocess
    import sys

    code = "import sys, shared, shared.contracts.errors, shared.contracts.reference; print('eventlet' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip(), out.stderr) == (0, "False", "")
