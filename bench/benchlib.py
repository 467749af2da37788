"""What every benchmark script here shares: its standard arguments, the shell, building and
pushing a busybox image with the real docker CLI, and writing the figures."""

import argparse
import atexit
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import requests

from shared.runtime.identity import IDENTITY_KEY, IdentifiedClusterRpcProxy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAR = os.path.join(ROOT, "var")  # `make up`'s state: broker URIs and secrets


ADMIN_URI_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var/secrets/amqp/admin.uri")
AMQP_HELP = "broker URI [env AMQP_URI; default: the admin broker user of `make up`, var/secrets/amqp/admin.uri]"


def admin_amqp_uri():
    """The ``admin`` broker user's URI that `make up` wrote (scripts/services.sh), if it did."""
    try:
        with open(ADMIN_URI_FILE) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def parser(doc):
    """An argument parser with --registry, --amqp-uri and --json; the script adds its own."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--registry", default=os.environ.get("REGISTRY_HOST", "127.0.0.1:5000"))
    p.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI") or admin_amqp_uri(), help=AMQP_HELP)
    p.add_argument("--json", help="also write the raw figures to this file")
    return p


def sh(*args, timeout=120):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout).stdout


def build(ref, marker):
    """A busybox image serving ``marker`` over HTTP on $PORT (scripts/busybox-image.sh)."""
    sh("bash", os.path.join(ROOT, "scripts/busybox-image.sh"), ref, marker)


def push(ref):
    """`docker push`; the manifest digest it printed."""
    out = sh("docker", "push", ref)
    return [line.split("digest: ")[1].split()[0] for line in out.splitlines() if "digest: " in line][-1]


def login_tenant(amqp_uri, registry, tenant, context_data=None):
    """With the registry's token auth on (`make up`): make ``tenant`` and a developer account of it
    over the auth RPC (as ``amqp_uri``'s broker user, with ``context_data``: a platform admin's
    signed identity for the ``admin`` user), and `docker login` as that account into a docker
    configuration of this run's own (``DOCKER_CONFIG`` for every docker command after this), so
    pushes go as it. The password is checked once; docker then uses the token service's refresh
    token. Returns ``(username, password)``."""

    import shared.contracts.errors  # noqa: F401  (typed errors over RPC)

    username, password = f"dev-{tenant}", uuid.uuid4().hex
    with IdentifiedClusterRpcProxy({"AMQP_URI": amqp_uri}, context_data=context_data, timeout=20) as rpc:
        rpc.auth.create_tenant(tenant)
        rpc.auth.create_account(username, password, tenant_id=tenant)
    os.environ["DOCKER_CONFIG"] = tempfile.mkdtemp(prefix="imagehub-bench-docker-")
    atexit.register(shutil.rmtree, os.environ["DOCKER_CONFIG"], ignore_errors=True)
    subprocess.run(
        ["docker", "login", registry, "--username", username, "--password-stdin"],
        input=password,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return username, password


def secret(var, *path):
    with open(os.path.join(var, *path)) as f:
        return f.read().strip()


def make_developer(admin_uri, admin_password, registry, tenant):
    """A tenant and a developer account of it, made by the platform admin over RPC (signed in
    with ``admin_password``); `docker login` as that account into a docker configuration of this
    run's own. ``(name, password)``."""
    with IdentifiedClusterRpcProxy({"AMQP_URI": admin_uri}, timeout=20) as rpc:
        admin = rpc.auth.sign_in("admin", admin_password)["identity"]
    return login_tenant(admin_uri, registry, tenant, context_data={IDENTITY_KEY: admin})


def developer_rpc(registry, tenant, var=VAR, timeout=30):
    """For a bench against `make up`: ``tenant`` and its developer (``make_developer``), and an
    RPC proxy that calls as that developer (signed in over the ``gateway`` broker user, as the
    console does; every call carries the signed identity). Use as a context manager."""
    gateway_uri = secret(var, "secrets", "amqp", "gateway.uri")
    name, password = make_developer(
        secret(var, "secrets", "amqp", "admin.uri"), secret(var, "secrets", "auth-admin-password"), registry, tenant
    )
    with IdentifiedClusterRpcProxy({"AMQP_URI": gateway_uri}, timeout=20) as rpc:
        identity = rpc.auth.sign_in(name, password)["identity"]
    return IdentifiedClusterRpcProxy({"AMQP_URI": gateway_uri}, context_data={IDENTITY_KEY: identity}, timeout=timeout)


def wait_http(address, deadline, failure=SystemExit):
    """Return once ``http://address/`` answers 2xx, polling every 5 ms; ``failure`` (an exception
    class) with the reason once ``time.monotonic()`` passes ``deadline``."""
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://{address}/", timeout=0.5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.005)
    raise failure(f"{address} did not answer HTTP in time")


def write_json(path, result):
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=2)
