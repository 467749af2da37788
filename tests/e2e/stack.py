"""The whole suite as real processes: a private RabbitMQ vhost, a real registry, and the
services started with `nameko run` exactly as scripts/services.sh starts them.

Token authentication is on, as `make up` runs it: the auth service (its own SQLite database and a
key pair made by scripts/auth-keys.sh in the stack's directory), the registry's ``auth.token``
pointed at it, the platform admin and the catalogue's robot made with ``python -m auth.manage``,
the catalogue reading the registry as that robot and the deployer pulling with a robot
credential of each deployment's tenant. Tests push as a developer account of their tenant
(``add_tenant``, ``session``, ``DockerCLI.login``) and read the registry as the admin
(``registry.tags()`` and the other helpers).
"""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import namedtuple

import requests

from shared.ops import broker_access
from shared.ops.broker_access import operator_management
from shared.runtime.identity import IDENTITY_KEY, IdentifiedClusterRpcProxy
from tests.support import RegistryAuth, RegistryProcess, free_port, token_session, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
ENGINES = ("unix:///var/run/docker.sock", "unix:///var/run/imagehub-docker2.sock")
ISSUER, SERVICE = "imagehub-auth", "imagehub-registry"
ADMIN = "admin"

Account = namedtuple("Account", "name password")


class ServiceProcess:
    """One `nameko run` process; can be stopped, killed and started again.

    It starts with the stack's shared ``env`` (read at each start, so a test may change it
    before) plus ``own``: settings only this service gets, such as the catalogue's registry
    credentials (the deployer's config.yml reads the same names)."""

    def __init__(self, name, env, log_dir, own=None):
        self.name = name
        self.env = env
        self.own = dict(own or {})
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.proc = None
        self.signalled = None

    def environment(self):
        return dict(self.env, **self.own)

    def start(self):
        self.signalled = None
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                os.path.join(BIN, "nameko"),
                "run",
                "--config",
                f"services/{self.name}/config.yml",
                f"{self.name}.service",
            ],
            cwd=ROOT,
            env=self.environment(),
            stdout=log,
            stderr=log,
        )
        return self

    def stop(self, sig=signal.SIGTERM, wait=True):
        """Send ``sig`` and wait for the process to end (killed after 15 s); ``wait=False``:
        only send it."""
        if self.proc and self.proc.poll() is None:
            if self.signalled != sig:  # once: a second SIGTERM would cut nameko's own stop short
                self.proc.send_signal(sig)
                self.signalled = sig
            if not wait:
                return
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def entries(self):
        """The service's log lines (shared.runtime.logs), in order, each as its JSON object; a line
        that is not JSON (a warning printed before logging is set up) as ``{"message": line}``."""
        found = []
        for line in self.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            found.append(entry if isinstance(entry, dict) and "message" in entry else {"message": line})
        return found

    def messages(self):
        return [entry["message"] for entry in self.entries()]


class Stack:
    SERVICES = ("auth", "catalog", "webhook", "deployer", "gateway")

    def __init__(self, workdir):
        self.workdir = workdir
        self.vhost = f"imagehub-e2e-{uuid.uuid4().hex[:8]}"
        # The stack's vhost and its broker users, as `make up` makes them (deploy/broker/access.yml):
        # each service runs as its own user, and ``rpc`` and the CLI call as ``admin``.
        # ``amqp_uri`` is the broker operator's, for what the tests themselves listen to or inject.
        self.broker = operator_management()
        self.matrix = broker_access.load()
        self.amqp_uri = self.broker.amqp_uri(self.vhost)
        self.broker_passwords = {role: uuid.uuid4().hex for role in self.matrix.roles}
        self.token = uuid.uuid4().hex
        self.webhook_port = free_port()
        self.webhook_url = f"http://127.0.0.1:{self.webhook_port}"
        self.auth_url = f"http://127.0.0.1:{free_port()}"
        # The developers' console and API (services/gateway), as a browser or API client reaches it.
        self.gateway_url = f"http://127.0.0.1:{free_port()}"
        self.var = os.path.join(workdir, "var")  # scripts/auth-keys.sh's IMAGEHUB_VAR: keys in var/secrets
        self.registry = RegistryProcess(
            f"{self.webhook_url}/registry/events",
            self.token,
            workdir=os.path.join(workdir, "registry"),
            auth=RegistryAuth(
                realm=f"{self.auth_url}/token",
                service=SERVICE,
                issuer=ISSUER,
                cert_file=os.path.join(self.var, "secrets", "auth-token.crt"),
            ),
        )
        # The caller's own settings for these would leak into the stack's services.
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AUTH_", "REGISTRY_", "DEPLOYER_", "CATALOG_", "WEBHOOK_", "GATEWAY_"))
        }
        self.env = dict(
            inherited,
            WEBHOOK_TOKEN=self.token,
            # Every service checks the developer identities auth signs against its certificate.
            AUTH_ISSUER=ISSUER,
            AUTH_CERT_FILE=self.registry.auth.cert_file,
            WEBHOOK_ADDRESS=f"127.0.0.1:{self.webhook_port}",
            REGISTRY_URL=self.registry.url,
            REGISTRY_PUBLIC_HOST=self.registry.host,
            CATALOG_DB_URL=f"sqlite:///{workdir}/catalog.db",
            DEPLOYER_DB_URL=f"sqlite:///{workdir}/deployer.db",
            REGISTRY_PULL_HOST=self.registry.host,
            # Its own ID: the reconciler touches only containers it made, not a `make up` suite's.
            DEPLOYER_ID=self.vhost,
            DEPLOYER_RECONCILE_INTERVAL="2",
            # Every pull with a short-lived robot credential of the deployment's tenant.
            DEPLOYER_PULL_CREDENTIALS="robot",
            AUTH_RPC_TIMEOUT="5",
            # The gateway gives up on a service that does not answer after this: a 503.
            GATEWAY_RPC_TIMEOUT="5",
        )
        auth_env = dict(
            AUTH_ADDRESS=self.auth_url.removeprefix("http://"),
            AUTH_DB_URL=f"sqlite:///{workdir}/auth.db",
            AUTH_ISSUER=ISSUER,
            AUTH_SERVICE=SERVICE,
            AUTH_KEY_FILE=os.path.join(self.var, "secrets", "auth-token.key"),
            AUTH_CERT_FILE=self.registry.auth.cert_file,
            # Argon2id at its cheapest allowed parameters: every account made, sign-in, docker
            # login and token asked for with a password or robot secret hashes once, and at the
            # production 64 MiB x 3 passes x 4 lanes that is 0.2 s of CPU (0.3 s of wall idle, 0.8 s
            # on the suite's loaded 2 cores), against 0.005 s here. The cost is no behaviour under
            # test here; tests/integration/auth runs the production parameters.
            AUTH_HASH_TIME_COST="1",
            AUTH_HASH_MEMORY_KIB=str(8 * 1024),
            AUTH_HASH_PARALLELISM="1",
        )
        gateway_env = dict(
            GATEWAY_ADDRESS=self.gateway_url.removeprefix("http://"),
            GATEWAY_SECRET_FILE=os.path.join(workdir, "gateway-secret"),
        )
        own = {"auth": auth_env, "gateway": gateway_env}
        # Each service's Prometheus page on a port of its own (stack.metrics_url(service)).
        self.metrics_ports = {name: free_port() for name in self.SERVICES}
        self.services = {
            name: ServiceProcess(
                name,
                self.env,
                workdir,
                own=dict(
                    own.get(name, {}),
                    AMQP_URI=self.role_uri(name),
                    **{f"{name.upper()}_METRICS_PORT": str(self.metrics_ports[name])},
                ),
            )
            for name in self.SERVICES
        }
        self.admin = None  # Account, once start() made it
        self.admin_identity = None  # its signed identity, once admin_proxy() signed in
        self.accounts = {}  # tenant ID -> its developer Account
        self._sessions = {}

    def metrics_url(self, service):
        """The service's Prometheus page (shared.runtime.metrics)."""
        return f"http://127.0.0.1:{self.metrics_ports[service]}/metrics"

    def role_uri(self, role):
        """The AMQP URI of the stack's broker user ``role`` (a service, ``admin``, ``platform``...)."""
        user = broker_access.user_name(self.broker_prefix, role)
        return broker_access.amqp_uri(user, self.broker_passwords[role], self.vhost)

    @property
    def broker_prefix(self):
        return f"{self.vhost}-"

    def start(self):
        self.broker.create_vhost(self.vhost)
        broker_access.apply(self.matrix, self.broker, self.vhost, self.broker_prefix, self.broker_passwords)
        self.bootstrap()
        for service in self.services.values():
            service.start()
        self.registry.start()
        self.wait_ready()
        return self

    def bootstrap(self):
        """As scripts/services.sh, before the services start: the token service's key pair
        (scripts/auth-keys.sh, into the stack's var/), every database migrated, the platform admin
        and the catalogue's robot (``auth.manage``). What does not depend on another step runs at
        the same time."""
        auth = self.services["auth"]
        steps = {
            "auth-keys.sh": self._popen(
                ["bash", os.path.join(ROOT, "scripts", "auth-keys.sh")],
                dict({k: v for k, v in self.env.items() if not k.startswith("AUTH_")}, IMAGEHUB_VAR=self.var),
            ),
            "auth.migrate": self._popen([sys.executable, "-m", "auth.migrate"], auth.environment()),
            **{
                f"{name}.migrate": self._popen([sys.executable, "-m", f"{name}.migrate"], self.env)
                for name in ("catalog", "deployer")
            },
        }
        with open(
            os.open(self.services["gateway"].own["GATEWAY_SECRET_FILE"], os.O_CREAT | os.O_WRONLY, 0o600), "w"
        ) as f:
            f.write(uuid.uuid4().hex + uuid.uuid4().hex)
        out = {name: self._finish(name, process) for name, process in steps.items()}
        exported = dict(line.removeprefix("export ").split("=", 1) for line in out["auth-keys.sh"].splitlines())
        assert exported == {"AUTH_KEY_FILE": auth.own["AUTH_KEY_FILE"], "AUTH_CERT_FILE": auth.own["AUTH_CERT_FILE"]}

        secrets = os.path.join(self.var, "secrets")
        admin_file, robot_file = os.path.join(secrets, "admin-password"), os.path.join(secrets, "catalog-robot")
        library_file = os.path.join(secrets, "library-robot")
        # auth.manage's two commands in one process (one interpreter start, not two).
        commands = [
            ["ensure-admin", ADMIN, "--password-file", admin_file],
            [
                "ensure-robot",
                "catalog",
                "--platform",
                "--actions",
                "pull,delete",
                "--catalog",
                "--secret-file",
                robot_file,
            ],
            [
                *("ensure-robot", "library", "--platform", "--namespace", "library"),
                *("--actions", "pull,push", "--secret-file", library_file),
            ],
        ]
        names = self._finish(
            "auth.manage",
            self._popen(
                [sys.executable, "-c", f"from auth.manage import main\nfor argv in {commands!r}: main(argv)"],
                auth.environment(),
            ),
        ).split()
        assert names == [ADMIN, "_platform+catalog", "_platform+library"], names
        self.admin = Account(ADMIN, _read(admin_file))
        self.registry.auth.username, self.registry.auth.password = self.admin
        # The catalogue alone reads the registry as its robot, and pushes the library's copies as
        # the library robot.
        self.services["catalog"].own.update(
            REGISTRY_USERNAME=names[1],
            REGISTRY_PASSWORD=_read(robot_file),
            LIBRARY_REGISTRY_USERNAME=names[2],
            LIBRARY_REGISTRY_PASSWORD=_read(library_file),
        )

    @staticmethod
    def _popen(command, env):
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def _finish(name, process):
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        assert process.returncode == 0, f"{name} failed: {err}"
        return out

    def wait_ready(self):
        wait_until(lambda: requests.get(f"{self.auth_url}/health", timeout=1).ok, timeout=30, what="auth /health")
        wait_until(lambda: requests.get(f"{self.webhook_url}/health", timeout=1).ok, timeout=30, what="webhook /health")
        wait_until(lambda: self.rpc("catalog", "list_public_repositories") is not None, timeout=30, what="catalog RPC")
        wait_until(lambda: self.rpc("deployer", "list_pools") is not None, timeout=30, what="deployer RPC")
        wait_until(lambda: requests.get(f"{self.gateway_url}/health", timeout=1).ok, timeout=30, what="gateway /health")

    # -- tenants and accounts -------------------------------------------------------------------
    def add_tenant(self, tenant_id):
        """Tenant ``tenant_id`` and a developer account of it (``dev-<tenant>``), made over the
        auth RPC as other platform components make them; the account is returned (and kept)."""
        if tenant_id not in self.accounts:
            account = Account(f"dev-{tenant_id}".lower(), uuid.uuid4().hex)
            self.rpc("auth", "create_tenant", tenant_id)
            self.rpc("auth", "create_account", account.name, account.password, tenant_id=tenant_id)
            self.accounts[tenant_id] = account
        return self.accounts[tenant_id]

    def session(self, tenant_id=None):
        """A registry HTTP session (for ``push_image`` and the like) as the tenant's developer
        account, or as the admin with ``None`` (the public library). One per account: its password
        is checked once, later tokens come from its refresh token."""
        if tenant_id not in self._sessions:
            account = self.admin if tenant_id is None else self.add_tenant(tenant_id)
            self._sessions[tenant_id] = token_session(*account)
        return self._sessions[tenant_id]

    def rpc(self, service, method, *args, **kwargs):
        with self.admin_proxy(timeout=10) as proxy:
            return getattr(getattr(proxy, service), method)(*args, **kwargs)

    def proxy(self, role, identity=None, timeout=20):
        """An RPC client as the stack's broker user ``role``, carrying a developer's signed
        ``identity`` if given."""
        context = {IDENTITY_KEY: identity} if identity is not None else None
        return IdentifiedClusterRpcProxy({"AMQP_URI": self.role_uri(role)}, context_data=context, timeout=timeout)

    def admin_proxy(self, timeout):
        """An RPC client as the operator's CLI calls: the ``admin`` broker user, with the platform
        admin's signed identity (``auth.sign_in``, once)."""
        if self.admin_identity is None:
            with self.proxy("admin", timeout=timeout) as proxy:
                self.admin_identity = proxy.auth.sign_in(*self.admin)["identity"]
        return self.proxy("admin", self.admin_identity, timeout)

    def post_events(self, body, token=None, content_type="application/vnd.docker.distribution.events.v1+json"):
        headers = {"Content-Type": content_type}
        if token is not False:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = body if isinstance(body, (bytes, str)) else __import__("json").dumps(body)
        return requests.post(f"{self.webhook_url}/registry/events", data=data, headers=headers, timeout=10)

    def stop(self):
        """Stop whatever was started; safe after a start() that failed half-way."""
        for service in self.services.values():  # all at once: each takes a couple of seconds
            service.stop(wait=False)
        for service in self.services.values():
            service.stop()
        # Whatever a failed test left deployed: every swarm service this stack's deployer made...
        remove_swarm_services(self.vhost)
        # ...and every container.
        for sock in ENGINES:
            ids = subprocess.run(
                ["docker", "-H", sock, "ps", "-aq", "--filter", f"label=imagehub.deployer={self.vhost}"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.split()
            if ids:
                subprocess.run(["docker", "-H", sock, "rm", "-f", *ids], capture_output=True, timeout=60)
            # ...and the images its engines pulled from this stack's registry.
            images = subprocess.run(
                ["docker", "-H", sock, "images", "--format", "{{.Repository}} {{.ID}}"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.splitlines()
            pulled = sorted({line.split()[1] for line in images if line.startswith(f"{self.registry.host}/")})
            if pulled:
                subprocess.run(["docker", "-H", sock, "rmi", "-f", *pulled], capture_output=True, timeout=60)
        self.registry.stop()
        self.broker.delete_vhost(self.vhost)
        broker_access.remove(self.matrix, self.broker, self.broker_prefix)


def remove_swarm_services(deployer_id):
    """Remove the swarm services labelled with ``deployer_id`` as the deployer does (scaled to 0,
    their tasks stopped and reaped, then removed: ``deployer.swarm.remove_service``)."""
    from deployer.dependencies import DockerSwarm
    from deployer.engine import DEPLOYER
    from deployer.settings import Host, Pool
    from deployer.swarm import remove_service

    manager = Host(name="manager-1", pool="swarm", base_url=ENGINES[0], address="127.0.0.1", cpus=0, memory=0)
    pool = Pool(name="swarm", network_mode="host", hosts=(), kind="swarm", managers=(manager,))
    swarm = DockerSwarm(pool, "1.41", timeout=60, ping_timeout=5)
    try:
        for service in swarm.services({DEPLOYER: deployer_id}):
            remove_service(swarm, service, 40, time.sleep, time.monotonic)
    finally:
        swarm.close()


def _read(path):
    with open(path) as f:
        return f.read().strip()
