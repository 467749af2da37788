"""A refused call changes nothing: regressions found by the tenant-isolation matrix
(tests/e2e/test_tenant_isolation.py), and the deployer's own tenant check on images."""

import pytest

from deployer import deployments as logic
from deployer import schemas
from shared.contracts.errors import Conflict, Forbidden, InvalidRequest, NotFound
from shared.contracts.events import ROLLOUT_REQUESTED
from tests.unit.deployer.conftest import DIGEST_V2, web_spec

FORCE = {"policy": "force"}


@pytest.fixture
def running(world):
    created = logic.create_deployment(world.rt, "t1", web_spec(auto_deploy={"policy": "semver:minor"}))
    world.drain()
    return created["id"]


class TestUpdateWithAutoDeployIsAllOrNothing:
    """update_deployment with a new image and a policy used to store the policy before resolving the
    image: refused (another tenant's image, a missing tag, busy, no room), it still changed it."""

    @pytest.mark.parametrize(
        "changes, error",
        [
            ({"image": "t2/web:v1", "auto_deploy": FORCE}, Forbidden),
            ({"tag": "v9", "auto_deploy": FORCE}, NotFound),
            ({"cpu": 1.9, "auto_deploy": FORCE}, Conflict),  # no room for the surge instance beside 2 x 0.5
        ],
        ids=["another tenant's image", "unknown tag", "no room"],
    )
    def test_a_refused_update_leaves_the_policy_and_revision(self, world, running, changes, error):
        world.tag("t2/web", "v1", DIGEST_V2)  # exists, but in another tenant's namespace
        before = logic.get_deployment(world.rt, "t1", running)
        published = len(world.events)
        with pytest.raises(error):
            logic.update_deployment(world.rt, "t1", running, changes)
        assert logic.get_deployment(world.rt, "t1", running) == before
        assert before["auto_deploy"] == {"policy": "semver:minor"}
        assert len(world.events) == published

    def test_an_accepted_update_stores_the_policy_with_its_revision(self, world, running):
        updated = logic.update_deployment(world.rt, "t1", running, {"tag": "v2", "auto_deploy": FORCE})
        assert (updated["revision"], updated["digest"], updated["auto_deploy"]) == (2, DIGEST_V2, FORCE)
        assert [kind for kind, _ in world.events[world.handled :]].count(ROLLOUT_REQUESTED) == 1

    def test_a_policy_alone_is_still_stored_without_a_revision(self, world, running):
        updated = logic.update_deployment(world.rt, "t1", running, {"auto_deploy": FORCE})
        assert (updated["revision"], updated["auto_deploy"]) == (1, FORCE)


class TestAnotherTenantsImageIsRefusedByTheDeployerItself:
    """The catalogue refuses another tenant's tag; the deployer, which pulls with the platform's
    registry credentials, refuses it too, before asking (a catalogue that answered is not enough)."""

    @pytest.fixture
    def permissive_catalog(self, world, monkeypatch):
        asked = []

        def get_tag(tenant_id, repository, tag):
            asked.append(repository)
            # What the catalogue has, whoever asks (DIGEST_V2 for anything else)
            digest = world.catalog.tags.get((repository, tag), DIGEST_V2)
            return {"repository": repository, "tag": tag, "digest": digest, "pushed_at": None}

        monkeypatch.setattr(world.catalog, "get_tag", get_tag)
        return asked

    def test_create(self, world, permissive_catalog):
        with pytest.raises(Forbidden) as raised:
            logic.create_deployment(world.rt, "t2", web_spec(image="127.0.0.1:5000/t1/web:v2"))
        assert str(raised.value) == "tenant 't2' may not read 't1/web': it belongs to tenant 't1'"
        assert (permissive_catalog, world.events, logic.list_deployments(world.rt, "t2", 1, 50)["total"]) == ([], [], 0)

    def test_update(self, world, permissive_catalog):
        created = logic.create_deployment(world.rt, "t2", web_spec(image="library/nginx", ports=[]))
        world.drain()
        mine = logic.get_deployment(world.rt, "t2", created["id"])
        assert (mine["status"], permissive_catalog) == ("running", ["library/nginx"])
        permissive_catalog.clear()
        with pytest.raises(Forbidden):
            logic.update_deployment(world.rt, "t2", mine["id"], {"image": "t1/web:v2"})
        assert permissive_catalog == []
        assert logic.get_deployment(world.rt, "t2", mine["id"]) == mine

    def test_the_library_and_the_callers_own_namespace_are_asked(self, world, permissive_catalog):
        logic.create_deployment(world.rt, "t2", web_spec(name="lib", image="library/nginx:1", ports=[]))
        logic.create_deployment(world.rt, "t2", web_spec(name="own", image="t2/app:1"))
        assert permissive_catalog == ["library/nginx", "t2/app"]


class TestMalformedDeploymentIds:
    @pytest.mark.parametrize("deployment_id", ["web", " 0f0e8f4c-6d2a-4a51-9a55-3b0f0e0c9d11", "0f0e8f4c"])
    def test_the_message_says_what_is_expected(self, deployment_id):
        with pytest.raises(InvalidRequest) as raised:
            schemas.load_args(schemas.DeploymentRef, tenant_id="t1", deployment_id=deployment_id)
        assert str(raised.value) == "deployment_id must be a deployment ID (a UUID)"
