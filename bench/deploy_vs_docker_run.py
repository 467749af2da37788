"""Time from `deployer.create_deployment` to "running" for a one-replica deployment, next to
`docker run` of the same image on the same engine, measured in the same run.

Both sides end at the same point: the container answers HTTP on its port (the deployment uses
the `http` health check, so "running" means exactly that; the `docker run` side polls the port
itself after `docker run -d` returns). Runs against the suite brought up by `make up`.

    .venv/bin/python -m bench.deploy_vs_docker_run [--rounds 10] [--json out.json]
"""

import statistics
import sys
import time
import uuid

import shared.contracts.errors
from bench import benchlib
from bench.benchlib import sh
from tests.support import free_port

TERMINAL = {"running", "failed", "rollout_failed", "degraded", "stopped"}


def main():
    parser = benchlib.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--engine", default="unix:///var/run/docker.sock", help="the engine `docker run` uses: the pool's first host"
    )
    args = parser.parse_args()

    tenant = "bench" + uuid.uuid4().hex[:8]
    repository = f"{tenant}/deploybench"
    developer = benchlib.developer_rpc(args.registry, tenant, timeout=30)
    ref = f"{args.registry}/{repository}:v1"
    benchlib.build(ref, f"deploy bench {tenant}")
    benchlib.push(ref)

    deploy_s, run_s = [], []
    with developer as rpc:
        # Wait for the catalogue to have the tag (the notification path is measured elsewhere).
        deadline = time.monotonic() + 30
        while True:
            try:
                rpc.catalog.get_tag(tenant, repository, "v1")
                break
            except shared.contracts.errors.NotFound as exc:
                if time.monotonic() > deadline:
                    raise SystemExit("the pushed tag never reached the catalogue") from exc
                time.sleep(0.05)

        for i in range(args.rounds):
            # The deployer: create → running (pull from the registry included, image cached after round 1).
            spec = {
                "name": f"bench-{i}",
                "image": ref,
                "replicas": 1,
                "memory": "64m",
                "ports": [{"container_port": 8080}],
                "health": {"type": "http", "path": "/"},
            }
            started = time.monotonic()
            deployment = rpc.deployer.create_deployment(tenant, spec)
            while deployment["status"] not in TERMINAL or deployment.get("operation"):
                time.sleep(0.01)
                deployment = rpc.deployer.get_deployment(tenant, deployment["id"])
            deploy_s.append(time.monotonic() - started)
            if deployment["status"] != "running":
                raise SystemExit(f"deployment ended {deployment['status']}: {deployment.get('reason')}")
            rpc.deployer.delete_deployment(tenant, deployment["id"])

            # docker run of the same image (by the same pinned digest) on the same engine.
            port = free_port()
            pinned = f"{args.registry}/{repository}@{deployment['digest']}"
            name = f"bench-run-{tenant}-{i}"
            started = time.monotonic()
            sh(
                "docker",
                "-H",
                args.engine,
                "run",
                "-d",
                "--name",
                name,
                "--network",
                "host",
                "--memory",
                "64m",
                "-e",
                f"PORT={port}",
                pinned,
            )
            benchlib.wait_http(f"127.0.0.1:{port}", time.monotonic() + 30)
            run_s.append(time.monotonic() - started)
            sh("docker", "-H", args.engine, "rm", "-f", name)
            print(
                f"round {i}: deployer {deploy_s[-1] * 1000:.0f} ms, docker run {run_s[-1] * 1000:.0f} ms",
                file=sys.stderr,
            )

    d, r = statistics.median(deploy_s) * 1000, statistics.median(run_s) * 1000
    result = {
        "rounds": args.rounds,
        "deployer_median_ms": round(d, 1),
        "docker_run_median_ms": round(r, 1),
        "ratio": round(d / r, 2),
        "deployer_ms": [round(x * 1000, 1) for x in deploy_s],
        "docker_run_ms": [round(x * 1000, 1) for x in run_s],
    }
    print(
        f"one replica to answering HTTP, median of {args.rounds}: create_deployment→running "
        f"{result['deployer_median_ms']} ms, docker run {result['docker_run_median_ms']} ms "
        f"(×{result['ratio']})"
    )
    benchlib.write_json(args.json, result)


if __name__ == "__main__":
    main()
