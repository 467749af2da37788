"""deploy/k8s's NetworkPolicies, evaluated offline: from the rendered objects, which pod may open a
connection to which (by labels, namespaces, IP blocks and ports, as Kubernetes defines it), with
the pods of the cluster around the suite (kube-dns, the ingress controller, the operators, a pod
of another namespace, the internet, the cloud's metadata service) made up beside them. Asserts
that the flows the suite needs are open and that the dev Docker engine, in whose network
namespace tenant containers run, reaches none of the platform; and that the engine speaks TLS
only (dev-engine-certs.sh makes its certificates)."""

import base64
import ipaddress
import os
import re
import subprocess
from dataclasses import dataclass, field

import pytest
import yaml

from tests.k8s.conftest import K8S, find, one, rendered


@dataclass
class Endpoint:
    name: str
    namespace: str | None  # None: outside the cluster
    labels: dict = field(default_factory=dict)
    ports: dict = field(default_factory=dict)  # name -> (port, protocol)
    ip: str = ""


def _namespace(docs):
    return one(docs, "Namespace", find(docs, "Namespace")[0]["metadata"]["name"])


def _namespace_labels(docs, name):
    labels = {"kubernetes.io/metadata.name": name}
    ours = _namespace(docs)
    if ours["metadata"]["name"] == name:
        labels.update(ours["metadata"].get("labels", {}))
    return labels


def endpoints(overlay):
    """Every pod of the overlay, the operators' pods, and the cluster's and the world's endpoints."""
    docs = rendered(overlay)
    ns = _namespace(docs)["metadata"]["name"]
    out = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            template = doc["spec"]["template"]
            ports = {}
            for c in template["spec"]["containers"]:
                for p in c.get("ports", []):
                    ports[p.get("name", str(p["containerPort"]))] = (p["containerPort"], p.get("protocol", "TCP"))
            out[doc["metadata"]["name"]] = Endpoint(doc["metadata"]["name"], ns, template["metadata"]["labels"], ports)
    for cluster in find(docs, "RabbitmqCluster"):  # the RabbitMQ cluster operator's pod labels and ports
        name = cluster["metadata"]["name"]
        out["rabbitmq"] = Endpoint(
            "rabbitmq",
            ns,
            {"app.kubernetes.io/name": name, "app.kubernetes.io/component": "rabbitmq"},
            {"amqp": (5672, "TCP"), "management": (15672, "TCP"), "epmd": (4369, "TCP"), "dist": (25672, "TCP")},
        )
    for cluster in find(docs, "Cluster"):  # CloudNativePG's
        out["postgres"] = Endpoint(
            "postgres",
            ns,
            {"cnpg.io/cluster": cluster["metadata"]["name"], "cnpg.io/podRole": "instance"},
            {"postgresql": (5432, "TCP"), "status": (8000, "TCP")},
        )
    out["kube-dns"] = Endpoint(
        "kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": (53, "UDP"), "dns-tcp": (53, "TCP")}
    )
    out["ingress-controller"] = Endpoint(
        "ingress-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}
    )
    out["rabbitmq-operator"] = Endpoint(
        "rabbitmq-operator", "rabbitmq-system", {"app.kubernetes.io/name": "rabbitmq-operator"}
    )
    out["cnpg-operator"] = Endpoint("cnpg-operator", "cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})
    out["stranger"] = Endpoint(
        "stranger", "elsewhere", {"app.kubernetes.io/name": "auth", "app.kubernetes.io/part-of": "imagehub"}
    )
    for i, e in enumerate(out.values()):
        e.ip = f"10.244.{i // 200}.{i % 200 + 10}"
    # Addresses from the documentation ranges (RFC 5737) stand for them: nothing is dialled.
    out["kubernetes-api"] = Endpoint("kubernetes-api", None, ip="192.0.2.1")
    out["metadata-service"] = Endpoint("metadata-service", None, ip="169.254.169.254")
    out["node"] = Endpoint("node", None, ip="198.51.100.20")
    out["internet"] = Endpoint("internet", None, ip="203.0.113.7")
    return out


def _selects(selector, labels):
    if selector is None:
        return True
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        value, op = labels.get(e["key"]), e["operator"]
        if (
            (op == "In" and value not in e["values"])
            or (op == "NotIn" and value in e["values"])
            or (op == "Exists" and e["key"] not in labels)
            or (op == "DoesNotExist" and e["key"] in labels)
        ):
            return False
    return True


def _peer_matches(peer, policy_ns, other, docs):
    if "ipBlock" in peer:
        ip = ipaddress.ip_address(other.ip)
        block = peer["ipBlock"]
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if other.namespace is None:
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], _namespace_labels(docs, other.namespace)):
            return False
    elif other.namespace != policy_ns:
        return False
    return _selects(peer.get("podSelector"), other.labels)


def _port_matches(rule_ports, destination, port, protocol):
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        wanted = p.get("port")
        if wanted is None:
            return True
        if isinstance(wanted, str):
            named = destination.ports.get(wanted)
            if named and named == (port, protocol):
                return True
            continue
        if wanted <= port <= p.get("endPort", wanted):
            return True
    return False


def _policy_types(policy):
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))


def _side_allows(docs, kind, subject, other, destination, port, protocol):
    """Whether the policies of ``subject``'s namespace let ``kind`` (Ingress/Egress) through."""
    if subject.namespace is None:
        return True
    ns = _namespace(docs)["metadata"]["name"]
    if subject.namespace != ns:
        return True  # no policies made up for other namespaces: they are open
    policies = [
        p
        for p in find(docs, "NetworkPolicy")
        if kind in _policy_types(p) and _selects(p["spec"]["podSelector"], subject.labels)
    ]
    if not policies:
        return True
    key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for policy in policies:
        for rule in policy["spec"].get(key, []):
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(peer, ns, other, docs) for peer in peers)) and _port_matches(
                rule.get("ports"), destination, port, protocol
            ):
                return True
    return False


def may_connect(overlay, source, destination, port, protocol="TCP", docs=None):
    docs = rendered(overlay) if docs is None else docs
    world = endpoints(overlay)
    src, dst = world[source], world[destination]
    return _side_allows(docs, "Egress", src, dst, dst, port, protocol) and _side_allows(
        docs, "Ingress", dst, src, dst, port, protocol
    )


SERVICES_TO_BROKER = [(s, "rabbitmq", 5672) for s in ("auth", "catalog", "deployer", "gateway", "webhook")]
DATABASE_USERS = [(s, "postgres", 5432) for s in ("auth", "catalog", "deployer", "imagehub-migrate")]
SHARED_ALLOWED = [
    ("registry", "webhook", 8000),
    ("registry", "auth", 5001),
    ("catalog", "registry", 5000),
    ("ingress-controller", "gateway", 8080),  # the console and the API
    *SERVICES_TO_BROKER,
    *DATABASE_USERS,
]
ALLOWED = {
    "dev": [
        *SHARED_ALLOWED,
        ("deployer", "dind", 2376),
        ("deployer", "dind", 20000),
        ("deployer", "dind", 29999),
        ("dind", "registry", 5000),
    ],
    "prod": [
        *SHARED_ALLOWED,
        ("ingress-controller", "registry", 5000),
        ("ingress-controller", "auth", 5001),
        ("rabbitmq", "rabbitmq", 25672),
        ("rabbitmq", "rabbitmq", 4369),
        ("rabbitmq-operator", "rabbitmq", 15672),
        ("postgres", "postgres", 5432),
        ("cnpg-operator", "postgres", 8000),
        ("deployer", "internet", 2376),  # production engines are Docker hosts outside the cluster
    ],
}
# The gateway reaches the broker only (and DNS); only the ingress controller reaches it.
GATEWAY_REFUSED = [
    ("gateway", "postgres", 5432),
    ("gateway", "auth", 5001),
    ("gateway", "webhook", 8000),
    ("gateway", "registry", 5000),
    ("gateway", "kubernetes-api", 443),
    ("gateway", "metadata-service", 80),
    ("gateway", "node", 10250),
    ("gateway", "internet", 443),
    ("gateway", "rabbitmq", 15672),
    ("stranger", "gateway", 8080),
    ("catalog", "gateway", 8080),
    ("registry", "gateway", 8080),
    ("ingress-controller", "gateway", 9000),
]
REFUSED = {
    "dev": [
        *GATEWAY_REFUSED,
        ("dind", "gateway", 8080),
        # The engine and its tenant containers: nothing of the platform.
        ("dind", "rabbitmq", 5672),
        ("dind", "postgres", 5432),
        ("dind", "auth", 5001),
        ("dind", "webhook", 8000),
        ("dind", "registry", 5001),
        ("dind", "kubernetes-api", 443),
        ("dind", "metadata-service", 80),
        ("dind", "node", 10250),
        ("dind", "internet", 443),
        ("dind", "stranger", 5001),
        # The engine's API: the deployer's only, TLS only.
        ("catalog", "dind", 2376),
        ("registry", "dind", 2376),
        ("deployer", "dind", 2375),
        ("stranger", "dind", 2376),
        # Who needs no database does not reach it; nobody outside the namespace reaches anything.
        ("webhook", "postgres", 5432),
        ("registry", "rabbitmq", 5672),
        ("imagehub-migrate", "rabbitmq", 5672),
        ("stranger", "rabbitmq", 5672),
        ("stranger", "postgres", 5432),
        ("stranger", "auth", 5001),
        ("stranger", "webhook", 8000),
        ("stranger", "registry", 5000),
        ("catalog", "webhook", 8000),
        ("deployer", "auth", 5001),
    ],
    "prod": [
        *GATEWAY_REFUSED,
        ("ingress-controller", "webhook", 8000),
        ("ingress-controller", "registry", 5001),  # the registry's debug port
        ("ingress-controller", "rabbitmq", 5672),
        ("webhook", "postgres", 5432),
        ("registry", "rabbitmq", 5672),
        ("stranger", "rabbitmq", 5672),
        ("stranger", "postgres", 5432),
        ("stranger", "auth", 5001),
        ("stranger", "webhook", 8000),
        ("rabbitmq-operator", "rabbitmq", 5672),
        ("catalog", "webhook", 8000),
    ],
}


@pytest.mark.parametrize(("overlay", "flow"), [(o, f) for o in ALLOWED for f in ALLOWED[o]])
def test_the_flows_the_suite_needs_are_allowed(overlay, flow):
    source, destination, port = flow
    assert may_connect(overlay, source, destination, port), f"{overlay}: {source} -> {destination}:{port} refused"


@pytest.mark.parametrize(("overlay", "flow"), [(o, f) for o in REFUSED for f in REFUSED[o]])
def test_other_flows_are_refused(overlay, flow):
    source, destination, port = flow
    assert not may_connect(overlay, source, destination, port), f"{overlay}: {source} -> {destination}:{port} allowed"


def test_dns_from_the_engine():
    assert may_connect("dev", "dind", "kube-dns", 53, "UDP") and may_connect("dev", "dind", "kube-dns", 53, "TCP")


def test_dns_from_the_gateway(overlay):
    """The gateway finds the broker by its Service name: its egress policy lets DNS out."""
    assert may_connect(overlay, "gateway", "kube-dns", 53, "UDP") and may_connect(overlay, "gateway", "kube-dns", 53)


def test_ingress_is_denied_by_default_to_every_pod(overlay):
    docs = rendered(overlay)
    default = [
        p
        for p in find(docs, "NetworkPolicy")
        if p["spec"]["podSelector"] == {} and "Ingress" in _policy_types(p) and not p["spec"].get("ingress")
    ]
    assert default, f"{overlay}: no default-deny ingress policy"
    # ... so that a pod no policy names is reached by nobody.
    world = endpoints(overlay)
    ns = _namespace(docs)["metadata"]["name"]
    for name, endpoint in world.items():
        if endpoint.namespace == ns:
            assert not may_connect(overlay, "stranger", name, 1234), name


def test_the_evaluator_sees_the_policies():
    """Without the policies every flow would be open: what the tests above refuse, the policies refuse."""
    docs = [d for d in rendered("dev") if d["kind"] != "NetworkPolicy"]
    for source, destination, port in REFUSED["dev"][:4]:
        assert may_connect("dev", source, destination, port, docs=docs)


# -- the dev engine: TLS only ------------------------------------------------------------------


def _secret_data(docs, prefix):
    secret = next(
        d for d in find(docs, "Secret") if re.fullmatch(rf"{prefix}(-[a-z0-9]{{10}})?", d["metadata"]["name"])
    )
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_the_dev_engine_speaks_tls_with_client_certificates_only():
    docs = rendered("dev")
    dind = one(docs, "Deployment", "dind")
    spec = dind["spec"]["template"]["spec"]
    container = spec["containers"][0]
    args = container["command"] + container.get("args", [])
    hosts = [a.split("=", 1)[1] for a in args if a.startswith(("--host=", "-H="))]
    assert all(not h.startswith("tcp://") or h.endswith(":2376") for h in hosts), hosts
    assert any(h.startswith("tcp://") for h in hosts) and "--tlsverify" in args
    assert not any(":2375" in a for a in args)
    assert [p["containerPort"] for p in container["ports"]] == [2376]
    assert [p["port"] for p in one(docs, "Service", "dind")["spec"]["ports"]] == [2376]
    # The engine's certificate files come from the Secret deploy.sh makes.
    flags = dict(a.split("=", 1) for a in args if a.startswith("--tls") and "=" in a)
    volumes = {v["name"]: v for v in spec["volumes"]}
    for flag in ("--tlscacert", "--tlscert", "--tlskey"):
        mount = next(m for m in container["volumeMounts"] if flags[flag].startswith(m["mountPath"] + "/"))
        assert volumes[mount["name"]]["secret"]["secretName"] == "imagehub-dind-tls", flag
    # The deployer dials it over TLS, verifying it, with its client certificate from its own Secret.
    pools = yaml.safe_load(_secret_data(docs, "imagehub-deployer-pools")["pools.yml"])
    deployer = one(docs, "Deployment", "deployer")
    main = next(c for c in deployer["spec"]["template"]["spec"]["containers"] if c["name"] == "deployer")
    deployer_volumes = {v["name"]: v for v in deployer["spec"]["template"]["spec"]["volumes"]}
    for pool in pools.values():
        for host in pool["hosts"]:
            assert host["base_url"] == "tcp://dind:2376", host
            tls = host["tls"]
            assert tls["verify"] is True
            for key in ("ca_cert", "client_cert", "client_key"):
                mount = next(m for m in main["volumeMounts"] if tls[key].startswith(m["mountPath"] + "/"))
                assert deployer_volumes[mount["name"]]["secret"]["secretName"] == "imagehub-deployer-engine-tls"
    with open(os.path.join(K8S, "deploy.sh")) as f:
        script = f.read()
    assert "imagehub-dind-tls" in script and "imagehub-deployer-engine-tls" in script


def test_dev_engine_certs_verify_and_name_the_engine(tmp_path):
    script = os.path.join(K8S, "dev-engine-certs.sh")
    subprocess.run([script, str(tmp_path), "imagehub-dev"], check=True, capture_output=True, timeout=60)
    for name in ("server", "client"):
        out = subprocess.run(
            ["openssl", "verify", "-CAfile", tmp_path / "ca.pem", tmp_path / f"{name}.pem"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stdout + out.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", tmp_path / "server.pem", "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:dind," in text and "TLS Web Server Authentication" in text
    client = subprocess.run(
        ["openssl", "x509", "-in", tmp_path / "client.pem", "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "TLS Web Client Authentication" in client
    assert oct(os.stat(tmp_path / "ca-key.pem").st_mode & 0o777) == "0o600"
    before = (tmp_path / "ca.pem").read_bytes()
    subprocess.run([script, str(tmp_path), "imagehub-dev"], check=True, capture_output=True, timeout=60)
    assert (tmp_path / "ca.pem").read_bytes() == before, "made again: not idempotent"
