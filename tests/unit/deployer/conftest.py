"""Unit-test fixtures: a migrated SQLite database per test, fake engines, a fake clock.

``World`` stands in for everything outside the deployer: the engines of the pool (``FakeEngine``,
same methods and errors as ``deployer.dependencies.DockerEngine``), the registry they pull from,
the catalogue, the broker (published events, and ``drain`` to carry out rollout_requested as the
service's handler would) and time (``sleep`` only moves a clock).
"""

import itertools
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from nameko_sqlalchemy.database import Session
from sqlalchemy.orm import sessionmaker

from deployer import autodeploy, rollout
from deployer.engine import (
    ContainerNotFound,
    ContainerState,
    ContainerSummary,
    EngineError,
    EngineUnavailable,
    ImageNotFound,
    PullDenied,
)
from deployer.migrate import upgrade
from deployer.runtime import Runtime
from deployer.settings import load_settings
from shared.contracts.errors import Forbidden, NotFound
from shared.contracts.events import (
    DEPLOYMENT_STATUS_CHANGED,
    ROLLOUT_REQUESTED,
    RolloutRequested,
    TagIndexed,
    load_event,
    make_event,
)
from shared.runtime import db
from tests.support import migrated_sqlite_template, sqlite_copy

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
DIGEST_V1 = "sha256:" + "1" * 64
DIGEST_V2 = "sha256:" + "2" * 64
PULL_HOST = "127.0.0.1:5000"

# config.yml as nameko would read it with nothing set in the environment: the unit tests pin
# their own values rather than depend on the machine's.
CONFIG = {
    "DEPLOYER_ID": "unit",
    "REGISTRY_PULL_HOST": PULL_HOST,
    "REGISTRY_PUBLIC_HOST": "registry.example.com",
    "REGISTRY_USERNAME": "",
    "REGISTRY_PASSWORD": "",
    "POOLS_FILE": None,
    "DEFAULT_POOL": "default",
    "POOLS": {
        "default": {
            "network_mode": "host",
            "shared_network_namespace": True,
            "hosts": [
                {
                    "name": "local-1",
                    "base_url": "unix:///run/one.sock",
                    "address": "127.0.0.1",
                    "cpus": 2,
                    "memory": "4g",
                },
                {
                    "name": "local-2",
                    "base_url": "unix:///run/two.sock",
                    "address": "127.0.0.1",
                    "cpus": 2,
                    "memory": "4g",
                },
            ],
        },
        "prod": {
            "network_mode": "bridge",
            "hosts": [
                {
                    "name": "prod-1",
                    "base_url": "tcp://prod-1.docker.example:2376",
                    "address": "prod-1.docker.example",
                    "cpus": 8,
                    "memory": "16g",
                    "tls": {"ca_cert": "/ca.pem", "client_cert": "/cert.pem", "client_key": "/key.pem"},
                },
            ],
        },
    },
    "PORT_RANGE": "20000-20099",
    "DEFAULT_CPU": 0.25,
    "DEFAULT_MEMORY": "256m",
    "MAX_REPLICAS": 50,
    "PIDS_LIMIT": 512,
    "HEALTH_SECONDS": 3,
    "HEALTH_TIMEOUT": 30,
    "STOP_TIMEOUT": 10,
    "PING_TIMEOUT": 2,
    "ENGINE_TIMEOUT": 60,
    "DOCKER_API_VERSION": "1.41",
    "RECONCILE_INTERVAL": 10,
    "OPERATION_STALE_AFTER": 300,
    "OUTBOX_RELAY_INTERVAL": 2,
    "OUTBOX_RELAY_MIN_AGE": 2,
    "PULL_CREDENTIALS": "static",
    "AUTH_RPC_TIMEOUT": 5,
}


@pytest.fixture
def settings():
    return load_settings(CONFIG)


class Clock:
    def __init__(self):
        self.elapsed = 0.0

    def now(self):
        return T0 + timedelta(seconds=self.elapsed)

    def monotonic(self):
        return self.elapsed

    def sleep(self, seconds):
        self.elapsed += seconds


class FakeEngine:
    """One host's engine. ``down`` makes every call ``EngineUnavailable``."""

    def __init__(self, name, world):
        self.name = name
        self.world = world
        self.down = False
        self.images = set()
        self.pull_auths = []  # the auth_config of each pull, in order
        self.containers = {}  # id -> {"spec", "status", "exit_code", "restart_count", "logs"}
        self.calls = []

    def _check(self, call):
        self.calls.append(call)
        if self.down:
            raise EngineUnavailable(f"{self.name}: connection refused")

    def ping(self):
        self._check(("ping",))

    def has_image(self, image):
        self._check(("has_image", image))
        return image in self.images

    def pull(self, image, auth):
        self._check(("pull", image))
        self.pull_auths.append(auth)
        outcome = self.world.registry.get(image)
        if outcome is None:
            raise ImageNotFound(f"manifest for {image} not found: manifest unknown")
        if outcome == "denied":
            raise PullDenied(f"pull access denied for {image}")
        self.images.add(image)

    def run(self, spec):
        self._check(("run", spec.name))
        if spec.image not in self.images:
            raise EngineError(f"No such image: {spec.image}")
        if any(c["spec"].name == spec.name for c in self.containers.values()):
            raise EngineError(f"Conflict. The container name {spec.name!r} is already in use")
        container_id = f"{self.name}-{next(self.world.ids):04d}"
        status, exit_code, logs = self.world.behaviour(spec)
        restart_count = 1 if any(predicate(spec) for predicate in self.world.restarts) else 0
        self.containers[container_id] = {
            "spec": spec,
            "status": status,
            "exit_code": exit_code,
            "restart_count": restart_count,
            "logs": logs,
        }
        return container_id

    def _find(self, ref):
        for container_id, container in self.containers.items():
            if ref in (container_id, container["spec"].name):
                return container_id
        raise ContainerNotFound(f"No such container: {ref}")

    def inspect(self, container_id):
        self._check(("inspect", container_id))
        found = self.containers[self._find(container_id)]
        return ContainerState(
            id=self._find(container_id),
            status=found["status"],
            running=found["status"] == "running",
            exit_code=found["exit_code"],
            restart_count=found["restart_count"],
        )

    def logs(self, container_id, tail):
        self._check(("logs", container_id))
        return self.containers[self._find(container_id)]["logs"]

    def remove(self, container_id, stop_timeout):
        self._check(("remove", container_id))
        try:
            del self.containers[self._find(container_id)]
        except ContainerNotFound:
            return False
        return True

    def list(self, labels):
        self._check(("list",))
        return [
            ContainerSummary(id=cid, name=c["spec"].name, status=c["status"], labels=dict(c["spec"].labels))
            for cid, c in self.containers.items()
            if all(c["spec"].labels.get(k) == v for k, v in labels.items())
        ]

    # -- for assertions ----------------------------------------------------------------------
    def running(self, deployment_id=None):
        return [
            c
            for c in self.containers.values()
            if c["status"] == "running"
            and (deployment_id is None or c["spec"].labels["imagehub.deployment"] == deployment_id)
        ]

    def kill(self, container_id, exit_code=137):
        self.containers[container_id].update(status="exited", exit_code=exit_code)


class FakeCatalog:
    """``get_tag`` with the catalogue's tenant rule: the public library and the caller's own."""

    def __init__(self):
        self.tags = {}  # (repository, tag) -> digest
        self.pushed = {}  # (repository, tag) -> pushed_at (ISO-8601), when the test says

    def get_tag(self, tenant_id, repository, tag):
        namespace = repository.split("/")[0]
        if namespace not in ("library", tenant_id):
            raise Forbidden(f"tenant {tenant_id!r} may not read {repository!r}")
        if (repository, tag) not in self.tags:
            raise NotFound(f"tag {repository}:{tag} not found")
        return {
            "repository": repository,
            "tag": tag,
            "digest": self.tags[repository, tag],
            "pushed_at": self.pushed.get((repository, tag)),
        }


class World:
    def __init__(self, settings, transaction):
        self.settings = settings
        self.clock = Clock()
        self.ids = itertools.count(1)
        self.engines = {host.name: FakeEngine(host.name, self) for host in settings.all_hosts()}
        self.registry = {}  # pull ref -> "ok" | "denied"
        self.catalog = FakeCatalog()
        self.events = []  # (event_type, payload) in publication order
        self.handled = 0  # how many of the events drain has looked at
        self.taken_ports = set()  # bound by someone else on the machine
        self.exits = []  # predicates on a ContainerSpec: such containers exit at once
        self.no_http = []  # predicates: such containers never answer HTTP
        # predicates: such containers exited and were started again by their restart policy (the
        # engine then reports the running attempt: exit code 0)
        self.restarts = []
        self.rt = Runtime(
            settings=settings,
            transaction=transaction,
            engine=self.engines.__getitem__,
            http_ok=self.http_ok,
            catalog=self.catalog,
            publish=self.publish,
            port_is_free=lambda host, port: port not in self.taken_ports,
            now=self.clock.now,
            monotonic=self.clock.monotonic,
            sleep=self.clock.sleep,
            rng=random.Random(7),
        )

    def publish(self, event_type, payload):
        self.events.append((event_type, payload))

    def behaviour(self, spec):
        if any(predicate(spec) for predicate in self.exits):
            return "exited", 3, "starting\nbye\n"
        if any(predicate(spec) for predicate in self.restarts):
            return "running", 0, "starting\nbye\nstarting\n"
        return "running", None, "listening\n"

    def http_ok(self, url, timeout):
        port = int(url.split(":")[2].split("/")[0])
        return any(
            c["status"] == "running"
            and c["spec"].env.get("PORT") == str(port)
            and not any(predicate(c["spec"]) for predicate in self.no_http)
            for engine in self.engines.values()
            for c in engine.containers.values()
        )

    def tag(self, repository, tag, digest, pullable="ok", pushed_at=None):
        self.catalog.tags[repository, tag] = digest
        if pushed_at is not None:
            self.catalog.pushed[repository, tag] = pushed_at.isoformat()
        self.registry[f"{PULL_HOST}/{repository}@{digest}"] = pullable

    def tag_indexed(self, repository, tag, digest, pushed_at=None, actor="alice", event_id=None, previous=None):
        """A ``tag_indexed`` payload as the catalog sends it (the digest made pullable); pushed now
        by default. ``deliver`` hands it to the deployer."""
        self.registry.setdefault(f"{PULL_HOST}/{repository}@{digest}", "ok")
        fields = dict(
            namespace=repository.split("/")[0],
            repository=repository,
            tag=tag,
            digest=digest,
            previous_digest=previous,
            image_id="sha256:" + "9" * 64,
            pushed_at=(pushed_at or self.clock.now()).isoformat(),
            is_ownbase=False,
            actor=actor,
        )
        if event_id is not None:
            fields["event_id"] = event_id
        return json.loads(json.dumps(make_event(TagIndexed, **fields)))  # as it crosses AMQP

    def deliver(self, payload):
        """The deployer's handling of one tag_indexed delivery; its ``autodeploy.Outcome``."""
        return autodeploy.handle_tag_indexed(self.rt, load_event(TagIndexed, payload))

    def statuses(self, deployment_id=None):
        return [
            (p["revision"], p["status"])
            for kind, p in self.events
            if kind == DEPLOYMENT_STATUS_CHANGED and deployment_id in (None, p["deployment_id"])
        ]

    def drain(self):
        """Carry out every rollout_requested published so far (and those they publish)."""
        while self.handled < len(self.events):
            kind, payload = self.events[self.handled]
            self.handled += 1
            if kind == ROLLOUT_REQUESTED:
                rollout.handle(self.rt, load_event(RolloutRequested, payload))

    def containers(self, deployment_id=None):
        return [c for engine in self.engines.values() for c in engine.running(deployment_id)]


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    """The migration builds the schema once; each test gets a copy of the file."""
    return migrated_sqlite_template(tmp_path_factory, "deployer", upgrade)


@pytest.fixture
def transaction(migrated_template, tmp_path):
    engine = db.create_engine(sqlite_copy(migrated_template, tmp_path))
    factory = sessionmaker(bind=engine, class_=Session)
    yield lambda: factory(close_on_exit=True)
    engine.dispose()


@pytest.fixture
def world(settings, transaction):
    world = World(settings, transaction)
    world.tag("t1/web", "v1", DIGEST_V1)
    world.tag("t1/web", "v2", DIGEST_V2)
    world.tag("library/nginx", "latest", "sha256:" + "3" * 64)
    return world


def web_spec(**overrides):
    spec = {
        "name": "web",
        "image": "t1/web:v1",
        "replicas": 2,
        "ports": [{"container_port": 8080}],
        "health": {"type": "running", "seconds": 1},
        "cpu": 0.5,
        "memory": "256m",
    }
    spec.update(overrides)
    return spec
