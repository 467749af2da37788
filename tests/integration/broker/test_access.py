"""deploy/broker/access.yml against the real RabbitMQ: every broker user, every RPC method, every
event and every RPC queue, allowed or refused (``ACCESS_REFUSED``) exactly as the file says.

The users are made as `make up` and the e2e stack make them (``broker_access.apply``), in a vhost
of the test's own; the exchanges are declared by the operator, as the services would."""

import uuid

import amqp
import pytest

from shared.ops import broker_access
from shared.ops.broker_access import RPC_EXCHANGE, events_exchange, operator_management

MATRIX = broker_access.load()
ROLES = sorted(MATRIX.roles)
REPLY_QUEUE = "rpc.reply-standalone_rpc_proxy-{}"


@pytest.fixture(scope="module")
def broker():
    """A vhost with the matrix's users; yields {role: password}. Users and vhost removed after."""
    management = operator_management()
    vhost = f"imagehub-access-{uuid.uuid4().hex[:8]}"
    prefix = f"{vhost}-"
    management.create_vhost(vhost)
    passwords = broker_access.apply(MATRIX, management, vhost, prefix)
    with connect(management.username, management.password, vhost) as conn:
        channel = conn.channel()
        for exchange in MATRIX.exchanges():
            channel.exchange_declare(exchange, "topic", durable=True, auto_delete=False)
    yield vhost, prefix, passwords
    management.delete_vhost(vhost)
    broker_access.remove(MATRIX, management, prefix)


def connect(user, password, vhost):
    conn = amqp.Connection("127.0.0.1:5672", userid=user, password=password, virtual_host=vhost, confirm_publish=True)
    conn.connect()
    return conn


@pytest.fixture(scope="module")
def connections(broker):
    """One connection per role, as that role's user."""
    vhost, prefix, passwords = broker
    opened = {role: connect(broker_access.user_name(prefix, role), passwords[role], vhost) for role in ROLES}
    yield opened
    for conn in opened.values():
        try:
            conn.close()
        except Exception:
            pass


def attempt(conn, action):
    """True if ``action(channel)`` went through, False if RabbitMQ refused it (the channel closes)."""
    channel = conn.channel()
    try:
        action(channel)
    except amqp.exceptions.AccessRefused:
        return False
    channel.close()
    return True


@pytest.mark.parametrize("role", ROLES)
def test_rpc_calls_are_exactly_the_allowed_methods(connections, role):
    outcome = {
        method: attempt(
            connections[role], lambda ch, m=method: ch.basic_publish(amqp.Message(b"{}"), RPC_EXCHANGE, routing_key=m)
        )
        for method in MATRIX.all_methods()
    }
    assert outcome == {m: MATRIX.may_call(role, m) for m in MATRIX.all_methods()}
    assert any(outcome.values()) == bool(MATRIX.roles[role].calls)


@pytest.mark.parametrize("role", ROLES)
def test_events_published_are_exactly_the_allowed_ones(connections, role):
    def publish(event):
        source, kind = event.split(".", 1)
        return lambda ch: ch.basic_publish(amqp.Message(b"{}"), events_exchange(source), routing_key=kind)

    outcome = {event: attempt(connections[role], publish(event)) for event in MATRIX.all_events()}
    assert outcome == {e: MATRIX.may_publish(role, e) for e in MATRIX.all_events()}


@pytest.mark.parametrize("role", ROLES)
def test_subscriptions_are_exactly_the_allowed_ones(connections, role):
    """nameko's queue for an event handler, declared and bound by the role."""

    def subscribe(event):
        source, kind = event.split(".", 1)
        queue = f"evt-{source}-{kind}--probe_{role}.handle"

        def bind(ch):
            ch.queue_declare(queue, durable=False, auto_delete=True)
            ch.queue_bind(queue, events_exchange(source), routing_key=kind)

        return bind

    outcome = {event: attempt(connections[role], subscribe(event)) for event in MATRIX.all_events()}
    assert outcome == {e: MATRIX.may_subscribe(role, e) for e in MATRIX.all_events()}


@pytest.mark.parametrize("role", ROLES)
def test_only_a_service_takes_its_own_rpc_queue(connections, role):
    def serve(service):
        def bind(ch):
            ch.queue_declare(f"rpc-{service}", durable=True, auto_delete=False)
            ch.queue_bind(f"rpc-{service}", RPC_EXCHANGE, routing_key=f"{service}.*")

        return bind

    services = sorted({m.split(".")[0] for m in MATRIX.all_methods()} | {"deployer_worker"})
    outcome = {service: attempt(connections[role], serve(service)) for service in services}
    assert outcome == {s: MATRIX.may_serve(role, s) for s in services}


@pytest.mark.parametrize("role", [r for r in ROLES if MATRIX.roles[r].calls])
def test_a_caller_gets_its_replies_and_cannot_listen_to_others_calls(connections, role):
    """A reply queue bound with its UUID works; bound with another service's methods, refused:
    a caller cannot read the calls (and the passwords in them) made to auth."""
    key = str(uuid.uuid4())
    queue = REPLY_QUEUE.format(key)

    def reply_queue(routing_key):
        def bind(ch):
            ch.queue_declare(queue, auto_delete=True)
            ch.queue_bind(queue, RPC_EXCHANGE, routing_key=routing_key)

        return bind

    assert attempt(connections[role], reply_queue(key))
    for snooped in ("auth.*", "#", "catalog.delete_tag", "*.*"):
        assert not attempt(connections[role], reply_queue(snooped)), snooped


def test_only_services_publish_replies(connections):
    """A reply goes to nameko-rpc under the caller's reply UUID: only a service may publish one,
    and (test_rpc_calls_are_exactly_the_allowed_methods) under no method's name, so a caller that
    names a method as its reply address gets no service to call it for it."""

    def reply(ch):
        ch.basic_publish(amqp.Message(b"{}"), RPC_EXCHANGE, routing_key=str(uuid.uuid4()))

    outcome = {role: attempt(connections[role], reply) for role in ROLES}
    assert outcome == {role: bool(MATRIX.roles[role].serves) for role in ROLES}


def test_no_user_reaches_another_vhost_or_the_default_exchange(broker, connections):
    vhost, prefix, passwords = broker
    for role in ROLES:
        with pytest.raises((amqp.exceptions.AccessRefused, amqp.exceptions.NotAllowed)):
            connect(broker_access.user_name(prefix, role), passwords[role], "/")
        # The default exchange delivers to any queue by name: rpc-auth straight, no topic check.
        assert not attempt(
            connections[role], lambda ch: ch.basic_publish(amqp.Message(b"{}"), "", routing_key="rpc-auth")
        )
        assert not attempt(
            connections[role], lambda ch: ch.basic_publish(amqp.Message(b"{}"), "amq.topic", routing_key="auth.x")
        )


@pytest.mark.parametrize(
    "user, password",
    [("guest", "guest"), ("", ""), ("imagehub-operator", "wrong"), ("admin", "admin")],
)
def test_guest_and_unknown_credentials_are_refused(broker, user, password):
    vhost = broker[0]
    with pytest.raises(amqp.exceptions.AccessRefused):
        connect(user, password, vhost)
