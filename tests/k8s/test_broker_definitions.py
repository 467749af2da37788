"""The dev broker's users come from deploy/broker/access.yml: ``python -m shared.ops.broker_access
definitions`` renders RabbitMQ definitions (users with RabbitMQ's salted SHA-256 hashes, the vhost,
permissions, topic permissions) and the dev overlay loads the checked-in render at boot. Offline:
the checked-in file must be exactly what the command renders for the dev overlay's passwords."""

import base64
import hashlib
import json
import os
import re
from urllib.parse import unquote, urlsplit

import pytest

from shared.ops import broker_access
from shared.ops.broker_access import MatrixError
from tests.k8s.conftest import K8S, find, one, rendered

DEV = os.path.join(K8S, "overlays", "dev")
CHECKED_IN = os.path.join(DEV, "rabbitmq-definitions.json")
URI_FILES = [os.path.join(DEV, "broker-services.env"), os.path.join(DEV, "broker-callers.env")]
COMMAND = [
    "definitions", "--vhost", "imagehub", "--prefix", "imagehub-",
    *[a for f in URI_FILES for a in ("--uris", f)],
]  # fmt: skip
MATRIX = broker_access.load()


def _secret(docs, name):
    found = [d for d in find(docs, "Secret") if re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", d["metadata"]["name"])]
    assert len(found) == 1, name
    return {k: base64.b64decode(v).decode() for k, v in found[0].get("data", {}).items()}


def test_rabbit_password_hash_is_rabbitmqs_salted_sha256():
    salt = b"\x90\x8d\xc6\x0a"
    expected = base64.b64encode(salt + hashlib.sha256(salt + "s3cret-päss".encode()).digest()).decode()
    assert broker_access.rabbit_password_hash("s3cret-päss", salt) == expected
    fresh = broker_access.rabbit_password_hash("x")
    assert len(base64.b64decode(fresh)) == 36 and fresh != broker_access.rabbit_password_hash("x")
    assert broker_access.rabbit_password_matches(fresh, "x")
    assert not broker_access.rabbit_password_matches(fresh, "y")
    assert not broker_access.rabbit_password_matches("not base64!", "x")
    with pytest.raises(ValueError):
        broker_access.rabbit_password_hash("x", b"\x00")


def test_definitions_give_each_user_what_apply_gives():
    passwords = {role: f"pw-{role}" for role in MATRIX.roles}
    document = broker_access.definitions(MATRIX, "v", "p-", passwords)
    assert document["vhosts"] == [{"name": "v"}]
    assert [u["name"] for u in document["users"]] == [f"p-{r}" for r in MATRIX.roles]
    for user in document["users"]:
        assert user["hashing_algorithm"] == "rabbit_password_hashing_sha256" and user["tags"] == []
        assert broker_access.rabbit_password_matches(user["password_hash"], f"pw-{user['name'][2:]}")
    for role in MATRIX.roles:
        p = MATRIX.permissions(role)
        assert {"user": f"p-{role}", "vhost": "v", "configure": p.configure, "write": p.write, "read": p.read} in (
            document["permissions"]
        )
        topics = [t for t in document["topic_permissions"] if t["user"] == f"p-{role}"]
        assert topics == [
            {"user": f"p-{role}", "vhost": "v", "exchange": t.exchange, "write": t.write, "read": t.read}
            for t in MATRIX.topic_permissions(role)
        ]
        assert {t["exchange"] for t in topics} == set(MATRIX.exchanges()), "an exchange without a topic permission"
    assert len(document["permissions"]) == len(MATRIX.roles)
    with pytest.raises(MatrixError, match="no password"):
        broker_access.definitions(MATRIX, "v", "p-", {"auth": "x"})


def test_passwords_come_from_the_users_uris():
    uri = "amqp://p-auth:a%40b@h:5672/v"
    assert broker_access.passwords_from_uris([uri], "v", "p-", MATRIX) == {"auth": "a@b"}
    for bad in ("amqp://p-nobody:x@h/v", "amqp://auth:x@h/v", "amqp://p-auth:x@h/other"):
        with pytest.raises(MatrixError):
            broker_access.passwords_from_uris([bad], "v", "p-", MATRIX)


def test_the_checked_in_dev_definitions_are_what_the_command_renders(tmp_path):
    out = tmp_path / "definitions.json"
    assert broker_access.cli([*COMMAND, "--keep-hashes", CHECKED_IN, "--output", str(out)]) == 0
    with open(CHECKED_IN) as f:
        checked_in = f.read()
    how = "python -m shared.ops.broker_access " + " ".join(
        a.replace(os.path.dirname(os.path.dirname(K8S)) + os.sep, "") for a in COMMAND
    )
    assert out.read_text() == checked_in, f"stale: {how} --keep-hashes FILE --output FILE (docs/kubernetes.md)"


def test_the_command_line_names_the_sub_command(tmp_path, capsys):
    out = tmp_path / "a.json"
    assert broker_access.cli(["--matrix", str(broker_access.DEFAULT_MATRIX), *COMMAND, "--output", str(out)]) == 0
    first = json.loads(out.read_text())
    assert [u["name"] for u in first["users"]] == [f"imagehub-{r}" for r in MATRIX.roles]
    assert broker_access.cli(["render"]) == 0 and "| **RPC**" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # every role needs its password
        broker_access.cli(["definitions", "--vhost", "imagehub", "--prefix", "imagehub-", "--uris", URI_FILES[0]])


def test_the_dev_broker_loads_them_and_has_no_guest():
    dev = rendered("dev")
    definitions = json.loads(_secret(dev, "imagehub-dev-rabbitmq-definitions")["definitions.json"])
    with open(CHECKED_IN) as f:
        assert definitions == json.load(f)
    names = {u["name"] for u in definitions["users"]}
    assert "guest" not in names and names == {f"imagehub-{r}" for r in MATRIX.roles}
    assert all(u["tags"] == [] for u in definitions["users"]), "no administrator among the suite's users"
    assert definitions["vhosts"] == [{"name": "imagehub"}]
    # The passwords the pods are given are the ones hashed there.
    uris = {**_secret(dev, "imagehub-secrets"), **_secret(dev, "imagehub-dev-broker-callers")}
    hashes = {u["name"]: u["password_hash"] for u in definitions["users"]}
    checked = set()
    for key, uri in uris.items():
        if key.startswith("AMQP_URI_"):
            url = urlsplit(uri)
            assert broker_access.rabbit_password_matches(hashes[url.username], unquote(url.password)), key
            checked.add(url.username)
    assert checked == names
    # The StatefulSet mounts them where its configuration loads them from, and makes no default user.
    statefulset = one(dev, "StatefulSet", "rabbitmq")
    spec = statefulset["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert not {e["name"] for e in container.get("env", [])} & {"RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"}
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    config_volume = volumes[mounts["/etc/rabbitmq/conf.d"]]
    config = next(
        d["data"] for d in find(dev, "ConfigMap") if d["metadata"]["name"] == config_volume["configMap"]["name"]
    )
    conf = "\n".join(config.values())
    path = re.search(r"^load_definitions\s*=\s*(\S+)", conf, re.M).group(1)
    directory, filename = os.path.split(path)
    secret_volume = volumes[mounts[directory]]["secret"]
    assert secret_volume["secretName"].startswith("imagehub-dev-rabbitmq-definitions-")
    assert filename == "definitions.json"
    assert not re.search(r"^default_(user|pass)\s*=", conf, re.M)
