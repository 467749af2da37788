"""The accounts API over real nameko RPC: results, and typed errors that arrive as themselves."""

import re
import uuid

import pytest

from shared.contracts.errors import Conflict, InvalidRequest, NotFound


@pytest.fixture
def tenant(rpc):
    tenant_id = f"t{uuid.uuid4().hex[:10]}"
    rpc.auth.create_tenant(tenant_id, display_name="Test tenant")
    return tenant_id


class TestTenants:
    def test_made_read_disabled_and_listed(self, rpc, tenant):
        got = rpc.auth.get_tenant(tenant)
        assert {k: got[k] for k in ("tenant_id", "display_name", "disabled", "disabled_at")} == {
            "tenant_id": tenant,
            "display_name": "Test tenant",
            "disabled": False,
            "disabled_at": None,
        }
        disabled = rpc.auth.disable_tenant(tenant)
        assert disabled["disabled"] is True and disabled["disabled_at"] is not None
        assert rpc.auth.enable_tenant(tenant)["disabled"] is False
        listed = rpc.auth.list_tenants(page_size=200)
        assert tenant in [t["tenant_id"] for t in listed["items"]]
        assert (listed["page"], listed["page_size"]) == (1, 200)

    def test_errors_cross_rpc_as_themselves(self, rpc, tenant):
        with pytest.raises(Conflict, match=f"tenant '{tenant}' already exists"):
            rpc.auth.create_tenant(tenant)
        with pytest.raises(NotFound, match="tenant 'no-such-tenant' does not exist"):
            rpc.auth.get_tenant("no-such-tenant")
        with pytest.raises(InvalidRequest, match="'library' is the public library, not a tenant"):
            rpc.auth.create_tenant("library")
        with pytest.raises(InvalidRequest, match="tenant_id"):
            rpc.auth.create_tenant("Not A Namespace")


class TestAccounts:
    def test_an_account_comes_back_without_any_secret(self, rpc, tenant):
        name = f"u{uuid.uuid4().hex[:8]}"
        made = rpc.auth.create_account(name, "a-long-password", tenant_id=tenant, description="dev")
        assert {
            k: made[k]
            for k in ("name", "kind", "tenant_id", "is_admin", "actions", "catalog", "description", "disabled")
        } == {
            "name": name,
            "kind": "user",
            "tenant_id": tenant,
            "is_admin": False,
            "actions": ["pull", "push"],
            "catalog": False,
            "description": "dev",
            "disabled": False,
        }
        assert made == rpc.auth.get_account(name)
        assert "a-long-password" not in str(made) and "argon2" not in str(made)

    @pytest.mark.parametrize(
        "kwargs, error, message",
        [
            ({"name": "Upper", "password": "a-long-password"}, InvalidRequest, "name 'Upper' must be"),
            ({"name": "has+plus", "password": "a-long-password"}, InvalidRequest, "name 'has+plus' must be"),
            ({"name": "shorty", "password": "short"}, InvalidRequest, "password must be 8 to 1024 characters"),
            (
                {"name": "noten", "password": "a-long-password", "tenant_id": None},
                InvalidRequest,
                "tenant_id is required",
            ),
            (
                {"name": "flag", "password": "a-long-password", "is_admin": "yes"},
                InvalidRequest,
                "is_admin must be true or false",
            ),
            (
                {"name": "ghost", "password": "a-long-password", "tenant_id": "no-such-tenant"},
                NotFound,
                "tenant 'no-such-tenant' does not exist",
            ),
        ],
    )
    def test_refusals(self, rpc, tenant, kwargs, error, message):
        kwargs.setdefault("tenant_id", tenant)
        with pytest.raises(error, match=re.escape(message)):
            rpc.auth.create_account(**kwargs)

    def test_a_taken_name_is_a_conflict(self, rpc, tenant):
        name = f"u{uuid.uuid4().hex[:8]}"
        rpc.auth.create_account(name, "a-long-password", tenant_id=tenant)
        with pytest.raises(Conflict, match=f"account '{name}' already exists"):
            rpc.auth.create_account(name, "a-long-password", tenant_id=tenant)

    def test_listed_by_tenant_and_kind(self, rpc, tenant):
        rpc.auth.create_account(f"b-{tenant}", "a-long-password", tenant_id=tenant)
        rpc.auth.create_account(f"a-{tenant}", "a-long-password", tenant_id=tenant)
        rpc.auth.create_robot(tenant, "ci")
        everyone = rpc.auth.list_accounts(tenant_id=tenant)
        assert [a["name"] for a in everyone["items"]] == [f"a-{tenant}", f"b-{tenant}", f"{tenant}+ci"]
        assert everyone["total"] == 3
        assert [a["name"] for a in rpc.auth.list_accounts(tenant_id=tenant, kind="robot")["items"]] == [f"{tenant}+ci"]
        with pytest.raises(InvalidRequest, match="kind must be 'user' or 'robot'"):
            rpc.auth.list_accounts(kind="admin")


class TestRobots:
    def test_the_secret_is_shown_once(self, rpc, tenant):
        made = rpc.auth.create_robot(tenant, "deployer", description="pulls for the deployer")
        assert made["username"] == f"{tenant}+deployer" == made["account"]["name"]
        assert (made["account"]["actions"], made["account"]["kind"]) == (["pull"], "robot")
        assert len(made["secret"]) == 43
        assert made["secret"] not in str(rpc.auth.get_account(made["username"]))
        rotated = rpc.auth.rotate_robot_secret(made["username"])
        assert rotated["secret"] != made["secret"]

    def test_refusals(self, rpc, tenant):
        with pytest.raises(InvalidRequest, match="catalog access is for platform robots only"):
            rpc.auth.create_robot(tenant, "lister", catalog=True)
        with pytest.raises(InvalidRequest, match="'fly' is not one of pull, push, delete"):
            rpc.auth.create_robot(tenant, "flyer", actions=["fly"])
        with pytest.raises(InvalidRequest, match="actions must name at least one action"):
            rpc.auth.create_robot(tenant, "idle", actions=[])
        with pytest.raises(InvalidRequest, match="name 'Bad Name' must be"):
            rpc.auth.create_robot(tenant, "Bad Name")

    def test_a_platform_robot_restricted_to_namespaces_shows_them(self, rpc):
        name = f"library-{uuid.uuid4().hex[:8]}"
        made = rpc.auth.create_robot(None, name, actions=["pull", "push"], namespaces=["library"])
        assert made["username"] == f"_platform+{name}"
        assert (made["account"]["tenant_id"], made["account"]["actions"], made["account"]["namespaces"]) == (
            None,
            ["pull", "push"],
            ["library"],
        )
        assert rpc.auth.get_account(made["username"])["namespaces"] == ["library"]
        listed = {a["name"]: a for a in rpc.auth.list_accounts(kind="robot", page_size=200)["items"]}
        assert listed[made["username"]]["namespaces"] == ["library"]
        everywhere = rpc.auth.create_robot(None, f"reader-{uuid.uuid4().hex[:8]}")
        assert everywhere["account"]["namespaces"] is None

    def test_namespaces_refusals_name_the_argument(self, rpc, tenant):
        with pytest.raises(InvalidRequest, match="namespaces is for platform robots only"):
            rpc.auth.create_robot(tenant, "narrow", namespaces=[tenant])
        with pytest.raises(InvalidRequest, match=re.escape("namespaces {0: [\"namespace 'Library' must be lower-case")):
            rpc.auth.create_robot(None, "upper", namespaces=["Library"])
        with pytest.raises(InvalidRequest, match="namespaces .*'acme/app' must be"):
            rpc.auth.create_robot(None, "path", namespaces=["acme/app"])
        with pytest.raises(InvalidRequest, match="namespaces must name at least one namespace"):
            rpc.auth.create_robot(None, "nowhere", namespaces=[])
        with pytest.raises(InvalidRequest, match="namespaces must be a list of namespaces"):
            rpc.auth.create_robot(None, "string", namespaces="library")
        for name in ("narrow", "upper", "path", "nowhere", "string"):
            with pytest.raises(NotFound):
                rpc.auth.get_account(f"_platform+{name}")

    def test_an_issued_credential_is_bounded_in_time(self, rpc, tenant):
        credential = rpc.auth.issue_robot_credential(tenant, name="ci", actions=["push", "pull"], ttl=30)
        assert (credential["username"], credential["tenant_id"], credential["actions"]) == (
            f"{tenant}+ci",
            tenant,
            ["pull", "push"],
        )
        with pytest.raises(InvalidRequest, match="ttl must be at most 3600 seconds, got 3601"):
            rpc.auth.issue_robot_credential(tenant, ttl=3601)
        rpc.auth.disable_tenant(tenant)
        with pytest.raises(Conflict, match="is disabled"):
            rpc.auth.issue_robot_credential(tenant)
        with pytest.raises(NotFound):
            rpc.auth.issue_robot_credential("no-such-tenant")
