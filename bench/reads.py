"""Every catalog read RPC next to a bare echo RPC, on a catalogue of a million tags (issue 16).

Self-contained: it never touches the suite `make up` started, only its broker and (with
--db-url) its PostgreSQL server. For each database (a SQLite file in a temp dir; with --db-url
also a throw-away PostgreSQL database it creates on that server and drops at the end) it

1. builds the schema with the catalog's own migrations (``catalog.migrate``),
2. loads TAGS tags in REPOS repositories of TENANTS tenants in bulk SQL
   (``bench.repository_listing.load``: one manifest per tag; the last tenant's repositories
   become the public library), then ANALYZE,
3. starts a real catalog service (`nameko run`, as scripts/services.sh does) on a vhost of its
   own, with AUTH_CERT_FILE the certificate of a key this run makes, next to a bare echo service
   (``EchoService`` below, `nameko run` too) on the same vhost,
4. times, with one caller (one standing ``IdentifiedClusterRpcProxy`` carrying a developer
   identity of one tenant, signed with that key, for both services alike), CALLS rounds of every
   read and the echo, interleaved (echo, get_tag, echo, list_tags, …: one echo before each read),
   after WARMUP rounds.

The echo returns its argument: the answer ``get_tag`` gave for the same tag, so that a request
and a reply of the echo carry the context data (the identity) and about the bytes of a small
read's answer; the echo does no identity check (it is nameko alone). Once a round the echo also
carries the first page of repositories that list_repositories answered (``echo of a page``), to
show what a listing's bytes cost the RPC alone. For each read: p50 and p99
and the ratio of its p99 to the echo's p99 in the same run; the goal is ≤ GOAL.

With ``--baseline REF`` the catalog of git revision REF (its ``services/catalog`` and ``shared``,
migrated with its own migrations) is measured first on the same data, then the working tree's
(the database upgraded to this tree's head, ANALYZE again): before and after from one run.
``--profile SECONDS`` records the (current) catalog under the read load with py-spy into the
work dir (``--keep-workdir`` keeps it).

    .venv/bin/python -m bench.reads [--tags 100000 --repos 10000] [--calls 300] [--json out.json] \\
        [--db-url "postgresql://imagehub:$(cat /etc/imagehub/postgres-imagehub)@127.0.0.1:5432/imagehub"]
"""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from nameko.rpc import rpc

import shared.contracts.errors  # noqa: F401  typed errors arrive as themselves
from bench import benchlib
from bench.repository_listing import analyze, load
from bench.resync import CatalogProcess, broker, create_database, create_vhost, log, remove_throwaways
from shared.contracts.reference import PUBLIC_NAMESPACE
from shared.ops.broker_access import operator
from shared.runtime.identity import IDENTITY_KEY, IdentifiedClusterRpcProxy, identity_audience
from tests.support import wait_until

GOAL = 2.0  # a read's p99 at most this many times the echo's
ISSUER = "imagehub-bench"
BIN = os.path.dirname(sys.executable)
PAGE_SIZE = 50


class EchoService:
    """A bare nameko RPC: what a call costs with no work behind it."""

    name = "echo"

    @rpc
    def echo(self, payload):
        return payload


# -- data ---------------------------------------------------------------------------------------------


def tenant_name(n):
    return f"t{n:03d}"


def load_catalogue(url, args):
    """Migrate and fill the database at ``url``; the last tenant becomes the public library."""
    import sqlalchemy as sa

    from shared.runtime import db

    started = time.monotonic()
    tags = load(url, args.tenants, args.repos // args.tenants, args.tags // args.repos)
    engine = db.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE repositories SET namespace = :library, is_public = :public WHERE namespace = :last"),
                {"library": PUBLIC_NAMESPACE, "public": True, "last": tenant_name(args.tenants)},
            )
    finally:
        engine.dispose()
    log(
        f"loaded {tags} tags in {args.repos // args.tenants * args.tenants} repositories in "
        f"{time.monotonic() - started:.1f} s"
    )
    started = time.monotonic()
    analyze(url)
    log(f"ANALYZE in {time.monotonic() - started:.1f} s")
    return tags


def migrate(env, root):
    """``python -m catalog.migrate`` of the tree at ``root``."""
    subprocess.run(
        [sys.executable, "-m", "catalog.migrate"],
        cwd=root,
        env=dict(env, PYTHONPATH=pythonpath_with(root)),
        check=True,
        timeout=600,
        capture_output=True,
    )


# -- identity -----------------------------------------------------------------------------------------


def signing_key(workdir):
    """A key of this run's own and its certificate's path, for the catalog's AUTH_CERT_FILE."""
    from tests.unit.auth.certificates import certificate

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    path = os.path.join(workdir, "auth.crt")
    with open(path, "wb") as f:
        f.write(certificate(key, not_before=now - timedelta(days=1), not_after=now + timedelta(days=1)))
    return key, path


def developer_identity(key, tenant):
    """An identity as auth.sign_in signs it: a developer of ``tenant``, valid an hour."""
    now = datetime.now(UTC)
    claims = {
        "iss": ISSUER,
        "aud": identity_audience(ISSUER),
        "token_use": "identity",
        "sub": f"dev-{tenant}",
        "tenant": tenant,
        "admin": False,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(hours=1)).timestamp()),
    }
    return jwt.encode(claims, key, algorithm="ES256")


# -- the services -------------------------------------------------------------------------------------


class NamekoProcess(CatalogProcess):
    """`nameko run ARGS` in ``root`` (which `nameko run` puts first on sys.path)."""

    def __init__(self, env, log_path, root, *run_args):
        super().__init__(dict(env, PYTHONPATH=pythonpath_with(root)), log_path)
        self.root = root
        self.run_args = run_args

    def start(self):
        with open(self.log_path, "ab") as logfile:
            self.proc = subprocess.Popen(
                [os.path.join(BIN, "nameko"), "run", *self.run_args],
                cwd=self.root,
                env=self.env,
                stdout=logfile,
                stderr=logfile,
            )
        return self


def wait_consuming(process, management, vhost, queue):
    def consuming():
        if not process.alive():
            raise SystemExit(f"{queue}: the process exited at start:\n{process.log_tail()}")
        resp = requests.get(f"{management}/queues/{vhost}/{queue}", auth=operator(), timeout=5)
        return resp.ok and resp.json().get("consumers", 0) > 0

    try:
        wait_until(consuming, timeout=90, interval=0.25, what=f"a consumer on {queue}")
    except TimeoutError:
        raise SystemExit(f"{queue}: no consumer within 90 s:\n{process.log_tail()}") from None


# -- timing -------------------------------------------------------------------------------------------


def reads(args):
    """``(name, call)`` of each read, as a developer of tenant ``t050`` (or the middle one) makes it."""
    tenant = tenant_name(max(1, args.tenants // 2))
    per_tenant = args.repos // args.tenants
    repository = f"{tenant}/repo{max(1, per_tenant // 2):05d}"
    tag = f"v{max(1, (args.tags // args.repos) // 2)}"
    last = -(-per_tenant // PAGE_SIZE)
    page = {"page_size": PAGE_SIZE}
    return tenant, [
        ("get_tag", lambda c: c.get_tag(tenant, repository, tag)),
        ("list_tags", lambda c: c.list_tags(tenant, repository, page=1, **page)),
        ("get_repository", lambda c: c.get_repository(tenant, repository)),
        ("list_repositories first page", lambda c: c.list_repositories(tenant, page=1, **page)),
        (f"list_repositories last page ({last})", lambda c: c.list_repositories(tenant, page=last, **page)),
        ("list_repositories query=repo009", lambda c: c.list_repositories(tenant, query="repo009", page=1, **page)),
        ("list_public_repositories", lambda c: c.list_public_repositories(page=1, **page)),
    ]


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def measure(proxy, args, payload, page):
    """``{name: [ms, …]}`` for the echo and every read, taken in turns; ``echo of a page``: the
    echo again with a repository page's bytes (what a listing's answer weighs), once a round."""
    _, calls = reads(args)
    samples = {"echo": []} | {name: [] for name, _ in calls} | {"echo of a page": []}

    def timed(call):
        started = time.perf_counter()
        call()
        return (time.perf_counter() - started) * 1000

    for round_ in range(args.warmup + args.calls):
        for name, call in calls:
            echo = timed(lambda: proxy.echo.echo(payload))
            took = timed(lambda call=call: call(proxy.catalog))
            if round_ >= args.warmup:
                samples["echo"].append(echo)
                samples[name].append(took)
        took = timed(lambda: proxy.echo.echo(page))
        if round_ >= args.warmup:
            samples["echo of a page"].append(took)
    return samples


def summarise(samples):
    echo_p99 = percentile(samples["echo"], 99)
    echo_p50 = statistics.median(samples["echo"])
    return [
        {
            "read": name,
            "calls": len(ms),
            "p50_ms": round(statistics.median(ms), 3),
            "p99_ms": round(percentile(ms, 99), 3),
            "p99_vs_echo_p99": round(percentile(ms, 99) / echo_p99, 2),
            "p50_vs_echo_p50": round(statistics.median(ms) / echo_p50, 2),
        }
        for name, ms in samples.items()
    ]


def print_table(title, rows):
    print(f"\n{title}\n")
    print("| read | p50 ms | p99 ms | p99 / echo p99 | p50 / echo p50 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        mark = "" if row["read"].startswith("echo") or row["p99_vs_echo_p99"] <= GOAL else " (over)"
        cells = [f"{row['p50_ms']:.2f}", f"{row['p99_ms']:.2f}", f"{row['p99_vs_echo_p99']:.2f}{mark}"]
        print(f"| {row['read']} | " + " | ".join([*cells, f"{row['p50_vs_echo_p50']:.2f}"]) + " |")
    sys.stdout.flush()


def run_phase(label, env, root, args, ctx, key):
    """Start the catalog of the tree at ``root``, time the reads against the echo, stop it."""
    workdir, vhost = ctx["workdir"], ctx["vhost"]
    log_path = os.path.join(workdir, f"catalog-{label}-{ctx['db']}.log")
    catalog = NamekoProcess(env, log_path, root, "--config", "services/catalog/config.yml", "catalog.service").start()
    try:
        wait_consuming(catalog, args.management, vhost, "rpc-catalog")
        tenant, _ = reads(args)
        context = {IDENTITY_KEY: developer_identity(key, tenant)}
        with IdentifiedClusterRpcProxy({"AMQP_URI": ctx["amqp_uri"]}, context_data=context, timeout=60) as proxy:
            _, calls = reads(args)
            answers = {name: call(proxy.catalog) for name, call in calls}
            payload = answers["get_tag"]
            profile = None
            if args.profile and label == "current":
                out = os.path.join(workdir, f"profile-{ctx['db']}.raw")
                profile = subprocess.Popen(
                    [
                        os.path.join(BIN, "py-spy"),
                        "record",
                        "-p",
                        str(catalog.proc.pid),
                        "-r",
                        "250",
                        "-d",
                        str(args.profile),
                        "-f",
                        "raw",
                        "-o",
                        out,
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                log(f"py-spy recording the catalog for {args.profile} s into {out}")
            samples = measure(proxy, args, payload, answers["list_repositories first page"])
            if profile is not None:
                profile.wait(args.profile + 60)
        return answers, summarise(samples)
    finally:
        catalog.stop()


def baseline_tree(workdir, ref):
    """``services/catalog`` and ``shared`` of git revision ``ref``, extracted under the work dir."""
    root = os.path.join(workdir, "baseline")
    os.makedirs(root)
    archive = subprocess.run(
        ["git", "archive", ref, "services/catalog", "shared"], cwd=benchlib.ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", root], input=archive, check=True)
    return root


def pythonpath_with(root):
    """This process's PYTHONPATH with the catalog and shared of ``root`` first."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([os.path.join(root, "services", "catalog"), root, *rest])


def run_database(db, db_url, args, ctx, key, cert):
    ctx["db"] = db
    env = dict(
        os.environ,
        AMQP_URI=ctx["amqp_uri"],
        CATALOG_DB_URL=db_url,
        REGISTRY_URL="http://127.0.0.1:9",  # reads never ask the registry
        AUTH_CERT_FILE=cert,
        AUTH_ISSUER=ISSUER,
        CATALOG_RESYNC_INTERVAL="0",
        CATALOG_LIBRARY_SYNC_INTERVAL="0",
        CATALOG_METRICS_PORT="0",
        CATALOG_LOG_LEVEL="WARNING",
    )
    current = benchlib.ROOT
    result = {"database": db}
    if args.baseline:
        old = ctx["baseline_root"]
        migrate(env, old)
        result["tags"] = load_catalogue(db_url, args)
        before_answers, result["baseline"] = run_phase("baseline", env, old, args, ctx, key)
        print_table(f"{db}, baseline {args.baseline}", result["baseline"])
        migrate(env, current)
        analyze(db_url)
        log("upgraded to this tree's head, ANALYZE again")
    else:
        migrate(env, current)
        result["tags"] = load_catalogue(db_url, args)
    answers, result["current"] = run_phase("current", env, current, args, ctx, key)
    print_table(f"{db}, this tree", result["current"])
    if args.baseline:
        result["same_answers"] = answers == before_answers
        print(f"answers equal to the baseline's: {'yes' if result['same_answers'] else 'NO'}")
        if not result["same_answers"]:
            for name in answers:
                if answers[name] != before_answers[name]:
                    log(f"{name}: {answers[name]!r}\n  baseline: {before_answers[name]!r}")
    return result


def main():
    parser = benchlib.parser(__doc__)
    parser.add_argument("--tags", type=int, default=1_000_000, help="tags in all (default 1,000,000)")
    parser.add_argument("--repos", type=int, default=100_000, help="repositories in all (default 100,000)")
    parser.add_argument("--tenants", type=int, default=100, help="namespaces, the last one the library (default 100)")
    parser.add_argument("--calls", type=int, default=300, help="timed calls of each read and of the echo")
    parser.add_argument("--warmup", type=int, default=20, help="rounds before timing")
    parser.add_argument("--db-url", help="a PostgreSQL server: also measure on a throw-away database there")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--baseline", metavar="REF", help="measure git revision REF's catalog first, same data")
    parser.add_argument("--profile", type=int, metavar="SECONDS", help="py-spy the catalog under the read load")
    parser.add_argument("--management", default="http://127.0.0.1:15672/api", help="RabbitMQ management API")
    parser.add_argument("--keep-workdir", action="store_true")
    args = parser.parse_args()
    if args.tenants < 2 or args.repos < args.tenants or args.tags < args.repos:
        parser.error("need at least 2 tenants, a repository per tenant and a tag per repository")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    run = uuid.uuid4().hex[:8]
    workdir = tempfile.mkdtemp(prefix="imagehub-bench-reads-")
    ctx = {"workdir": workdir, "vhost": f"imagehub-bench-reads-{run}"}
    dbname = f"imagehub_bench_reads_{run}"
    vhost_created = db_created = False
    echo = None
    results = []
    try:
        if args.baseline:
            ctx["baseline_root"] = baseline_tree(workdir, args.baseline)
        create_vhost(args.management, ctx["vhost"])
        vhost_created = True
        ctx["amqp_uri"] = broker(args.management).amqp_uri(ctx["vhost"])
        key, cert = signing_key(workdir)
        echo = NamekoProcess(
            os.environ,
            os.path.join(workdir, "echo.log"),
            benchlib.ROOT,
            "--broker",
            ctx["amqp_uri"],
            "bench.reads:EchoService",
        ).start()
        wait_consuming(echo, args.management, ctx["vhost"], "rpc-echo")
        log(f"workdir {workdir}, vhost {ctx['vhost']}")
        if not args.no_sqlite:
            results.append(run_database("SQLite", f"sqlite:///{workdir}/catalog.db", args, ctx, key, cert))
        if args.db_url:
            pg_url = create_database(args.db_url, dbname)
            db_created = True
            results.append(run_database("PostgreSQL", pg_url, args, ctx, key, cert))
        benchlib.write_json(
            args.json,
            {
                "tags": args.tags,
                "repositories": args.repos,
                "tenants": args.tenants,
                "calls": args.calls,
                "warmup": args.warmup,
                "baseline": args.baseline,
                "goal": GOAL,
                "results": results,
                "nproc": os.cpu_count(),
                "when": datetime.now().astimezone().isoformat(timespec="seconds"),
            },
        )
    finally:
        if echo is not None:
            echo.stop()
        remove_throwaways(args, ctx["vhost"] if vhost_created else None, dbname if db_created else None, workdir)
    over = [
        r["read"]
        for res in results
        for r in res["current"]
        if not r["read"].startswith("echo") and r["p99_vs_echo_p99"] > GOAL
    ]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
