"""The audit trail on the real suite: each state-changing call leaves exactly one record, with the
actor, the broker user it came through, the person it was for, the tenant, the target and the
outcome; a tenant's developers list their tenant's records and never another's."""

import uuid

import pytest

from shared.contracts.errors import Forbidden, ImagehubError, NotFound
from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support import push_image


def records(stack, service, tenant, identity, **filters):
    with stack.proxy("gateway", identity) as rpc:
        return rpc[service].list_audit(tenant, page_size=200, **filters)["items"]


def test_each_call_leaves_one_record_and_tenants_see_only_their_own(stack, developers):
    (a, (alice, alice_id)), (b, (_, bob_id)) = developers.items()
    content = uuid.uuid4().bytes
    pushed = push_image(stack.registry.url, f"{a}/app", "v1", content=content, session=stack.session(a))
    wait_for_tag(stack, a, f"{a}/app", "v1", pushed["digest"])
    missing = str(uuid.uuid4())

    with stack.proxy("gateway", alice_id) as rpc:
        deleted = rpc.catalog.delete_tag(a, f"{a}/app", "v1")
        with pytest.raises(NotFound):
            rpc.deployer.scale_deployment(a, missing, 2)
        with pytest.raises(Forbidden):
            rpc.catalog.delete_tag(b, f"{b}/app", "v1")  # alice trying bob's tenant
        rpc.catalog.list_tags(a, f"{a}/app")  # a read: not recorded
    assert deleted["digest"] == pushed["digest"]

    mine = records(stack, "catalog", a, alice_id)
    assert [(r["action"], r["target"], r["outcome"]) for r in mine] == [("catalog.delete_tag", f"{a}/app:v1", "ok")]
    [record] = mine
    assert (record["actor"], record["on_behalf_of"], record["tenant_id"]) == (f"{alice.name}@{a}", alice.name, a)
    assert record["broker_user"] == f"{stack.vhost}-gateway"

    [scaled] = records(stack, "deployer", a, alice_id)
    assert (scaled["action"], scaled["target"], scaled["outcome"]) == (
        "deployer.scale_deployment",
        f"{missing}:2",
        "NotFound",
    )

    # Bob sees alice's refused attempt in his tenant; alice does not see bob's tenant at all.
    [attempt] = records(stack, "catalog", b, bob_id)
    assert (attempt["actor"], attempt["outcome"], attempt["target"]) == (
        f"{alice.name}@{a}",
        "Forbidden",
        f"{b}/app:v1",
    )
    with pytest.raises(Forbidden):
        records(stack, "catalog", b, alice_id)
    with pytest.raises(Forbidden):  # every tenant's at once: the platform's and admins' only
        records(stack, "catalog", None, alice_id)


def test_account_changes_are_recorded_with_the_admin_who_made_them(stack, developers):
    tenant = next(iter(developers))
    name = f"dev2-{uuid.uuid4().hex[:6]}"
    stack.rpc("auth", "create_account", name, uuid.uuid4().hex, tenant_id=tenant)
    stack.rpc("auth", "disable_account", name)
    with stack.admin_proxy(timeout=20) as rpc:
        trail = rpc.auth.list_audit(tenant_id=None, page_size=200)["items"]
    mine = [(r["action"], r["actor"], r["outcome"]) for r in trail if r["target"] == name]
    assert mine == [
        ("auth.disable_account", f"{stack.admin.name} (admin)", "ok"),
        ("auth.create_account", f"{stack.admin.name} (admin)", "ok"),
    ]
    # A developer of the tenant sees the account made in it, and nothing of other tenants.
    _, identity = developers[tenant]
    theirs = records(stack, "auth", tenant, identity)
    assert ("auth.create_account", name) in {(r["action"], r["target"]) for r in theirs}
    assert {r["tenant_id"] for r in theirs} == {tenant}


def test_the_platform_lists_everything_and_nobody_unverified_lists_anything(stack, developers):
    with stack.proxy("platform") as rpc:
        everything = rpc.catalog.list_audit(page_size=200)
    assert everything["total"] >= 1
    with stack.proxy("gateway") as rpc, pytest.raises(ImagehubError) as refused:
        rpc.catalog.list_audit(next(iter(developers)))
    assert type(refused.value).__name__ == "Unauthorized"
