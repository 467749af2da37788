"""A real `docker push` into a tenant namespace shows up in the catalogue over RPC."""

import re
from datetime import UTC, datetime

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts.errors import Conflict, Forbidden, NotFound
from tests.support import push_image, wait_until


def parse_time(value):
    """ISO-8601 with up to nanoseconds (docker's format) → aware datetime at microseconds."""
    value = value.replace("Z", "+00:00")
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)
    return datetime.fromisoformat(value).astimezone(UTC)


def wait_for_tag(stack, tenant, repository, tag, digest=None, timeout=15):
    def indexed():
        try:
            found = stack.rpc("catalog", "get_tag", tenant, repository, tag)
        except NotFound:
            return None
        return found if digest is None or found["digest"] == digest else None

    return wait_until(indexed, timeout=timeout, interval=0.1, what=f"{repository}:{tag} in the catalogue")


class TestPushIsCatalogued:
    def test_tag_appears_with_digest_image_id_and_created(self, stack, docker_cli, tenant):
        repository = f"{tenant}/nginx"
        ref = docker_cli.build(repository, "v1")
        digest = docker_cli.push(ref)
        image = docker_cli.inspect(ref)

        tag = wait_for_tag(stack, tenant, repository, "v1", digest)

        assert tag["digest"] == digest == stack.registry.manifest_digest(repository, "v1")
        assert tag["image_id"] == image["Id"]
        assert parse_time(tag["created"]) == parse_time(image["Created"])
        assert tag["architecture"] == image["Architecture"]
        assert tag["os"] == "linux"
        assert tag["layers"] == [layer for layer in tag["layers"] if layer.startswith("sha256:")]
        assert len(tag["layers"]) == 1
        assert tag["pull_command"] == f"docker pull {stack.registry.host}/{repository}:v1"
        repo = stack.rpc("catalog", "get_repository", tenant, repository)
        assert (repo["namespace"], repo["name"], repo["is_public"], repo["is_ownbase"]) == (
            tenant,
            "nginx",
            False,
            False,
        )
        assert repo["tag_count"] == 1
        assert repo["latest_tag"] == "v1"

    def test_second_tag_on_the_same_digest_is_a_second_version(self, stack, docker_cli, tenant):
        repository = f"{tenant}/app"
        ref = docker_cli.build(repository, "1.0")
        digest = docker_cli.push(ref)
        latest = docker_cli.tag(ref, repository, "latest")
        assert docker_cli.push(latest) == digest

        wait_for_tag(stack, tenant, repository, "latest", digest)
        tags = stack.rpc("catalog", "list_tags", tenant, repository)
        assert sorted(item["tag"] for item in tags["items"]) == ["1.0", "latest"]
        assert {item["digest"] for item in tags["items"]} == {digest}
        assert tags["total"] == 2
        assert stack.rpc("catalog", "get_tag", tenant, repository, "1.0")["other_tags"] == ["latest"]
        assert stack.rpc("catalog", "get_repository", tenant, repository)["latest_tag"] == "latest"

    def test_ownbase_image_is_listed_as_a_custom_base_image(self, stack, docker_cli, tenant):
        base = docker_cli.build(f"{tenant}/java_ownbase", "1.0")
        app = docker_cli.build(f"{tenant}/shop", "1.0")
        docker_cli.push(base)
        docker_cli.push(app)
        wait_for_tag(stack, tenant, f"{tenant}/java_ownbase", "1.0")
        wait_for_tag(stack, tenant, f"{tenant}/shop", "1.0")

        ownbase = stack.rpc("catalog", "list_repositories", tenant, ownbase=True)
        assert [r["repository"] for r in ownbase["items"]] == [f"{tenant}/java_ownbase"]
        assert ownbase["items"][0]["is_ownbase"] is True
        everything = stack.rpc("catalog", "list_repositories", tenant)
        assert sorted(r["repository"] for r in everything["items"]) == [f"{tenant}/java_ownbase", f"{tenant}/shop"]

    def test_another_tenant_cannot_see_it(self, stack, docker_cli, tenant):
        repository = f"{tenant}/secret"
        docker_cli.push(docker_cli.build(repository, "v1"))
        wait_for_tag(stack, tenant, repository, "v1")
        with pytest.raises(Forbidden):
            stack.rpc("catalog", "get_tag", "someone-else", repository, "v1")
        assert stack.rpc("catalog", "list_repositories", "someone-else")["total"] == 0


class TestCreatorIsThePushingAccount:
    """With token auth on, the registry names the account that pushed in its notification
    (``actor.name``: the token's subject), and the catalogue keeps it as the version's creator."""

    def test_docker_push_by_a_developer_account(self, stack, docker_cli, tenant):
        repository = f"{tenant}/made"
        digest = docker_cli.push(docker_cli.build(repository, "v1"))
        tag = wait_for_tag(stack, tenant, repository, "v1", digest)
        assert tag["creator"] == stack.accounts[tenant].name == f"dev-{tenant}"

    def test_the_account_wins_over_the_image_author_and_each_push_names_its_own(self, stack, tenant):
        repository = f"{tenant}/authored"
        mine = push_image(
            stack.registry.url,
            repository,
            "v1",
            content=f"{tenant} v1".encode(),
            author="Somebody Else <else@example.com>",
            session=stack.session(tenant),
        )
        assert wait_for_tag(stack, tenant, repository, "v1", mine["digest"])["creator"] == f"dev-{tenant}"
        # The platform admin pushes another version into the tenant's namespace: its own name.
        admins = push_image(
            stack.registry.url, repository, "v2", content=f"{tenant} v2".encode(), session=stack.session(None)
        )
        assert wait_for_tag(stack, tenant, repository, "v2", admins["digest"])["creator"] == stack.admin.name
        creators = {t["tag"]: t["creator"] for t in stack.rpc("catalog", "list_tags", tenant, repository)["items"]}
        assert creators == {"v1": f"dev-{tenant}", "v2": "admin"}


class TestDelete:
    def test_delete_refuses_to_drop_sibling_tags_then_force_removes_all(self, stack, docker_cli, tenant):
        repository = f"{tenant}/web"
        ref = docker_cli.build(repository, "v1")
        digest = docker_cli.push(ref)
        docker_cli.push(docker_cli.tag(ref, repository, "stable"))
        other = docker_cli.build(repository, "v2")
        other_digest = docker_cli.push(other)
        wait_for_tag(stack, tenant, repository, "stable", digest)
        wait_for_tag(stack, tenant, repository, "v2", other_digest)

        with pytest.raises(Conflict) as exc:
            stack.rpc("catalog", "delete_tag", tenant, repository, "v1")
        assert "stable" in str(exc.value)
        assert stack.registry.tags(repository) == ["stable", "v1", "v2"]

        result = stack.rpc("catalog", "delete_tag", tenant, repository, "v1", force=True)
        assert result["digest"] == digest
        assert sorted(result["deleted_tags"]) == ["stable", "v1"]

        # The registry and the catalogue agree, right away and after the registry's notifications.
        assert stack.registry.tags(repository) == ["v2"]
        assert stack.registry.manifest_digest(repository, digest) is None
        catalogued = [t["tag"] for t in stack.rpc("catalog", "list_tags", tenant, repository)["items"]]
        assert catalogued == ["v2"]
        with pytest.raises(NotFound):
            stack.rpc("catalog", "get_tag", tenant, repository, "v1")

    def test_another_tenant_cannot_delete(self, stack, docker_cli, tenant):
        repository = f"{tenant}/keep"
        docker_cli.push(docker_cli.build(repository, "v1"))
        wait_for_tag(stack, tenant, repository, "v1")
        with pytest.raises(Forbidden):
            stack.rpc("catalog", "delete_tag", "intruder", repository, "v1")
        assert stack.registry.tags(repository) == ["v1"]


def scrape(stack, service):
    """``{(name, frozenset(labels)): value}`` of the service's /metrics page."""
    text = requests.get(stack.metrics_url(service), timeout=5).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(page, name, **labels):
    return page.get((name, frozenset(labels.items())), 0.0)


class TestMetricsAndLogs:
    """What an operator sees of one push: the services' Prometheus pages move by what it did, and
    the catalog's JSON log line for it carries the event ID and the call ID stack."""

    def test_a_push_moves_the_counters_and_can_be_followed_in_the_logs(self, stack, tenant):
        before = scrape(stack, "catalog")
        pushed = push_image(
            stack.registry.url, f"{tenant}/metered", "v1", content=tenant.encode(), session=stack.session(tenant)
        )
        wait_for_tag(stack, tenant, f"{tenant}/metered", "v1", pushed["digest"])
        rpc_before = scrape(stack, "catalog")
        stack.rpc("catalog", "get_tag", tenant, f"{tenant}/metered", "v1")
        after = scrape(stack, "catalog")

        handled = value(after, "imagehub_events_total", service="catalog", event="image_pushed", outcome="handled")
        handled_before = value(
            before, "imagehub_events_total", service="catalog", event="image_pushed", outcome="handled"
        )
        get_tag = value(after, "imagehub_rpc_calls_total", service="catalog", method="get_tag", outcome="ok")
        get_tag_before = value(
            rpc_before, "imagehub_rpc_calls_total", service="catalog", method="get_tag", outcome="ok"
        )
        fetched = value(after, "imagehub_registry_requests_total", service="catalog", method="GET", outcome="2xx")
        fetched_before = value(
            before, "imagehub_registry_requests_total", service="catalog", method="GET", outcome="2xx"
        )
        print(
            f"image_pushed handled +{handled - handled_before:.0f}, get_tag ok +{get_tag - get_tag_before:.0f}, "
            f"registry GET 2xx +{fetched - fetched_before:.0f}, "
            f"outbox backlog {value(after, 'imagehub_outbox_backlog', service='catalog'):.0f}"
        )
        assert handled - handled_before == 1  # one tag pushed: one image_pushed
        assert get_tag - get_tag_before == 1
        assert fetched - fetched_before == 2  # its manifest and its image config, by digest
        assert ("imagehub_dead_letters", frozenset()) in after

        [pushed_event] = [h["event_id"] for h in history(stack, tenant, f"{tenant}/metered")]
        entries = stack.services["catalog"].entries()
        [line] = [e for e in entries if e.get("event_id") == pushed_event and e["message"].endswith(" ms")]
        assert line["message"].startswith(f"image_pushed {pushed_event} handled in ")
        assert (line["service"], line["level"]) == ("catalog", "INFO")
        assert line["call_id"].startswith("catalog.handle_image_pushed.")
        assert line["call_id_stack"][0].startswith("webhook.")  # the webhook's request started it


def history(stack, tenant, repository):
    return stack.rpc("catalog", "list_tag_history", tenant, repository)["items"]
