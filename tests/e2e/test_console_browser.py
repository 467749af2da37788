"""The console in a real browser (Debian's chromium, driven by Playwright) against the real suite.

A developer of tenant A signs in, finds busybox in the public library and its pull command, pushes
an image with the docker CLI and finds it on *My repositories* with its image ID, creator and
creation time, deploys it with an environment value and a port and watches the deployment page
reach *running* (the container then answers with that value), deletes a tag that shares its digest
after the warning named the sibling, and reads *How to push*. A developer of tenant B then opens
A's pages and gets 404s showing nothing of A's. Every page is screenshotted into the artifacts
directory (``IMAGEHUB_ARTIFACTS``, else ``var/artifacts``, under ``console/``); docs/console.md
shows them.
"""

import os
import re
from datetime import UTC, datetime

import pytest
import requests

from tests.e2e.conftest import DockerCLI
from tests.e2e.stack import ROOT
from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support.browser import Browser

pytestmark = pytest.mark.timeout(420)

ARTIFACTS = os.path.join(os.environ.get("IMAGEHUB_ARTIFACTS") or os.path.join(ROOT, "var", "artifacts"), "console")
# The container serves what it was given in its environment, on the port it was handed ($PORT).
SERVE_GREETING = "sh -c 'echo $GREETING > /www/index.html && exec httpd -f -p 127.0.0.1:$PORT -h /www'"


@pytest.fixture(scope="module")
def browser(stack):
    os.makedirs(ARTIFACTS, exist_ok=True)
    with Browser(ARTIFACTS) as browser:
        yield browser


@pytest.fixture(scope="module")
def library_busybox(stack, tmp_path_factory):
    """library/busybox in the stack's registry, pushed by the platform admin."""
    admin = DockerCLI(stack.registry.host, config_dir=str(tmp_path_factory.mktemp("admin-docker"))).login(*stack.admin)
    digest = admin.push(admin.build("library/busybox", "latest"))
    wait_for_tag(stack, None, "library/busybox", "latest", digest)
    yield digest
    admin.cleanup()


def sign_in(browser, stack, account, then="/"):
    browser.do("new_session")
    opened = browser.goto(f"{stack.gateway_url}{then}")
    assert opened["url"].startswith(f"{stack.gateway_url}/signin?next="), opened  # no session: to the sign-in page
    browser.fill(account.name, label="Account name")
    browser.fill(account.password, label="Password")
    browser.do("press", key="Enter")  # the keyboard alone signs in
    browser.do("wait_text", selector="[data-testid=account]", text=account.name)
    assert browser.page()["url"] == f"{stack.gateway_url}{then}"


def text(browser, testid):
    found = browser.texts(testid=testid)
    assert len(found) == 1, f"{testid}: {found}"
    return found[0].strip()


def open_page(browser, stack, path, status=200):
    opened = browser.goto(f"{stack.gateway_url}{path}")
    assert opened["status"] == status, (path, opened)
    return browser.page()


def test_a_developer_browses_pushes_deploys_and_deletes_in_the_console(
    stack, browser, library_busybox, docker_cli, tenant
):
    account = stack.accounts[tenant]
    host = stack.registry.host
    browser.goto(f"{stack.gateway_url}/")
    browser.screenshot("01-sign-in")
    sign_in(browser, stack, account)

    # 1. The public library, after sign-in: busybox with its pull command.
    assert (text(browser, "account"), text(browser, "tenant")) == (account.name, tenant)
    assert any("busybox" in row for row in browser.texts(testid="library-item"))
    browser.screenshot("02-library")
    open_page(browser, stack, "/library/busybox")
    assert text(browser, "pull-command") == f"docker pull {host}/library/busybox:latest"
    browser.screenshot("03-library-image")

    # 2. Pushed with the docker CLI as this developer: on My repositories, with its detail.
    repository = f"{tenant}/shop"
    digest = docker_cli.push(docker_cli.build(repository, "v1"))
    docker_cli.run("tag", f"{host}/{repository}:v1", f"{host}/{repository}:stable")
    assert docker_cli.push(f"{host}/{repository}:stable") == digest
    wait_for_tag(stack, tenant, repository, "v1", digest)
    wait_for_tag(stack, tenant, repository, "stable", digest)
    image_id = docker_cli.inspect(f"{host}/{repository}:v1")["Id"]

    open_page(browser, stack, "/repositories")
    assert any(row.split()[:2] == ["shop", "private"] for row in browser.texts(testid="repository-item"))
    browser.screenshot("04-repositories")
    open_page(browser, stack, f"/repositories/{repository}")
    tags = browser.texts(testid="tag-item")
    assert any(row.startswith("v1") for row in tags) and any(row.startswith("stable") for row in tags), tags
    browser.screenshot("05-versions")
    open_page(browser, stack, f"/repositories/{repository}/tags/v1")
    assert text(browser, "image-id") == image_id
    assert text(browser, "digest") == digest
    assert text(browser, "creator") == account.name
    created = datetime.strptime(text(browser, "created"), "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - created).total_seconds()) < 3600
    assert text(browser, "pull-command") == f"docker pull {host}/{repository}:v1"
    browser.screenshot("06-version")

    # 3. Deploy it with an environment value and a port; the page follows it to running.
    browser.click(testid="deploy-link", navigates=True)
    assert browser.page()["url"].startswith(f"{stack.gateway_url}/deploy?image=")
    browser.fill("shop", label="Name")
    browser.fill("GREETING=hello-from-the-console", label="Environment")
    browser.fill("8080", label="Ports")
    browser.fill(SERVE_GREETING, label="Command")
    browser.fill("0.1", label="CPU")
    browser.fill("32m", label="Memory")
    browser.screenshot("07-deploy-form")
    browser.click(testid="deploy-submit", navigates=True)
    deployment_url = browser.page()["url"]
    assert re.fullmatch(rf"{re.escape(stack.gateway_url)}/deployments/[^/]+", deployment_url), deployment_url
    deployment_id = deployment_url.rsplit("/", 1)[1]
    # The page follows the rollout by itself (its script polls the API, then reloads once done).
    browser.do("wait_text", selector="h1 [data-testid=status-badge]", text="running", timeout_ms=120_000)
    open_page(browser, stack, f"/deployments/{deployment_id}")  # read once the reload is over
    assert browser.texts(selector="h1 [data-testid=status-badge]") == ["running"]
    instances = browser.texts(testid="instance-item")
    addresses = [m.group(0) for row in instances for m in [re.search(r"127\.0\.0\.1:\d+", row)] if m]
    assert len(addresses) == 1, instances
    assert requests.get(f"http://{addresses[0]}/", timeout=5).text.strip() == "hello-from-the-console"
    browser.screenshot("08-deployment")
    open_page(browser, stack, "/deployments")
    assert any("shop" in row and "running" in row for row in browser.texts(testid="deployment-item"))
    browser.screenshot("09-deployments")

    # 4. Deleting a tag that shares its digest: the warning names the sibling, then both go.
    open_page(browser, stack, f"/repositories/{repository}/tags/stable")
    browser.click(testid="delete-link", navigates=True)
    assert [t.strip() for t in browser.texts(testid="sibling-tags")] == ["v1"]
    browser.screenshot("10-delete-confirm")
    browser.click(testid="confirm-delete", navigates=True)
    assert stack.registry.tags(repository) == []
    assert browser.do("console_errors")["errors"] == []  # no CSP violation, no script error so far
    open_page(browser, stack, f"/repositories/{repository}/tags/v1", status=404)
    assert [e for e in browser.do("console_errors")["errors"] if "404" not in e] == []  # that 404 only

    # 5. How to push, with this developer's tenant and the registry filled in.
    open_page(browser, stack, "/how-to-push")
    assert (text(browser, "tenant-id"), text(browser, "registry-host")) == (tenant, host)
    assert f"docker login {host}" in browser.page()["text"]
    browser.screenshot("11-how-to-push")

    # 6. At phone width nothing overflows sideways.
    open_page(browser, stack, "/")
    assert browser.do("viewport", width=390, height=844)["scroll_width"] <= 390
    browser.screenshot("12-library-phone")
    browser.do("viewport", width=1280, height=900)
    assert browser.do("console_errors")["errors"] == []  # no CSP violation, no script error

    # 7. Another tenant's developer gets 404 for every one of A's pages, and sees nothing of it.
    other = stack.add_tenant(tenant + "b")
    sign_in(browser, stack, other)
    for path in (
        f"/repositories/{repository}",
        f"/repositories/{repository}/tags/v1",
        f"/deploy?image={repository}:v1",
        f"/deployments/{deployment_id}",
        f"/deployments/{deployment_id}/delete",
    ):
        shown = open_page(browser, stack, path, status=404)["text"]
        for secret in (digest, image_id, "hello-from-the-console", addresses[0]):
            assert secret not in shown, (path, secret)
    browser.screenshot("13-other-tenant-404")
    open_page(browser, stack, "/repositories")
    assert not any("shop" in row for row in browser.texts(testid="repository-item"))
    open_page(browser, stack, "/deployments")
    assert not any("shop" in row for row in browser.texts(testid="deployment-item"))

    # Sign out ends the session: the pages send B to sign in again.
    browser.click(testid="signout-button", navigates=True)
    assert browser.goto(f"{stack.gateway_url}/deployments")["url"].startswith(f"{stack.gateway_url}/signin")
    stack.rpc("deployer", "delete_deployment", tenant, deployment_id)
