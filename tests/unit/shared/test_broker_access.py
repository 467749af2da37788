"""deploy/broker/access.yml: what it says in RabbitMQ's terms, that it covers every RPC method and
event of the code, that it refuses a name it does not define, and that docs/security.md shows it."""

import inspect
import os
import re

import pytest
from nameko.rpc import Rpc

from auth.service import AuthService
from catalog.service import CatalogService
from deployer.service import DeployerService, DeployerWorker
from shared.contracts.events import SCHEMAS
from shared.ops import broker_access
from shared.ops.broker_access import NOTHING, REPLY_KEY, MatrixError, parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MATRIX = broker_access.load()


def rpc_methods(cls):
    return {
        name
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if any(isinstance(e, Rpc) for e in getattr(fn, "nameko_entrypoints", ()))
    }


@pytest.mark.parametrize("cls", [AuthService, CatalogService, DeployerService, DeployerWorker])
def test_every_rpc_method_of_the_code_is_in_the_matrix(cls):
    listed = {m for group in MATRIX.methods.get(cls.name, {}).values() for m in group}
    assert listed == rpc_methods(cls)


def test_every_event_of_the_contracts_is_in_the_matrix():
    assert set(MATRIX.all_events()) == {f"{source}.{kind}" for source, kind in SCHEMAS}


def test_a_group_stands_for_its_methods():
    assert MATRIX.roles["platform"].calls == tuple(
        sorted(
            f"{s}.{m}"
            for s, g in [
                ("auth", "audit"),
                ("catalog", "browse"),
                ("catalog", "delete"),
                ("catalog", "describe"),
                ("deployer", "browse"),
                ("deployer", "deploy"),
            ]
            for m in MATRIX.methods[s][g]
        )
    )


def test_no_admin_method_for_anyone_but_admin():
    admin_methods = {f"{s}.{m}" for s, groups in MATRIX.methods.items() for m in groups.get("admin", [])}
    for role in MATRIX.roles:
        granted = set(MATRIX.roles[role].calls) & admin_methods
        if role == "admin":
            assert granted == admin_methods
        elif role == "deployer":  # pulls with a short-lived credential of the deployment's tenant
            assert granted == {"auth.issue_robot_credential"}
        else:
            assert granted == set(), role


def test_webhook_in_rabbitmq_terms():
    p = MATRIX.permissions("webhook")
    assert (p.configure, p.write, p.read) == ("^(webhook\\.events)$", "^(webhook\\.events)$", NOTHING)
    topics = {t.exchange: (t.write, t.read) for t in MATRIX.topic_permissions("webhook")}
    assert topics == {
        "nameko-rpc": (NOTHING, NOTHING),
        "catalog.events": (NOTHING, NOTHING),
        "deployer.events": (NOTHING, NOTHING),
        "webhook.events": ("^(event_set_aside|image_deleted|image_pushed)$", NOTHING),
        "imagehub.dlx": (NOTHING, NOTHING),  # it runs no handler: nothing to park
    }


def test_a_service_parks_only_its_own_handlers_messages_and_only_the_desk_reads_and_replays():
    catalog, deployer = MATRIX.permissions("catalog"), MATRIX.permissions("deployer")
    for p in (catalog, deployer):
        assert re.fullmatch(p.write, "imagehub.dlx") and not re.fullmatch(p.read, "imagehub.dlx")
    assert re.fullmatch(catalog.read, "imagehub.dead-letters") and re.fullmatch(catalog.write, "imagehub.replay")
    for role in MATRIX.roles:
        if role != "catalog":
            p = MATRIX.permissions(role)
            assert not re.fullmatch(p.read, "imagehub.dead-letters"), role
            assert not re.fullmatch(p.write, "imagehub.replay"), role
    [parks] = [t for t in MATRIX.topic_permissions("deployer") if t.exchange == "imagehub.dlx"]
    assert re.fullmatch(parks.write, "evt-catalog-tag_indexed--deployer_worker.handle_tag_indexed")
    assert not re.fullmatch(parks.write, "evt-webhook-image_pushed--catalog.handle_image_pushed")


def test_a_caller_binds_only_reply_keys_and_publishes_only_its_methods():
    [rpc] = [t for t in MATRIX.topic_permissions("platform") if t.exchange == "nameko-rpc"]
    assert rpc.read == f"^({REPLY_KEY})$"
    assert re.fullmatch(rpc.write, "catalog.get_tag")
    for refused in ("auth.create_account", "catalog.resync", "catalog.get_tag.x", "catalog.*", "#", ""):
        assert not re.fullmatch(rpc.write, refused), refused


def test_every_user_has_a_topic_permission_on_every_exchange():
    for role in MATRIX.roles:
        assert [t.exchange for t in MATRIX.topic_permissions(role)] == MATRIX.exchanges()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["users"]["platform"]["calls"].append("catalog.nope"), "neither a method nor a group"),
        (lambda d: d["users"]["catalog"]["publishes"].append("catalog.tag_renamed"), "no event"),
        (lambda d: d["users"]["webhook"].update(publishes="webhook.image_pushed"), "expected a list"),
    ],
)
def test_a_name_the_file_does_not_define_is_refused(change, message):
    import yaml

    with open(broker_access.DEFAULT_MATRIX) as f:
        document = yaml.safe_load(f)
    change(document)
    with pytest.raises(MatrixError, match=message):
        parse(document)


def test_docs_security_shows_the_matrix():
    with open(os.path.join(ROOT, "docs", "security.md")) as doc:
        text = doc.read()
    shown = re.search(r"<!-- broker-matrix:start -->\n(.*?)<!-- broker-matrix:end -->", text, re.S)
    assert shown is not None, "docs/security.md lost its broker-matrix markers"
    assert shown.group(1) == broker_access.render_markdown(MATRIX)
