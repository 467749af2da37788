"""Test helpers shared by the suites: real registries and real pushes, no mocks.

``RegistryProcess`` runs a private Docker Distribution (``docker-registry``) on a loopback port
with its own storage and notification endpoint, so a test run never touches the development
registry; with ``auth=RegistryAuth(...)`` it delegates authentication to the token service
(services/auth), as ``make up`` runs it. ``push_image`` pushes a small, real image through the
registry's HTTP API (the same calls the docker CLI makes), which is far faster than building one
with docker; give it a ``token_session`` when the registry wants tokens.
"""

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime

import eventlet
import eventlet.wsgi
import requests

from shared.runtime.registry_auth import RegistryTokenAuth

DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
{auth}notifications:
  events:
    includereferences: true
  endpoints:
    - name: imagehub-webhook
      url: {webhook_url}
      headers:
        Authorization: [Bearer {token}]
      timeout: 2s
      threshold: 3
      backoff: 1s
      ignoredmediatypes: [application/octet-stream]
      ignore:
        actions: [pull, mount]
"""

# Basic authentication against an htpasswd file (bcrypt): how a plain upstream registry asks for a login.
REGISTRY_HTPASSWD_CONFIG = """\
auth:
  htpasswd:
    realm: upstream
    path: {path}
"""

# The auth.token section, as deploy/registry/config-auth.yml.in has it.
REGISTRY_AUTH_CONFIG = """\
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {cert_file}
"""


@dataclass
class RegistryAuth:
    """A registry's ``auth.token`` settings (the token service's realm, its AUTH_SERVICE and
    AUTH_ISSUER, the certificate of its signing key), and the account the test helpers read the
    registry with (an admin: it may read every namespace and list ``_catalog``)."""

    realm: str
    service: str
    issuer: str
    cert_file: str
    username: str | None = None
    password: str | None = None


def token_session(username=None, password=None):
    """A ``requests`` session that answers a registry's Bearer challenges as ``username``
    (``shared.runtime.registry_auth``: the password is checked once, then the refresh token is used)."""
    session = requests.Session()
    session.auth = RegistryTokenAuth(username, password)
    return session


# Ports the tests' own servers listen on: under the kernel's ephemeral range (32768 and up), so no
# outbound connection of any process takes one between its pick and its server's bind (a port the
# kernel hands out with bind(0) is one it may give the next connect() too), and under the
# deployer's PORT_RANGE (20000-29999).
FREE_PORTS = (10000, 19999)
# Each of the parallel runner's pytest processes (IMAGEHUB_TEST_SHARD: shard1…, exclusive) picks
# in a slice of its own, so two never pick the same port; and a process does not hand out a port
# again for HELD_SECONDS, since its server binds it only later (an e2e stack picks nine before
# starting anything: picked at random over the whole range, two of its services once got one port,
# and the stack did not start).
_SLICES = ("shard1", "shard2", "shard3", "shard4", "shard5", "shard6", "shard7", "shard8", "exclusive")
HELD_SECONDS = 300
_pick = random.Random()
_handed_out: dict[int, float] = {}  # port -> when


def port_slice(shard=None):
    """The ports ``free_port`` picks from in the runner's process ``shard`` (the whole range when
    the tests run outside it, or in a shard past the slices)."""
    shard = shard if shard is not None else os.environ.get("IMAGEHUB_TEST_SHARD", "")
    if shard not in _SLICES:
        return FREE_PORTS
    width = (FREE_PORTS[1] - FREE_PORTS[0] + 1) // len(_SLICES)
    low = FREE_PORTS[0] + _SLICES.index(shard) * width
    return low, low + width - 1


def free_port():
    low, high = port_slice()
    for _ in range(500):
        port = _pick.randint(low, high)
        if time.monotonic() - _handed_out.get(port, -HELD_SECONDS) < HELD_SECONDS:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out[port] = time.monotonic()
        return port
    raise RuntimeError(f"no free port in {low}-{high} on 127.0.0.1")


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the predicate may fail until the condition holds
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s (last error: {last_exc!r})")


class RegistryProcess:
    """A real ``docker-registry`` process on 127.0.0.1 for one test session; with ``auth`` (a
    ``RegistryAuth``) every request needs a token from the auth service, and the helpers below
    read the registry as ``auth.username``."""

    def __init__(self, webhook_url, token, port=None, workdir=None, auth=None, login=None, notify=True):
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.webhook_url = webhook_url
        self.token = token
        self.workdir = workdir or tempfile.mkdtemp(prefix="imagehub-registry-")
        self.storage = os.path.join(self.workdir, "storage")
        self.config_path = os.path.join(self.workdir, "config.yml")
        self.log_path = os.path.join(self.workdir, "registry.log")
        self.auth = auth
        # ``login`` (user, password): basic authentication instead of tokens, as an upstream
        # registry may ask; ``notify=False``: a registry nobody listens to (an upstream).
        self.login = login
        self.notify = notify
        self.proc = None
        self._session = None

    @property
    def session(self):
        """The session the assertion helpers read with: the admin's tokens when auth is on (made
        at first use, so the admin may be created after the registry), a plain one otherwise."""
        if self._session is None:
            self._session = token_session(self.auth.username, self.auth.password) if self.auth else requests.Session()
            self._session.auth = self._session.auth or self.login
        return self._session

    def config(self):
        config = REGISTRY_CONFIG.format(
            storage=self.storage,
            port=self.port,
            webhook_url=self.webhook_url,
            token=self.token,
            auth=REGISTRY_HTPASSWD_CONFIG.format(path=self._htpasswd()) if self.login else "",
        )
        if not self.notify:
            config = config.split("notifications:")[0]
        if self.auth:
            config += REGISTRY_AUTH_CONFIG.format(
                realm=self.auth.realm, service=self.auth.service, issuer=self.auth.issuer, cert_file=self.auth.cert_file
            )
        return config

    def _htpasswd(self):
        with warnings.catch_warnings():  # crypt: deprecated, and the one bcrypt at hand here
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt

        path = os.path.join(self.workdir, "htpasswd")
        user, password = self.login
        with open(path, "w") as f:
            f.write(f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
        return path

    def start(self):
        os.makedirs(self.storage, exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(self.config())
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [shutil.which("docker-registry") or "docker-registry", "serve", self.config_path], stdout=log, stderr=log
        )
        wait_until(self._answers, timeout=20, what=f"registry on {self.host}")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"registry exited: see {self.log_path}")
        # With auth.token on, the base endpoint answers 401 with the Bearer challenge.
        return requests.get(f"{self.url}/v2/", timeout=1).status_code == (401 if self.auth or self.login else 200)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- registry HTTP API helpers for assertions (as the admin when auth is on) -------------
    def tags(self, repository):
        resp = self.session.get(f"{self.url}/v2/{repository}/tags/list", timeout=5)
        if resp.status_code == 404:
            return []
        resp.raise_for_status()
        return sorted(resp.json().get("tags") or [])

    def manifest_digest(self, repository, reference):
        resp = self.session.head(
            f"{self.url}/v2/{repository}/manifests/{reference}",
            timeout=5,
            headers={"Accept": ", ".join([DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX])},
        )
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.headers["Docker-Content-Digest"]

    def manifest(self, repository, reference):
        """The manifest as the registry serves it (a ``requests`` response, any status)."""
        return self.session.get(
            f"{self.url}/v2/{repository}/manifests/{reference}",
            timeout=5,
            headers={"Accept": ", ".join([DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX])},
        )

    def repositories(self):
        """Every repository name, from ``/v2/_catalog`` page by page."""
        names, url = [], f"{self.url}/v2/_catalog?n=100"
        while url:
            resp = self.session.get(url, timeout=10)
            resp.raise_for_status()
            names += resp.json().get("repositories") or []
            link = resp.headers.get("Link")
            url = f"{self.url}{link.split(';')[0].strip('<> ')}" if link else None
        return names

    def delete_manifest(self, repository, digest):
        delete_manifest(self.url, repository, digest, session=self.session)


# A fixed creation time by default, so that pushing the same content twice gives the same digest.
FIXED_CREATED = "2026-01-02T03:04:05Z"


class NotificationSink:
    """An endpoint a registry notifies instead of the webhook (checking its bearer token): it keeps
    every event, so a test can look at what the registry sent or deliver it later itself."""

    def __init__(self, token):
        self.token = token
        self.events = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/registry/events"
        self.socket = eventlet.listen(("127.0.0.1", self.port))
        self.thread = eventlet.spawn(eventlet.wsgi.server, self.socket, self._app, log_output=False)

    def _app(self, environ, start_response):
        if environ.get("HTTP_AUTHORIZATION") != f"Bearer {self.token}":
            start_response("401 Unauthorized", [])
            return [b""]
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.events.extend(json.loads(body)["events"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"{}"]

    def pushes(self, repository):
        """Manifest push events of ``repository`` (blob events are ignored by the config)."""
        return [e for e in self.events if e.get("action") == "push" and e["target"].get("repository") == repository]

    def close(self):
        self.thread.kill()
        self.socket.close()


def migrated_sqlite_template(tmp_path_factory, name, upgrade):
    """A SQLite file built once by a service's migrations (``upgrade(url)``); copy it per test."""
    path = tmp_path_factory.mktemp(f"{name}-template") / f"{name}.db"
    upgrade(f"sqlite:///{path}")
    return path


def downgrade(engine, alembic_config, revision):
    """Take a service's database on ``engine`` down to ``revision`` (its ``alembic_config``)."""
    from alembic import command

    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def sqlite_copy(template, tmp_path):
    """The URL of a fresh copy of a migrated template: a migrated database in milliseconds."""
    path = tmp_path / template.name
    shutil.copy(template, path)
    return f"sqlite:///{path}"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(content):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(content)
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    diff_id = sha256(raw.getvalue())
    return gzip.compress(raw.getvalue(), mtime=0), diff_id


def _upload_blob(session, registry_url, repository, data):
    digest = sha256(data)
    if session.head(f"{registry_url}/v2/{repository}/blobs/{digest}", timeout=10).status_code == 200:
        return digest
    resp = session.post(f"{registry_url}/v2/{repository}/blobs/uploads/", timeout=10)
    resp.raise_for_status()
    location = resp.headers["Location"]
    if location.startswith("/"):
        location = registry_url + location
    sep = "&" if "?" in location else "?"
    resp = session.put(
        f"{location}{sep}digest={digest}", data=data, timeout=30, headers={"Content-Type": "application/octet-stream"}
    )
    resp.raise_for_status()
    return digest


def push_image(
    registry_url,
    repository,
    tag,
    content=b"hello",
    author=None,
    created=None,
    architecture="amd64",
    os_name="linux",
    session=None,
):
    """Push a one-layer image (Docker schema 2) and return a dict describing what was pushed.

    ``content`` (with ``created``, fixed by default) decides the digest: the same content gives
    the same digest. ``tag`` may be None to push by digest only.
    """
    session = session or requests.Session()
    created = created or FIXED_CREATED
    layer, diff_id = _layer(content)
    config = {
        "architecture": architecture,
        "os": os_name,
        "created": created,
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created}],
    }
    if author:
        config["author"] = author
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = _upload_blob(session, registry_url, repository, config_bytes)
    layer_digest = _upload_blob(session, registry_url, repository, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_V2,
        "config": {"mediaType": DOCKER_CONFIG, "size": len(config_bytes), "digest": config_digest},
        "layers": [{"mediaType": DOCKER_LAYER, "size": len(layer), "digest": layer_digest}],
    }
    body = json.dumps(manifest, sort_keys=True).encode()
    digest = sha256(body)
    resp = session.put(
        f"{registry_url}/v2/{repository}/manifests/{tag or digest}",
        data=body,
        headers={"Content-Type": DOCKER_MANIFEST_V2},
        timeout=30,
    )
    resp.raise_for_status()
    return {
        "repository": repository,
        "tag": tag,
        "digest": digest,
        "image_id": config_digest,
        "created": created,
        "size": len(body),
        "layers": [layer_digest],
        "architecture": architecture,
        "os": os_name,
        "media_type": DOCKER_MANIFEST_V2,
    }


def push_index(
    registry_url, repository, tag, platforms=(("amd64", "linux"), ("arm64", "linux")), content=b"multi", session=None
):
    """Push a multi-platform image: each platform manifest by digest, then the index by tag."""
    session = session or requests.Session()
    children = [
        push_image(
            registry_url,
            repository,
            None,
            content=content + arch.encode(),
            architecture=arch,
            os_name=os_name,
            session=session,
        )
        for arch, os_name in platforms
    ]
    index = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST_V2,
                "size": c["size"],
                "digest": c["digest"],
                "platform": {"architecture": c["architecture"], "os": c["os"]},
            }
            for c in children
        ],
    }
    body = json.dumps(index, sort_keys=True).encode()
    resp = session.put(
        f"{registry_url}/v2/{repository}/manifests/{tag}",
        data=body,
        headers={"Content-Type": DOCKER_MANIFEST_LIST},
        timeout=30,
    )
    resp.raise_for_status()
    return {
        "repository": repository,
        "tag": tag,
        "digest": sha256(body),
        "children": children,
        "media_type": DOCKER_MANIFEST_LIST,
        "size": len(body),
    }


def delete_manifest(registry_url, repository, digest, session=None):
    resp = (session or requests).delete(f"{registry_url}/v2/{repository}/manifests/{digest}", timeout=10)
    resp.raise_for_status()


def notification_envelope(*events):
    return {"events": list(events)}


def push_notification(
    repository,
    digest,
    tag=None,
    media_type=DOCKER_MANIFEST_V2,
    size=527,
    event_id=None,
    actor=None,
    registry_host="127.0.0.1:5000",
):
    """A manifest push event shaped as Docker Distribution 2.8 sends it."""
    import uuid

    event = {
        "id": event_id or str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "action": "push",
        "target": {
            "mediaType": media_type,
            "size": size,
            "digest": digest,
            "length": size,
            "repository": repository,
            "url": f"http://{registry_host}/v2/{repository}/manifests/{digest}",
        },
        "request": {
            "id": str(uuid.uuid4()),
            "addr": "127.0.0.1:40000",
            "host": registry_host,
            "method": "PUT",
            "useragent": "docker/20.10.24",
        },
        "actor": {"name": actor} if actor else {},
        "source": {"addr": "imagehub:5000", "instanceID": str(uuid.uuid4())},
    }
    if tag:
        event["target"]["tag"] = tag
    return event


def delete_notification(repository, digest=None, tag=None, event_id=None, request_id=None):
    import uuid

    target = {"repository": repository}
    if digest:
        target["digest"] = digest
    if tag:
        target["tag"] = tag
    return {
        "id": event_id or str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(),
        "action": "delete",
        "target": target,
        "request": {
            "id": request_id or str(uuid.uuid4()),
            "addr": "127.0.0.1:40000",
            "host": "127.0.0.1:5000",
            "method": "DELETE",
            "useragent": "curl",
        },
        "actor": {},
        "source": {"addr": "imagehub:5000", "instanceID": str(uuid.uuid4())},
    }
