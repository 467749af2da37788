"""The CLI against a fake RPC transport: what it sends, and what it prints for each answer."""

import pytest
from click.testing import CliRunner

from imagehub.cli import cli

DIGEST = "sha256:" + "a1" * 32
IMAGE_ID = "sha256:" + "b2" * 32
LAYER = "sha256:" + "c3" * 32
DEPLOYMENT_ID = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"


class FakeTransport:
    """Stands in for ``NamekoTransport``: records every call, answers from a table per method."""

    def __init__(self):
        self.calls = []
        self.answers = {}
        self.opened_with = None
        self.closed = False

    def __call__(self, amqp_uri, timeout, identity=None):  # the factory the CLI calls to connect
        self.opened_with = (amqp_uri, timeout)
        self.identity = identity
        return self

    def answer(self, method, value):
        self.answers[method] = value

    def answer_each(self, method, *values):
        """One value per call, in order; the last one answers every call after it."""
        self.answers[method] = _Sequence(values)

    def call(self, service, method, *args, **kwargs):
        self.calls.append((service, method, args, kwargs))
        value = self.answers[method]
        if isinstance(value, _Sequence):
            value = value.next()
        if callable(value):  # an answer that does something first (takes time, say)
            value = value()
        if isinstance(value, BaseException):
            raise value
        return value

    def close(self):
        self.closed = True


class _Sequence:
    def __init__(self, values):
        self.values = list(values)

    def next(self):
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


class FakeClock:
    """Stands in for ``imagehub.waiting.CLOCK``: ``sleep`` moves ``now`` on at once."""

    def __init__(self):
        self.time = 1000.0
        self.sleeps = []

    def now(self):
        return self.time

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.time += seconds


@pytest.fixture(autouse=True)
def session_file(monkeypatch, tmp_path):
    """Each test's own sign-in store: none of the person running the tests is read or written."""
    path = tmp_path / "sessions.json"
    monkeypatch.setenv("IMAGEHUB_SESSION_FILE", str(path))
    return path


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    """No CLI test really sleeps while a deployment is followed."""
    fake = FakeClock()
    monkeypatch.setattr("imagehub.waiting.CLOCK", fake)
    return fake


@pytest.fixture
def rpc():
    return FakeTransport()


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("AMQP_URI", "IMAGEHUB_TENANT", "IMAGEHUB_TIMEOUT", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def run(rpc, clean_env):
    """``run("tags", "t1/app")`` → click's Result, with a clean environment and no terminal."""
    runner = CliRunner()

    def invoke(*args, input=None, env=None):
        return runner.invoke(cli, list(args), obj=rpc, input=input, env=env)

    return invoke


@pytest.fixture
def run_real(clean_env):
    """The CLI with its real transport (no fake handed in as ``obj``)."""

    def invoke(*args):
        return CliRunner().invoke(cli, list(args))

    return invoke


def page(items, total=None, page=1, page_size=50):
    return {"items": items, "total": len(items) if total is None else total, "page": page, "page_size": page_size}


def instance(host, port, state="running", revision=1, reason=None, container="c0ffee"):
    """One of a deployment's instances as the deployer reports it (deployer.views.instance_view)."""
    return {
        "id": f"{host}-{port}",
        "host": host,
        "container_id": (container * 11)[:64],
        "container_name": f"imagehub-web-{port}",
        "state": state,
        "reason": reason,
        "revision": revision,
        "address": f"127.0.0.1:{port}" if port else None,
        "ports": [{"container_port": 8080, "host_port": port}],
        "started_at": "2024-06-01T10:00:05+00:00",
    }


OPERATIONS = {"pending": "rollout", "pulling": "rollout", "starting": "rollout", "deleting": "delete"}


def deployment(**fields):
    """A get_deployment answer as the deployer builds it (deployer.views.deployment_view); unless
    given, ``operation`` is what runs while the deployer reports that status (None once it ends)."""
    fields.setdefault("operation", OPERATIONS.get(fields.get("status", "pending")))
    return dict(
        {
            "id": DEPLOYMENT_ID,
            "tenant_id": "t1",
            "name": "web",
            "pool": "default",
            "image": "t1/app:1.0",
            "repository": "t1/app",
            "tag": "1.0",
            "digest": DIGEST,
            "revision": 1,
            "serving_revision": None,
            "replicas": 2,
            "status": "pending",
            "reason": None,
            "spec": {
                "env": {},
                "command": None,
                "ports": [{"container_port": 8080, "host_port": 0}],
                "cpu": 0.25,
                "memory": "256m",
                "memory_bytes": 268435456,
                "restart_policy": "unless-stopped",
                "health": {"type": "running", "seconds": 3},
            },
            "auto_deploy": {"policy": "never"},
            "instances": [],
            "created_at": "2024-06-01T10:00:00+00:00",
            "updated_at": "2024-06-01T10:00:00+00:00",
            "deleted_at": None,
        },
        **fields,
    )
