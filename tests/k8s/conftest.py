"""Fixtures of the Kubernetes tests: the kustomize that renders deploy/k8s, and its renders."""

import functools
import os
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
K8S = os.path.join(ROOT, "deploy", "k8s")
OVERLAYS = ("dev", "prod")
SERVICES = tuple(
    sorted(
        name
        for name in os.listdir(os.path.join(ROOT, "services"))
        if os.path.isfile(os.path.join(ROOT, "services", name, "config.yml"))
    )
)


@functools.cache
def project_kubectl():
    """The kubectl the project installs for rendering (deploy/k8s/kustomize.sh --path)."""
    out = subprocess.run(
        [os.path.join(K8S, "kustomize.sh"), "--path"], check=True, capture_output=True, text=True, timeout=300
    )
    return out.stdout.strip()


def machine_kubectls():
    """Other kubectls on this machine (a newer kustomize): the manifests must render there too."""
    found = shutil.which("kubectl")
    if found and os.path.realpath(found) != os.path.realpath(project_kubectl()):
        return [found]
    return []


def render(path, kubectl=None):
    """The documents `kubectl kustomize path` prints, as dicts."""
    out = subprocess.run(
        [kubectl or project_kubectl(), "kustomize", path], check=True, capture_output=True, text=True, timeout=120
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@functools.cache
def rendered(overlay):
    return tuple(render(os.path.join(K8S, "overlays", overlay)))


def config_variables(service):
    """Every environment variable ``services/<service>/config.yml`` reads (``${VAR}``/``${VAR:default}``)."""
    with open(os.path.join(ROOT, "services", service, "config.yml")) as f:
        # Comments out: they speak of ``${VAR:default}`` in general.
        text = "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in f)
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text))


def find(docs, kind, name=None):
    """Documents of a kind (and name; generated ConfigMaps/Secrets match with their hash suffix)."""
    out = []
    for doc in docs:
        if doc["kind"] != kind:
            continue
        actual = doc["metadata"]["name"]
        if name is None or actual == name:
            out.append(doc)
    return out


def one(docs, kind, name):
    found = find(docs, kind, name)
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


@pytest.fixture(params=OVERLAYS)
def overlay(request):
    return request.param
