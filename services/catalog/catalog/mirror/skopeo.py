"""skopeo, run as a child process: list an upstream's tags, read a manifest, copy an image.

Credentials never go on a command line (``/proc`` shows it to every user of the host): they are
written to an auth file (the ``containers-auth.json`` format) in a private directory that lives as
long as the ``Skopeo`` object, and skopeo reads them from there. The trust policy is the
package's own ``policy.json`` (skopeo refuses to run without one, and the host's may not exist).

Every command has a time limit; a failure raises ``SkopeoError`` with skopeo's own last words.
"""

import base64
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from eventlet.green import subprocess


class SkopeoError(Exception):
    """skopeo failed, could not be run, or took too long; the message says which and why."""


@dataclass(frozen=True)
class Endpoint:
    """A registry skopeo talks to: ``host[:port]``, whether it is plain HTTP or unverified TLS,
    and the account to log in with (None: anonymous), or a refresh token of it
    (``identity_token``, what ``docker login`` keeps): skopeo then asks the token service with
    that, which checks a signature instead of the password's deliberately slow hash on every copy."""

    host: str
    insecure: bool = False
    username: str | None = None
    password: str | None = None
    identity_token: str | None = None


def manifest_digest(raw: bytes) -> str:
    """A manifest's digest: the sha256 of its bytes exactly as the registry served them."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


class Skopeo:
    """skopeo with the credentials of ``endpoints`` in a private auth file; ``close()`` removes it."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        command: str = "skopeo",
        timeout: float = 60.0,
        copy_timeout: float = 1800.0,
    ) -> None:
        self.command = command
        self.timeout = timeout
        self.copy_timeout = copy_timeout
        self._dir = tempfile.mkdtemp(prefix="imagehub-skopeo-")  # 0700: mkdtemp's own mode
        self._authfile = os.path.join(self._dir, "auth.json")
        self._policy = os.path.join(self._dir, "policy.json")
        self._insecure = {endpoint.host: endpoint.insecure for endpoint in endpoints}
        auths = {endpoint.host: _auth_entry(endpoint) for endpoint in endpoints if endpoint.username}
        _write_private(self._authfile, json.dumps({"auths": auths}))
        _write_private(self._policy, resources.files("catalog.mirror").joinpath("policy.json").read_text())

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "Skopeo":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- what the sync asks --------------------------------------------------------------------

    def list_tags(self, host: str, repository: str) -> list[str]:
        out = self._run(["list-tags", *self._tls("--tls-verify", host), _ref(host, repository)], self.timeout)
        try:
            tags = json.loads(out)["Tags"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SkopeoError(f"skopeo list-tags gave no tag list for {_ref(host, repository)}: {out[:200]!r}") from exc
        return [tag for tag in tags or [] if isinstance(tag, str)]

    def digest(self, host: str, repository: str, tag: str) -> str:
        """The digest ``host/repository:tag`` points at (an index's own for a multi-arch image)."""
        ref = f"{_ref(host, repository)}:{tag}"
        return manifest_digest(self._run(["inspect", "--raw", *self._tls("--tls-verify", host), ref], self.timeout))

    def copy(self, source: tuple[str, str, str], dest: tuple[str, str, str]) -> None:
        """Copy ``(host, repository, digest)`` to ``(host, repository, tag)``: every platform of an
        index (``--all``), each manifest byte for byte (``--preserve-digests``: skopeo fails rather
        than convert one, so the tag lands on the digest the upstream has). The registry takes the
        tag with the last manifest it is sent: a copy cut short leaves no tag."""
        src_host, src_repository, digest = source
        dest_host, dest_repository, tag = dest
        self._run(
            [
                "copy",
                "--all",
                "--preserve-digests",
                "--retry-times",
                "0",  # the sync retries a failed copy itself, with back-off
                *self._tls("--src-tls-verify", src_host),
                *self._tls("--dest-tls-verify", dest_host),
                f"{_ref(src_host, src_repository)}@{digest}",
                f"{_ref(dest_host, dest_repository)}:{tag}",
            ],
            self.copy_timeout,
        )

    # -- running it ----------------------------------------------------------------------------

    def _tls(self, flag: str, host: str) -> list[str]:
        return [f"{flag}=false"] if self._insecure.get(host) else []

    def _run(self, args: Sequence[str], timeout: float) -> bytes:
        argv = [self.command, "--policy", self._policy, *args[:1], "--authfile", self._authfile, *args[1:]]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout, env=_environment())
        except FileNotFoundError as exc:
            raise SkopeoError(f"{self.command!r} is not installed (Debian's package skopeo)") from exc
        except subprocess.TimeoutExpired as exc:
            raise SkopeoError(f"skopeo {args[0]} took longer than {timeout:g} s") from exc
        if done.returncode != 0:
            raise SkopeoError(f"skopeo {args[0]} failed: {_last_words(done.stderr)}")
        return bytes(done.stdout)


def _auth_entry(endpoint: Endpoint) -> dict[str, str]:
    if endpoint.identity_token:  # containers-auth.json: the user "<token>" and the refresh token
        return {"auth": base64.b64encode(b"<token>:").decode(), "identitytoken": endpoint.identity_token}
    return {"auth": base64.b64encode(f"{endpoint.username}:{endpoint.password}".encode()).decode()}


def _ref(host: str, repository: str) -> str:
    return f"docker://{host}/{repository}"


def _last_words(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    return lines[-1][-500:] if lines else "no message"


def _environment() -> Mapping[str, str]:
    # No registries.conf of the host's user nor proxy of theirs decides where skopeo goes.
    keep = ("PATH", "HOME", "TMPDIR", "LANG")
    return {key: os.environ[key] for key in keep if key in os.environ}


def _write_private(path: str, text: str) -> None:
    with open(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        f.write(text)
