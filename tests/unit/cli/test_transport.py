"""NamekoTransport: the proxy it builds, and the message each way of failing ends in.

The nameko proxy is replaced by a stand-in that raises what nameko raises; one test reaches for a
closed loopback port to see the real "no broker" path.
"""

import socket

import pytest
from nameko.exceptions import MethodNotFound, RemoteError, RpcTimeout, UnknownService

from imagehub.rpc import NamekoTransport, RpcFailure, Unavailable, mask_password
from shared.contracts.errors import Conflict


class StandInProxy:
    """Plays ``nameko.standalone.rpc.ClusterRpcProxy``: ``proxy["catalog"].method(...)``."""

    instances = []

    def __init__(self, config, context_data=None, timeout=None):
        self.config, self.context_data, self.timeout = config, context_data, timeout
        self.calls, self.stopped = [], False
        self.outcome = StandInProxy.next_outcome
        StandInProxy.instances.append(self)

    def start(self):
        return self

    def stop(self):
        self.stopped = True

    def __getitem__(self, service):
        proxy = self

        class Service:
            def __getattr__(self, method):
                def call(*args, **kwargs):
                    proxy.calls.append((service, method, args, kwargs))
                    if isinstance(proxy.outcome, BaseException):
                        raise proxy.outcome
                    return proxy.outcome

                return call

        return Service()


@pytest.fixture
def stand_in(monkeypatch):
    import shared.runtime.identity

    StandInProxy.instances = []
    StandInProxy.next_outcome = None
    monkeypatch.setattr(shared.runtime.identity, "IdentifiedClusterRpcProxy", StandInProxy)
    return StandInProxy


def call(transport):
    return transport.call("catalog", "get_tag", "t1", "t1/app", "1.0")


class TestCalls:
    def test_one_proxy_with_the_uri_and_timeout_for_all_calls(self, stand_in):
        stand_in.next_outcome = {"ok": True}
        transport = NamekoTransport("amqp://guest:guest@127.0.0.1:5672/", 2.5)

        assert call(transport) == {"ok": True}
        assert transport.call("catalog", "list_tags", "t1", "t1/app", page=2) == {"ok": True}
        transport.close()

        [proxy] = stand_in.instances
        assert proxy.config == {"AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/"}
        assert proxy.timeout == 2.5
        assert proxy.calls == [
            ("catalog", "get_tag", ("t1", "t1/app", "1.0"), {}),
            ("catalog", "list_tags", ("t1", "t1/app"), {"page": 2}),
        ]
        assert proxy.stopped

    def test_typed_errors_pass_through(self, stand_in):
        stand_in.next_outcome = Conflict("shared digest")

        with pytest.raises(Conflict, match="shared digest"):
            call(NamekoTransport("amqp://127.0.0.1/", 1))


class TestFailures:
    @pytest.mark.parametrize(
        "raised, kind, message",
        [
            (RpcTimeout(10), Unavailable, "catalog service did not answer within 10 s; is it running? (make up)"),
            (
                UnknownService("catalog"),
                Unavailable,
                "catalog service is not running (no RPC queue on the broker at amqp://guest:***@127.0.0.1:5672/); "
                "start it with `make up`",
            ),
            (
                MethodNotFound("get_tag"),
                RpcFailure,
                "catalog service does not accept get_tag() as called (get_tag); is the CLI newer than the running "
                "service?",
            ),
            (RemoteError("KeyError", "'digest'"), RpcFailure, "catalog.get_tag failed: KeyError: 'digest'"),
            (
                ConnectionResetError(104, "Connection reset by peer"),
                Unavailable,
                "cannot reach the message broker at amqp://guest:***@127.0.0.1:5672/ ([Errno 104] Connection reset "
                "by peer); is RabbitMQ running? (make up)",
            ),
        ],
    )
    def test_become_messages(self, stand_in, raised, kind, message):
        stand_in.next_outcome = raised

        with pytest.raises(kind) as caught:
            call(NamekoTransport("amqp://guest:guest@127.0.0.1:5672/", 10.0))

        assert str(caught.value) == message

    def test_cli_says_the_service_did_not_answer_in_the_given_time(self, stand_in, run_real):
        stand_in.next_outcome = RpcTimeout(3)

        result = run_real("--timeout", "3", "library")

        assert result.exit_code == 1
        assert result.stderr == "error: catalog service did not answer within 3 s; is it running? (make up)\n"
        assert stand_in.instances[0].timeout == 3.0
        assert stand_in.instances[0].stopped

    def test_no_broker_on_the_port(self, run_real):
        with socket.socket() as probe:  # a loopback port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]

        result = run_real("library", "--timeout", "1", "--amqp-uri", f"amqp://guest:secret@127.0.0.1:{port}/")

        assert result.exit_code == 1
        assert result.stderr.startswith(
            f"error: cannot reach the message broker at amqp://guest:***@127.0.0.1:{port}/ ("
        )
        assert result.stderr.endswith("); is RabbitMQ running? (make up)\n")
        assert "secret" not in result.stderr


@pytest.mark.parametrize(
    "uri, masked",
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:***@127.0.0.1:5672/"),
        ("amqp://127.0.0.1:5672/", "amqp://127.0.0.1:5672/"),
        ("amqp://guest@127.0.0.1/", "amqp://guest@127.0.0.1/"),
    ],
)
def test_mask_password(uri, masked):
    assert mask_password(uri) == masked
