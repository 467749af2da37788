"""`nameko run` of the service as scripts/services.sh will start it: it answers with a key pair,
stops on SIGTERM even one sent while it is still starting, and refuses to start (status 1, saying
why) without one."""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.integration.auth.helpers import ROOT
from tests.support import free_port, wait_until

NAMEKO = os.path.join(os.path.dirname(sys.executable), "nameko")


def run(env, tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    log = open(tmp_path / "auth.log", "w")
    return subprocess.Popen(
        [NAMEKO, "run", "--config", "services/auth/config.yml", "auth.service"],
        cwd=ROOT,
        env=dict(base, AUTH_DB_URL=f"sqlite:///{tmp_path}/auth.db", AUTH_METRICS_PORT=str(free_port()), **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def output(tmp_path):
    return (tmp_path / "auth.log").read_text()


def migrate(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "auth.migrate"],
        cwd=ROOT,
        check=True,
        timeout=60,
        capture_output=True,
        env=dict(os.environ, AUTH_DB_URL=f"sqlite:///{tmp_path}/auth.db"),
    )


def stop(proc, tmp_path):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"nameko run did not stop within 30 s of SIGTERM:\n{output(tmp_path)}") from None


class TestNamekoRun:
    def test_answers_on_its_address_with_a_key_pair(self, tmp_path, key_files, vhost):
        migrate(tmp_path)
        address = f"127.0.0.1:{free_port()}"
        proc = run(dict(key_files, AMQP_URI=vhost, AUTH_ADDRESS=address), tmp_path)
        try:
            health = wait_until(
                lambda: requests.get(f"http://{address}/health", timeout=1).json(), timeout=30, what="auth /health"
            )
            assert (health["status"], health["database"]["reachable"]) == ("ok", True)
        finally:
            stop(proc, tmp_path)

    @pytest.mark.parametrize("delay", [0.0, 0.003, 0.01])
    def test_sigterm_while_the_broker_consumer_still_connects_stops_it(self, tmp_path, key_files, vhost, delay):
        """HTTP is served before the AMQP consumer has connected; nameko 2.14 hung for ever on a
        SIGTERM in that window (CI saw it 2 ms after /health answered). shared.runtime.signals
        makes the stop wait for the start to end: the process exits, with status 0."""
        migrate(tmp_path)
        address = f"127.0.0.1:{free_port()}"
        proc = run(dict(key_files, AMQP_URI=vhost, AUTH_ADDRESS=address), tmp_path)
        wait_until(lambda: requests.get(f"http://{address}/health", timeout=1).ok, timeout=30, what="auth /health")
        time.sleep(delay)
        assert stop(proc, tmp_path) == 0, output(tmp_path)
        assert "starting services: auth" in output(tmp_path)

    def test_refuses_to_start_without_a_key_pair(self, tmp_path, vhost):
        proc = run(dict(AMQP_URI=vhost, AUTH_ADDRESS=f"127.0.0.1:{free_port()}"), tmp_path)
        assert proc.wait(timeout=60) == 1
        assert "SettingMissing: setting AUTH_KEY_FILE is empty" in output(tmp_path)
