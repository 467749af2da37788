"""Catalogue reconciliation (`catalog.resync`) on a large registry: time, throughput and memory.

Self-contained: it never touches the suite `make up` started. It runs its own RabbitMQ vhost, its
own `docker-registry` (tests.support.RegistryProcess, notifications sent to a loopback port
nothing listens on, so the catalogue learns nothing from events), and its own catalog service
(`nameko run`, as scripts/services.sh starts it) on a migrated SQLite file in a temp dir, or with
--db-url on a throw-away database it creates on that PostgreSQL server and drops afterwards.

It pushes TAGS small distinct images (TAGS / TAGS_PER_REPO repositories of TAGS_PER_REPO tags)
through the registry's HTTP API (push_image, a few threads), then times four whole-registry
passes, `resync(wait=False)` followed by `get_resync(pass_id, items=False)`:

  1. over an empty catalogue: every tag added;
  2. again, nothing to change;
  3. after deleting DELETE_FRACTION of the tags' manifests in the registry: each one pending removal;
  4. again: each one removed (two consecutive misses).

For each pass: the pass's own duration (finished_at - started_at), the wall time seen by the
caller, tags per second, the counts, CPU seconds of the catalog and registry processes, the catalog's
peak RSS during the pass (VmHWM, reset before the pass through /proc/<pid>/clear_refs) and its
growth over the pass (that peak less the RSS when the pass was asked for). With --py-spy DIR, a
py-spy raw profile of the catalog process during each pass is written there (pass-N.txt).
At the end the catalogue must equal the registry (repositories, tags and digests). Exits 1 if a
count or the final comparison is wrong, after printing the figures.

    .venv/bin/python -m bench.resync [--tags 1000] [--tags-per-repo 5] [--json out.json]
    .venv/bin/python -m bench.resync --tags 20000
    .venv/bin/python -m bench.resync \\
        --db-url "postgresql://imagehub:$(cat /etc/imagehub/postgres-imagehub)@127.0.0.1:5432/imagehub"
"""

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime

import requests
from nameko.exceptions import RemoteError

import shared.contracts.errors  # noqa: F401  typed errors arrive as themselves
from bench import benchlib
from imagehub.commands.resync import resync_progress_line
from shared.contracts.errors import ImagehubError
from shared.ops import broker_topology
from shared.ops.broker_access import Management, operator
from shared.runtime.identity import IdentifiedClusterRpcProxy
from tests.support import RegistryProcess, delete_manifest, free_port, push_image, wait_until

BIN = os.path.dirname(sys.executable)
POLL = 0.25  # seconds between two get_resync calls while a pass runs
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(message, file=sys.stderr, flush=True)


# -- RabbitMQ: our own vhost ----------------------------------------------------------------------


def retrying(what, call, timeout=60.0):
    """``call()``, retried for ``timeout`` seconds: another agent's tests may restart RabbitMQ."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except (requests.RequestException, OSError) as exc:
            if time.monotonic() > deadline:
                raise
            log(f"{what}: {exc!r}; retrying")
            time.sleep(1)


def broker(management):
    """The management API (``.../api``) as this machine's broker operator: the bench's vhost is its own."""
    return Management(management.removesuffix("/api"), *operator())


def create_vhost(management, vhost):
    """The bench's vhost with the suite's exchanges and queues (the catalog consumes from them)."""

    def create():
        api = broker(management)
        api.create_vhost(vhost)
        broker_topology.declare(api, vhost)

    retrying(f"creating vhost {vhost}", create)


def delete_vhost(management, vhost):
    retrying(f"deleting vhost {vhost}", lambda: broker(management).delete_vhost(vhost))


class Rpc:
    """A ClusterRpcProxy that reopens itself when the broker goes away for a moment."""

    def __init__(self, amqp_uri, timeout=30):
        self.config = {"AMQP_URI": amqp_uri}
        self.timeout = timeout
        self.cluster = None
        self.proxy = None

    def _open(self):
        self.cluster = IdentifiedClusterRpcProxy(self.config, timeout=self.timeout)
        self.proxy = self.cluster.start()

    def close(self):
        if self.cluster is not None:
            try:
                self.cluster.stop()
            except Exception:  # noqa: BLE001, S110  a broken connection: nothing left to close
                pass
        self.cluster = self.proxy = None

    def catalog(self, method, *args, retry_for=60.0, **kwargs):
        deadline = time.monotonic() + retry_for
        while True:
            try:
                if self.proxy is None:
                    self._open()
                return getattr(self.proxy.catalog, method)(*args, **kwargs)
            except (ImagehubError, RemoteError):
                raise
            except Exception as exc:
                self.close()
                if time.monotonic() > deadline:
                    raise
                log(f"catalog.{method}: {exc!r}; retrying")
                time.sleep(1)


# -- a throw-away PostgreSQL database (--db-url) --------------------------------------------------


def catalog_database(args, dbname, workdir):
    """``(url, label)`` of the bench's catalogue: a throw-away PostgreSQL database ``dbname`` on
    the ``--db-url`` server, else a SQLite file in ``workdir``."""
    if args.db_url:
        return create_database(args.db_url, dbname), "PostgreSQL"
    return f"sqlite:///{workdir}/catalog.db", "SQLite"


def migrated_catalog_env(amqp_uri, db_url, registry, **extra):
    """The environment of a bench's own catalog — its vhost, its database (migrated here), its
    registry with no credentials, no resync timer — plus ``extra``."""
    env = dict(
        os.environ,
        AMQP_URI=amqp_uri,
        CATALOG_DB_URL=db_url,
        REGISTRY_URL=registry.url,
        REGISTRY_PUBLIC_HOST=registry.host,
        REGISTRY_USERNAME="",
        REGISTRY_PASSWORD="",
        CATALOG_RESYNC_INTERVAL="0",
        **extra,
    )
    subprocess.run(
        [sys.executable, "-m", "catalog.migrate"],
        cwd=benchlib.ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    return env


def remove_throwaways(args, vhost, dbname, workdir):
    """What a bench made for itself: its vhost and its PostgreSQL database (None: not made) and
    its temp dir (unless ``--keep-workdir``); each failure said, and the rest still removed."""
    if vhost is not None:
        try:
            delete_vhost(args.management, vhost)
        except Exception as exc:  # noqa: BLE001  say so, and go on cleaning up
            log(f"could not delete vhost {vhost}: {exc!r}")
    if dbname is not None:
        try:
            drop_database(args.db_url, dbname)
        except Exception as exc:  # noqa: BLE001
            log(f"could not drop database {dbname}: {exc!r}")
    if args.keep_workdir:
        log(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def create_database(server_url, name):
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return str(sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False))


def drop_database(server_url, name):
    import sqlalchemy as sa

    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


# -- the catalog process ----------------------------------------------------------------------------


class CatalogProcess:
    def __init__(self, env, log_path):
        self.env = env
        self.log_path = log_path
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as logfile:
            self.proc = subprocess.Popen(
                [os.path.join(BIN, "nameko"), "run", "--config", "services/catalog/config.yml", "catalog.service"],
                cwd=benchlib.ROOT,
                env=self.env,
                stdout=logfile,
                stderr=logfile,
            )
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def proc_status_kib(pid, field):
    """``VmHWM``, ``VmRSS`` … of a process, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_peak_rss(pid):
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if the kernel refuses."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class RssSampler(threading.Thread):
    """The catalog's highest VmRSS seen, sampled every 50 ms: a cross-check of VmHWM."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                self.peak = max(self.peak, proc_status_kib(self.pid, "VmRSS") or 0)
            except OSError:
                return
            self.done.wait(0.05)

    def stop(self):
        self.done.set()
        self.join(2)
        return self.peak


# -- the registry, as the catalogue should see it -----------------------------------------------------


def registry_repositories(registry):
    """Every repository of ``/v2/_catalog``, following the Link header."""
    names, url = [], f"{registry.url}/v2/_catalog?n=1000"
    while url:
        resp = requests.get(url, timeout=30)
        resp.raise_for_status()
        names.extend(resp.json().get("repositories") or [])
        match = re.search(r"<([^>]+)>;\s*rel=\"?next\"?", resp.headers.get("Link", ""))
        url = (registry.url + match.group(1) if match.group(1).startswith("/") else match.group(1)) if match else None
    return sorted(names)


def registry_state(registry):
    """``{repository: {tag: digest}}`` by the registry's own listings and HEADs."""
    state = {}
    for repository in registry_repositories(registry):
        state[repository] = {tag: registry.manifest_digest(repository, tag) for tag in registry.tags(repository)}
    return state


def catalogue_state(rpc, tenants):
    """``{repository: {tag: digest}}`` by list_repositories and list_tags, every page."""

    def pages(method, *args):
        page = 1
        while True:
            found = rpc.catalog(method, *args, page=page, page_size=200)
            yield from found["items"]
            if page * found["page_size"] >= found["total"]:
                return
            page += 1

    state = {}
    for tenant in tenants:
        for repo in pages("list_repositories", tenant):
            state[repo["repository"]] = {
                tag["tag"]: tag["digest"] for tag in pages("list_tags", tenant, repo["repository"])
            }
    return state


def compare(expected, actual, what):
    """Differences between two ``{repository: {tag: digest}}``, as sentences (at most a few)."""
    problems = []
    for name in sorted(set(expected) - set(actual)):
        problems.append(f"{what}: repository {name} missing")
    for name in sorted(set(actual) - set(expected)):
        problems.append(f"{what}: repository {name} should not be there")
    for name in sorted(set(expected) & set(actual)):
        for tag in sorted(set(expected[name]) | set(actual[name])):
            want, got = expected[name].get(tag), actual[name].get(tag)
            if want != got:
                problems.append(f"{what}: {name}:{tag} is {got or 'absent'}, should be {want or 'absent'}")
    if len(problems) > 10:
        problems = problems[:10] + [f"{what}: … {len(problems) - 10} more differences"]
    return problems


# -- steps ------------------------------------------------------------------------------------------


def push_all(registry, repositories, tags, threads):
    """Push every repository:tag (distinct content, so distinct digests); ``{repo: {tag: digest}}``."""
    local = threading.local()
    jobs = [(repo, tag) for repo in repositories for tag in tags]

    def push(job):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        repo, tag = job
        pushed = push_image(
            registry.url, repo, tag, content=f"resync bench {repo}:{tag}".encode(), session=local.session
        )
        return repo, tag, pushed["digest"]

    pushed = {repo: {} for repo in repositories}
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for done, future in enumerate(as_completed([pool.submit(push, job) for job in jobs]), 1):
            repo, tag, digest = future.result()
            pushed[repo][tag] = digest
            if done % 100 == 0 or done == len(jobs):
                elapsed = time.monotonic() - started
                log(f"pushed {done}/{len(jobs)} tags in {elapsed:.1f} s ({done / elapsed:.0f}/s)")
    return pushed, time.monotonic() - started


def seconds_between(start, end):
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def start_profile(pid, path):
    """py-spy recording ``pid`` into ``path`` (raw format) until ``stop_profile``."""
    return subprocess.Popen(
        [os.path.join(BIN, "py-spy"), "record", "-p", str(pid), "-r", "100", "-f", "raw", "-o", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profile(proc):
    proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_pass(rpc, catalog, registry, label, timeout, profile=None):
    """One whole-registry pass, followed until it ends; its figures. ``profile``: a file for py-spy."""
    pid = catalog.proc.pid
    rss_start = proc_status_kib(pid, "VmRSS")
    hwm_reset = reset_peak_rss(pid)
    spy = start_profile(pid, profile) if profile else None
    sampler = RssSampler(pid)
    sampler.start()
    cpu0, reg_cpu0 = cpu_seconds(pid), cpu_seconds(registry.proc.pid)
    started = time.monotonic()
    try:
        answer = rpc.catalog("resync", wait=False, retry_for=0)
    except (ImagehubError, RemoteError):
        raise
    except Exception as exc:  # noqa: BLE001  the call may have started the pass: find it
        log(f"resync: {exc!r}; looking for the pass it may have started")
        answer = rpc.catalog("get_resync", None, items=False)
        if answer["status"] != "running":
            answer = rpc.catalog("resync", wait=False)
    pass_id = answer["pass_id"]
    log(f"{label}: resync pass {pass_id}")
    last = None
    while True:
        report = rpc.catalog("get_resync", pass_id, items=False)
        elapsed = time.monotonic() - started
        state = (
            report["status"],
            report["repositories_scanned"],
            report["tags_scanned"],
            tuple(sorted(report["counts"].items())),
        )
        if state != last:
            log(resync_progress_line(elapsed, report))
            last = state
        if report["status"] != "running":
            break
        if not catalog.alive():
            raise SystemExit(f"the catalog process exited during pass {pass_id}:\n{catalog.log_tail()}")
        if elapsed > timeout:
            raise SystemExit(f"resync pass {pass_id} still running after {timeout:g} s (--pass-timeout)")
        time.sleep(POLL)
    wall = time.monotonic() - started
    rss_sampled = sampler.stop()
    if spy is not None:
        stop_profile(spy)
    hwm = proc_status_kib(pid, "VmHWM")
    peak = hwm if hwm_reset else max(rss_sampled, proc_status_kib(pid, "VmRSS") or 0)
    seconds = seconds_between(report["started_at"], report["finished_at"]) if report["finished_at"] else None
    return {
        "label": label,
        "pass_id": pass_id,
        "status": report["status"],
        "error": report["error"],
        "seconds": round(seconds, 3) if seconds is not None else None,
        "wall_seconds": round(wall, 3),
        "repositories_total": report["repositories_total"],
        "repositories_scanned": report["repositories_scanned"],
        "tags_scanned": report["tags_scanned"],
        "tags_per_s": round(report["tags_scanned"] / seconds, 1) if seconds else None,
        "counts": report["counts"],
        "catalog_cpu_seconds": round(cpu_seconds(pid) - cpu0, 2),
        "registry_cpu_seconds": round(cpu_seconds(registry.proc.pid) - reg_cpu0, 2),
        "rss_start_kib": rss_start,
        "peak_rss_kib": peak,
        "peak_rss_growth_kib": peak - rss_start,
        "peak_rss_source": "VmHWM" if hwm_reset else "VmRSS sampled every 50 ms",
        "peak_rss_sampled_kib": rss_sampled,
    }


def check_pass(figures, expected, problems):
    """``expected``: the counts the pass must end with (absent keys: 0)."""
    if figures["status"] != "finished":
        problems.append(f"{figures['label']}: pass {figures['pass_id']} ended {figures['status']}: {figures['error']}")
        return
    for key, got in figures["counts"].items():
        want = expected.get(key, 0)
        if got != want:
            problems.append(f"{figures['label']}: pass {figures['pass_id']} counted {got} {key}, expected {want}")


def mib(kib):
    return f"{kib / 1024:.1f} MiB" if kib else "?"


def print_table(result):
    passes = result["passes"]
    print(
        f"resync of {result['repositories']} repositories x {result['tags_per_repository']} tags = "
        f"{result['tags']} tags ({result['database']}, RESYNC_PAGE_SIZE {result['page_size']}); "
        f"pushed in {result['push_seconds']:.1f} s with {result['push_threads']} threads"
    )
    header = (
        "pass",
        "time",
        "wall",
        "tags/s",
        "added",
        "pend.",
        "removed",
        "other",
        "catalog CPU",
        "registry CPU",
        "peak RSS",
        "RSS growth",
    )
    rows = []
    for p in passes:
        c = p["counts"]
        rows.append(
            (
                p["label"],
                f"{p['seconds']:.1f} s" if p["seconds"] is not None else "?",
                f"{p['wall_seconds']:.1f} s",
                f"{p['tags_per_s']:.0f}" if p["tags_per_s"] else "?",
                str(c["added"]),
                str(c["pending_removal"]),
                str(c["removed"]),
                str(c["moved"] + c["skipped"]),
                f"{p['catalog_cpu_seconds']:.1f} s",
                f"{p['registry_cpu_seconds']:.1f} s",
                mib(p["peak_rss_kib"]),
                f"{p['peak_rss_growth_kib'] / 1024:+.1f} MiB",
            )
        )
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    print(
        f"catalog RSS: {mib(result['rss_before_kib'])} before the passes, peak {mib(result['rss_peak_kib'])} "
        f"over its whole life (VmHWM)"
    )
    print("catalogue == registry: " + ("yes" if result["verified"] else "NO"))


def main():
    parser = benchlib.parser(__doc__)
    for action in parser._actions:  # this benchmark runs its own registry
        if action.dest == "registry":
            action.help = argparse.SUPPRESS
        if action.dest == "amqp_uri":
            action.help = "the broker; the benchmark uses a vhost of its own there"
    parser.add_argument("--tags", type=int, default=1000, help="tags to push in all (default 1000)")
    parser.add_argument(
        "--tags-per-repo", type=int, default=5, help="tags per repository (default 5): TAGS / this repositories"
    )
    parser.add_argument("--tenants", type=int, default=10, help="namespaces the repositories are spread over")
    parser.add_argument(
        "--delete-fraction",
        type=float,
        default=0.1,
        help="share of the tags whose manifest is deleted before passes 3 and 4 (default 0.1)",
    )
    parser.add_argument("--push-threads", type=int, default=4)
    parser.add_argument("--page-size", type=int, help="CATALOG_RESYNC_PAGE_SIZE (default: the config's)")
    parser.add_argument(
        "--db-url",
        help="a PostgreSQL server URL: the benchmark creates a database of its own "
        "there and drops it at the end (default: SQLite in a temp dir)",
    )
    parser.add_argument("--management", default="http://127.0.0.1:15672/api", help="RabbitMQ management API")
    parser.add_argument("--pass-timeout", type=float, default=1800.0, help="give up on one pass after this")
    parser.add_argument("--seed", type=int, default=1, help="which tags get deleted")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temp dir (logs, registry, DB)")
    parser.add_argument("--py-spy", metavar="DIR", help="write a py-spy raw profile of the catalog per pass there")
    args = parser.parse_args()
    if args.tags_per_repo < 1 or args.tags < args.tags_per_repo or not 0 < args.delete_fraction < 1:
        parser.error("--tags must be at least --tags-per-repo (at least 1), --delete-fraction between 0 and 1")
    if args.tags % args.tags_per_repo:
        parser.error("--tags must be a multiple of --tags-per-repo")
    args.repos = args.tags // args.tags_per_repo
    if args.py_spy:
        os.makedirs(args.py_spy, exist_ok=True)

    def profile(n):
        return os.path.join(args.py_spy, f"pass-{n}.txt") if args.py_spy else None

    # A SIGTERM ends the run through the finally below, like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    run = uuid.uuid4().hex[:8]
    vhost = f"imagehub-bench-resync-{run}"
    workdir = tempfile.mkdtemp(prefix="imagehub-bench-resync-")
    dbname = f"imagehub_bench_resync_{run}" if args.db_url else None
    registry = RegistryProcess(
        f"http://127.0.0.1:{free_port()}/registry/events", uuid.uuid4().hex, workdir=os.path.join(workdir, "registry")
    )
    catalog = rpc = None
    vhost_created = db_created = failed = False
    problems = []
    try:
        create_vhost(args.management, vhost)
        vhost_created = True
        amqp_uri = broker(args.management).amqp_uri(vhost)
        db_url, database = catalog_database(args, dbname, workdir)
        db_created = bool(args.db_url)
        registry.start()
        extra = {"CATALOG_RESYNC_PAGE_SIZE": str(args.page_size)} if args.page_size else {}
        env = migrated_catalog_env(amqp_uri, db_url, registry, **extra)
        log(f"workdir {workdir}, vhost {vhost}, registry {registry.url}, catalog on {database}")

        tenants = [f"rsb{i:02d}" for i in range(min(args.tenants, args.repos))]
        repositories = [f"{tenants[i % len(tenants)]}/app{i:04d}" for i in range(args.repos)]
        tags = [f"v{k}" for k in range(args.tags_per_repo)]
        total = args.tags
        pushed, push_seconds = push_all(registry, repositories, tags, args.push_threads)

        catalog = CatalogProcess(env, os.path.join(workdir, "catalog.log")).start()
        rpc = Rpc(amqp_uri)

        def consuming():  # its RPC queue has a consumer: calls made now are answered
            if not catalog.alive():
                raise SystemExit(f"the catalog process exited at start:\n{catalog.log_tail()}")
            resp = requests.get(f"{args.management}/queues/{vhost}/rpc-catalog", auth=operator(), timeout=5)
            return resp.ok and resp.json().get("consumers", 0) > 0

        try:
            wait_until(consuming, timeout=90, interval=0.5, what="the catalog consuming rpc-catalog")
        except TimeoutError:
            raise SystemExit(f"the catalog did not start within 90 s:\n{catalog.log_tail()}") from None
        rpc.catalog("list_public_repositories")
        rss_before = proc_status_kib(catalog.proc.pid, "VmRSS")

        passes = []
        first = run_pass(rpc, catalog, registry, "1 empty catalogue", args.pass_timeout, profile(1))
        passes.append(first)
        check_pass(first, {"added": total}, problems)
        if first["status"] != "finished":
            raise SystemExit("; ".join(problems))
        second = run_pass(rpc, catalog, registry, "2 nothing to change", args.pass_timeout, profile(2))
        passes.append(second)
        check_pass(second, {}, problems)

        victims = random.Random(args.seed).sample(
            [(repo, tag) for repo in repositories for tag in tags], round(total * args.delete_fraction)
        )
        for repo, tag in victims:
            delete_manifest(registry.url, repo, pushed[repo].pop(tag))
        log(f"deleted {len(victims)} manifests in the registry")
        third = run_pass(rpc, catalog, registry, f"3 {len(victims)} deleted: 1st miss", args.pass_timeout, profile(3))
        passes.append(third)
        check_pass(third, {"pending_removal": len(victims)}, problems)
        fourth = run_pass(rpc, catalog, registry, f"4 {len(victims)} deleted: 2nd miss", args.pass_timeout, profile(4))
        passes.append(fourth)
        check_pass(fourth, {"removed": len(victims)}, problems)

        log("comparing the catalogue with the registry ...")
        in_registry = registry_state(registry)
        problems.extend(compare(pushed, in_registry, "registry vs what was pushed"))
        problems.extend(compare(in_registry, catalogue_state(rpc, tenants), "catalogue vs registry"))

        result = {
            "repositories": args.repos,
            "tags_per_repository": args.tags_per_repo,
            "tags": total,
            "tenants": len(tenants),
            "deleted": len(victims),
            "database": database,
            "page_size": int(env.get("CATALOG_RESYNC_PAGE_SIZE", 100)),
            "push_threads": args.push_threads,
            "push_seconds": round(push_seconds, 2),
            "pushes_per_s": round(total / push_seconds, 1),
            "passes": passes,
            "rss_before_kib": rss_before,
            "rss_peak_kib": proc_status_kib(catalog.proc.pid, "VmHWM"),
            "verified": not any(p.startswith("catalogue vs") for p in problems),
            "problems": problems,
            "nproc": os.cpu_count(),
            "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        print_table(result)
        benchlib.write_json(args.json, result)
        if problems:
            print("PROBLEMS:\n  " + "\n  ".join(problems))
            failed = True
    except BaseException as exc:
        failed = True
        interrupted = isinstance(exc, KeyboardInterrupt) or (isinstance(exc, SystemExit) and exc.code == 143)
        if catalog is not None and not interrupted:
            log(f"--- the catalog's log, last lines ({catalog.log_path}) ---\n{catalog.log_tail()}")
        raise
    finally:
        if rpc is not None:
            rpc.close()
        if catalog is not None:
            catalog.stop()
        registry.stop()
        remove_throwaways(args, vhost if vhost_created else None, dbname if db_created else None, workdir)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
