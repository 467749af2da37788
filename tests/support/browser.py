"""The client of ``tests/support/browser_worker.py``: a real chromium, driven from a test.

    with Browser(artifacts_dir) as browser:
        browser.goto(url); browser.fill(label="Account", value="dev"); browser.click(role="button", name="Sign in")

Every call waits at most ``timeout`` seconds for its answer (the worker's own waits are 15 s), and
a failure in the browser is an ``AssertionError`` with the worker's message.
"""

import json
import os
import subprocess
import sys
from typing import Any

import eventlet

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser_worker.py")


class Browser:
    def __init__(self, out_dir: str, timeout: float = 60) -> None:
        self.out_dir = out_dir
        self.timeout = timeout
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.proc = subprocess.Popen(
            [sys.executable, WORKER, out_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=open(os.path.join(out_dir, "browser.log"), "ab"),
            text=True,
            env=env,
        )
        ready = self._read()
        assert ready.get("ready"), ready

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _read(self) -> dict[str, Any]:
        with eventlet.Timeout(self.timeout, AssertionError(f"the browser gave no answer within {self.timeout} s")):
            line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise AssertionError(f"the browser worker ended (see {self.out_dir}/browser.log)")
        return json.loads(line)

    def do(self, op: str, **request: Any) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps({"op": op, **request}) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        answer = self._read()
        if not answer.pop("ok"):
            raise AssertionError(f"browser {op} {request}: {answer['error']}\n{answer.get('trace', '')}")
        return answer

    def goto(self, url: str) -> dict[str, Any]:
        return self.do("goto", url=url)

    def fill(self, value: str, **where: Any) -> None:
        self.do("fill", value=value, **where)

    def click(self, navigates: bool = False, **where: Any) -> None:
        self.do("click", navigates=navigates, **where)

    def texts(self, **where: Any) -> list[str]:
        return list(self.do("text", **where)["texts"])

    def page(self) -> dict[str, Any]:
        return self.do("page")

    def screenshot(self, name: str) -> str:
        return str(self.do("screenshot", name=name)["path"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)
