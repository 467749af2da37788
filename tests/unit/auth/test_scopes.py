"""The scope parser: Distribution's grammar, several scopes per request, malformed ones refused."""

import pytest

from auth.scopes import MAX_SCOPE_LENGTH, MAX_SCOPES, InvalidScope, Scope, parse_scope, parse_scopes
from shared.contracts.errors import InvalidRequest


class TestWellFormed:
    @pytest.mark.parametrize(
        "text, expected",
        [
            ("repository:acme/app:pull", Scope("repository", "acme/app", ("pull",))),
            ("repository:acme/app:pull,push", Scope("repository", "acme/app", ("pull", "push"))),
            ("repository:acme/app:delete", Scope("repository", "acme/app", ("delete",))),
            ("repository:acme/app:*", Scope("repository", "acme/app", ("*",))),
            ("repository(plugin):acme/app:pull", Scope("repository", "acme/app", ("pull",), "plugin")),
            ("registry:catalog:*", Scope("registry", "catalog", ("*",))),
            # a host with a port puts more colons in the name: the actions are after the last one
            ("repository:127.0.0.1:5000/acme/app:pull", Scope("repository", "127.0.0.1:5000/acme/app", ("pull",))),
            ("repository:a/b/c:pull", Scope("repository", "a/b/c", ("pull",))),
            ("repository:acme/my-app_1.x__y:pull", Scope("repository", "acme/my-app_1.x__y", ("pull",))),
            ("repository:acme/app:pull,pull,push", Scope("repository", "acme/app", ("pull", "push"))),
            ("repository:acme/app:fly", Scope("repository", "acme/app", ("fly",))),  # parsed; never granted
            ("widget:thing:pull", Scope("widget", "thing", ("pull",))),  # unknown type: parsed, never granted
        ],
    )
    def test_one_scope_is_split_into_type_name_and_actions(self, text, expected):
        assert parse_scope(text) == expected

    def test_a_scope_prints_as_it_came(self):
        assert str(parse_scope("repository(plugin):acme/app:pull,push")) == "repository(plugin):acme/app:pull,push"

    def test_repeated_parameters_and_space_separated_scopes_are_all_read_in_order(self):
        scopes = parse_scopes(["repository:acme/app:pull,push repository:library/base:pull", "registry:catalog:*"])
        assert [str(s) for s in scopes] == [
            "repository:acme/app:pull,push",
            "repository:library/base:pull",
            "registry:catalog:*",
        ]

    def test_the_same_resource_twice_is_one_scope_with_every_action(self):
        scopes = parse_scopes(["repository:acme/app:pull", "repository:acme/app:push,pull"])
        assert scopes == [Scope("repository", "acme/app", ("pull", "push"))]

    def test_a_class_makes_another_resource(self):
        scopes = parse_scopes(["repository:acme/app:pull", "repository(plugin):acme/app:push"])
        assert [str(s) for s in scopes] == ["repository:acme/app:pull", "repository(plugin):acme/app:push"]

    @pytest.mark.parametrize("values", [[], [""], ["   "], "", ["", " "]])
    def test_no_scope_is_an_empty_list(self, values):
        assert parse_scopes(values) == []

    def test_a_single_string_is_read_like_a_list_of_one(self):
        assert parse_scopes("repository:acme/app:pull") == [Scope("repository", "acme/app", ("pull",))]

    def test_the_limits_themselves_are_accepted(self):
        name = "acme/" + "a" * (MAX_SCOPE_LENGTH - len("repository:acme/:pull"))
        assert parse_scope(f"repository:{name}:pull").name == name
        assert len(parse_scopes([f"repository:acme/app{i}:pull" for i in range(MAX_SCOPES)])) == MAX_SCOPES


class TestMalformed:
    @pytest.mark.parametrize(
        "text, message",
        [
            ("repository", "must be 'type:name:action[,action]'"),
            ("repository:acme/app", "must be 'type:name:action[,action]'"),
            (":acme/app:pull", "resource type '' must be lower-case letters and digits"),
            ("Repository:acme/app:pull", "resource type 'Repository' must be"),
            ("repo-sitory:acme/app:pull", "resource type 'repo-sitory' must be"),
            ("repository(plugin:acme/app:pull", "resource type 'repository(plugin' must be"),
            ("repository():acme/app:pull", "resource type 'repository()' must be"),
            ("repository(a)(b):acme/app:pull", "resource type 'repository(a)(b)' must be"),
            ("repository::pull", "resource name '' must be"),
            ("repository:acme/App:pull", "resource name 'acme/App' must be"),
            ("repository:acme/a b:pull", None),  # split on the space: both halves are malformed
            ("repository:acme//app:pull", "resource name 'acme//app' must be"),
            ("repository:acme/app/:pull", "resource name 'acme/app/' must be"),
            ("repository:/acme/app:pull", "resource name '/acme/app' must be"),
            ("repository:acme/-app:pull", "resource name 'acme/-app' must be"),
            ("repository:acme/app..x:pull", "resource name 'acme/app..x' must be"),
            ("repository:acme/app:", "action '' must be lower-case letters or '*'"),
            ("repository:acme/app:pull,,push", "action '' must be"),
            ("repository:acme/app:pull,", "action '' must be"),
            ("repository:acme/app:PULL", "action 'PULL' must be"),
            ("repository:acme/app:pu ll", None),  # split on the space: 'repository:acme/app:pu' + 'll'
            ("repository:acme/app:**", "action '**' must be"),
            ("repository:acme/app:pull;rm", "action 'pull;rm' must be"),
            ("repository:acme/app:pull:push", "resource name 'acme/app:pull' must be"),
        ],
    )
    def test_is_refused_naming_the_scope_and_the_rule(self, text, message):
        with pytest.raises(InvalidScope) as caught:
            parse_scopes([text])
        if message:
            assert message in str(caught.value)
            assert repr(text) in str(caught.value) or repr(text[:77] + "...") in str(caught.value)

    def test_is_an_invalid_request(self):
        with pytest.raises(InvalidRequest):
            parse_scope("nonsense")

    def test_too_long_a_scope_is_refused_and_shown_cut(self):
        text = "repository:acme/" + "a" * MAX_SCOPE_LENGTH + ":pull"
        with pytest.raises(InvalidScope, match=f"is longer than {MAX_SCOPE_LENGTH} characters") as caught:
            parse_scope(text)
        assert len(str(caught.value)) < 200

    def test_too_many_scopes_are_refused(self):
        with pytest.raises(InvalidScope, match=f"more than {MAX_SCOPES} scopes"):
            parse_scopes([f"repository:acme/app{i}:pull" for i in range(MAX_SCOPES + 1)])

    def test_repeats_do_not_count_against_the_limit(self):
        assert len(parse_scopes(["repository:acme/app:pull"] * (MAX_SCOPES * 2))) == 1

    @pytest.mark.parametrize("value", [None, 5, ["repository:acme/app:pull", 7]])
    def test_a_value_that_is_not_a_string_is_refused(self, value):
        with pytest.raises(InvalidScope, match="scope must be a string"):
            parse_scopes(value if isinstance(value, list) else [value])

    def test_one_bad_scope_among_good_ones_refuses_the_request(self):
        with pytest.raises(InvalidScope, match="'repository:acme/App:pull'"):
            parse_scopes(["repository:acme/app:pull repository:acme/App:pull"])
