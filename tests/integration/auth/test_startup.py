"""`nameko run` of the service as scripts/services.sh will start it: it answers with a key pair,
and refuses to start (status 1, saying why) without one."""

import os
import signal
import subprocess
import sys

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
        env=dict(base, AUTH_DB_URL=f"sqlite:///{tmp_path}/auth.db", **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def output(tmp_path):
    return (tmp_path / "auth.log").read_text()


class TestNamekoRun:
    def test_answers_on_its_address_with_a_key_pair(self, tmp_path, key_files, vhost):
        subprocess.run(
            [sys.executable, "-m", "auth.migrate"],
            cwd=ROOT,
            check=True,
            timeout=60,
            capture_output=True,
            env=dict(os.environ, AUTH_DB_URL=f"sqlite:///{tmp_path}/auth.db"),
        )
        address = f"127.0.0.1:{free_port()}"
        proc = run(dict(key_files, AMQP_URI=vhost, AUTH_ADDRESS=address), tmp_path)
        try:
            health = wait_until(
                lambda: requests.get(f"http://{address}/health", timeout=1).json(), timeout=30, what="auth /health"
            )
            assert (health["status"], health["database"]["reachable"]) == ("ok", True)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"nameko run did not stop within 30 s of SIGTERM:\n{output(tmp_path)}") from None

    def test_refuses_to_start_without_a_key_pair(self, tmp_path, vhost):
        proc = run(dict(AMQP_URI=vhost, AUTH_ADDRESS=f"127.0.0.1:{free_port()}"), tmp_path)
        assert proc.wait(timeout=60) == 1
        assert "SettingMissing: setting AUTH_KEY_FILE is empty" in output(tmp_path)
