"""The grant rules: who gets which actions on which resource, for every kind of principal."""

import pytest

from auth.grants import ANONYMOUS_PRINCIPAL, ROBOT, USER, Principal, grant, grant_all, user_actions
from auth.scopes import parse_scope

ALICE = Principal(USER, "alice", "acme", actions=frozenset(user_actions(can_delete=False)))
DORA = Principal(USER, "dora", "acme", actions=frozenset(user_actions(can_delete=True)))
BOB = Principal(USER, "bob", "globex", actions=frozenset(user_actions(can_delete=False)))
ADMIN = Principal(USER, "root", None, is_admin=True, actions=frozenset({"pull", "push", "delete"}), catalog=True)
PULL_ROBOT = Principal(ROBOT, "acme+deployer", "acme", actions=frozenset({"pull"}))
CI_ROBOT = Principal(ROBOT, "acme+ci", "acme", actions=frozenset({"pull", "push"}))
CATALOG_ROBOT = Principal(ROBOT, "_platform+catalog", None, actions=frozenset({"pull", "delete"}), catalog=True)
READER_ROBOT = Principal(ROBOT, "_platform+reader", None, actions=frozenset({"pull"}))
# The catalogue's mirror of upstream images: a platform robot restricted to the public library.
LIBRARY_ROBOT = Principal(
    ROBOT, "_platform+library", None, actions=frozenset({"pull", "push"}), namespaces=frozenset({"library"})
)
LIBRARY_ROBOT_WITH_CATALOG = Principal(
    ROBOT,
    "_platform+library2",
    None,
    actions=frozenset({"pull", "push"}),
    catalog=True,
    namespaces=frozenset({"library"}),
)
# Made up by hand: a tenant robot can never be given catalog access (accounts.create_robot).
TENANT_ROBOT_WITH_CATALOG = Principal(ROBOT, "acme+odd", "acme", actions=frozenset({"pull"}), catalog=True)
ANON = ANONYMOUS_PRINCIPAL

ALL_ASKED = "pull,push,delete"


def granted(principal, scope_text, anonymous_pull=False):
    entry = grant(principal, parse_scope(scope_text), anonymous_pull)
    return entry["actions"] if entry else []


class TestOwnTenant:
    @pytest.mark.parametrize(
        "principal, actions",
        [
            (ALICE, ["pull", "push"]),
            (DORA, ["pull", "push", "delete"]),
            (PULL_ROBOT, ["pull"]),
            (CI_ROBOT, ["pull", "push"]),
            (BOB, []),  # another tenant's account
            (ANON, []),
        ],
    )
    def test_gets_what_the_account_may_do_there(self, principal, actions):
        assert granted(principal, f"repository:acme/app:{ALL_ASKED}") == actions

    def test_only_what_was_asked_for(self):
        assert granted(DORA, "repository:acme/app:pull") == ["pull"]
        assert granted(DORA, "repository:acme/app:delete") == ["delete"]

    def test_star_asks_for_every_action_and_gets_those_allowed(self):
        assert granted(ALICE, "repository:acme/app:*") == ["pull", "push"]
        assert granted(ADMIN, "repository:acme/app:*") == ["pull", "push", "delete"]

    def test_unknown_actions_are_never_granted(self):
        assert granted(ADMIN, "repository:acme/app:fly,pull") == ["pull"]
        assert granted(ADMIN, "repository:acme/app:fly") == []

    def test_ownbase_images_are_the_tenants_like_any_other(self):
        assert granted(ALICE, "repository:acme/java_ownbase:pull,push") == ["pull", "push"]


class TestOtherTenants:
    @pytest.mark.parametrize("principal", [ALICE, DORA, PULL_ROBOT, CI_ROBOT, ANON])
    def test_get_nothing_in_another_tenants_namespace(self, principal):
        assert granted(principal, f"repository:globex/app:{ALL_ASKED}") == []
        assert granted(principal, "repository:globex/app:*") == []

    def test_a_tenant_id_that_merely_starts_like_yours_is_another_tenant(self):
        assert granted(ALICE, "repository:acme2/app:pull") == []
        assert granted(ALICE, "repository:acm/app:pull") == []


class TestPublicLibrary:
    @pytest.mark.parametrize("principal", [ALICE, DORA, BOB, PULL_ROBOT, CI_ROBOT, READER_ROBOT])
    def test_every_account_pulls_but_does_not_push_or_delete(self, principal):
        assert granted(principal, f"repository:library/nginx:{ALL_ASKED}") == ["pull"]

    def test_the_catalogue_robot_pulls_and_deletes_but_never_pushes(self):
        assert granted(CATALOG_ROBOT, f"repository:library/nginx:{ALL_ASKED}") == ["pull", "delete"]

    def test_only_admins_and_the_library_robot_push(self):
        assert granted(ADMIN, f"repository:library/nginx:{ALL_ASKED}") == ["pull", "push", "delete"]
        assert granted(LIBRARY_ROBOT, f"repository:library/nginx:{ALL_ASKED}") == ["pull", "push"]

    def test_anonymous_pulls_only_when_the_operator_allows_it(self):
        assert granted(ANON, f"repository:library/nginx:{ALL_ASKED}", anonymous_pull=False) == []
        assert granted(ANON, f"repository:library/nginx:{ALL_ASKED}", anonymous_pull=True) == ["pull"]

    def test_anonymous_pull_opens_nothing_but_the_library(self):
        assert granted(ANON, "repository:acme/app:pull", anonymous_pull=True) == []


class TestPlatformWide:
    def test_admins_do_everything_in_every_namespace(self):
        for namespace in ("acme", "globex", "library"):
            assert granted(ADMIN, f"repository:{namespace}/app:{ALL_ASKED}") == ["pull", "push", "delete"]

    def test_a_platform_robot_does_its_actions_in_every_namespace(self):
        for namespace in ("acme", "globex", "library"):
            assert granted(CATALOG_ROBOT, f"repository:{namespace}/app:{ALL_ASKED}") == ["pull", "delete"]
            assert granted(READER_ROBOT, f"repository:{namespace}/app:{ALL_ASKED}") == ["pull"]


class TestCatalog:
    @pytest.mark.parametrize(
        "principal, allowed",
        [
            (ADMIN, True),
            (CATALOG_ROBOT, True),
            (READER_ROBOT, False),
            (LIBRARY_ROBOT, False),
            (LIBRARY_ROBOT_WITH_CATALOG, True),
            (TENANT_ROBOT_WITH_CATALOG, False),
            (ALICE, False),
            (DORA, False),
            (PULL_ROBOT, False),
            (ANON, False),
        ],
    )
    def test_listing_the_catalog_is_for_admins_and_catalog_robots(self, principal, allowed):
        assert grant(principal, parse_scope("registry:catalog:*"), anonymous_pull=True) == (
            {"type": "registry", "name": "catalog", "actions": ["*"]} if allowed else None
        )

    def test_only_the_star_action_is_granted_on_the_catalog(self):
        assert granted(ADMIN, "registry:catalog:pull") == []

    def test_a_classed_registry_resource_is_not_the_catalog(self):
        assert granted(ADMIN, "registry(x):catalog:*") == []


class TestNamesOutsideThePlatformRules:
    @pytest.mark.parametrize(
        "name",
        [
            "app",  # no namespace
            "acme/team/app",  # three components
            "127.0.0.1:5000/acme/app",  # a host inside the name
            "Acme/app",  # a host-like first component: the scope grammar reads it, the platform does not
            "acme/" + "a" * 251,  # over 255 characters
        ],
    )
    def test_get_nothing_even_for_an_admin(self, name):
        assert granted(ADMIN, f"repository:{name}:pull") == []

    def test_unknown_resource_types_get_nothing(self):
        assert granted(ADMIN, "widget:acme/app:pull") == []


class TestAccessClaim:
    def test_lists_only_what_was_granted_in_the_order_asked(self):
        scopes = [
            parse_scope(s)
            for s in (
                "repository:globex/app:pull",
                "repository:acme/app:push,pull",
                "repository:library/base:pull",
                "registry:catalog:*",
            )
        ]
        assert grant_all(ALICE, scopes) == [
            {"type": "repository", "name": "acme/app", "actions": ["pull", "push"]},
            {"type": "repository", "name": "library/base", "actions": ["pull"]},
        ]

    def test_keeps_the_resource_class(self):
        assert grant_all(ALICE, [parse_scope("repository(plugin):acme/app:pull")]) == [
            {"type": "repository", "name": "acme/app", "actions": ["pull"], "class": "plugin"}
        ]

    def test_is_empty_when_nothing_is_granted(self):
        assert grant_all(ANON, [parse_scope("repository:acme/app:pull")]) == []
        assert grant_all(ALICE, []) == []
