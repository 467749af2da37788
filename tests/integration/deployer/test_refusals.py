"""What the deployer refuses over real RPC, each error arriving as its own type."""

import socket
import uuid

import pytest

from shared.contracts.errors import Conflict, Forbidden, InvalidRequest, NotFound
from tests.integration.deployer.conftest import labelled
from tests.support import free_port

pytestmark = pytest.mark.docker


@pytest.fixture
def stranger():
    return "u" + uuid.uuid4().hex[:10]


class TestTenancy:
    def test_another_tenants_deployment_is_forbidden_for_every_call(self, deployer, stranger):
        deployment = deployer.running(replicas=1)
        call, target = deployer.call, deployment["id"]
        for attempt in (
            lambda: call.get_deployment(stranger, target),
            lambda: call.update_deployment(stranger, target, {"tag": "v2"}),
            lambda: call.scale_deployment(stranger, target, 0),
            lambda: call.rollback_deployment(stranger, target),
            lambda: call.list_revisions(stranger, target),
            lambda: call.delete_deployment(stranger, target),
        ):
            with pytest.raises(Forbidden, match="belongs to another tenant"):
                attempt()
        assert call.list_deployments(stranger)["total"] == 0
        after = deployer.get(target)
        assert (after["status"], after["revision"], after["replicas"]) == ("running", 1, 1)

    def test_another_tenants_image_is_forbidden_by_the_catalog(self, deployer, stranger):
        with pytest.raises(Forbidden):
            deployer.call.create_deployment(stranger, {"name": "steal", "image": f"{deployer.tenant}/web:v1"})

    def test_a_tag_the_catalog_does_not_have_is_not_found(self, deployer):
        with pytest.raises(NotFound):
            deployer.create(image=f"{deployer.tenant}/web:v9")

    def test_tenant_id_is_required(self, deployer):
        with pytest.raises(InvalidRequest, match="tenant_id is required"):
            deployer.call.create_deployment(None, {"name": "web", "image": f"{deployer.tenant}/web:v1"})


class TestBadRequests:
    @pytest.mark.parametrize(
        "override, message",
        [
            ({"pool": "mars"}, "pool 'mars' is unknown; pools: engines, swarm"),
            ({"replicas": -1}, "replicas must be a whole number from 0"),
            ({"memory": "12q"}, "memory must be a size"),
            ({"ports": [{"host_port": 70000}]}, r"ports\[0\].host_port must be a whole number from 0 to 65535"),
            (
                {"ports": [{"host_port": 20999}]},
                r"ports\[0\].host_port 20999 is fixed, but 2 replicas cannot all have it",
            ),
            ({"cpu": 64}, "cpu 64 is more than any host of pool 'engines' has"),
        ],
    )
    def test_bad_specs_name_the_field(self, deployer, override, message):
        with pytest.raises(InvalidRequest, match=message):
            deployer.create(**override)

    def test_more_than_the_pool_has_room_for_is_refused_whole(self, deployer):
        with pytest.raises(Conflict, match="no host can take another instance"):
            deployer.create(name="too-big", replicas=3, cpu=1.9)
        assert "too-big" not in [d["name"] for d in deployer.call.list_deployments(deployer.tenant)["items"]]

    def test_a_name_is_unique_per_tenant(self, deployer):
        deployment = deployer.create(replicas=0)
        with pytest.raises(Conflict, match="already has a deployment named"):
            deployer.create(name=deployment["name"], replicas=0)


class TestPortTaken:
    def test_a_fixed_port_bound_by_someone_else_fails_the_deployment(self, deployer, engines):
        port = free_port()
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            created = deployer.create(replicas=1, ports=[{"host_port": port}])
            failed = deployer.settle(created["id"])
        assert failed["status"] == "failed"
        assert f"port taken: 127.0.0.1:{port} is already in use" in failed["reason"]
        assert {n: c for n, c in labelled(engines, created["id"], all_states=True).items() if c} == {}
