"""Tenants, developer accounts and robots: what the RPC API's rules keep and refuse."""

import pytest

from auth import accounts
from auth.models import Account
from shared.contracts.errors import Conflict, InvalidRequest, NotFound
from tests.unit.auth.conftest import T0, at


def user(session, hasher, name, tenant_id="acme", is_admin=False, can_delete=False, password="pw-12345678"):
    account = accounts.create_account(session, hasher, name, password, tenant_id, is_admin, can_delete, "", T0)
    session.commit()
    return account


class TestTenants:
    def test_a_tenant_is_made_once(self, session):
        tenant = accounts.create_tenant(session, "acme", "ACME Corp", T0)
        assert (tenant.id, tenant.display_name, tenant.created_at, tenant.disabled_at) == (
            "acme",
            "ACME Corp",
            T0,
            None,
        )
        with pytest.raises(Conflict, match="tenant 'acme' already exists"):
            accounts.create_tenant(session, "acme", "", T0)

    def test_disabling_twice_keeps_the_first_time_and_enabling_clears_it(self, session, acme):
        accounts.set_tenant_disabled(session, "acme", True, at(1))
        assert accounts.set_tenant_disabled(session, "acme", True, at(2)).disabled_at == at(1)
        assert accounts.set_tenant_disabled(session, "acme", False, at(3)).disabled_at is None

    def test_an_unknown_tenant_is_not_found(self, session):
        with pytest.raises(NotFound, match="tenant 'nope' does not exist"):
            accounts.get_tenant(session, "nope")
        with pytest.raises(NotFound):
            accounts.set_tenant_disabled(session, "nope", True, T0)

    def test_tenants_are_listed_by_id_a_page_at_a_time(self, session):
        for tenant_id in ("c", "a", "b"):
            accounts.create_tenant(session, tenant_id, "", T0)
        page = accounts.list_tenants(session, page=2, page_size=2)
        assert ([t.id for t in page["items"]], page["total"], page["page"], page["page_size"]) == (["c"], 3, 2, 2)


class TestDeveloperAccounts:
    def test_pull_and_push_in_the_tenant_and_delete_only_if_given(self, session, hasher, acme):
        assert user(session, hasher, "alice").actions == ["pull", "push"]
        assert user(session, hasher, "dora", can_delete=True).actions == ["pull", "push", "delete"]

    def test_the_password_is_kept_only_as_an_argon2id_hash(self, session, hasher, acme):
        account = user(session, hasher, "alice", password="alice-secret")
        assert account.password_hash.startswith("$argon2id$")
        assert hasher.verify(account.password_hash, "alice-secret")

    def test_an_admin_may_have_no_tenant_and_may_do_everything(self, session, hasher):
        admin = user(session, hasher, "root", tenant_id=None, is_admin=True)
        assert (admin.tenant_id, admin.is_admin, admin.actions, admin.catalog) == (
            None,
            True,
            ["pull", "push", "delete"],
            True,
        )

    def test_anyone_else_needs_a_tenant(self, session, hasher):
        with pytest.raises(InvalidRequest, match="tenant_id is required"):
            user(session, hasher, "alice", tenant_id=None)

    def test_the_tenant_must_exist_and_be_enabled(self, session, hasher, acme):
        with pytest.raises(NotFound, match="tenant 'globex' does not exist"):
            user(session, hasher, "bob", tenant_id="globex")
        accounts.set_tenant_disabled(session, "acme", True, T0)
        with pytest.raises(Conflict, match="tenant 'acme' is disabled"):
            user(session, hasher, "bob")

    def test_a_name_is_taken_once_across_users_and_robots(self, session, hasher, acme):
        user(session, hasher, "alice")
        with pytest.raises(Conflict, match="account 'alice' already exists"):
            user(session, hasher, "alice")
        accounts.create_robot(session, hasher, "acme", "ci", None, False, "", T0)
        assert session.query(Account).count() == 2

    def test_a_new_password_replaces_the_old_and_moves_the_generation(self, session, hasher, acme):
        account = user(session, hasher, "alice", password="old-password")
        accounts.set_password(session, hasher, "alice", "new-password", at(5))
        assert not hasher.verify(account.password_hash, "old-password")
        assert hasher.verify(account.password_hash, "new-password")
        assert (account.credential_generation, account.updated_at) == (2, at(5))

    def test_a_robot_has_no_password_to_set(self, session, hasher, acme):
        accounts.create_robot(session, hasher, "acme", "ci", None, False, "", T0)
        with pytest.raises(InvalidRequest, match="robots get a new secret from rotate_robot_secret"):
            accounts.set_password(session, hasher, "acme+ci", "new-password", T0)

    def test_disabling_an_account(self, session, hasher, acme):
        user(session, hasher, "alice")
        assert accounts.set_account_disabled(session, "alice", True, at(1)).disabled_at == at(1)
        assert not accounts.is_usable(accounts.get_account(session, "alice"))
        accounts.set_account_disabled(session, "alice", False, at(2))
        assert accounts.is_usable(accounts.get_account(session, "alice"))
        with pytest.raises(NotFound, match="account 'bob' does not exist"):
            accounts.set_account_disabled(session, "bob", True, T0)

    def test_an_account_of_a_disabled_tenant_is_not_usable(self, session, hasher, acme):
        user(session, hasher, "alice")
        accounts.set_tenant_disabled(session, "acme", True, T0)
        session.commit()
        session.expire_all()
        assert not accounts.is_usable(accounts.get_account(session, "alice"))


class TestRobots:
    def test_a_tenant_robot_is_named_after_its_tenant_and_pulls_by_default(self, session, hasher, acme):
        account, secret = accounts.create_robot(session, hasher, "acme", "deployer", None, False, "deploys", T0)
        assert (
            account.name,
            account.kind,
            account.tenant_id,
            account.actions,
            account.catalog,
            account.description,
        ) == ("acme+deployer", "robot", "acme", ["pull"], False, "deploys")
        assert hasher.verify(account.password_hash, secret) and len(secret) == 43

    def test_actions_are_kept_in_canonical_order(self, session, hasher, acme):
        account, _ = accounts.create_robot(session, hasher, "acme", "ci", ["push", "pull"], False, "", T0)
        assert account.actions == ["pull", "push"]

    def test_a_platform_robot_has_no_tenant_and_may_list_the_catalog(self, session, hasher):
        account, _ = accounts.create_robot(session, hasher, None, "catalog", ["pull", "delete"], True, "", T0)
        assert (account.name, account.tenant_id, account.actions, account.catalog) == (
            "_platform+catalog",
            None,
            ["pull", "delete"],
            True,
        )

    def test_only_platform_robots_list_the_catalog(self, session, hasher, acme):
        with pytest.raises(InvalidRequest, match="catalog access is for platform robots only"):
            accounts.create_robot(session, hasher, "acme", "ci", None, True, "", T0)

    def test_a_platform_robot_acts_everywhere_unless_restricted_to_namespaces(self, session, hasher):
        everywhere, _ = accounts.create_robot(session, hasher, None, "reader", None, False, "", T0)
        library, _ = accounts.create_robot(
            session, hasher, None, "library", ["push", "pull"], False, "", T0, namespaces=["library", "library"]
        )
        two, _ = accounts.create_robot(session, hasher, None, "two", None, False, "", T0, namespaces=["zeta", "acme"])
        session.commit()
        session.expire_all()  # read back from the database, not the objects just made
        assert accounts.get_account(session, "_platform+reader").namespaces is None
        assert (library.actions, library.catalog, library.namespaces) == (["pull", "push"], False, ["library"])
        assert two.namespaces == ["acme", "zeta"]  # sorted, once each

    def test_only_platform_robots_are_restricted_to_namespaces(self, session, hasher, acme):
        with pytest.raises(InvalidRequest, match="namespaces is for platform robots only"):
            accounts.create_robot(session, hasher, "acme", "ci", None, False, "", T0, namespaces=["acme"])
        assert accounts.find_account(session, "acme+ci") is None

    def test_setting_a_robots_rights_narrows_or_widens_it(self, session, hasher):
        accounts.create_robot(session, hasher, None, "library", ["pull", "push"], False, "", T0)
        account = accounts.set_robot_rights(session, "_platform+library", ["push", "pull"], False, ["library"], at(1))
        assert (account.actions, account.catalog, account.namespaces, account.updated_at) == (
            ["pull", "push"],
            False,
            ["library"],
            at(1),
        )
        accounts.set_robot_rights(session, "_platform+library", ["pull", "push"], False, ["library"], at(2))
        assert account.updated_at == at(1)  # nothing changed
        accounts.set_robot_rights(session, "_platform+library", ["pull"], True, None, at(3))
        assert (account.actions, account.catalog, account.namespaces, account.updated_at) == (
            ["pull"],
            True,
            None,
            at(3),
        )
        assert account.credential_generation == 1  # the secret stays

    def test_a_tenants_robot_is_given_no_platform_rights(self, session, hasher, acme):
        accounts.create_robot(session, hasher, "acme", "ci", None, False, "", T0)
        with pytest.raises(InvalidRequest, match="namespaces is for platform robots only"):
            accounts.set_robot_rights(session, "acme+ci", ["pull"], False, ["globex"], at(1))
        with pytest.raises(InvalidRequest, match="catalog access is for platform robots only"):
            accounts.set_robot_rights(session, "acme+ci", ["pull"], True, None, at(1))
        user(session, hasher, "alice")
        with pytest.raises(InvalidRequest, match="'alice' is not a robot"):
            accounts.set_robot_rights(session, "alice", ["pull"], False, None, at(1))

    def test_the_tenant_must_exist_and_be_enabled(self, session, hasher, acme):
        with pytest.raises(NotFound):
            accounts.create_robot(session, hasher, "globex", "ci", None, False, "", T0)
        accounts.set_tenant_disabled(session, "acme", True, T0)
        with pytest.raises(Conflict):
            accounts.create_robot(session, hasher, "acme", "ci", None, False, "", T0)

    def test_rotating_gives_a_new_secret_and_voids_the_old(self, session, hasher, acme):
        account, old = accounts.create_robot(session, hasher, "acme", "ci", None, False, "", T0)
        _, new = accounts.rotate_robot_secret(session, hasher, "acme+ci", at(1))
        assert new != old
        assert hasher.verify(account.password_hash, new) and not hasher.verify(account.password_hash, old)
        assert account.credential_generation == 2

    def test_a_developer_account_is_not_rotated(self, session, hasher, acme):
        user(session, hasher, "alice")
        with pytest.raises(InvalidRequest, match="developer accounts change password with set_password"):
            accounts.rotate_robot_secret(session, hasher, "alice", T0)


class TestListing:
    @pytest.fixture
    def everyone(self, session, hasher, acme):
        accounts.create_tenant(session, "globex", "", T0)
        for name, tenant_id in (("bob", "globex"), ("alice", "acme"), ("carol", "acme")):
            user(session, hasher, name, tenant_id=tenant_id)
        user(session, hasher, "root", tenant_id=None, is_admin=True)
        accounts.create_robot(session, hasher, "acme", "ci", None, False, "", T0)
        session.commit()

    def names(self, listing):
        return [a.name for a in listing["items"]]

    def test_by_name_with_filters(self, session, everyone):
        assert self.names(accounts.list_accounts(session, None, None, 1, 50)) == [
            "acme+ci",
            "alice",
            "bob",
            "carol",
            "root",
        ]
        assert self.names(accounts.list_accounts(session, "acme", None, 1, 50)) == ["acme+ci", "alice", "carol"]
        assert self.names(accounts.list_accounts(session, "acme", "user", 1, 50)) == ["alice", "carol"]
        assert self.names(accounts.list_accounts(session, None, "robot", 1, 50)) == ["acme+ci"]

    def test_a_page_at_a_time(self, session, everyone):
        page = accounts.list_accounts(session, None, None, 2, 2)
        assert (self.names(page), page["total"]) == (["bob", "carol"], 5)

    def test_of_an_unknown_tenant_is_not_found(self, session, everyone):
        with pytest.raises(NotFound):
            accounts.list_accounts(session, "nope", None, 1, 50)
