"""Liveness and readiness of a ``nameko run`` process that has no HTTP entrypoint (catalog, deployer).

``python -m shared.ops.probe live|ready [--config /app/config.yml]``, run inside the service's
container (a Kubernetes exec probe): it finds the ``nameko run`` process there and looks at that
process's own sockets to the broker named by the config's ``AMQP_URI``, in ``/proc``. No
message is sent and nothing in the service changes; one process is judged, not the whole
service (an RPC call would be answered by whichever replica took it).

* **ready**: the process holds an established connection to the broker (nameko opens it once its
  consumers are set up, and opens it again after a broker outage).
* **live**: the process is not stuck. A process whose event loop no longer runs stops reading
  its sockets: a broker connection whose bytes stay unread (the broker's heartbeats, deliveries)
  or that the broker closed without the process noticing (``CLOSE_WAIT``) across a short sample
  says so. A process with no broker connection at all fails too, unless the broker itself does
  not answer the probe: that is the broker's outage, and restarting the service would not help.

``python -m shared.ops.probe schema SERVICE [--wait SECONDS]`` is the gate a new version passes
before it starts (a Kubernetes init container): the service's database is at the newest
migration that this image ships, i.e. the migration Job has run. Until then the old pods keep
serving and the new ones wait.

Exit status 0 when healthy, 1 when not, with one line saying why either way.
"""

import argparse
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

DEFAULT_CONFIG = "/app/config.yml"
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"
AMQP_PORTS = {"amqp": 5672, "pyamqp": 5672, "librabbitmq": 5672, "amqps": 5671}

# /proc/net/tcp socket states (include/net/tcp_states.h)
ESTABLISHED = "01"
CLOSE_WAIT = "08"


class ProbeFailed(Exception):
    pass


def broker_address(amqp_uri: str) -> tuple[str, int]:
    """``(host, port)`` of an ``amqp://user:pass@host:port/vhost`` URI (the first of a list)."""
    first = amqp_uri.split(";")[0].strip()
    parts = urlsplit(first)
    return parts.hostname or "localhost", parts.port or AMQP_PORTS.get(parts.scheme, 5672)


def load_amqp_uri(config_path: str) -> str:
    """The ``AMQP_URI`` of a service's config.yml, read as ``nameko run`` reads it."""
    import warnings

    import yaml

    with warnings.catch_warnings():  # nameko's CLI module imports pkg_resources, which warns
        warnings.simplefilter("ignore")
        from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    with open(config_path) as f:
        config = yaml.safe_load(f) or {}
    return config.get("AMQP_URI", DEFAULT_AMQP_URI)


# -- /proc -------------------------------------------------------------------------------------


def find_nameko_pid(proc: str = "/proc") -> int:
    """The pid of the ``nameko run`` process in this (container's) pid namespace."""
    me = os.getpid()
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(os.path.join(proc, entry, "cmdline"), "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if os.path.basename(arg) == "nameko" and argv[i + 1] == "run":
                found.append(int(entry))
                break
    if not found:
        raise ProbeFailed("no `nameko run` process found")
    return min(found)


def socket_inodes(pid: int, proc: str = "/proc") -> set[str]:
    """The inodes of the sockets the process holds open."""
    inodes = set()
    fd_dir = os.path.join(proc, str(pid), "fd")
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def parse_tcp_table(text: str) -> list[dict[str, Any]]:
    """Rows of ``/proc/<pid>/net/tcp`` or ``tcp6``: dicts of remote_port, state, rx_queue, inode."""
    rows = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        _remote_ip, remote_port = fields[2].rsplit(":", 1)
        _tx_queue, rx_queue = fields[4].split(":")
        rows.append(
            {"remote_port": int(remote_port, 16), "state": fields[3], "rx_queue": int(rx_queue, 16), "inode": fields[9]}
        )
    return rows


def broker_connections(pid: int, port: int, proc: str = "/proc") -> dict[str, tuple[str, int]]:
    """The process's TCP connections to ``port``: ``{inode: (state, rx_queue)}``.

    Read through the process's own view of the network (``/proc/<pid>/net``), so the answer is
    the same inside a pod and in a container on the host's network; only the sockets the process
    holds count.
    """
    inodes = socket_inodes(pid, proc)
    found = {}
    for table in ("tcp", "tcp6"):
        try:
            with open(os.path.join(proc, str(pid), "net", table)) as f:
                rows = parse_tcp_table(f.read())
        except OSError:
            continue
        for row in rows:
            if row["inode"] in inodes and row["remote_port"] == port:
                found[row["inode"]] = (row["state"], row["rx_queue"])
    return found


def broker_answers(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# -- the checks --------------------------------------------------------------------------------


def check_ready(pid: int, host: str, port: int, proc: str = "/proc") -> str:
    states = broker_connections(pid, port, proc)
    if not any(state == ESTABLISHED for state, _ in states.values()):
        raise ProbeFailed(f"process {pid} has no established connection to the broker {host}:{port}")
    return f"process {pid} is connected to the broker {host}:{port}"


def check_live(
    pid: int,
    host: str,
    port: int,
    sample_seconds: float,
    timeout: float,
    proc: str = "/proc",
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    first = broker_connections(pid, port, proc)
    if not first:
        if not broker_answers(host, port, timeout):
            return f"process {pid} has no broker connection, but the broker {host}:{port} does not answer either"
        raise ProbeFailed(f"process {pid} holds no connection to the broker {host}:{port}, which answers")
    pending = {inode for inode, (state, rx) in first.items() if state == CLOSE_WAIT or rx > 0}
    if not pending:
        return f"process {pid} reads its {len(first)} broker connection(s)"
    sleep(sample_seconds)
    second = broker_connections(pid, port, proc)
    for inode in pending:
        if inode not in second:
            continue  # closed or drained and gone: the process is handling it
        state, rx = second[inode]
        if state == CLOSE_WAIT:
            raise ProbeFailed(
                f"process {pid} has not noticed for {sample_seconds}s that the broker "
                f"closed its connection (CLOSE_WAIT): its event loop is stuck"
            )
        if rx >= first[inode][1] > 0:
            raise ProbeFailed(
                f"process {pid} left {rx} bytes from the broker unread for {sample_seconds}s: its event loop is stuck"
            )
    return f"process {pid} reads its {len(second)} broker connection(s)"


def check_schema(service: str, config_path: str) -> str:
    """The service's database (its config.yml's URL) is at the head of its Alembic scripts."""
    import importlib

    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import make_url

    from shared.runtime.db import create_engine

    migrations = importlib.import_module(f"{service}.migrate").migrations
    url = migrations.database_url(config_path)
    heads = set(ScriptDirectory.from_config(migrations.alembic_config()).get_heads())
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    where = make_url(url).render_as_string(hide_password=True)
    if current != heads:
        raise ProbeFailed(
            f"{service} database {where} is at {sorted(current) or 'no revision'}, "
            f"this image needs {sorted(heads)}: the migration Job has not run yet"
        )
    return f"{service} database {where} is at {sorted(heads)}"


def wait_for(
    check: Callable[[], str],
    seconds: float,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """``check()``'s message once it passes; its last failure once ``seconds`` have gone by."""
    deadline = clock() + seconds
    while True:
        try:
            return check()
        except Exception as exc:  # a database not up yet is as good a reason to wait as an old schema
            if clock() >= deadline:
                raise ProbeFailed(str(exc).splitlines()[0]) from exc
            print(f"waiting: {str(exc).splitlines()[0]}", flush=True)
            sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.ops.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("check", choices=("live", "ready", "schema"))
    parser.add_argument("service", nargs="?", help="schema: the service whose database to check (catalog, deployer)")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="the service's config.yml (default: %(default)s)")
    parser.add_argument(
        "--sample", type=float, default=1.0, help="seconds to watch unread broker data before calling the process stuck"
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the broker to answer")
    parser.add_argument("--wait", type=float, default=0.0, help="schema: seconds to keep trying before failing")
    args = parser.parse_args(argv)
    if args.check == "schema" and not args.service:
        parser.error("schema needs the SERVICE")
    try:
        if args.check == "schema":
            message = wait_for(lambda: check_schema(args.service, args.config), args.wait)
            print(f"schema: ok: {message}")
            return 0
        host, port = broker_address(load_amqp_uri(args.config))
        pid = find_nameko_pid()
        if args.check == "ready":
            message = check_ready(pid, host, port)
        else:
            message = check_live(pid, host, port, args.sample, args.timeout)
    except (ProbeFailed, OSError) as exc:
        print(f"{args.check}: FAIL: {exc}")
        return 1
    print(f"{args.check}: ok: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
