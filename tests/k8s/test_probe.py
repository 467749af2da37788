"""shared.ops.probe on a made-up /proc: which process, which sockets, and when it is stuck.

The same probe runs for real inside the images in test_images.py (and catches a stopped process
there); these cases cover the states that are hard to bring about on purpose.
"""

import os

import pytest

from shared.ops import probe

TCP_HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"


def tcp_row(remote_port, state, rx_queue, inode, sl=0):
    return (
        f"   {sl}: 0100007F:D431 0100007F:{remote_port:04X} {state} 00000000:{rx_queue:08X} "
        f"00:00000000 00000000 10001        0 {inode} 1 0000000000000000 20 4 30 10 -1\n"
    )


@pytest.fixture
def proc(tmp_path):
    """A /proc with a nameko process (pid 7) holding sockets 100 and 101, and a bystander (pid 9)."""
    root = tmp_path / "proc"
    for pid, argv in (
        (
            7,
            [
                "/opt/imagehub/bin/python3",
                "/opt/imagehub/bin/nameko",
                "run",
                "--config",
                "/app/config.yml",
                "catalog.service",
            ],
        ),
        (9, ["sleep", "100"]),
    ):
        (root / str(pid) / "fd").mkdir(parents=True)
        (root / str(pid) / "net").mkdir()
        (root / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    os.symlink("socket:[100]", root / "7" / "fd" / "3")
    os.symlink("socket:[101]", root / "7" / "fd" / "4")
    os.symlink("/dev/null", root / "7" / "fd" / "0")
    return root


def write_tcp(proc, *rows, pid=7):
    (proc / str(pid) / "net" / "tcp").write_text(TCP_HEADER + "".join(rows))


def test_broker_address_from_the_amqp_uri():
    assert probe.broker_address("amqp://u:p@rabbitmq:5672/") == ("rabbitmq", 5672)
    assert probe.broker_address("pyamqp://guest:guest@127.0.0.1/vhost") == ("127.0.0.1", 5672)
    assert probe.broker_address("amqps://u:p@broker.example/") == ("broker.example", 5671)
    assert probe.broker_address("amqp://a:1111/;amqp://b:2222/") == ("a", 1111)


def test_finds_the_nameko_process(proc):
    assert probe.find_nameko_pid(str(proc)) == 7


def test_no_nameko_process_fails(proc):
    (proc / "7" / "cmdline").write_bytes(b"python3\0-m\0something\0")
    with pytest.raises(probe.ProbeFailed, match="no `nameko run`"):
        probe.find_nameko_pid(str(proc))


def test_only_the_processs_own_sockets_to_the_broker_count(proc):
    write_tcp(
        proc,
        tcp_row(5672, probe.ESTABLISHED, 0, 100),
        tcp_row(5432, probe.ESTABLISHED, 0, 101),
        tcp_row(5672, probe.ESTABLISHED, 0, 555),
    )  # someone else's (host network)
    assert probe.broker_connections(7, 5672, str(proc)) == {"100": (probe.ESTABLISHED, 0)}


def test_ready_needs_an_established_broker_connection(proc):
    write_tcp(proc, tcp_row(5672, probe.ESTABLISHED, 0, 100))
    assert "connected" in probe.check_ready(7, "rabbitmq", 5672, str(proc))
    write_tcp(proc, tcp_row(5672, probe.CLOSE_WAIT, 0, 100), tcp_row(5672, probe.ESTABLISHED, 0, 999))
    with pytest.raises(probe.ProbeFailed, match="no established connection"):
        probe.check_ready(7, "rabbitmq", 5672, str(proc))


def test_live_when_the_process_reads_what_the_broker_sends(proc):
    write_tcp(proc, tcp_row(5672, probe.ESTABLISHED, 0, 100))
    assert "reads" in probe.check_live(7, "rabbitmq", 5672, 1, 1, str(proc), sleep=pytest.fail)
    # Bytes waiting at one look but read by the next: a busy process, not a stuck one.
    write_tcp(proc, tcp_row(5672, probe.ESTABLISHED, 40, 100))
    assert "reads" in probe.check_live(
        7, "rabbitmq", 5672, 1, 1, str(proc), sleep=lambda s: write_tcp(proc, tcp_row(5672, probe.ESTABLISHED, 0, 100))
    )


def test_stuck_when_broker_bytes_stay_unread(proc):
    write_tcp(proc, tcp_row(5672, probe.ESTABLISHED, 40, 100))
    with pytest.raises(probe.ProbeFailed, match="unread"):
        probe.check_live(
            7,
            "rabbitmq",
            5672,
            1,
            1,
            str(proc),
            sleep=lambda s: write_tcp(proc, tcp_row(5672, probe.ESTABLISHED, 48, 100)),
        )


def test_stuck_when_a_closed_connection_goes_unnoticed(proc):
    write_tcp(proc, tcp_row(5672, probe.CLOSE_WAIT, 0, 100))
    with pytest.raises(probe.ProbeFailed, match="CLOSE_WAIT"):
        probe.check_live(7, "rabbitmq", 5672, 1, 1, str(proc), sleep=lambda s: None)
    # ... unless the process closes it meanwhile (it is reconnecting).
    assert probe.check_live(
        7, "rabbitmq", 5672, 1, 1, str(proc), sleep=lambda s: write_tcp(proc, tcp_row(5672, probe.ESTABLISHED, 0, 101))
    )


def test_no_connection_is_the_processs_fault_only_when_the_broker_answers(proc, monkeypatch):
    write_tcp(proc)
    monkeypatch.setattr(probe, "broker_answers", lambda host, port, timeout: False)
    assert "does not answer either" in probe.check_live(7, "rabbitmq", 5672, 1, 1, str(proc))
    monkeypatch.setattr(probe, "broker_answers", lambda host, port, timeout: True)
    with pytest.raises(probe.ProbeFailed, match="which answers"):
        probe.check_live(7, "rabbitmq", 5672, 1, 1, str(proc))


def test_wait_for_retries_until_the_deadline():
    now = [0.0]
    attempts = []

    def check():
        attempts.append(now[0])
        if len(attempts) < 3:
            raise probe.ProbeFailed("not yet")
        return "done"

    assert (
        probe.wait_for(check, 10, interval=2, sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
        == "done"
    )
    assert attempts == [0.0, 2.0, 4.0]
    with pytest.raises(probe.ProbeFailed, match="never"):
        probe.wait_for(
            lambda: (_ for _ in ()).throw(RuntimeError("never")),
            3,
            interval=2,
            sleep=lambda s: now.__setitem__(0, now[0] + s),
            clock=lambda: now[0],
        )
