"""The console's helpers: where sign-in may send you, how refusals map to form fields, how the
deploy form becomes a spec, and the query parameters a listing takes."""

import pytest

from gateway import console
from gateway.problems import FieldProblems
from shared.contracts.errors import NotFound
from tests.unit.gateway.conftest import make_request


@pytest.mark.parametrize(
    "given",
    [
        None,
        "",
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "evil.example/x",
        "/ /evil.example",
        "/\t/evil.example",
        "/%0d%0aSet-Cookie:x",  # fine: stays a path (no raw CR/LF)
        "/signin?next=/x",
        "/signout",
        "/" + "a" * 3000,
    ],
)
def test_next_outside_the_console_goes_to_the_library(given):
    expected = "/%0d%0aSet-Cookie:x" if given == "/%0d%0aSet-Cookie:x" else "/"
    assert console.safe_next(given) == expected


@pytest.mark.parametrize("given", ["/repositories", "/deployments/abc?done=scale", "/library/busybox#tags", "/"])
def test_next_on_the_console_is_kept(given):
    assert console.safe_next(given) == given


def test_refusals_go_to_their_top_level_field_and_unknown_ones_above_the_form():
    errors = [
        {"field": "name", "message": "must be a DNS label"},
        {"field": "ports[1].host_port", "message": "8080 is also ports[0].host_port"},
        {"field": "env.FOO", "message": "must be a string"},
        {"field": "", "message": "the pool is full"},
    ]
    found = console.errors_by_field(errors, console.DEPLOY_FIELDS)
    assert found == {
        "name": ["must be a DNS label"],
        "ports": ["[1].host_port 8080 is also ports[0].host_port"],
        "env": ["FOO must be a string"],
        "": ["the pool is full"],
    }


def test_a_message_split_at_its_own_semicolon_is_put_back_together():
    from gateway.problems import field_errors

    message = "auto_deploy.policy must be one of never, force; got 'bogus'; cpu must be a number"
    found = console.errors_by_field(field_errors(message), console.DEPLOY_FIELDS)
    assert found == {"auto_deploy": ["policy must be one of never, force; got 'bogus'"], "cpu": ["must be a number"]}


def _form(**changes):
    form = console.deploy_form_defaults("acme/app:v1", "app")
    form.update(changes)
    return form


def test_the_deploy_form_becomes_the_deployers_spec():
    spec, errors = console.deploy_spec(
        _form(
            name="web",
            pool="edge",
            replicas="3",
            env="A=1\n\nB=x=y\n",
            ports="8080\n9000:80",
            command="httpd -f -p 8080",
            cpu="0.5",
            memory="256m",
            restart_policy="always",
            health_type="http",
            health_path="/healthz",
            auto_deploy="semver:minor",
        )
    )
    assert errors == {}
    assert spec == {
        "name": "web",
        "image": "acme/app:v1",
        "pool": "edge",
        "replicas": 3,
        "env": {"A": "1", "B": "x=y"},
        "ports": [{"container_port": 8080, "host_port": 0}, {"container_port": 80, "host_port": 9000}],
        "command": "httpd -f -p 8080",
        "cpu": 0.5,
        "memory": "256m",
        "restart_policy": "always",
        "health": {"type": "http", "path": "/healthz"},
        "auto_deploy": {"policy": "semver:minor"},
    }


def test_the_defaults_leave_out_what_the_deployer_defaults():
    spec, errors = console.deploy_spec(_form())
    assert errors == {}
    assert spec == {
        "name": "app",
        "image": "acme/app:v1",
        "replicas": 1,
        "restart_policy": "unless-stopped",
        "auto_deploy": {"policy": "never"},
    }


def test_what_the_form_cannot_read_is_refused_by_field_and_the_rest_passed_on_as_given():
    spec, errors = console.deploy_spec(_form(env="GOOD=1\nno equals sign\n1BAD=x", ports="http", replicas="two"))
    assert errors == {
        "env": ["line 2 must be NAME=value", "line 3 must be NAME=value"],
        "ports": ["line 1 must be CONTAINER or HOST:CONTAINER (numbers)"],
    }
    assert spec["replicas"] == "two"  # the deployer names what is wrong with it


def test_an_overlong_field_is_refused_by_the_form():
    _, errors = console.deploy_spec(_form(command="x" * (console.MAX_FIELD_LENGTH + 1)))
    assert list(errors) == ["command"]


@pytest.mark.parametrize("given", ["0", "-1", "abc", "1.5", "99999999999", "١"])
def test_a_bad_page_number_is_a_400(given):
    with pytest.raises(FieldProblems) as caught:
        console.page_number(make_request(query_string={"page": given}))
    assert caught.value.field_errors[0]["field"] == "page"


def test_page_number_defaults_to_one_and_reads_a_number():
    assert console.page_number(make_request()) == 1
    assert console.page_number(make_request(query_string={"page": "7"})) == 7


def test_an_overlong_query_is_a_400_and_a_blank_one_none():
    with pytest.raises(FieldProblems):
        console.search_query(make_request(query_string={"query": "q" * 256}))
    assert console.search_query(make_request(query_string={"query": "  "})) is None
    assert console.search_query(make_request(query_string={"query": " busy "})) == "busy"


def test_pager_links_keep_the_search_and_past_the_last_page_is_404():
    listing = {"items": [], "total": 120, "page": 2, "page_size": 50}
    pages = console.pager("/repositories", {"query": "a b&c", "ownbase": ""}, listing)
    assert pages == {
        "page": 2,
        "last": 3,
        "total": 120,
        "prev": "/repositories?query=a+b%26c",
        "next": "/repositories?query=a+b%26c&page=3",
    }
    with pytest.raises(NotFound):
        console.pager("/", {}, {"items": [], "total": 120, "page": 4, "page_size": 50})
    assert console.pager("/", {}, {"items": [], "total": 0, "page": 1, "page_size": 50})["last"] == 1


@pytest.mark.parametrize("given", ["", "busybox", "library/busybox", "library/busybox:", ":v1", "a/b/c:v1", "/b:v1"])
def test_an_image_that_is_not_ns_name_tag_is_refused(given):
    with pytest.raises(FieldProblems):
        console.split_image(given)


def test_an_image_is_split_at_its_last_colon():
    assert console.split_image("acme/app:v1.2") == ("acme", "app", "v1.2")


def test_formatting_filters():
    assert console.human_size(512) == "512 B"
    assert console.human_size(5 * 1024 * 1024) == "5.0 MiB"
    assert console.human_size(None) == "—"
    assert console.when("2026-01-02T03:04:05+00:00") == "2026-01-02 03:04 UTC"
    assert console.when(None) == "—"
    assert console.short_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
    assert console.status_class('running" onmouseover="x') == "status-running-onmouseover-x"
    assert console.suggested_name("Python_ownbase") == "python"
