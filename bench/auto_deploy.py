"""Time from `docker push` returning to the new container answering on its port, for a deployment
whose auto-deploy policy follows the push: nothing but the push asks for the rollout.

One deployment (one replica, the `http` health check, policy `force` on `latest`, as Keel's
classic case) runs a busybox httpd image that serves its build's marker. Each round builds a new
image (not timed), pushes it as `latest` with the real docker CLI, and from the moment `docker
push` returns polls the deployment's instance addresses until one answers with the new marker.
The path: registry notification → webhook → `image_pushed` → catalog (manifest and config by
digest) → `tag_indexed` → deployer (decision, revision, its own `rollout_requested`) → pull by
digest → container started → health check → answering. Runs against the suite `make up` started.

    .venv/bin/python -m bench.auto_deploy [--pushes 10] [--json out.json]
"""

import statistics
import subprocess
import sys
import time
import uuid

import requests

import shared.contracts.errors
from bench import benchlib
from bench.benchlib import build, push

SETTLED = {"running", "failed", "rollout_failed", "rolled_back", "degraded", "stopped"}
POLL = 0.005  # seconds between two looks


def body(address):
    try:
        resp = requests.get(f"http://{address}/", timeout=0.5)
    except requests.RequestException:
        return None
    return resp.text.strip() if resp.ok else None


def wait(what, predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(POLL)
    raise SystemExit(f"{what}: not within {timeout} s")


def main():
    parser = benchlib.parser(__doc__)
    parser.add_argument("--pushes", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=60, help="seconds one round may take")
    args = parser.parse_args()

    tenant = "bench" + uuid.uuid4().hex[:8]
    repository = f"{tenant}/autobench"
    developer = benchlib.developer_rpc(args.registry, tenant, timeout=30)
    ref = f"{args.registry}/{repository}:latest"
    answering, running, pushing = [], [], []
    with developer as rpc:

        def get(deployment_id):
            return rpc.deployer.get_deployment(tenant, deployment_id)

        build(ref, f"auto bench {tenant} 0")
        digest = push(ref)

        def indexed():
            try:
                return rpc.catalog.get_tag(tenant, repository, "latest")["digest"] == digest
            except shared.contracts.errors.NotFound:
                return False

        wait("the first push in the catalogue", indexed, args.timeout)
        deployment = rpc.deployer.create_deployment(
            tenant,
            {
                "name": "autobench",
                "image": f"{repository}:latest",
                "replicas": 1,
                "memory": "32m",
                "ports": [{"container_port": 8080}],
                "health": {"type": "http", "path": "/"},
                "auto_deploy": {"policy": "force"},
            },
        )
        deployment_id = deployment["id"]
        try:
            wait("the deployment running", lambda: get(deployment_id)["status"] == "running", args.timeout)
            for i in range(1, args.pushes + 1):
                marker = f"auto bench {tenant} {i}"
                build(ref, marker)
                started = time.monotonic()
                digest = push(ref)
                pushed = time.monotonic()
                seen = {"running": None}

                def new_one_answers(seen=seen, digest=digest, marker=marker):
                    current = get(deployment_id)
                    if (
                        seen["running"] is None
                        and current["status"] == "running"
                        and current["serving_digest"] == digest
                    ):
                        seen["running"] = time.monotonic()
                    return any(body(inst["address"]) == marker for inst in current["instances"] if inst.get("address"))

                wait(f"push {i} answering", new_one_answers, args.timeout)
                answered = time.monotonic()
                wait(
                    f"push {i} settled",
                    lambda digest=digest: (
                        lambda d: d["status"] in SETTLED and not d["operation"] and d["serving_digest"] == digest
                    )(get(deployment_id)),
                    args.timeout,
                )
                final = get(deployment_id)
                if final["status"] != "running":
                    raise SystemExit(f"push {i}: deployment ended {final['status']}: {final['reason']}")
                pushing.append(pushed - started)
                answering.append(answered - pushed)
                running.append((seen["running"] or time.monotonic()) - pushed)
                print(
                    f"push {i}: docker push {pushing[-1] * 1000:.0f} ms; then new container answering "
                    f"{answering[-1] * 1000:.0f} ms, deployment running {running[-1] * 1000:.0f} ms",
                    file=sys.stderr,
                )
        finally:
            rpc.deployer.delete_deployment(tenant, deployment_id)
            subprocess.run(["docker", "rmi", "-f", ref], capture_output=True, timeout=60)

    def ms(values):
        return [round(v * 1000, 1) for v in values]

    result = {
        "pushes": args.pushes,
        "answering_median_ms": round(statistics.median(answering) * 1000, 1),
        "answering_worst_ms": round(max(answering) * 1000, 1),
        "answering_best_ms": round(min(answering) * 1000, 1),
        "running_median_ms": round(statistics.median(running) * 1000, 1),
        "docker_push_median_ms": round(statistics.median(pushing) * 1000, 1),
        "answering_ms": ms(answering),
        "running_ms": ms(running),
        "docker_push_ms": ms(pushing),
    }
    print(
        f"docker push returned → new container answering, {args.pushes} pushes: median "
        f"{result['answering_median_ms']} ms, worst {result['answering_worst_ms']} ms, best "
        f"{result['answering_best_ms']} ms (deployment running: median {result['running_median_ms']} ms; "
        f"docker push itself: median {result['docker_push_median_ms']} ms)"
    )
    benchlib.write_json(args.json, result)


if __name__ == "__main__":
    main()
