"""Deployments on the two real engines: create, rolling update, failed update, rollback, scale,
delete and the reconciler, each checked by what answers on 127.0.0.1 and what the engines run."""

import eventlet
import pytest

from shared.runtime.identity import IdentifiedClusterRpcProxy
from tests.integration.deployer.conftest import answer, docker_cli, labelled, poll

pytestmark = pytest.mark.docker


def markers(deployment):
    return sorted(answer(i["address"]) or "-" for i in deployment["instances"])


class TestCreate:
    def test_two_replicas_run_one_per_engine_each_answering_on_its_port(self, deployer, engines, images, status_events):
        deployment = deployer.running()
        instances = deployment["instances"]
        assert sorted(i["host"] for i in instances) == ["local-1", "local-2"]
        assert (deployment["revision"], deployment["serving_revision"], deployment["digest"]) == (1, 1, images["v1"][0])
        addresses = [i["address"] for i in instances]
        assert len(set(addresses)) == 2 and all(a.startswith("127.0.0.1:") for a in addresses)
        assert [answer(a) for a in addresses] == [images["v1"][1]] * 2
        containers = labelled(engines, deployment["id"])
        assert {name: len(found) for name, found in containers.items()} == {"local-1": 1, "local-2": 1}
        for name, [container] in containers.items():
            instance = next(i for i in instances if i["host"] == name)
            assert container.id == instance["container_id"]
            assert container.labels["imagehub.tenant"] == deployer.tenant
            assert container.labels["imagehub.revision"] == "1"
            assert container.attrs["HostConfig"]["NetworkMode"] == "host"
            assert container.attrs["HostConfig"]["Memory"] == 32 * 1024**2
            assert f"PORT={instance['address'].split(':')[1]}" in container.attrs["Config"]["Env"]
            assert container.attrs["Config"]["Image"].endswith(f"/{deployer.tenant}/web@{images['v1'][0]}")
        poll(
            lambda: (
                status_events.of(deployment["id"]) == [(1, "pending"), (1, "pulling"), (1, "starting"), (1, "running")]
            ),
            what="the four status events",
        )

    def test_pools_report_both_engines_and_the_reservations(self, deployer):
        deployment = deployer.running(replicas=1)
        [pool] = [p for p in deployer.call.list_pools()["items"] if p["name"] == "engines"]
        assert pool["network_mode"] == "host"
        hosts = {h["name"]: h for h in pool["hosts"]}
        assert all(h["reachable"] and h["error"] is None for h in hosts.values())
        host = hosts[deployment["instances"][0]["host"]]
        assert host["instances"] >= 1 and host["reserved"]["cpus"] >= 0.1
        assert host["free"]["cpus"] == pytest.approx(host["capacity"]["cpus"] - host["reserved"]["cpus"])


class TestRollingUpdate:
    def test_a_new_tag_replaces_host_by_host_with_no_moment_unanswered(self, deployer, engines, images, vhost_config):
        deployment = deployer.running()
        samples, stop = [], []

        def watch():
            # Every address the deployment ever had, asked at each moment (its own RPC proxy:
            # a standalone proxy is not shared between green threads).
            seen = {i["address"] for i in deployment["instances"]}
            with IdentifiedClusterRpcProxy(vhost_config, timeout=10) as rpc:
                while not stop:
                    seen.update(
                        i["address"]
                        for i in rpc.deployer.get_deployment(deployer.tenant, deployment["id"])["instances"]
                    )
                    samples.append(sorted(filter(None, (answer(a, timeout=0.5) for a in sorted(seen)))))
                    eventlet.sleep(0.05)

        watcher = eventlet.spawn(watch)
        try:
            deployer.call.update_deployment(deployer.tenant, deployment["id"], {"tag": "v2"})
            updated = deployer.settle(deployment["id"])
        finally:
            stop.append(True)
            watcher.wait()
        v1, v2 = images["v1"][1], images["v2"][1]
        assert (updated["status"], updated["revision"], updated["serving_revision"], updated["digest"]) == (
            "running",
            2,
            2,
            images["v2"][0],
        )
        assert markers(updated) == [v2, v2]
        assert sorted(i["host"] for i in updated["instances"]) == ["local-1", "local-2"]
        # The watcher really looked during the rollout (how often depends on the machine's load).
        assert len(samples) >= 3
        assert all(samples), f"a moment with no replica answering: {samples}"
        assert any(v1 in s and v2 in s for s in samples), "old and new never served side by side"
        for name, containers in labelled(engines, deployment["id"], all_states=True).items():
            assert [c.labels["imagehub.revision"] for c in containers] == ["2"], name

    def test_a_broken_version_fails_and_the_previous_keeps_serving(self, deployer, engines, images):
        deployment = deployer.running()
        deployer.call.update_deployment(
            deployer.tenant, deployment["id"], {"command": ["sh", "-c", "echo broken; exit 3"]}
        )
        failed = deployer.settle(deployment["id"])
        assert (failed["status"], failed["revision"], failed["serving_revision"]) == ("rollout_failed", 2, 1)
        # Seen exited, or (on a loaded machine) caught after its restart policy started it again.
        assert (
            "container exited with code 3" in failed["reason"]
            or "container kept exiting and was restarted" in failed["reason"]
        ), failed["reason"]
        assert "broken" in failed["reason"]
        assert "revision 1 is still serving" in failed["reason"]
        assert markers(failed) == [images["v1"][1]] * 2
        assert sorted(i["container_id"] for i in failed["instances"]) == sorted(
            i["container_id"] for i in deployment["instances"]
        )
        for name, containers in labelled(engines, deployment["id"], all_states=True).items():
            assert [c.labels["imagehub.revision"] for c in containers] == ["1"], name
        revisions = deployer.call.list_revisions(deployer.tenant, deployment["id"])["items"]
        assert [(r["revision"], r["status"]) for r in revisions] == [(2, "failed"), (1, "running")]

    def test_rollback_returns_to_the_previous_version_as_a_new_revision(self, deployer, images):
        deployment = deployer.running(replicas=1)
        deployer.call.update_deployment(deployer.tenant, deployment["id"], {"tag": "v2"})
        assert markers(deployer.settle(deployment["id"])) == [images["v2"][1]]
        rolled = deployer.call.rollback_deployment(deployer.tenant, deployment["id"])
        assert (rolled["revision"], rolled["status"], rolled["digest"]) == (3, "pending", images["v1"][0])
        back = deployer.settle(deployment["id"])
        assert (back["status"], back["serving_revision"]) == ("running", 3)
        assert markers(back) == [images["v1"][1]]
        revisions = deployer.call.list_revisions(deployer.tenant, deployment["id"])["items"]
        assert [(r["revision"], r["status"], r["trigger"], r["rollback_to"]) for r in revisions] == [
            (3, "running", "rollback", 1),
            (2, "superseded", "update", None),
            (1, "superseded", "create", None),
        ]


class TestScaleAndDelete:
    def test_scale_to_zero_and_back(self, deployer, engines, images):
        deployment = deployer.running()
        deployer.call.scale_deployment(deployer.tenant, deployment["id"], 0)
        stopped = deployer.settle(deployment["id"])
        assert (stopped["status"], stopped["replicas"], stopped["instances"]) == ("stopped", 0, [])
        assert {n: c for n, c in labelled(engines, deployment["id"], all_states=True).items() if c} == {}
        assert [answer(i["address"]) for i in deployment["instances"]] == [None, None]
        deployer.call.scale_deployment(deployer.tenant, deployment["id"], 2)
        again = deployer.settle(deployment["id"])
        assert (again["status"], again["replicas"]) == ("running", 2)
        assert sorted(i["host"] for i in again["instances"]) == ["local-1", "local-2"]
        assert markers(again) == [images["v1"][1]] * 2

    def test_delete_leaves_no_container_on_either_engine(self, deployer, engines):
        deployment = deployer.running()
        deleting = deployer.call.delete_deployment(deployer.tenant, deployment["id"])
        assert deleting["status"] == "deleting"
        gone = deployer.settle(deployment["id"])
        assert (gone["status"], gone["instances"]) == ("deleted", [])
        assert {n: c for n, c in labelled(engines, deployment["id"], all_states=True).items() if c} == {}
        assert [answer(i["address"]) for i in deployment["instances"]] == [None, None]
        assert deployment["id"] not in [d["id"] for d in deployer.call.list_deployments(deployer.tenant)["items"]]


class TestReconciler:
    def test_a_container_killed_by_hand_is_replaced(self, deployer, engines, images, services):
        deployment = deployer.running(restart_policy="no")
        victim = next(i for i in deployment["instances"] if i["host"] == "local-2")
        docker_cli("-H", services["POOLS"]["engines"]["hosts"][1]["base_url"], "kill", victim["container_id"])
        restored = poll(
            lambda: (
                lambda d: (
                    d
                    if d["status"] == "running"
                    and d["operation"] is None
                    and victim["container_id"] not in [i["container_id"] for i in d["instances"]]
                    and len(d["instances"]) == 2
                    else None
                )
            )(deployer.get(deployment["id"])),
            what="the reconciler to replace the killed container",
        )
        assert markers(restored) == [images["v1"][1]] * 2
        assert sorted(i["host"] for i in restored["instances"]) == ["local-1", "local-2"]
        assert [c.id for c in labelled(engines, deployment["id"], all_states=True)["local-2"]] == [
            i["container_id"] for i in restored["instances"] if i["host"] == "local-2"
        ]
