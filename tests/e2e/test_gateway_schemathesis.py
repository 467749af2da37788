"""The gateway's API against its own OpenAPI document, fuzzed by schemathesis: every operation of
the live ``GET /api/v1/openapi.json`` of a running stack, called as a signed-in developer (bearer
token), and every answer checked — no 5xx, a status code and a content type the document lists
for the operation, a body that matches the documented schema.

The tenant has something to show, so that listings and reads answer real items, not only empty
pages and 404s: an image pushed with the docker CLI and a deployment of it. Any operation may run
(the stack is the module's own): a fuzzed DELETE may remove them. ``DELETE /api/v1/session``
would end the developer's session for every later case, so each of its cases signs out a session
of its own, signed in before any fuzzing (a fuzzed ``POST /api/v1/session`` fails logins from
127.0.0.1, which the auth service then slows down).

The run is bounded and reproducible: ``MAX_EXAMPLES`` cases an operation, derandomized.
"""

import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import DockerCLI
from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support import wait_until

pytestmark = pytest.mark.docker

V1 = "/api/v1"
MAX_EXAMPLES = 30
# One pytest item runs every operation of a schema (as subtests): ~15 s for the reads, ~40 s for
# all, on this machine; bounded well above that, not by the suite's 120 s per item.
FUZZ_TIMEOUT = 300
TIMEOUT = 15  # seconds for one request to the gateway
OWN_READS: dict[int, int] = {}  # status -> answers, of test_reads_of_own_objects_conform_to_the_document
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


class Developer:
    """The signed-in developer the cases call as, and spare sessions for the sign-out cases."""

    def __init__(self, tenant, token, deployment_id, spare):
        self.tenant = tenant
        self.token = token
        self.deployment_id = deployment_id
        self.spare = spare

    def token_for(self, case):
        if (case.method.upper(), case.path) == ("DELETE", V1 + "/session"):
            return self.spare.pop() if self.spare else self.token
        return self.token


def sign_in(stack, account):
    answer = requests.post(
        f"{stack.gateway_url}{V1}/session", json={"name": account.name, "password": account.password}, timeout=TIMEOUT
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


@pytest.fixture(scope="module")
def developer(stack, tmp_path_factory):
    tenant = f"gz{uuid.uuid4().hex[:8]}"
    account = stack.add_tenant(tenant)
    token = sign_in(stack, account)
    docker = DockerCLI(stack.registry.host, config_dir=str(tmp_path_factory.mktemp("docker")))
    docker.login(*account)
    try:
        ref = docker.build(f"{tenant}/web", "v1", marker=f"fuzzed {tenant}")
        wait_for_tag(stack, tenant, f"{tenant}/web", "v1", docker.push(ref), timeout=60)
        created = requests.post(
            f"{stack.gateway_url}{V1}/deployments",
            json={"name": "web", "image": f"{tenant}/web:v1", "ports": [{}], "cpu": 0.1, "memory": "32m"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT,
        )
        assert created.status_code == 201, created.text
        url = f"{stack.gateway_url}{V1}/deployments/{created.json()['id']}"
        wait_until(
            lambda: (
                requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT).json()["status"]
                == "running"
            ),
            timeout=60,
            interval=0.2,
            what="the deployment running",
        )
        spare = [sign_in(stack, account) for _ in range(MAX_EXAMPLES + 10)]
        yield Developer(tenant, token, created.json()["id"], spare)
    finally:
        docker.cleanup()


@pytest.fixture(scope="module")
def api_schema(stack, developer):
    """The live OpenAPI document, as schemathesis loads it (``developer`` first: the data exists
    and the spare sessions are signed in before any case runs)."""
    return schemathesis.openapi.from_url(f"{stack.gateway_url}{V1}/openapi.json", timeout=TIMEOUT)


@pytest.fixture(scope="module")
def own_objects_schema(stack, developer):
    """The document's reads, their path naming the developer's own image and deployment: the
    fuzzed queries then read real objects (tags, history, instances, revisions)."""
    config = SchemathesisConfig.from_dict(
        {
            "parameters": {
                "path.namespace": developer.tenant,
                "path.name": "web",
                "path.tag": "v1",
                "path.deployment_id": developer.deployment_id,
            }
        }
    )
    loaded = schemathesis.openapi.from_url(f"{stack.gateway_url}{V1}/openapi.json", config=config, timeout=TIMEOUT)
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")
# The filter goes on the lazy schema: from_fixture applies its own filters, not the loaded schema's.
own_objects = schemathesis.pytest.from_fixture("own_objects_schema").include(method="GET", path_regex=r"\{")


@pytest.mark.timeout(FUZZ_TIMEOUT)
@own_objects.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_reads_of_own_objects_conform_to_the_document(case, stack, developer):
    """Run first (the fuzzing below may delete the image or the deployment)."""
    assert case.path_parameters.get("namespace", developer.tenant) == developer.tenant
    assert case.path_parameters.get("deployment_id", developer.deployment_id) == developer.deployment_id
    response = case.call_and_validate(
        base_url=stack.gateway_url,
        headers={"Authorization": f"Bearer {developer.token}"},
        checks=CHECKS,
        timeout=TIMEOUT,
    )
    if case.method.upper() == case.operation.method.upper():
        assert response.headers.get("x-request-id"), (case.method, case.path, response.headers)
        OWN_READS[response.status_code] = OWN_READS.get(response.status_code, 0) + 1


def test_the_reads_of_own_objects_found_them():
    """The run above read the real objects, not only 404s: without that it proves little."""
    assert sum(OWN_READS.values()) >= 6 * MAX_EXAMPLES, OWN_READS  # the six reads of a path with an object
    assert OWN_READS.get(200, 0) >= 6 * MAX_EXAMPLES // 2, OWN_READS


@pytest.mark.timeout(FUZZ_TIMEOUT)
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_to_the_document(case, stack, developer):
    response = case.call_and_validate(
        base_url=stack.gateway_url,
        headers={"Authorization": f"Bearer {developer.token_for(case)}"},
        checks=CHECKS,
        timeout=TIMEOUT,
    )
    if case.method.upper() == case.operation.method.upper():
        # Every answer of the gateway's own carries a request ID. (schemathesis also sends methods
        # nothing documents, such as TRACE: nameko answers those itself, without it, for now;
        # test_gateway_api.TestBadInput asserts what they should get.)
        assert response.headers.get("x-request-id"), (case.method, case.path, response.headers)


def test_the_document_covers_every_api_route(stack):
    """The fuzzing above reaches every route: the document lists them all (a route left out of
    it would be fuzzed by nobody)."""
    document = requests.get(f"{stack.gateway_url}{V1}/openapi.json", timeout=TIMEOUT).json()
    operations = {(m.upper(), p) for p, methods in document["paths"].items() for m in methods}
    assert operations == {
        ("GET", V1 + "/deployments"),
        ("POST", V1 + "/deployments"),
        ("GET", V1 + "/deployments/{deployment_id}"),
        ("PATCH", V1 + "/deployments/{deployment_id}"),
        ("DELETE", V1 + "/deployments/{deployment_id}"),
        ("PUT", V1 + "/deployments/{deployment_id}/auto-deploy"),
        ("GET", V1 + "/deployments/{deployment_id}/revisions"),
        ("POST", V1 + "/deployments/{deployment_id}/rollback"),
        ("POST", V1 + "/deployments/{deployment_id}/scale"),
        ("GET", V1 + "/library"),
        ("GET", V1 + "/pools"),
        ("GET", V1 + "/repositories"),
        ("GET", V1 + "/repositories/{namespace}/{name}"),
        ("PATCH", V1 + "/repositories/{namespace}/{name}"),
        ("GET", V1 + "/repositories/{namespace}/{name}/history"),
        ("GET", V1 + "/repositories/{namespace}/{name}/tags"),
        ("GET", V1 + "/repositories/{namespace}/{name}/tags/{tag}"),
        ("DELETE", V1 + "/repositories/{namespace}/{name}/tags/{tag}"),
        ("GET", V1 + "/session"),
        ("POST", V1 + "/session"),
        ("DELETE", V1 + "/session"),
    }
