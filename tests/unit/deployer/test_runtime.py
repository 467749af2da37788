"""``port_is_free`` judges a loopback port as a server binding it would: a listener holds it,
connections its last server closed (TIME_WAIT) do not."""

import socket

from deployer.runtime import port_is_free
from deployer.settings import Host

LOCAL = Host(name="local-1", pool="p", base_url="unix:///x", address="127.0.0.1", cpus=1, memory=1)


def test_a_listening_port_is_taken():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        assert port_is_free(LOCAL, listener.getsockname()[1]) is False


def test_a_port_whose_server_closed_its_connections_is_free_again():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    served, _ = listener.accept()
    served.close()  # the server closes first, as busybox httpd does after an answer: TIME_WAIT on its side
    client.recv(1)
    client.close()
    listener.close()
    plain = socket.socket()
    try:  # the case is real: a bind without SO_REUSEADDR is refused for the minute of TIME_WAIT
        plain.bind(("127.0.0.1", port))
        refused = False
    except OSError:
        refused = True
    finally:
        plain.close()
    assert refused
    assert port_is_free(LOCAL, port) is True


def test_a_host_elsewhere_is_judged_by_its_engine():
    remote = Host(
        name="prod-1",
        pool="p",
        base_url="tcp://prod-1.docker.example:2376",
        address="prod-1.docker.example",
        cpus=1,
        memory=1,
    )
    assert port_is_free(remote, 1) is True
