"""Real processes and clients for the auth integration tests: a registry with token auth, the
docker CLI with a configuration directory of its own, and the token
endpoint over plain HTTP. The registry HTTP client that fetches bearer tokens by itself, as docker
does, is shared.runtime.registry_auth.RegistryTokenAuth (the catalogue's)."""

import json
import os
import re
import subprocess
import uuid

import requests

from tests.support import RegistryAuth, RegistryProcess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TEMPLATE = os.path.join(ROOT, "deploy", "registry", "config-auth.yml.in")
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


class TokenAuthRegistry(RegistryProcess):
    """``docker-registry`` configured from deploy/registry/config-auth.yml.in, as make up will."""

    def __init__(self, webhook_url, token, realm, service, issuer, cert_file, workdir):
        super().__init__(
            webhook_url,
            token,
            workdir=workdir,
            auth=RegistryAuth(realm=realm, service=service, issuer=issuer, cert_file=cert_file),
        )
        self.values = {
            "@STORAGE@": self.storage,
            "@PORT@": str(self.port),
            "@WEBHOOK_URL@": webhook_url,
            "@TOKEN@": token,
            "@AUTH_REALM@": realm,
            "@AUTH_SERVICE@": service,
            "@AUTH_ISSUER@": issuer,
            "@AUTH_CERT_FILE@": cert_file,
        }

    def config(self):
        with open(TEMPLATE) as f:
            config = f.read()
        for placeholder, value in self.values.items():
            config = config.replace(placeholder, value)
        assert "@" not in re.sub(r"#.*", "", config), "a placeholder of the template was left unrendered"
        return config.replace("level: info", "level: warn")


class DockerCLI:
    """The real docker client, with its own DOCKER_CONFIG: logins never touch ~/.docker."""

    def __init__(self, config_dir, registry_host):
        self.config_dir = config_dir
        self.registry_host = registry_host
        os.makedirs(config_dir, exist_ok=True)

    def run(self, *args, stdin=None, timeout=90):
        return subprocess.run(
            ["docker", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ, DOCKER_CONFIG=self.config_dir),
        )

    def login(self, username, password):
        return self.run("login", self.registry_host, "--username", username, "--password-stdin", stdin=password)

    def push(self, ref):
        return self.run("push", ref)

    def pull(self, ref):
        return self.run("pull", ref)

    def config(self):
        with open(os.path.join(self.config_dir, "config.json")) as f:
            return json.load(f)


class LocalImages:
    """Images the tests build or tag locally; all of them removed at the end."""

    def __init__(self, registry_host):
        self.registry_host = registry_host

    def build(self, repository, tag="v1"):
        ref = f"{self.registry_host}/{repository}:{tag}"
        subprocess.run(
            ["bash", os.path.join(ROOT, "scripts", "busybox-image.sh"), ref, f"{ref} {uuid.uuid4()}"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return ref

    def tag(self, source, repository, tag="v1"):
        ref = f"{self.registry_host}/{repository}:{tag}"
        subprocess.run(["docker", "tag", source, ref], check=True, capture_output=True, timeout=30)
        return ref

    def remove(self, ref):
        subprocess.run(["docker", "rmi", ref], capture_output=True, timeout=60)

    def exists(self, ref):
        return subprocess.run(["docker", "image", "inspect", ref], capture_output=True, timeout=30).returncode == 0

    def cleanup(self):
        listed = subprocess.run(
            ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, timeout=30
        ).stdout.split()
        mine = [ref for ref in listed if ref.startswith(f"{self.registry_host}/")]
        if mine:
            subprocess.run(["docker", "rmi", "-f", *mine], capture_output=True, timeout=120)


class TokenClient:
    """The token endpoint over plain HTTP, and the registry API with the tokens it hands out."""

    def __init__(self, realm, service, registry_url):
        self.realm = realm
        self.service = service
        self.registry_url = registry_url

    def get(self, *scopes, auth=None, **params):
        return requests.get(
            self.realm, params={"service": self.service, "scope": list(scopes), **params}, auth=auth, timeout=10
        )

    def post(self, **form):
        return requests.post(self.realm, data={"service": self.service, "client_id": "tests", **form}, timeout=10)

    def token(self, *scopes, auth=None):
        resp = self.get(*scopes, auth=auth)
        assert resp.status_code == 200, resp.text
        return resp.json()["token"]

    def registry(self, method, path, token=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{self.registry_url}/v2/{path}", headers=headers, timeout=10, **kwargs)
