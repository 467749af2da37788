"""The whole suite as real processes: a private RabbitMQ vhost, a real registry, and the
services started with `nameko run` exactly as scripts/services.sh starts them."""
import os
import signal
import subprocess
import sys
import uuid

import requests
from nameko.standalone.rpc import ClusterRpcProxy

from shared.testing import RegistryProcess, free_port, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
MANAGEMENT = "http://127.0.0.1:15672/api"
GUEST = ("guest", "guest")
ENGINES = ("unix:///var/run/docker.sock", "unix:///var/run/imagehub-docker2.sock")


def create_vhost(name):
    requests.put(f"{MANAGEMENT}/vhosts/{name}", auth=GUEST, timeout=10).raise_for_status()
    requests.put(f"{MANAGEMENT}/permissions/{name}/guest", auth=GUEST, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()


def delete_vhost(name):
    requests.delete(f"{MANAGEMENT}/vhosts/{name}", auth=GUEST, timeout=10)


class ServiceProcess:
    """One `nameko run` process; can be stopped, killed and started again."""

    def __init__(self, name, env, log_dir):
        self.name = name
        self.env = env
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "nameko"), "run", "--config", f"services/{self.name}/config.yml",
             f"{self.name}.service"], cwd=ROOT, env=self.env, stdout=log, stderr=log)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()


class Stack:
    def __init__(self, workdir):
        self.workdir = workdir
        self.vhost = f"imagehub-e2e-{uuid.uuid4().hex[:8]}"
        self.amqp_uri = f"amqp://guest:guest@127.0.0.1:5672/{self.vhost}"
        self.token = uuid.uuid4().hex
        self.webhook_port = free_port()
        self.webhook_url = f"http://127.0.0.1:{self.webhook_port}"
        self.registry = RegistryProcess(f"{self.webhook_url}/registry/events", self.token,
                                        workdir=os.path.join(workdir, "registry"))
        self.env = dict(
            os.environ,
            AMQP_URI=self.amqp_uri,
            WEBHOOK_TOKEN=self.token,
            WEBHOOK_ADDRESS=f"127.0.0.1:{self.webhook_port}",
            REGISTRY_URL=self.registry.url,
            REGISTRY_PUBLIC_HOST=self.registry.host,
            CATALOG_DB_URL=f"sqlite:///{workdir}/catalog.db",
            DEPLOYER_DB_URL=f"sqlite:///{workdir}/deployer.db",
            REGISTRY_PULL_HOST=self.registry.host,
            # Its own ID: the reconciler touches only containers it made, not a `make up` suite's.
            DEPLOYER_ID=self.vhost,
            DEPLOYER_RECONCILE_INTERVAL="2",
        )
        self.services = {name: ServiceProcess(name, self.env, workdir)
                         for name in ("catalog", "webhook", "deployer")}

    def start(self):
        create_vhost(self.vhost)
        for service in ("catalog", "deployer"):
            subprocess.run([sys.executable, "-m", f"{service}.migrate"], cwd=ROOT, env=self.env, check=True,
                           timeout=60, capture_output=True)
        for service in self.services.values():
            service.start()
        self.registry.start()
        self.wait_ready()
        return self

    def wait_ready(self):
        wait_until(lambda: requests.get(f"{self.webhook_url}/health", timeout=1).ok, timeout=30,
                   what="webhook /health")
        wait_until(lambda: self.rpc("catalog", "list_public_repositories") is not None, timeout=30,
                   what="catalog RPC")
        wait_until(lambda: self.rpc("deployer", "list_pools") is not None, timeout=30, what="deployer RPC")

    def rpc(self, service, method, *args, **kwargs):
        with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=10) as proxy:
            return getattr(getattr(proxy, service), method)(*args, **kwargs)

    def post_events(self, body, token=None, content_type="application/vnd.docker.distribution.events.v1+json"):
        headers = {"Content-Type": content_type}
        if token is not False:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = body if isinstance(body, (bytes, str)) else __import__("json").dumps(body)
        return requests.post(f"{self.webhook_url}/registry/events", data=data, headers=headers, timeout=10)

    def stop(self):
        """Stop whatever was started; safe after a start() that failed half-way."""
        for service in self.services.values():
            service.stop()
        # Whatever a failed test left deployed: every container this stack's deployer made.
        for sock in ENGINES:
            ids = subprocess.run(["docker", "-H", sock, "ps", "-aq", "--filter",
                                  f"label=imagehub.deployer={self.vhost}"],
                                 capture_output=True, text=True, timeout=30).stdout.split()
            if ids:
                subprocess.run(["docker", "-H", sock, "rm", "-f", *ids], capture_output=True, timeout=60)
            # ...and the images its engines pulled from this stack's registry.
            images = subprocess.run(["docker", "-H", sock, "images", "--format", "{{.Repository}} {{.ID}}"],
                                    capture_output=True, text=True, timeout=30).stdout.splitlines()
            pulled = sorted({line.split()[1] for line in images
                             if line.startswith(f"{self.registry.host}/")})
            if pulled:
                subprocess.run(["docker", "-H", sock, "rmi", "-f", *pulled], capture_output=True, timeout=60)
        self.registry.stop()
        delete_vhost(self.vhost)
