"""Time from `docker push` returning to the tag being visible through `catalog.get_tag`.

Runs against the suite brought up by `make up` (registry 127.0.0.1:5000, services on the default
vhost). Each round pushes a freshly built image (new digest) into a throw-away tenant with the real
docker CLI, then polls `catalog.get_tag` every 5 ms until it returns that digest.

    .venv/bin/python bench/push_to_catalog.py [--pushes 20] [--json out.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

from nameko.standalone.rpc import ClusterRpcProxy

from shared.errors import NotFound

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sh(*args, timeout=120):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--registry", default=os.environ.get("REGISTRY_HOST", "127.0.0.1:5000"))
    parser.add_argument("--amqp-uri", default=os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/"))
    parser.add_argument("--timeout", type=float, default=30.0, help="give up on one push after this many seconds")
    parser.add_argument("--json", help="also write the raw figures to this file")
    args = parser.parse_args()

    tenant = "bench" + uuid.uuid4().hex[:8]
    repository = f"{tenant}/pushbench"
    refs = []
    print(f"building {args.pushes} images for {args.registry}/{repository} ...", file=sys.stderr)
    for i in range(args.pushes):
        ref = f"{args.registry}/{repository}:v{i}"
        sh("bash", os.path.join(ROOT, "scripts/busybox-image.sh"), ref, f"bench {tenant} {i}")
        refs.append(ref)

    latencies, push_times = [], []
    with ClusterRpcProxy({"AMQP_URI": args.amqp_uri}, timeout=10) as rpc:
        for i, ref in enumerate(refs):
            started = time.monotonic()
            out = sh("docker", "push", ref)
            pushed = time.monotonic()
            push_times.append(pushed - started)
            digest = [line.split("digest: ")[1].split()[0] for line in out.splitlines() if "digest: " in line][-1]
            while True:
                try:
                    if rpc.catalog.get_tag(tenant, repository, f"v{i}")["digest"] == digest:
                        break
                except NotFound:
                    pass
                if time.monotonic() - pushed > args.timeout:
                    raise SystemExit(f"v{i} not visible after {args.timeout}s")
                time.sleep(0.005)
            latencies.append(time.monotonic() - pushed)
            print(f"v{i}: {latencies[-1] * 1000:.0f} ms", file=sys.stderr)
        for i in range(args.pushes):
            rpc.catalog.delete_tag(tenant, repository, f"v{i}", force=True)
    sh("docker", "rmi", "-f", *refs)

    ms = sorted(x * 1000 for x in latencies)
    result = {"pushes": len(ms), "median_ms": round(statistics.median(ms), 1), "worst_ms": round(ms[-1], 1),
              "best_ms": round(ms[0], 1), "mean_ms": round(statistics.mean(ms), 1), "all_ms": [round(x, 1) for x in ms],
              "docker_push_median_ms": round(statistics.median(push_times) * 1000, 1)}
    print(f"push → visible in catalog.get_tag over {len(ms)} pushes: "
          f"median {result['median_ms']} ms, worst {result['worst_ms']} ms, best {result['best_ms']} ms "
          f"(for scale: `docker push` itself took a median {result['docker_push_median_ms']} ms)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
