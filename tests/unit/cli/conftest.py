"""The CLI against a fake RPC transport: what it sends, and what it prints for each answer."""
import pytest
from click.testing import CliRunner

from imagehub.cli import cli

DIGEST = "sha256:" + "a1" * 32
IMAGE_ID = "sha256:" + "b2" * 32
LAYER = "sha256:" + "c3" * 32


class FakeTransport:
    """Stands in for ``NamekoTransport``: records every call, answers from a table per method."""

    def __init__(self):
        self.calls = []
        self.answers = {}
        self.opened_with = None
        self.closed = False

    def __call__(self, amqp_uri, timeout):  # the factory the CLI calls to connect
        self.opened_with = (amqp_uri, timeout)
        return self

    def answer(self, method, value):
        self.answers[method] = value

    def call(self, service, method, *args, **kwargs):
        self.calls.append((service, method, args, kwargs))
        value = self.answers[method]
        if isinstance(value, BaseException):
            raise value
        return value

    def close(self):
        self.closed = True


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
    return {"items": items, "total": len(items) if total is None else total, "page": page,
            "page_size": page_size}
