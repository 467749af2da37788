"""Fixtures of the console's unit tests: a signed-in developer and a console whose RPC proxies are
fakes (no broker, no auth service)."""

from types import SimpleNamespace
from typing import Any

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.console import ConsolePages
from gateway.sessions import Developer
from shared.runtime.identity import Identity


def make_developer(account: str = "alice", tenant: str | None = "acme", admin: bool = False) -> Developer:
    identity = Identity(
        kind="developer", name=account, broker_user="gateway", tenant=tenant, admin=admin, session="sid-1"
    )
    return Developer(identity=identity, token="token", by_cookie=True, csrf_token="csrf-123")


@pytest.fixture
def developer() -> Developer:
    return make_developer()


def make_request(method: str = "GET", path: str = "/", **kwargs: Any) -> Request:
    return Request(EnvironBuilder(method=method, path=path, **kwargs).get_environ())


class FakeWeb:
    def __init__(self, developer: Developer | None) -> None:
        self.signed_in = developer
        self.settings = SimpleNamespace(registry_host="registry.example:5000", secure_cookie=False)
        self.ended_sessions: list[Developer] = []

    def developer(self, request: Request, auth: Any) -> Developer:
        from shared.contracts.errors import Unauthorized

        if self.signed_in is None:
            raise Unauthorized("sign in first")
        return self.signed_in

    def ended(self, developer: Developer) -> None:
        self.ended_sessions.append(developer)

    def client_address(self, request: Request) -> str:
        return "127.0.0.1"


class Console(ConsolePages):
    """The console's pages over fakes: each RPC proxy a ``Recorder`` answering from ``answers``."""

    def __init__(self, developer: Developer | None) -> None:
        self.web = FakeWeb(developer)
        self.auth = Recorder()
        self.catalog = Recorder()
        self.deployer = Recorder()


class Recorder:
    """An RPC proxy: ``answers[name]`` is returned (or raised, if an exception) and each call recorded."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            answer = self.answers.get(name)
            if isinstance(answer, BaseException):
                raise answer
            return answer(*args, **kwargs) if callable(answer) else answer

        return call


@pytest.fixture
def console(developer: Developer) -> Console:
    return Console(developer)
