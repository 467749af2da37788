"""Time from `docker push` returning to the tag being visible through `catalog.get_tag`.

Runs against the suite brought up by `make up` (registry 127.0.0.1:5000, services on the default
vhost). Each round pushes a freshly built image (new digest) into a throw-away tenant with the real
docker CLI, then polls `catalog.get_tag` every 5 ms until it returns that digest.

    .venv/bin/python -m bench.push_to_catalog [--pushes 20] [--json out.json]
"""

import statistics
import sys
import time
import uuid

from bench import benchlib
from shared.contracts.errors import NotFound


def main():
    parser = benchlib.parser(__doc__)
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=30.0, help="give up on one push after this many seconds")
    args = parser.parse_args()

    tenant = "bench" + uuid.uuid4().hex[:8]
    repository = f"{tenant}/pushbench"
    developer = benchlib.developer_rpc(args.registry, tenant, timeout=10)
    refs = []
    print(f"building {args.pushes} images for {args.registry}/{repository} ...", file=sys.stderr)
    for i in range(args.pushes):
        ref = f"{args.registry}/{repository}:v{i}"
        benchlib.build(ref, f"bench {tenant} {i}")
        refs.append(ref)

    latencies, push_times = [], []
    with developer as rpc:
        for i, ref in enumerate(refs):
            started = time.monotonic()
            digest = benchlib.push(ref)
            pushed = time.monotonic()
            push_times.append(pushed - started)
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
    benchlib.sh("docker", "rmi", "-f", *refs)

    ms = sorted(x * 1000 for x in latencies)
    result = {
        "pushes": len(ms),
        "median_ms": round(statistics.median(ms), 1),
        "worst_ms": round(ms[-1], 1),
        "best_ms": round(ms[0], 1),
        "mean_ms": round(statistics.mean(ms), 1),
        "all_ms": [round(x, 1) for x in ms],
        "docker_push_median_ms": round(statistics.median(push_times) * 1000, 1),
    }
    print(
        f"push → visible in catalog.get_tag over {len(ms)} pushes: "
        f"median {result['median_ms']} ms, worst {result['worst_ms']} ms, best {result['best_ms']} ms "
        f"(for scale: `docker push` itself took a median {result['docker_push_median_ms']} ms)"
    )
    benchlib.write_json(args.json, result)


if __name__ == "__main__":
    main()
