"""Auto-deploy for real: a push with the docker CLI, indexed by the real catalog, whose tag_indexed
moves a following deployment on the two engines; the same tag_indexed delivered again moves
nothing (on SQLite and PostgreSQL, as every module here)."""

import subprocess

import pytest
import sqlalchemy as sa
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from shared.contracts.events import CATALOG, TAG_INDEXED
from shared.runtime import db
from tests.integration.deployer.conftest import announce_push, answer, build_and_push, labelled

pytestmark = pytest.mark.docker

HANDLED = 40  # seconds for the catalog to index a push and the deployer to handle its tag_indexed


@pytest.fixture
def push(registry, tenant, vhost_config, containers):
    """``push(tag)``: build and `docker push` a new version, announce it to the catalog as the
    webhook would, and wait until the deployer has handled the catalog's tag_indexed for it.
    Returns ``(digest, marker, tag_indexed payload, what the handler returned)``."""
    built = []

    def push(tag):
        digest, marker = build_and_push(registry, tenant, tag, built)
        handled = {}

        def for_this_push(worker_ctx, result, exc_info):
            payload = worker_ctx.args[0]
            if (payload["repository"], payload["tag"], payload["digest"]) == (f"{tenant}/web", tag, digest):
                handled.update(payload=payload, outcome=result, error=exc_info)
                return True
            return False

        with entrypoint_waiter(
            containers["deployer_worker"], "handle_tag_indexed", callback=for_this_push, timeout=HANDLED
        ):
            announce_push(vhost_config, tenant, tag, digest)
        assert handled["error"] is None
        return digest, marker, handled["payload"], handled["outcome"]

    yield push
    if built:
        subprocess.run(["docker", "rmi", "-f", *built], capture_output=True, timeout=60)


def markers(deployment):
    return sorted(answer(i["address"]) or "-" for i in deployment["instances"])


class TestAPushRollsOut:
    def test_a_following_deployment_runs_the_pushed_version_without_being_asked(self, deployer, push, engines, images):
        follows = deployer.running(auto_deploy={"policy": "semver:major"})
        stays = deployer.running(auto_deploy={"policy": "never"})

        digest, marker, payload, outcome = push("v3")

        assert outcome.moved == [follows["id"]]
        moved = deployer.settle(follows["id"])
        assert (moved["status"], moved["revision"], moved["serving_revision"], moved["serving_digest"]) == (
            "running",
            2,
            2,
            digest,
        )
        assert markers(moved) == [marker, marker]
        assert sorted(i["host"] for i in moved["instances"]) == ["local-1", "local-2"]
        for name, found in labelled(engines, follows["id"], all_states=True).items():
            assert [c.labels["imagehub.revision"] for c in found] == ["2"], name
        newest = deployer.call.list_revisions(deployer.tenant, follows["id"])["items"][0]
        assert (newest["trigger"], newest["image"], newest["digest"]) == (
            "auto-deploy",
            f"{deployer.tenant}/web:v3",
            digest,
        )
        assert {k: newest["push"][k] for k in ("event_id", "tag", "digest", "actor", "policy")} == {
            "event_id": payload["event_id"],
            "tag": "v3",
            "digest": digest,
            "actor": "it",
            "policy": "semver:major",
        }
        unmoved = deployer.get(stays["id"])
        assert (unmoved["revision"], unmoved["serving_digest"]) == (1, images["v1"][0])
        assert markers(unmoved) == [images["v1"][1]] * 2


class TestDuplicates:
    def test_the_same_tag_indexed_delivered_twice_more_rolls_out_once(
        self, deployer, push, containers, vhost_config, database
    ):
        deployment = deployer.running(auto_deploy={"policy": "semver:major"})
        digest, marker, payload, first = push("v4")
        assert first.moved == [deployment["id"]]
        assert markers(deployer.settle(deployment["id"])) == [marker, marker]

        seen = []

        def both_copies(worker_ctx, result, exc_info):
            if worker_ctx.args[0]["event_id"] == payload["event_id"]:
                seen.append(result)
            return len(seen) == 2

        with entrypoint_waiter(
            containers["deployer_worker"], "handle_tag_indexed", callback=both_copies, timeout=HANDLED
        ):
            dispatch = event_dispatcher(vhost_config)
            dispatch(CATALOG, TAG_INDEXED, payload)  # as the catalog's outbox relay may send it again
            dispatch(CATALOG, TAG_INDEXED, payload)

        assert [outcome.duplicate for outcome in seen] == [True, True]
        after = deployer.settle(deployment["id"])
        assert (after["revision"], after["serving_digest"], after["status"]) == (2, digest, "running")
        assert len(deployer.call.list_revisions(deployer.tenant, deployment["id"])["items"]) == 2
        engine = db.create_engine(database[0])
        try:
            with engine.connect() as connection:
                assert connection.execute(
                    sa.text("SELECT event_type FROM processed_events WHERE event_id = :id"), {"id": payload["event_id"]}
                ).scalars().all() == ["tag_indexed"]
        finally:
            engine.dispose()
