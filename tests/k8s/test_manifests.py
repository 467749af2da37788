"""deploy/k8s, rendered through kustomize and checked offline: against the Kubernetes OpenAPI
schema (kubernetes-validate, strict: unknown fields are errors), and for what the schema cannot
say: every setting a service reads is set, every reference resolves, the registry notifies the
webhook Service, migrations gate the rollout, and the workloads are sized, probed and locked down.
"""

import base64
import os
import re
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.k8s.conftest import K8S, ROOT, SERVICES, config_variables, find, machine_kubectls, one, render, rendered

# The oldest Kubernetes these manifests are for (autoscaling/v2, policy/v1, Job TTLs are GA) and the
# newest that kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.28", kubernetes_validate.utils.latest_version())

# Custom resources of the operators the prod overlay relies on: no schema in Kubernetes' own.
OPERATOR_KINDS = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): ("replicas", "persistence"),
    ("postgresql.cnpg.io/v1", "Cluster"): ("instances", "storage", "bootstrap"),
}

# Secrets each overlay uses but does not make: created beside it (docs/kubernetes.md, "Secrets").
EXTERNAL_SECRETS = {
    # The dev engine's TLS material is made per checkout by deploy.sh, never in git.
    "dev": {"imagehub-auth-keys", "imagehub-dind-tls", "imagehub-deployer-engine-tls"},
    "prod": {
        "imagehub-secrets",
        "imagehub-deployer-pools",
        "imagehub-auth-keys",
        "imagehub-gateway-secret",
        "registry-tls",
        "console-tls",
    },
}

# Where several replicas are competing consumers with no state of their own, they scale on CPU.
AUTOSCALED = {"catalog", "webhook", "auth", "gateway"}
HTTP_SERVICES = {"webhook": 8000, "auth": 5001, "gateway": 8080}
HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


def _is_ours(image):
    return re.search(r"(^|/)imagehub/[a-z]+(:|$)", image) is not None


def _pod_spec(doc):
    return doc["spec"]["template"]["spec"]


def _containers(doc, init=True):
    spec = _pod_spec(doc)
    return list(spec.get("initContainers", []) if init else []) + list(spec["containers"])


def _base_name(name):
    return HASH_SUFFIX.sub("", name)


def _by_base_name(docs, kind, name):
    found = [d for d in docs if d["kind"] == kind and _base_name(d["metadata"]["name"]) == _base_name(name)]
    return found[0] if found else None


def _keys(doc):
    return set(doc.get("data", {})) | set(doc.get("stringData", {}))


def _env_names(docs, container):
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if ref in source:
                target = _by_base_name(docs, kind, source[ref]["name"])
                assert target is not None, f"{container['name']}: envFrom {kind} {source[ref]['name']} is not rendered"
                names |= _keys(target)
    return names


# -- the schema ----------------------------------------------------------------------------------


def test_overlay_renders_and_validates_against_the_kubernetes_schema(overlay):
    docs = rendered(overlay)
    assert docs, f"{overlay} renders nothing"
    errors = []
    for doc in docs:
        what = f"{doc['kind']}/{doc['metadata']['name']}"
        required = OPERATOR_KINDS.get((doc["apiVersion"], doc["kind"]))
        if required is not None:
            missing = [field for field in required if field not in doc.get("spec", {})]
            if missing:
                errors.append(f"{what}: spec lacks {missing}")
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                errors.append(f"{what}: {doc['apiVersion']} {doc['kind']} is not in Kubernetes {version}")
            except kubernetes_validate.ValidationError as exc:
                errors.append(f"{what} (Kubernetes {version}) at {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not errors, "\n".join(errors)


def _normalised(docs):
    """Documents keyed by kind/name, with generated names' hash suffixes (which differ between
    kustomize versions), empty annotations and Secret encodings taken out."""
    text = yaml.safe_dump(sorted(docs, key=lambda d: (d["kind"], d["metadata"]["name"])), sort_keys=True)
    text = re.sub(r"(-[a-z0-9]{10})(\"?)$", r"\2", text, flags=re.M)
    out = {}
    for doc in yaml.safe_load(text):
        if doc["metadata"].get("annotations") == {}:
            del doc["metadata"]["annotations"]
        if doc["kind"] == "Secret":  # base64 is wrapped differently
            doc["data"] = {k: base64.b64decode("".join(v.split())) for k, v in doc.get("data", {}).items()}
        out[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return out


def test_newer_kustomize_renders_the_same(overlay):
    """The project renders with kustomize 2.0.3 (Debian's kubectl 1.20); a platform applies with
    its own kubectl. Any other kubectl on this machine must read the overlays and agree."""
    expected = _normalised(rendered(overlay))
    for kubectl in machine_kubectls():
        got = _normalised(render(os.path.join(K8S, "overlays", overlay), kubectl))
        assert sorted(got) == sorted(expected), kubectl
        for key in expected:
            assert got[key] == expected[key], f"{kubectl}: {key} differs"


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_every_variable_config_yml_reads_is_set_in_the_deployment(overlay, service):
    docs = rendered(overlay)
    wanted = config_variables(service)
    deployment = one(docs, "Deployment", service)
    containers = [
        c
        for c in _containers(deployment)
        if c["image"].split("@")[0].rsplit(":", 1)[0].endswith(f"/{service}") or c["name"] == service
    ]
    assert any(c["name"] == service for c in containers), f"no container {service} in Deployment/{service}"
    for container in containers:
        missing = wanted - _env_names(docs, container)
        assert not missing, f"Deployment/{service} container {container['name']} does not set {sorted(missing)}"


@pytest.mark.parametrize(
    "service", [s for s in SERVICES if os.path.exists(os.path.join(ROOT, "services", s, s, "migrate.py"))]
)
def test_migration_job_migrates_each_database_before_the_rollout(overlay, service):
    docs = rendered(overlay)
    job = one(docs, "Job", "imagehub-migrate")
    container = next((c for c in _containers(job) if c["name"] == service), None)
    assert container is not None, f"the migration Job has no container for {service}"
    assert container["command"][:3] == ["python", "-m", f"{service}.migrate"]
    missing = config_variables(service) - _env_names(docs, container)
    assert not missing, f"the Job's {service} container does not set {sorted(missing)}"
    # The service's new pods wait for that migration, from the same image.
    deployment = one(docs, "Deployment", service)
    gate = [c for c in _pod_spec(deployment).get("initContainers", []) if c["name"] == "wait-for-schema"]
    assert gate, f"Deployment/{service} has no wait-for-schema init container"
    assert gate[0]["command"][:5] == ["python", "-m", "shared.ops.probe", "schema", service]
    main = next(c for c in _containers(deployment, init=False) if c["name"] == service)
    assert gate[0]["image"] == container["image"] == main["image"]


def test_references_resolve(overlay):
    docs = rendered(overlay)
    problems, external = [], set()

    def check(kind, name, key=None, optional=False):
        target = _by_base_name(docs, kind, name)
        if target is None:
            if kind == "Secret" and name in EXTERNAL_SECRETS[overlay]:
                external.add(name)
                return
            problems.append(f"{kind} {name} is not rendered")
        elif key is not None and key not in _keys(target) and not optional:
            problems.append(f"{kind} {name} has no key {key}")

    for doc in docs:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        spec = _pod_spec(doc)
        if "serviceAccountName" in spec:
            check("ServiceAccount", spec["serviceAccountName"])
        for container in _containers(doc):
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                for kind, ref in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                    if ref in source:
                        check(kind, source[ref]["name"], source[ref]["key"], source[ref].get("optional", False))
            for source in container.get("envFrom", []):
                for kind, ref in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                    if ref in source:
                        check(kind, source[ref]["name"])
        for volume in spec.get("volumes", []):
            if "configMap" in volume:
                for item in volume["configMap"].get("items", [{}]):
                    check("ConfigMap", volume["configMap"]["name"], item.get("key"))
            if "secret" in volume:
                for item in volume["secret"].get("items", [{}]):
                    check("Secret", volume["secret"]["secretName"], item.get("key"))
            if "persistentVolumeClaim" in volume:
                check("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
    for ingress in find(docs, "Ingress"):
        for tls in ingress["spec"].get("tls", []):
            check("Secret", tls["secretName"])
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                check("Service", path["backend"]["service"]["name"])
    assert not problems, "\n".join(problems)
    assert external == EXTERNAL_SECRETS[overlay], "the list of Secrets made outside the overlay is stale"


def test_docs_name_every_secret_key_production_needs():
    docs = rendered("prod")
    keys = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for container in _containers(doc):
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        keys.setdefault(ref["name"], set()).add(ref["key"])
            for volume in _pod_spec(doc).get("volumes", []):
                if "secret" in volume:
                    keys.setdefault(volume["secret"]["secretName"], set())
    with open(os.path.join(ROOT, "docs", "kubernetes.md")) as f:
        guide = f.read()
    for secret, secret_keys in keys.items():
        assert secret in guide, f"docs/kubernetes.md does not say how to make the Secret {secret}"
        for key in secret_keys:
            assert key in guide, f"docs/kubernetes.md does not name {secret}'s key {key}"


# -- the registry --------------------------------------------------------------------------------


def test_registry_notifies_the_webhook_service_with_the_webhooks_token(overlay):
    docs = rendered(overlay)
    registry = next(c for c in _containers(one(docs, "Deployment", "registry")) if c["name"] == "registry")
    env = {e["name"]: e for e in registry["env"]}
    order = [e["name"] for e in registry["env"]]
    endpoints = yaml.safe_load(env["REGISTRY_NOTIFICATIONS_ENDPOINTS"]["value"])
    assert len(endpoints) == 1
    endpoint = endpoints[0]
    url = urlsplit(endpoint["url"])
    assert url.path == "/registry/events"
    service = one(docs, "Service", url.hostname)
    port = next(p for p in service["spec"]["ports"] if p["port"] == url.port)
    webhook = one(docs, "Deployment", "webhook")
    labels = webhook["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items(), "the Service does not select the webhook's pods"
    container = next(c for c in _containers(webhook, init=False) if c["name"] == "webhook")
    assert port["targetPort"] in {p["name"] for p in container["ports"]} | {
        p["containerPort"] for p in container["ports"]
    }
    # The same token on both ends: the registry's header is expanded from the webhook's Secret key.
    assert endpoint["headers"]["Authorization"] == ["Bearer $(WEBHOOK_TOKEN)"]
    assert order.index("WEBHOOK_TOKEN") < order.index("REGISTRY_NOTIFICATIONS_ENDPOINTS")
    webhook_env = {e["name"]: e for e in container["env"]}
    assert env["WEBHOOK_TOKEN"]["valueFrom"] == webhook_env["WEBHOOK_TOKEN"]["valueFrom"]
    # What the development registry ignores, this one ignores too (deploy/registry/config.yml.in).
    assert endpoint["ignoredmediatypes"] == ["application/octet-stream"]
    assert endpoint["ignore"]["actions"] == ["pull", "mount"]
    config = yaml.safe_load(
        one(docs, "ConfigMap", _by_base_name(docs, "ConfigMap", "registry-config")["metadata"]["name"])["data"][
            "config.yml"
        ]
    )
    assert config["storage"]["delete"]["enabled"] is True
    assert config["notifications"]["events"]["includereferences"] is True
    assert "endpoints" not in config["notifications"], "the endpoint (and its token) belongs in the environment"


def test_prod_registry_token_auth_points_at_the_auth_service():
    """prod runs the registry with token auth (registry-token-auth.yaml); the deployer pulls with
    robot credentials of each tenant, the catalog with its robot account from the Secret."""
    docs = list(rendered("prod"))
    deployer_config = _by_base_name(docs, "ConfigMap", "deployer-config")["data"]
    assert deployer_config["DEPLOYER_PULL_CREDENTIALS"] == "robot"
    deployment = one(docs, "Deployment", "registry")
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(deployment, version, strict=True)
    registry = next(c for c in _containers(deployment) if c["name"] == "registry")
    env = {e["name"]: e.get("value") for e in registry["env"]}
    auth_config = _by_base_name(docs, "ConfigMap", "auth-config")["data"]
    assert env["REGISTRY_AUTH_TOKEN_ISSUER"] == auth_config["AUTH_ISSUER"]
    assert env["REGISTRY_AUTH_TOKEN_SERVICE"] == auth_config["AUTH_SERVICE"]
    realm = urlsplit(env["REGISTRY_AUTH_TOKEN_REALM"])
    ingress = one(docs, "Ingress", "auth")
    rule = next(r for r in ingress["spec"]["rules"] if r["host"] == realm.hostname)
    path = next(p for p in rule["http"]["paths"] if p["path"] == realm.path)
    assert path["backend"]["service"]["name"] == "auth"
    mount = next(
        m for m in registry["volumeMounts"] if env["REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE"].startswith(m["mountPath"])
    )
    volume = next(v for v in _pod_spec(deployment)["volumes"] if v["name"] == mount["name"])
    assert [i["key"] for i in volume["secret"]["items"]] == ["tls.crt"], "the registry gets the certificate only"


def test_only_the_registrys_path_takes_large_bodies():
    """Layers are pushed through /v2/ without a size limit; everything else the ingress exposes
    (the token form, the console and the API) is bounded, so nobody streams gigabytes into the auth
    service or the gateway."""
    docs = list(rendered("prod"))
    limits = {}
    for ingress in find(docs, "Ingress"):
        size = ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/proxy-body-size")
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                limits[path["path"]] = size
    assert limits == {"/v2/": "0", "/token": "16k", "/api/": "64k", "/": "64k"}
    # The gateway's own limit is no larger than the ingress's.
    gateway = _by_base_name(docs, "ConfigMap", "gateway-config")["data"]
    assert int(gateway["GATEWAY_MAX_BODY_BYTES"]) <= 64 * 1024


# -- the gateway ---------------------------------------------------------------------------------


def _container_port(deployment, name):
    container = next(c for c in _containers(deployment, init=False) if c["name"] == name)
    return container, {p.get("name"): p["containerPort"] for p in container["ports"]}


def test_the_ingress_sends_the_console_and_the_api_to_the_gateways_port(overlay):
    """The overlay's Ingress routes / (the console) and /api/ to the gateway Service, on a port that
    selects the gateway's pods and lands on the container port it listens on (GATEWAY_ADDRESS)."""
    docs = rendered(overlay)
    ingress = one(docs, "Ingress", "gateway")
    deployment = one(docs, "Deployment", "gateway")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    container, ports = _container_port(deployment, "gateway")
    listens = int(_by_base_name(docs, "ConfigMap", "gateway-config")["data"]["GATEWAY_ADDRESS"].rsplit(":", 1)[1])
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"], f"{overlay}: the gateway's Ingress names no host"
    routed = {}
    for path in rule["http"]["paths"]:
        backend = path["backend"]["service"]
        service = one(docs, "Service", backend["name"])
        assert service["spec"]["selector"].items() <= labels.items(), f"{path['path']}: not the gateway's pods"
        wanted = backend["port"]
        port = next(p for p in service["spec"]["ports"] if wanted in ({"name": p.get("name")}, {"number": p["port"]}))
        target = port["targetPort"]
        routed[path["path"]] = (path["pathType"], ports.get(target, target))
    assert routed == {"/": ("Prefix", listens), "/api/": ("Prefix", listens)}
    assert container["readinessProbe"]["httpGet"]["port"] in ("http", listens)


def test_prod_serves_the_console_over_tls_only_with_a_secure_cookie():
    docs = rendered("prod")
    ingress = one(docs, "Ingress", "gateway")
    hosts = {r["host"] for r in ingress["spec"]["rules"]}
    covered = {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}
    assert hosts <= covered, f"hosts without TLS: {hosts - covered}"
    assert all(tls["secretName"] for tls in ingress["spec"]["tls"])
    assert ingress["metadata"]["annotations"].get("nginx.ingress.kubernetes.io/ssl-redirect") == "true"
    assert _by_base_name(docs, "ConfigMap", "gateway-config")["data"]["GATEWAY_SECURE_COOKIE"] == "true"


def test_dev_has_no_tls_so_its_cookie_is_not_secure():
    docs = rendered("dev")
    assert not one(docs, "Ingress", "gateway")["spec"].get("tls")
    assert _by_base_name(docs, "ConfigMap", "gateway-config")["data"]["GATEWAY_SECURE_COOKIE"] == "false"


def test_the_gateways_csrf_key_and_certificate_are_mounted_where_its_settings_say(overlay):
    """GATEWAY_SECRET_FILE is a file of the Secret imagehub-gateway-secret (the same key for every
    replica), AUTH_CERT_FILE the auth service's certificate alone; both read-only."""
    docs = rendered(overlay)
    deployment = one(docs, "Deployment", "gateway")
    settings = _by_base_name(docs, "ConfigMap", "gateway-config")["data"]
    container, _ = _container_port(deployment, "gateway")
    volumes = {v["name"]: v for v in _pod_spec(deployment)["volumes"]}
    for setting, secret, key in (
        ("GATEWAY_SECRET_FILE", "imagehub-gateway-secret", "csrf-key"),
        ("AUTH_CERT_FILE", "imagehub-auth-keys", "tls.crt"),
    ):
        path = settings[setting]
        mount = next(m for m in container["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
        assert mount.get("readOnly") is True, setting
        source = volumes[mount["name"]]["secret"]
        assert _base_name(source["secretName"]) == secret, setting
        assert source["items"] == [{"key": key, "path": path[len(mount["mountPath"].rstrip("/")) + 1 :]}], setting
    if overlay == "dev":  # generated: long enough for the gateway to start
        assert len(_secret_value(docs, "imagehub-gateway-secret", "csrf-key").encode()) >= 32


# -- workloads -----------------------------------------------------------------------------------


def test_workloads_are_sized_probed_and_locked_down(overlay):
    docs = rendered(overlay)
    ours = [d for d in find(docs, "Deployment") if any(_is_ours(c["image"]) for c in _containers(d))]
    assert {d["metadata"]["name"] for d in ours} == set(SERVICES)
    pdbs = find(docs, "PodDisruptionBudget")
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in find(docs, "HorizontalPodAutoscaler")}
    for doc in find(docs, "Deployment") + find(docs, "Job"):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        spec = _pod_spec(doc)
        for container in _containers(doc):
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{name} {container['name']}: requests"
            assert "memory" in resources.get("limits", {}), f"{name} {container['name']}: memory limit"
        if doc["kind"] == "Deployment":
            for container in _containers(doc, init=False):
                assert "livenessProbe" in container and "readinessProbe" in container, f"{name}: probes"
        if not any(_is_ours(c["image"]) for c in _containers(doc)):
            continue
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec.get("automountServiceAccountToken") is False, name
        for container in _containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert "backdoor" not in " ".join(container.get("command", []) + container.get("args", [])), name
    for doc in ours:
        service = doc["metadata"]["name"]
        labels = doc["spec"]["template"]["metadata"]["labels"]
        assert any(p["spec"]["selector"]["matchLabels"].items() <= labels.items() for p in pdbs), f"{service}: no PDB"
        if service in AUTOSCALED:
            assert service in hpas, f"{service} has no HorizontalPodAutoscaler"
            assert hpas[service]["spec"]["minReplicas"] >= 1
        else:
            assert service not in hpas, f"{service} is not safe to autoscale"
        if service in HTTP_SERVICES:
            svc = one(docs, "Service", service)
            assert svc["spec"]["selector"].items() <= labels.items()
            assert [p["port"] for p in svc["spec"]["ports"]] == [HTTP_SERVICES[service]]
            main = next(c for c in _containers(doc, init=False) if c["name"] == service)
            assert main["livenessProbe"]["httpGet"]["path"] == "/health"
        else:
            main = next(c for c in _containers(doc, init=False) if c["name"] == service)
            assert main["livenessProbe"]["exec"]["command"][:4] == ["python", "-m", "shared.ops.probe", "live"]
            assert main["readinessProbe"]["exec"]["command"][:4] == ["python", "-m", "shared.ops.probe", "ready"]


def _secret_value(docs, name, key):
    secret = _by_base_name(docs, "Secret", name)
    if "stringData" in secret and key in secret["stringData"]:
        return secret["stringData"][key]
    return base64.b64decode(secret["data"][key]).decode()


def test_dev_runs_its_broker_and_database_prod_asks_the_operators():
    dev, prod = rendered("dev"), rendered("prod")
    assert {s["metadata"]["name"] for s in find(dev, "StatefulSet")} == {"rabbitmq", "postgres"}
    assert not find(prod, "StatefulSet")
    assert find(prod, "RabbitmqCluster") and find(prod, "Cluster")
    # The dev connection settings name the dev StatefulSets' Services.
    for service in SERVICES:
        assert (
            urlsplit(_secret_value(dev, "imagehub-secrets", f"AMQP_URI_{service.upper()}")).hostname
            == one(dev, "Service", "rabbitmq")["metadata"]["name"]
        )
    init_sql = one(dev, "ConfigMap", _by_base_name(dev, "ConfigMap", "postgres-init")["metadata"]["name"])["data"]
    created = set(re.findall(r"CREATE DATABASE (\w+)", " ".join(init_sql.values())))
    postgres = one(dev, "StatefulSet", "postgres")
    created |= {e["value"] for e in _containers(postgres)[0]["env"] if e["name"] == "POSTGRES_DB"}
    for key in ("CATALOG_DB_URL", "DEPLOYER_DB_URL", "AUTH_DB_URL"):
        url = urlsplit(_secret_value(dev, "imagehub-secrets", key))
        assert url.hostname == "postgres" and url.path.lstrip("/") in created, key
    # Each service its own database in production too (their Alembic histories are separate).
    bootstrap = one(prod, "Cluster", "imagehub-db")["spec"]["bootstrap"]["initdb"]
    prod_dbs = {bootstrap["database"]} | set(
        re.findall(r"CREATE DATABASE (\w+)", " ".join(bootstrap["postInitApplicationSQL"]))
    )
    assert prod_dbs == {"catalog", "deployer", "auth"}


# -- the broker ----------------------------------------------------------------------------------


def test_each_workload_reaches_the_broker_as_its_own_user(overlay):
    """Every container of a service (and the migration Job's container for it) takes AMQP_URI from
    the Secret key of that service alone, never a shared one (deploy/broker/access.yml)."""
    docs = rendered(overlay)
    used = set()
    for doc in find(docs, "Deployment") + find(docs, "Job"):
        for container in _containers(doc):
            if not _is_ours(container["image"]):
                continue
            service = container["name"] if doc["kind"] == "Job" else doc["metadata"]["name"]
            what = f"{doc['kind']}/{doc['metadata']['name']} {container['name']}"
            assert not any("secretRef" in s for s in container.get("envFrom", [])), f"{what}: a whole Secret"
            env = {e["name"]: e for e in container.get("env", [])}
            assert "value" not in env["AMQP_URI"], f"{what}: AMQP_URI written in the manifest"
            ref = env["AMQP_URI"]["valueFrom"]["secretKeyRef"]
            assert _base_name(ref["name"]) == "imagehub-secrets", what
            assert ref["key"] == f"AMQP_URI_{service.upper()}" and not ref.get("optional"), what
            used.add(ref["key"])
    assert used == {f"AMQP_URI_{s.upper()}" for s in SERVICES}
    for doc in docs:  # nobody reads a shared key
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            for container in _containers(doc):
                for env in container.get("env", []):
                    assert env.get("valueFrom", {}).get("secretKeyRef", {}).get("key") != "AMQP_URI", doc["kind"]


def test_dev_services_connect_as_their_broker_users_on_the_suites_vhost():
    from shared.ops import broker_access

    dev = rendered("dev")
    matrix = broker_access.load()
    users = set()
    for service in SERVICES:
        url = urlsplit(_secret_value(dev, "imagehub-secrets", f"AMQP_URI_{service.upper()}"))
        assert url.username == f"imagehub-{service}" and service in matrix.roles, service
        assert url.path == "/imagehub" and url.password, service
        users.add(url.username)
    assert len(users) == len(SERVICES)
