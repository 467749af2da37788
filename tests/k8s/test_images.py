"""The service images: they build (scripts/images.sh, the same as `make images`), and each service
starts from its image the way its Deployment starts it, against the local RabbitMQ and PostgreSQL,
and answers.

Each container runs as the manifests run it: the Deployment's command, its ConfigMap's settings,
a read-only root filesystem with /tmp and /app/var as scratch, no capabilities. Only the
addresses change: host networking and loopback (the broker's test vhost, a fresh PostgreSQL
schema, free ports), no cluster DNS. The migration Job's command runs first, and the Deployment's
own probe commands decide when it is up; the schema gate is seen to hold before the migration and
to open after it.

The build is content-keyed: a machine builds the base image once and the service images again
only when what goes into them changes, so a warm run costs seconds (docs/kubernetes.md has the
figures).
"""

import datetime
import json
import os
import signal
import subprocess
import time
import uuid

import pytest
import requests

from shared.runtime.identity import IdentifiedClusterRpcProxy
from tests.conftest import postgres_schema
from tests.k8s.conftest import ROOT, SERVICES, one, rendered
from tests.support import free_port

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

# A cold build (debootstrap, then pip in the build stage) takes a few minutes on these machines.
BUILD_TIMEOUT = 1200
HTTP_PORT_SETTING = {"webhook": "WEBHOOK_ADDRESS", "auth": "AUTH_ADDRESS", "gateway": "GATEWAY_ADDRESS"}
DB_SETTING = {"catalog": "CATALOG_DB_URL", "deployer": "DEPLOYER_DB_URL", "auth": "AUTH_DB_URL"}


def docker(*args, timeout=120, check=True):
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def images():
    started = time.monotonic()
    out = subprocess.run(
        ["bash", os.path.join(ROOT, "scripts", "images.sh")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    built = dict(line.split() for line in out.stdout.splitlines() if line.strip())
    print(f"scripts/images.sh: {time.monotonic() - started:.1f}s\n{out.stderr}")
    assert set(built) == set(SERVICES)
    return built


def _deployment_container(service):
    deployment = one(rendered("dev"), "Deployment", service)
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if c["name"] == service)


def _job_container(service):
    job = one(rendered("dev"), "Job", "imagehub-migrate")
    return next((c for c in job["spec"]["template"]["spec"]["containers"] if c["name"] == service), None)


def _gate_command(service):
    deployment = one(rendered("dev"), "Deployment", service)
    inits = deployment["spec"]["template"]["spec"].get("initContainers", [])
    return next(c["command"] for c in inits if c["name"] == "wait-for-schema")


def _settings(service):
    """The service's ConfigMap values (dev overlay), as its pods get them."""
    container = _deployment_container(service)
    docs = rendered("dev")
    env = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        env.update(next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name)["data"])
    return env


def _auth_keys(directory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagehub-auth test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (directory / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Run:
    """What one service needs around its container: settings, mounts, and cleanup."""

    def __init__(self, service, image, rabbit_config, db_url, tmp_path):
        self.service, self.image = service, image
        self.names = []
        self.env = _settings(service)
        self.env["AMQP_URI"] = rabbit_config["AMQP_URI"]
        if service in DB_SETTING:
            self.env[DB_SETTING[service]] = db_url
        self.mounts = []
        self.port = None
        if service in HTTP_PORT_SETTING:
            self.port = free_port()
            self.env[HTTP_PORT_SETTING[service]] = f"127.0.0.1:{self.port}"
        if service == "webhook":
            self.env["WEBHOOK_TOKEN"] = uuid.uuid4().hex
        if service == "catalog":
            # Nothing to index here: no registry and no periodic pass against one.
            self.env["REGISTRY_URL"] = f"http://127.0.0.1:{free_port()}"
            self.env["CATALOG_RESYNC_INTERVAL"] = "0"
        if service == "deployer":
            pools = tmp_path / "pools"
            pools.mkdir()
            # One host that does not answer: list_pools reports it, nothing is started anywhere.
            (pools / "pools.yml").write_text(
                "default:\n  network_mode: host\n  hosts:\n"
                f"    - {{name: nowhere, base_url: 'tcp://127.0.0.1:{free_port()}', address: 127.0.0.1,"
                " cpus: 1, memory: 1g}\n"
            )
            self.mounts.append((pools, "/etc/imagehub/pools"))
        if service == "auth":
            keys = tmp_path / "auth-keys"
            keys.mkdir()
            _auth_keys(keys)
            self.mounts.append((keys, "/etc/imagehub/auth"))
        if service == "gateway":  # its CSRF key, where GATEWAY_SECRET_FILE says (as the Secret's volume)
            key_dir = tmp_path / "gateway-key"
            key_dir.mkdir()
            (key_dir / os.path.basename(self.env["GATEWAY_SECRET_FILE"])).write_text(uuid.uuid4().hex * 2)
            self.mounts.append((key_dir, os.path.dirname(self.env["GATEWAY_SECRET_FILE"])))
        if service in ("catalog", "deployer", "gateway"):  # they check developer identities with its certificate
            cert = tmp_path / "auth-cert"
            cert.mkdir()
            _auth_keys(cert)
            (cert / "tls.key").unlink()  # as in Kubernetes: the certificate alone
            self.mounts.append((cert, "/etc/imagehub/auth-cert"))
        for directory, _ in self.mounts:
            os.chmod(directory, 0o755)
            for f in directory.iterdir():
                os.chmod(f, 0o644)

    def _args(self, name, detach):
        args = [
            "run",
            "--name",
            name,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/app/var:uid=10001,gid=10001",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--label",
            "imagehub.test=k8s-images",
        ]
        args += ["-d"] if detach else ["--rm"]
        for key, value in sorted(self.env.items()):
            args += ["-e", f"{key}={value}"]
        for source, target in self.mounts:
            args += ["-v", f"{source}:{target}:ro"]
        return args

    def once(self, command, timeout=120):
        """Run a command in a fresh container (as a Job or init container would); its result."""
        name = f"ih-k8s-{self.service}-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        return docker(*self._args(name, detach=False), self.image, *command, timeout=timeout, check=False)

    def start(self, command):
        self.name = f"ih-k8s-{self.service}-{uuid.uuid4().hex[:8]}"
        self.names.append(self.name)
        docker(*self._args(self.name, detach=True), self.image, *command)

    def exec(self, command, timeout=30):
        return docker("exec", self.name, *command, timeout=timeout, check=False)

    def probe(self, spec):
        """A Kubernetes probe of the Deployment, carried out here: True when it passes."""
        if "exec" in spec:
            return self.exec(spec["exec"]["command"]).returncode == 0
        http = spec["httpGet"]
        try:
            return requests.get(f"http://127.0.0.1:{self.port}{http['path']}", timeout=3).status_code < 400
        except requests.RequestException:
            return False

    def wait_until(self, spec, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.probe(spec):
                return
            state = json.loads(docker("inspect", self.name).stdout)[0]["State"]
            if not state["Running"]:
                break
            time.sleep(0.5)
        logs = docker("logs", self.name, check=False)
        pytest.fail(f"{self.service} never passed {spec}:\n{logs.stdout[-2000:]}{logs.stderr[-4000:]}")

    def cleanup(self):
        for name in self.names:
            docker("rm", "-f", "-v", name, check=False)


@pytest.fixture
def run(images, rabbit_config, tmp_path):
    runs = []

    def make(service):
        schema = postgres_schema()
        url = schema.__enter__()
        r = Run(service, images[service], rabbit_config, url, tmp_path)
        runs.append((r, schema))
        return r

    yield make
    for r, schema in runs:
        r.cleanup()
        schema.__exit__(None, None, None)


def _answer(service, run, rabbit_config):
    """The service answers: its HTTP health, or an RPC call."""
    if service in HTTP_PORT_SETTING:
        response = requests.get(f"http://127.0.0.1:{run.port}/health", timeout=5)
        assert response.status_code == 200 and response.json()["status"] == "ok"
        if service == "gateway":
            _gateway_package_data(run.port)
        return
    with IdentifiedClusterRpcProxy(rabbit_config, timeout=20) as rpc:
        if service == "catalog":
            assert rpc.catalog.parse_reference("library/nginx:latest")["namespace"] == "library"
            # The library mirror's copier is in the image, and runs as the service's user.
            skopeo = run.exec(["skopeo", "--version"])
            assert skopeo.returncode == 0 and skopeo.stdout.startswith("skopeo version"), skopeo.stderr
        elif service == "deployer":
            pools = rpc.deployer.list_pools()["items"]
            assert [p["name"] for p in pools] == ["default"]
            assert pools[0]["hosts"][0]["reachable"] is False
        else:
            pytest.fail(f"no call known for {service}")


def _gateway_package_data(port):
    """The gateway's package data is in its image: the console's static files, its templates (an
    unknown console path is answered with the error page rendered from templates/error.html), and
    the API's OpenAPI document (generated from its schemas)."""
    base = f"http://127.0.0.1:{port}"
    css = requests.get(f"{base}/static/console.css", timeout=5)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css"), css.status_code
    page = requests.get(f"{base}/static/no-such-file.css", timeout=5)
    assert page.status_code == 404 and page.headers["Content-Type"].startswith("text/html"), page.text[:500]
    assert "<title>" in page.text and "/static/console.css" in page.text, page.text[:500]
    document = requests.get(f"{base}/api/v1/openapi.json", timeout=5)
    assert document.status_code == 200 and "/api/v1/repositories" in document.json()["paths"]
    unsigned = requests.get(f"{base}/api/v1/library", timeout=5)
    assert unsigned.status_code == 401 and unsigned.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.timeout(BUILD_TIMEOUT + 300)
@pytest.mark.parametrize("service", SERVICES)
def test_service_starts_from_its_image_and_answers(service, run, rabbit_config):
    r = run(service)
    container = _deployment_container(service)
    migration = _job_container(service)
    if migration is not None:
        gate = _gate_command(service)
        before = r.once([*gate[:-1], "0"])
        assert before.returncode == 1, before.stdout + before.stderr
        migrated = r.once(migration["command"])
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        after = r.once([*gate[:-1], "5"])
        assert after.returncode == 0, after.stdout + after.stderr

    started = time.monotonic()
    r.start(container["command"])
    r.wait_until(container["readinessProbe"])
    ready_after = time.monotonic() - started
    assert r.probe(container["livenessProbe"])
    _answer(service, r, rabbit_config)
    print(f"{service}: ready {ready_after:.1f}s after start")
    user = r.exec(["id", "-u"]).stdout.strip()
    assert user == "10001"


@pytest.mark.timeout(BUILD_TIMEOUT + 300)
def test_liveness_probe_fails_for_a_stuck_process(run, rabbit_config):
    """A catalog whose process no longer runs (SIGSTOP) leaves broker deliveries unread: the
    Deployment's liveness command says so, and passes again once it runs."""
    from kombu import Connection, Exchange, Producer

    r = run("catalog")
    container = _deployment_container("catalog")
    r.once(_job_container("catalog")["command"])
    r.start(container["command"])
    r.wait_until(container["readinessProbe"])
    pid = json.loads(docker("inspect", r.name).stdout)[0]["State"]["Pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        with Connection(rabbit_config["AMQP_URI"]) as connection:
            Producer(connection, exchange=Exchange("nameko-rpc", type="topic", durable=True)).publish(
                {"args": [], "kwargs": {"reference": "library/busybox"}},
                routing_key="catalog.parse_reference",
                serializer="json",
            )
        deadline = time.monotonic() + 10
        while r.probe(container["livenessProbe"]):
            assert time.monotonic() < deadline, "liveness still passes for a stopped process"
            time.sleep(0.5)
    finally:
        os.kill(pid, signal.SIGCONT)
    r.wait_until(container["livenessProbe"], seconds=20)
