"""The gateway's API reads next to the same RPC called directly, in the same run: p50 and p99 of
each, and whether the API's p99 stays within 1.5 times the RPC's (the goal of issue 14).

Runs against the suite `make up` started: the gateway at --gateway (http://127.0.0.1:8080) and
the broker as the gateway's own broker user (``<var>/secrets/amqp/gateway.uri``), so both sides
are the same caller with the same rights. It makes its own data first: a bench tenant and a
developer account of it (over the admin RPC, signed in as the platform admin of
``<var>/secrets/auth-admin-password``), and one image pushed into the tenant with the docker CLI
(after `docker login` as that developer, in a docker configuration of its own).

The developer then signs in twice: over the API (``POST /api/v1/session``; the bearer token it
returns goes with every request of one keep-alive ``http.client`` connection: ``requests`` would
add about a millisecond of its own to each, which is the client library's, not the gateway's) and over RPC
(``auth.sign_in``; the identity goes with every call of one standing
``IdentifiedClusterRpcProxy``). For each read, after a warm-up, N requests through the API and N
calls of the RPC the gateway makes for it (the same arguments, its schemas' defaults), taken in
turns (API, RPC, API, …) so that both sides see the same machine. An API request's time covers
sending it, its answer and decoding the JSON; a call's covers the same through the broker. The
first answers of both sides are compared: the API must give what the RPC gives. Then two
requests that call neither the catalog nor the deployer, to show what the gateway's edge costs:
``/health`` (HTTP alone) and ``GET /api/v1/session`` (HTTP and the session check).

    .venv/bin/python -m bench.gateway [--requests 300] [--warmup 30] [--var var] [--json out.json]

Prints a Markdown table; exits 1 when a read misses the goal (after printing everything).
"""

import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

import shared.contracts.errors  # typed errors arrive as themselves (NotFound while indexing)
from bench import benchlib
from shared.runtime.identity import IDENTITY_KEY, IdentifiedClusterRpcProxy

GOAL = 1.5  # the API's p99 at most this many times the RPC's
# What the gateway passes for a listing with no query string (its schemas' load defaults).
PAGE = {"page": 1, "page_size": 50}


def log(message):
    print(message, file=sys.stderr, flush=True)


def wait_indexed(rpc, tenant, repository, tag, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return rpc.catalog.get_tag(tenant, repository, tag)
        except shared.contracts.errors.NotFound:
            if time.monotonic() > deadline:
                raise SystemExit(f"{repository}:{tag} not in the catalogue within {timeout} s") from None
            time.sleep(0.05)


def reads(tenant, repository, tag):
    """``(name, API path, RPC call)`` of each read: the call the gateway makes for the path."""
    namespace, name = repository.split("/", 1)
    base = f"/api/v1/repositories/{namespace}/{name}"
    return [
        ("library list", "/api/v1/library", lambda r: r.catalog.list_public_repositories(query=None, **PAGE)),
        (
            "repositories list",
            "/api/v1/repositories",
            lambda r: r.catalog.list_repositories(tenant, query=None, ownbase=None, **PAGE),
        ),
        ("repository", base, lambda r: r.catalog.get_repository(tenant, repository)),
        ("tags list", f"{base}/tags", lambda r: r.catalog.list_tags(tenant, repository, **PAGE)),
        ("tag detail", f"{base}/tags/{tag}", lambda r: r.catalog.get_tag(tenant, repository, tag)),
        ("history", f"{base}/history", lambda r: r.catalog.list_tag_history(tenant, repository, tag=None, **PAGE)),
        ("pools", "/api/v1/pools", lambda r: r.deployer.list_pools()),
        ("deployments list", "/api/v1/deployments", lambda r: r.deployer.list_deployments(tenant, **PAGE)),
    ]


class ApiClient:
    """GETs over one keep-alive HTTP connection with the bearer token, answers decoded from JSON."""

    def __init__(self, gateway, token):
        split = urlsplit(gateway)
        self.connection = http.client.HTTPConnection(split.hostname, split.port or 80, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    def get(self, path):
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {body[:500]!r}")
        return json.loads(body)


def api_get(client, path):
    return client.get(path)


def timed(call):
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def p99(samples):
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def measure(session, rpc, read, n, warmup):
    name, path, call = read
    url = path
    api_first, rpc_first = api_get(session, url), call(rpc)
    if api_first != rpc_first:
        raise SystemExit(f"{name}: the API answers something else than the RPC\n{api_first}\n{rpc_first}")
    for _ in range(warmup):
        api_get(session, url)
        call(rpc)
    api, direct = [], []
    for _ in range(n):
        api.append(timed(lambda: api_get(session, url)))
        direct.append(timed(lambda: call(rpc)))
    result = {
        "read": name,
        "path": path,
        "api_p50_ms": statistics.median(api),
        "api_p99_ms": p99(api),
        "rpc_p50_ms": statistics.median(direct),
        "rpc_p99_ms": p99(direct),
        "api_max_ms": max(api),
        "rpc_max_ms": max(direct),
        "api_ms": api,
        "rpc_ms": direct,
    }
    result["p99_ratio"] = result["api_p99_ms"] / result["rpc_p99_ms"]
    result["p50_ratio"] = result["api_p50_ms"] / result["rpc_p50_ms"]
    result["meets_goal"] = result["p99_ratio"] <= GOAL
    return result


def measure_edge(session, path, n, warmup):
    """A gateway request that calls no other service for its answer: what the HTTP edge costs."""
    url = path
    for _ in range(warmup):
        api_get(session, url)
    samples = [timed(lambda: api_get(session, url)) for _ in range(n)]
    return {"path": path, "p50_ms": statistics.median(samples), "p99_ms": p99(samples), "ms": samples}


# Requests of the gateway that ask nothing of the catalog or the deployer, to tell where the
# API's time goes: the HTTP edge alone, then the edge with the session check.
EDGES = [
    ("/health", "HTTP edge only: no session, no RPC"),
    ("/api/v1/session", "edge + session (offline check; `auth.get_session` once per GATEWAY_SESSION_RECHECK)"),
]


def edge_table(edges):
    lines = ["| gateway-only request | what it costs | p50 | p99 |", "| --- | --- | --- | --- |"]
    for (path, what), e in zip(EDGES, edges, strict=True):
        lines.append(f"| `GET {path}` | {what} | {e['p50_ms']:.2f} ms | {e['p99_ms']:.2f} ms |")
    return "\n".join(lines)


def table(results):
    lines = [
        "| read | API p50 | API p99 | RPC p50 | RPC p99 | p50 ratio | p99 ratio | goal p99 ≤ 1.5× |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['read']} (`{r['path']}`) | {r['api_p50_ms']:.2f} ms | {r['api_p99_ms']:.2f} ms "
            f"| {r['rpc_p50_ms']:.2f} ms | {r['rpc_p99_ms']:.2f} ms | {r['p50_ratio']:.2f}× "
            f"| {r['p99_ratio']:.2f}× | {'pass' if r['meets_goal'] else '**miss**'} |"
        )
    return "\n".join(lines)


def machine():
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def main():
    parser = benchlib.parser(__doc__)
    parser.add_argument("--gateway", default="http://127.0.0.1:8080", help="the gateway `make up` runs")
    parser.add_argument(
        "--var",
        default=os.path.join(benchlib.ROOT, "var"),
        help="the var/ directory of the checkout whose `make up` runs (its broker URIs and admin password)",
    )
    parser.add_argument("--requests", type=int, default=300, help="requests per read and side")
    parser.add_argument("--warmup", type=int, default=30, help="requests per read and side before measuring")
    args = parser.parse_args()
    args.gateway = args.gateway.rstrip("/")

    admin_uri = benchlib.secret(args.var, "secrets", "amqp", "admin.uri")
    gateway_uri = benchlib.secret(args.var, "secrets", "amqp", "gateway.uri")
    admin_password = benchlib.secret(args.var, "secrets", "auth-admin-password")
    requests.get(f"{args.gateway}/health", timeout=5).raise_for_status()

    tenant = "gwbench" + uuid.uuid4().hex[:8]
    repository, tag = f"{tenant}/console", "v1"
    log(f"tenant {tenant}: making its developer, pushing {repository}:{tag}")
    name, password = benchlib.make_developer(admin_uri, admin_password, args.registry, tenant)
    ref = f"{args.registry}/{repository}:{tag}"
    benchlib.build(ref, f"gateway bench {tenant}")
    benchlib.push(ref)
    subprocess.run(["docker", "rmi", ref], capture_output=True, check=False)

    session = requests.Session()
    signed_in = session.post(f"{args.gateway}/api/v1/session", json={"name": name, "password": password}, timeout=30)
    if signed_in.status_code != 201:
        raise SystemExit(f"signing in over the API: {signed_in.status_code} {signed_in.text[:500]}")
    client = ApiClient(args.gateway, signed_in.json()["token"])  # the bearer token alone, as an API client sends it

    with IdentifiedClusterRpcProxy({"AMQP_URI": gateway_uri}, timeout=30) as rpc:
        identity = rpc.auth.sign_in(name, password)["identity"]
    results = []
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    before = machine()
    with IdentifiedClusterRpcProxy({"AMQP_URI": gateway_uri}, context_data={IDENTITY_KEY: identity}, timeout=30) as rpc:
        wait_indexed(rpc, tenant, repository, tag)
        for read in reads(tenant, repository, tag):
            log(f"{read[0]}: {args.warmup} + {args.requests} requests each way")
            results.append(measure(client, rpc, read, args.requests, args.warmup))
        edges = []
        for path, _ in EDGES:
            log(f"{path}: {args.warmup} + {args.requests} requests")
            edges.append(measure_edge(client, path, args.requests, args.warmup))
    after = machine()

    print(
        f"Gateway {args.gateway} vs direct RPC (broker user imagehub-gateway), {started_at}: "
        f"{args.requests} requests per read and side after {args.warmup} warm-up, taken in turns; "
        f"one keep-alive HTTP connection (http.client) with a bearer token, one standing RPC proxy.\n"
    )
    print(table(results))
    print()
    print(edge_table(edges))
    print(f"\nMachine: {before} (before), {after.split('load average ')[1]} (after).")
    missed = [r["read"] for r in results if not r["meets_goal"]]
    verdict = f"missed by {', '.join(missed)}." if missed else "met by every read."
    print(f"Goal (API p99 ≤ {GOAL}× the RPC's): {verdict}")
    benchlib.write_json(
        args.json,
        {
            "gateway": args.gateway,
            "started_at": started_at,
            "requests": args.requests,
            "warmup": args.warmup,
            "machine_before": before,
            "machine_after": after,
            "goal_p99_ratio": GOAL,
            "reads": results,
            "gateway_only": [dict(e, what=what) for (_, what), e in zip(EDGES, edges, strict=True)],
        },
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
