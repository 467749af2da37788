"""tests.support.free_port: the ports the tests' own servers get."""

import socket

import pytest

from tests import support
from tests.support import FREE_PORTS, free_port, port_slice


def test_each_runner_process_picks_in_a_slice_of_its_own():
    slices = [port_slice(name) for name in ("shard1", "shard2", "shard3", "shard4", "exclusive")]
    taken = [set(range(low, high + 1)) for low, high in slices]
    assert all(FREE_PORTS[0] <= low <= high <= FREE_PORTS[1] for low, high in slices)
    assert all(len(ports) >= 1000 for ports in taken)
    assert sum(len(ports) for ports in taken) == len(set().union(*taken))  # disjoint
    assert port_slice("") == FREE_PORTS == port_slice("shard99")  # outside the runner: the whole range


def test_a_port_is_not_handed_out_twice_before_its_server_binds_it(monkeypatch):
    monkeypatch.setenv("IMAGEHUB_TEST_SHARD", "shard3")
    monkeypatch.setattr(support, "_handed_out", {})
    low, high = port_slice("shard3")
    picked = [free_port() for _ in range(300)]  # none bound meanwhile
    assert len(set(picked)) == 300
    assert all(low <= port <= high for port in picked)


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch):
    monkeypatch.setenv("IMAGEHUB_TEST_SHARD", "")
    monkeypatch.setattr(support, "_handed_out", {})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        monkeypatch.setattr(support, "FREE_PORTS", (port, port))
        with pytest.raises(RuntimeError, match=f"^no free port in {port}-{port} on 127.0.0.1$"):
            free_port()
