"""Time from `deployer.create_deployment` to "running" on the `swarm` pool, next to `docker service
create` of the same image and to the `engines` pool, in the same run, round by round.

Each round runs three sides one after the other (swarm pool, docker service create, engines pool),
so machine noise hits all three alike; each ends at the same point, its one instance answering
HTTP on its port:

* swarm pool: `create_deployment` (pool "swarm", 1 replica, one port, health `http /`) → the
  deployment is running (Swarm reports the task running once its Docker health check passed) →
  the instance's address answers HTTP;
* `docker service create` of the image pinned by digest as the deployer pins it, with host
  networking, the tenant developer's registry auth, the deployer's limits and the deployer's
  health check (`deployer.swarm._health`) → `--detach` returns → the port answers HTTP (the task
  need not be healthy yet: the HTTP answer is the end point);
* engines pool: `create_deployment` with pool "engines" → running → the address answers HTTP.

What each side made is removed after it (not timed): deployments are deleted and waited for;
services are scaled to 0, their tasks waited for, then removed (`deployer.swarm.remove_service`
says why). Everything left over is removed on the way out, also on failure. Also printed: where
the time goes (median ms from the call to: task created, container started, first passing health
check, task running, deployer statuses seen), read from Docker after each timed end. Runs against
the suite brought up by `make up`.

    .venv/bin/python -m bench.deploy_swarm [--rounds 10] [--json out.json]
"""

import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime

import docker
import docker.errors

import shared.contracts.errors
from bench import benchlib
from bench.benchlib import sh
from deployer.orchestrator import TASK_ENDED
from deployer.swarm import _health, service_name
from tests.support import free_port

SIDES = ("swarm", "service", "engines")
LABELS = {
    "swarm": "swarm pool: create_deployment → running + HTTP",
    "service": "docker service create → HTTP",
    "engines": "engines pool: create_deployment → running + HTTP",
}
IN_PROGRESS = ("pending", "pulling", "starting")
ENGINES = ("unix:///var/run/docker.sock", "unix:///var/run/imagehub-docker2.sock")  # the two nodes
MANAGER = ENGINES[0]
CPU, MEMORY = "0.25", "64m"
PIDS_LIMIT = 512  # the deployer's PIDS_LIMIT default
HEALTH_TIMEOUT = 30  # the deployer's HEALTH_TIMEOUT default: the check's start period
SIDE_TIMEOUT = 90.0
TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")
CLEANUP_TIMEOUT = 60.0


class RoundFailed(Exception):
    pass


def docker_time(value):
    """Seconds since the epoch of a Docker timestamp (RFC 3339 with nanoseconds); None if unset."""
    match = TIMESTAMP.match(value or "")
    if match is None or value.startswith("0001-"):
        return None
    seconds, fraction, zone = match.groups()
    fraction = (fraction or "").ljust(6, "0")[:6]
    return datetime.fromisoformat(f"{seconds}.{fraction}{'+00:00' if zone == 'Z' else zone}").timestamp()


def since(t0, value):
    at = docker_time(value) if isinstance(value, str) else value
    return None if at is None else round((at - t0) * 1000, 1)


class Docker:
    """The two engines over the Engine API, for what is not timed: task and container
    inspection, and the services' removal."""

    def __init__(self):
        self.apis = [docker.APIClient(base_url=url, timeout=30) for url in ENGINES]
        self.manager = self.apis[0]

    def tasks(self, service):
        return self.manager.tasks(filters={"service": service})

    def container(self, container_id):
        for api in self.apis:
            try:
                return api.inspect_container(container_id)
            except docker.errors.NotFound:
                continue
        return None

    def exists(self, service):
        try:
            self.manager.inspect_service(service)
            return True
        except docker.errors.NotFound:
            return False

    def remove_service(self, service):
        """Scale to 0, wait until every task ended (Docker 20.10's manager can crash when a
        service is removed while its tasks are being reaped), then remove it."""
        if not self.exists(service):
            return
        sh("docker", "service", "scale", "--detach", f"{service}=0", timeout=60)
        deadline = time.monotonic() + CLEANUP_TIMEOUT
        while time.monotonic() < deadline:
            tasks = self.tasks(service)
            if all(t["Status"]["State"] in TASK_ENDED and t["DesiredState"] != "remove" for t in tasks):
                break
            time.sleep(0.25)
        sh("docker", "service", "rm", service, timeout=60)

    def task_breakdown(self, service, t0, wait_running):
        """Ms from ``t0`` to the service's task being created, its container started, its first
        passing health check and the task running (healthy); waits up to ``wait_running`` s for
        the last."""
        deadline = time.monotonic() + wait_running
        while True:
            tasks = [t for t in self.tasks(service) if t["DesiredState"] == "running"]
            if (tasks and tasks[0]["Status"]["State"] == "running") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        if not tasks:
            return {}
        task = tasks[0]
        out = {"task_created": since(t0, task["CreatedAt"])}
        if task["Status"]["State"] == "running":
            out["task_running"] = since(t0, task["Status"]["Timestamp"])
        cid = (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
        out.update(self.container_breakdown(cid, t0) if cid else {})
        return out

    def container_breakdown(self, container_id, t0):
        container = self.container(container_id)
        if container is None:
            return {}
        state = container["State"]
        out = {"container_started": since(t0, state.get("StartedAt"))}
        passed = [e for e in (state.get("Health") or {}).get("Log") or [] if e.get("ExitCode") == 0]
        if passed:
            out["first_health_pass"] = since(t0, min(docker_time(e["End"]) for e in passed))
        return out


def service_health_args(port_index=0):
    """The deployer's health check for ``{"type": "http", "path": "/"}``, as CLI flags."""
    check = _health({"health": {"type": "http", "path": "/", "port_index": port_index, "timeout": HEALTH_TIMEOUT}})
    assert check is not None and check["Test"][0] == "CMD-SHELL"

    def duration(ns):
        return f"{ns / 1e9:g}s"

    return [
        "--health-cmd",
        check["Test"][1],
        "--health-interval",
        duration(check["Interval"]),
        "--health-timeout",
        duration(check["Timeout"]),
        "--health-retries",
        str(check["Retries"]),
        "--health-start-period",
        duration(check["StartPeriod"]),
    ]


class Bench:
    def __init__(self, rpc, tenant, ref, pinned, digest):
        self.rpc, self.tenant, self.ref, self.pinned, self.digest = rpc, tenant, ref, pinned, digest
        self.docker = Docker()
        self.deployments = set()  # ids not yet seen deleted
        self.services = set()  # names not yet removed

    # -- the deployer's sides ------------------------------------------------------------------

    def deploy(self, pool, i):
        spec = {
            "name": f"bench-{pool}-{i}",
            "image": self.ref,
            "pool": pool,
            "replicas": 1,
            "cpu": float(CPU),
            "memory": MEMORY,
            "ports": [{"container_port": 8080}],
            "health": {"type": "http", "path": "/"},
        }
        rpc, tenant = self.rpc, self.tenant
        t0 = time.time()
        started = time.monotonic()
        deployment = rpc.deployer.create_deployment(tenant, spec)
        self.deployments.add(deployment["id"])
        deadline = started + SIDE_TIMEOUT
        seen = {}
        while deployment["status"] in IN_PROGRESS or deployment.get("operation"):
            seen.setdefault(deployment["status"], round((time.monotonic() - started) * 1000, 1))
            if time.monotonic() > deadline:
                raise RoundFailed(f"{pool} deployment still {deployment['status']} after {SIDE_TIMEOUT:.0f}s")
            time.sleep(0.01)
            deployment = rpc.deployer.get_deployment(tenant, deployment["id"])
        seen.setdefault(deployment["status"], round((time.monotonic() - started) * 1000, 1))
        if deployment["status"] != "running":
            raise RoundFailed(f"{pool} deployment ended {deployment['status']}: {deployment.get('reason')}")
        address = deployment["instances"][0]["address"]
        benchlib.wait_http(address, deadline, RoundFailed)
        elapsed = time.monotonic() - started
        breakdown = {f"status_{status}": ms for status, ms in seen.items()}
        if deployment["digest"] != self.digest:
            raise RoundFailed(f"{pool} deployment runs {deployment['digest']}, not the pushed {self.digest}")
        try:
            if pool == "swarm":
                breakdown.update(self.docker.task_breakdown(service_name(deployment["id"]), t0, 0))
            else:
                cid = deployment["instances"][0]["container_id"]
                breakdown.update(self.docker.container_breakdown(cid, t0) if cid else {})
        except docker.errors.DockerException as exc:
            print(f"  ({pool} breakdown unavailable: {exc})", file=sys.stderr)
        self.delete(deployment["id"])
        return elapsed, breakdown

    def delete(self, deployment_id):
        rpc, tenant = self.rpc, self.tenant
        deadline = time.monotonic() + CLEANUP_TIMEOUT
        while True:
            try:
                rpc.deployer.delete_deployment(tenant, deployment_id)
                break
            except shared.contracts.errors.Conflict:  # an operation still ends: try again
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        while rpc.deployer.get_deployment(tenant, deployment_id)["status"] != "deleted":
            if time.monotonic() > deadline:
                raise RoundFailed(f"deployment {deployment_id} not deleted after {CLEANUP_TIMEOUT:.0f}s")
            time.sleep(0.1)
        self.deployments.discard(deployment_id)

    # -- docker service create -------------------------------------------------------------------

    def service(self, i):
        name = f"bench-svc-{self.tenant}-{i}"
        port = free_port()
        command = [
            "docker",
            "service",
            "create",
            "--detach",
            "--name",
            name,
            "--network",
            "host",
            "--replicas",
            "1",
            "--with-registry-auth",
            "--env",
            f"PORT={port}",
            "--env",
            f"PORT0={port}",
            "--label",
            f"imagehub.bench={self.tenant}",
            # As the deployer's service spec: tini, no raw sockets, limits = reservations.
            "--init",
            "--cap-drop",
            "CAP_NET_RAW",
            "--limit-cpu",
            CPU,
            "--reserve-cpu",
            CPU,
            "--limit-memory",
            MEMORY,
            "--reserve-memory",
            MEMORY,
            "--limit-pids",
            str(PIDS_LIMIT),
            "--restart-condition",
            "any",
            "--restart-delay",
            "1s",
            *service_health_args(),
            self.pinned,
        ]
        self.services.add(name)
        t0 = time.time()
        started = time.monotonic()
        sh(*command, timeout=SIDE_TIMEOUT)
        returned = time.monotonic() - started
        benchlib.wait_http(f"127.0.0.1:{port}", started + SIDE_TIMEOUT, RoundFailed)
        elapsed = time.monotonic() - started
        breakdown = {"cli_returned": round(returned * 1000, 1), "http": round(elapsed * 1000, 1)}
        breakdown.update(self.docker.task_breakdown(name, t0, HEALTH_TIMEOUT))
        if breakdown.get("task_running") is None:
            raise RoundFailed(f"service {name} answered HTTP but its task was not running (healthy) in time")
        self.docker.remove_service(name)
        self.services.discard(name)
        return elapsed, breakdown

    # -- the way out -----------------------------------------------------------------------------

    def clean_up(self):
        """Remove whatever a failed round left, each on its own: one failure does not stop the rest."""
        for deployment_id in list(self.deployments):
            try:
                self.delete(deployment_id)
            except Exception as exc:  # noqa: BLE001 (report and go on cleaning)
                print(f"could not delete deployment {deployment_id}: {exc}", file=sys.stderr)
        for name in list(self.services):
            try:
                self.docker.remove_service(name)
                self.services.discard(name)
            except Exception as exc:  # noqa: BLE001
                print(f"could not remove service {name}: {exc}", file=sys.stderr)
        if self.deployments or self.services:
            print(f"left behind: deployments {sorted(self.deployments)}, services {sorted(self.services)}")


def summary(samples):
    ms = sorted(x * 1000 for x in samples)
    if not ms:
        return None
    return {
        "n": len(ms),
        "median": round(statistics.median(ms), 1),
        "p90": round(statistics.quantiles(ms, n=10, method="inclusive")[-1], 1) if len(ms) > 1 else round(ms[0], 1),
        "min": round(ms[0], 1),
        "max": round(ms[-1], 1),
    }


def main():
    parser = benchlib.parser(__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    # A SIGTERM (a timeout, a killed make) goes through the finally below too: nothing is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))

    tenant = "bench" + uuid.uuid4().hex[:8]
    repository = f"{tenant}/swarmbench"
    developer = benchlib.developer_rpc(args.registry, tenant, timeout=30)  # also `docker login`s as it
    ref = f"{args.registry}/{repository}:v1"
    benchlib.build(ref, f"swarm bench {tenant}")
    benchlib.push(ref)

    samples = {side: [] for side in SIDES}
    breakdowns = {side: [] for side in SIDES}
    failures = []
    with developer as rpc:
        # Wait for the catalogue to have the tag; its digest is what the deployer pins.
        deadline = time.monotonic() + 30
        while True:
            try:
                digest = rpc.catalog.get_tag(tenant, repository, "v1")["digest"]
                break
            except shared.contracts.errors.NotFound as exc:
                if time.monotonic() > deadline:
                    raise SystemExit("the pushed tag never reached the catalogue") from exc
                time.sleep(0.05)
        bench = Bench(rpc, tenant, ref, f"{args.registry}/{repository}@{digest}", digest)
        try:
            for i in range(args.rounds):
                line = []
                for side in SIDES:
                    try:
                        elapsed, breakdown = bench.service(i) if side == "service" else bench.deploy(side, i)
                    except (RoundFailed, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                        failures.append({"round": i, "side": side, "reason": describe(exc)})
                        print(f"round {i}: {side} FAILED: {describe(exc)}", file=sys.stderr)
                        bench.clean_up()
                        line.append(f"{side} FAILED")
                        continue
                    samples[side].append(elapsed)
                    breakdowns[side].append(dict(breakdown, round=i))
                    line.append(f"{side} {elapsed * 1000:.0f} ms")
                print(f"round {i}: " + ", ".join(line), file=sys.stderr)
        finally:
            bench.clean_up()

    result = report(args.rounds, samples, breakdowns, failures)
    benchlib.write_json(args.json, result)
    if failures:
        raise SystemExit(f"{len(failures)} side(s) of {args.rounds} round(s) failed")


def describe(exc):
    stderr = getattr(exc, "stderr", None)
    return f"{exc}: {stderr.strip()}" if stderr else str(exc)


def report(rounds, samples, breakdowns, failures):
    stats = {side: summary(samples[side]) for side in SIDES}
    print(f"one replica to answering HTTP, {rounds} round(s), sides interleaved (ms):")
    print(f"  {'':50} {'median':>8} {'p90':>8} {'min':>8} {'max':>8}  n")
    for side in SIDES:
        s = stats[side]
        if s is None:
            print(f"  {LABELS[side]:50} {'-':>8}")
            continue
        print(f"  {LABELS[side]:50} {s['median']:8.0f} {s['p90']:8.0f} {s['min']:8.0f} {s['max']:8.0f}  {s['n']}")
    ratios = {}
    for other in ("service", "engines"):
        if stats["swarm"] and stats[other]:
            ratios[f"swarm/{other}"] = round(stats["swarm"]["median"] / stats[other]["median"], 2)
    print(
        "  ratios of medians: swarm pool / docker service create ×{}, swarm pool / engines pool ×{}".format(
            ratios.get("swarm/service", "-"), ratios.get("swarm/engines", "-")
        )
    )
    healthy = [b["task_running"] / 1000 for b in breakdowns["service"] if b.get("task_running") is not None]
    stats["service_healthy"] = summary(healthy)
    if stats["service_healthy"]:
        s = stats["service_healthy"]
        label = "(docker service create → task running = healthy)"
        print(f"  {label:50} {s['median']:8.0f} {s['p90']:8.0f} {s['min']:8.0f} {s['max']:8.0f}  {s['n']}")
        if stats["swarm"]:
            ratios["swarm/service_healthy"] = round(stats["swarm"]["median"] / s["median"], 2)
            print(f"  swarm pool / docker service create to healthy ×{ratios['swarm/service_healthy']}")
    medians = {}
    for side in SIDES:
        keys = sorted({k for b in breakdowns[side] for k in b if k != "round"})
        medians[side] = {
            k: round(statistics.median(vals), 1)
            for k in keys
            if (vals := [b[k] for b in breakdowns[side] if b.get(k) is not None])
        }
        if medians[side]:
            steps = ", ".join(f"{k} {v:.0f}" for k, v in sorted(medians[side].items(), key=lambda kv: kv[1]))
            print(f"  where {side}'s time goes (median ms from the call): {steps}")
    for failure in failures:
        print(f"  FAILED round {failure['round']} {failure['side']}: {failure['reason']}")
    return {
        "rounds": rounds,
        "unit": "ms",
        "summary": stats,
        "ratios": ratios,
        "samples_ms": {side: [round(x * 1000, 1) for x in samples[side]] for side in SIDES},
        "breakdown_ms": breakdowns,
        "breakdown_median_ms": medians,
        "failures": failures,
    }


if __name__ == "__main__":
    main()
