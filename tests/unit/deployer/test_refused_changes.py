"""A refused call changes nothing: regressions found by the tenant-isolation matrix
(tests/e2e/test_tenant_isolation.py)."""
import pytest

from deployer import deployments as logic
from deployer import schemas
from shared.errors import Conflict, Forbidden, InvalidRequest, NotFound
from shared.events import ROLLOUT_REQUESTED
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

    @pytest.mark.parametrize("changes, error", [
        ({"image": "t2/web:v1", "auto_deploy": FORCE}, Forbidden),
        ({"tag": "v9", "auto_deploy": FORCE}, NotFound),
        ({"cpu": 1.9, "auto_deploy": FORCE}, Conflict),  # no room for the surge instance beside 2 x 0.5
    ], ids=["another tenant's image", "unknown tag", "no room"])
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
        assert [kind for kind, _ in world.events[world.handled:]].count(ROLLOUT_REQUESTED) == 1

    def test_a_policy_alone_is_still_stored_without_a_revision(self, world, running):
        updated = logic.update_deployment(world.rt, "t1", running, {"auto_deploy": FORCE})
        assert (updated["revision"], updated["auto_deploy"]) == (1, FORCE)


class TestMalformedDeploymentIds:
    @pytest.mark.parametrize("deployment_id", ["web", " 0f0e8f4c-6d2a-4a51-9a55-3b0f0e0c9d11", "0f0e8f4c"])
    def test_the_message_says_what_is_expected(self, deployment_id):
        with pytest.raises(InvalidRequest) as raised:
            schemas.load_args(schemas.DeploymentRef, tenant_id="t1", deployment_id=deployment_id)
        assert str(raised.value) == "deployment_id must be a deployment ID (a UUID)"
