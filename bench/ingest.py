"""Sustained ingest: registry notifications → webhook → catalog, against a bare nameko pipeline.

Self-contained like bench/resync.py (whose helpers it reuses): its own RabbitMQ vhost with the
suite's topology (quorum queues, dead letters), its own `docker-registry`, its own webhook and
catalog processes (`nameko run`), on a migrated SQLite file in a temp dir or, with --db-url, on a
throw-away PostgreSQL database it creates and drops. Everything is removed at the end.

1. Pushes IMAGES small distinct images to the registry (HTTP API, tests.support.push_image).
2. The bare pipeline: EVENTS events sent with 4 threads by nameko's standalone event dispatcher
   (publisher confirms, as every service of the suite) into the queue of a nameko
   `@event_handler` that commits one row per event (`BarePipeline` below) on the same broker and
   the same database; then the handler is started and drains them.
3. The catalog: EVENTS manifest-push notifications for new tags of those images (envelopes as
   Docker Distribution 2.8 sends them, ENVELOPE events each, 4 senders) posted to the webhook;
   then PROCESSES catalog processes are started and drain `image_pushed`.

Each pipeline's rate is taken the same way: the database's row count polled every 20 ms, from the
first row seen to the last; the queue was full before its consumer started, so what is measured is
the consumer's pace, not the senders'. Then it counts, per pipeline: events sent, rows written,
lost (sent, no row), duplicates (rows beyond one per event), and for the catalog the tags, tag
history rows, processed events, dead letters and set-aside events. Exits 1 if anything is lost,
doubled or parked.

    .venv/bin/python -m bench.ingest [--events 2000] [--processes 1|2] [--json out.json]
    .venv/bin/python -m bench.ingest \\
        --db-url "postgresql://imagehub:$(cat /etc/imagehub/postgres-imagehub)@127.0.0.1:5432/imagehub"
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import requests
import sqlalchemy as sa
import yaml

from bench import benchlib
from bench.resync import (
    BIN,
    CatalogProcess,
    Rpc,
    broker,
    catalog_database,
    cpu_seconds,
    create_vhost,
    log,
    migrated_catalog_env,
    remove_throwaways,
)
from shared.contracts import topology
from shared.contracts.events import IMAGE_PUSHED, WEBHOOK
from shared.ops.broker_access import operator
from shared.runtime.db import create_engine
from tests.support import RegistryProcess, free_port, notification_envelope, push_image, push_notification, wait_until

BARE_SOURCE = "ingest_bench"
BARE_EVENT = "bare_event"
BARE_SERVICE = "ingest_bench_bare"
POLL = 0.02

# -- the bare pipeline: a nameko event handler committing one row per event ----------------------

metadata = sa.MetaData()
bare_events = sa.Table(
    "ingest_bench_bare_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False),  # no unique key: duplicates are counted
    sa.Column("at", sa.Float, nullable=False),
)


def _bare_service():
    """``BarePipeline``, built on first use (nameko imports eventlet)."""
    from nameko.events import event_handler
    from sqlalchemy.orm import declarative_base

    from shared.runtime.db import Database

    base = declarative_base(metadata=metadata)

    class BarePipeline:
        name = BARE_SERVICE
        db = Database(base)

        @event_handler(BARE_SOURCE, BARE_EVENT)
        def handle(self, payload):
            with self.db.get_session() as session:
                session.execute(bare_events.insert().values(event_id=payload["event_id"], at=time.time()))

    return BarePipeline


def __getattr__(name):  # `nameko run bench.ingest:BarePipeline`
    if name == "BarePipeline":
        return _bare_service()
    raise AttributeError(name)


def bare_queue_name():
    return f"evt-{BARE_SOURCE}-{BARE_EVENT}--{BARE_SERVICE}.handle"


def declare_bare_queue(amqp_uri):
    from kombu import Connection, Queue
    from nameko.standalone.events import get_event_exchange

    with Connection(amqp_uri) as conn:
        exchange = get_event_exchange(BARE_SOURCE, {})
        Queue(bare_queue_name(), exchange=exchange, routing_key=BARE_EVENT, durable=True)(conn.channel()).declare()


def send_bare(amqp_uri, event_ids, threads):
    from nameko.standalone.events import event_dispatcher

    dispatch = event_dispatcher({"AMQP_URI": amqp_uri})
    chunks = [event_ids[i::threads] for i in range(threads)]

    def send(chunk):
        for event_id in chunk:
            dispatch(BARE_SOURCE, BARE_EVENT, {"event_id": event_id})

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, chunks))
    return time.monotonic() - started


class NamekoProcess(CatalogProcess):
    """A `nameko run` of any service, with its own config file."""

    def __init__(self, env, log_path, config, service):
        super().__init__(env, log_path)
        self.config, self.service = config, service

    def start(self):
        with open(self.log_path, "ab") as logfile:
            self.proc = subprocess.Popen(
                [os.path.join(BIN, "nameko"), "run", "--config", self.config, self.service],
                cwd=benchlib.ROOT,
                env=self.env,
                stdout=logfile,
                stderr=logfile,
            )
        return self


# -- measuring ---------------------------------------------------------------------------------------


def drain(engine, count_sql, total, processes, timeout):
    """Poll ``count_sql`` until it reaches ``total``; ``(seconds from the first row to the last, rows)``."""
    first = last = None
    count = 0
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            count = conn.execute(sa.text(count_sql)).scalar_one()
            conn.rollback()
            now = time.monotonic()
            if count and first is None:
                first = (now, count)
            if count >= total:
                last = (now, count)
                break
            for proc in processes:
                if not proc.alive():
                    raise SystemExit(f"a process exited while draining:\n{proc.log_tail()}")
            time.sleep(POLL)
    if last is None:
        raise SystemExit(f"only {count} of {total} rows after {timeout:g} s")
    return max(last[0] - first[0], POLL), last[1] - first[1]


def queue_consumers(management, vhost, queue):
    url = f"{management}/queues/{requests.utils.quote(vhost, safe='')}/{requests.utils.quote(queue, safe='')}"
    resp = requests.get(url, auth=operator(), timeout=5)
    return resp.json() if resp.ok else {}


def post_notifications(webhook_url, token, events, per_request, threads):
    """POST ``events`` to the webhook, ``per_request`` an envelope, ``threads`` senders at once."""
    envelopes = [notification_envelope(*events[i : i + per_request]) for i in range(0, len(events), per_request)]
    local = threading.local()
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/vnd.docker.distribution.events.v1+json",
    }

    def post(envelope):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        resp = local.session.post(webhook_url, json=envelope, headers=headers, timeout=30)
        if resp.status_code != 200:
            raise SystemExit(f"webhook answered {resp.status_code}: {resp.text[:200]}")

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(post, envelopes))
    return time.monotonic() - started


def catalog_counts(engine, event_ids):
    """What the catalogue holds for the sent events (``event_ids``: the webhook's own ids)."""
    with engine.connect() as conn:

        def one(sql):
            return conn.execute(sa.text(sql)).scalar_one()

        return {
            "processed_events": one("SELECT count(*) FROM processed_events"),
            "tags": one("SELECT count(*) FROM tags"),
            "tag_history_rows": one("SELECT count(*) FROM tag_history"),
            "tag_history_events": one("SELECT count(DISTINCT event_id) FROM tag_history"),
            "dead_letters": one("SELECT count(*) FROM dead_letters"),
            "set_aside": one("SELECT count(*) FROM set_aside_events"),
        }


def single_pushes(amqp_uri, webhook_url, token, registry, images, count):
    """``count`` notifications, one at a time, with the catalog idle: from each POST until
    ``catalog.get_tag`` returns its digest (polled every 2 ms); the percentiles in ms."""
    if count < 1:
        return None
    import statistics

    from shared.contracts.errors import NotFound

    rpc = Rpc(amqp_uri)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    taken = []
    try:
        rpc.catalog("list_public_repositories")  # the RPC reply queue set up before the clock starts
        with requests.Session() as session:
            for n in range(count):
                repository, digest = images[n % len(images)]
                tag = f"single{n:04d}"
                event = push_notification(repository, digest, tag=tag, registry_host=registry.host)
                started = time.monotonic()
                session.post(webhook_url, json=notification_envelope(event), headers=headers, timeout=30)
                while True:
                    try:
                        if rpc.catalog("get_tag", repository.split("/")[0], repository, tag)["digest"] == digest:
                            break
                    except NotFound:
                        pass
                    if time.monotonic() - started > 30:
                        raise SystemExit(f"{repository}:{tag} not visible after 30 s")
                    time.sleep(0.002)
                taken.append((time.monotonic() - started) * 1000)
    finally:
        rpc.close()
    ms = sorted(taken)
    return {
        "pushes": len(ms),
        "p50": round(statistics.median(ms), 1),
        "p99": round(ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))], 1),
        "worst": round(ms[-1], 1),
        "all": [round(x, 1) for x in taken],
    }


# -- the run -------------------------------------------------------------------------------------------


def main():
    parser = benchlib.parser(__doc__)
    for action in parser._actions:  # this benchmark runs its own registry
        if action.dest == "registry":
            action.help = argparse.SUPPRESS
    parser.add_argument("--events", type=int, default=2000, help="events per pipeline (default 2000)")
    parser.add_argument("--images", type=int, default=20, help="distinct images pushed (default 20)")
    parser.add_argument("--envelope", type=int, default=10, help="events per webhook request (default 10)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent senders (default 4)")
    parser.add_argument("--processes", type=int, default=1, choices=(1, 2), help="catalog processes")
    parser.add_argument("--db-url", help="a PostgreSQL server URL (default: SQLite in a temp dir)")
    parser.add_argument("--management", default="http://127.0.0.1:15672/api", help="RabbitMQ management API")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on one drain after this")
    parser.add_argument(
        "--latency",
        type=int,
        default=50,
        help="then this many single notifications, one at a time, each timed until catalog.get_tag shows it",
    )
    parser.add_argument("--keep-workdir", action="store_true")
    parser.add_argument(
        "--profile", metavar="FILE", help="py-spy record the (first) catalog process while it drains, raw format"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    run = uuid.uuid4().hex[:8]
    vhost = f"imagehub-bench-ingest-{run}"
    workdir = tempfile.mkdtemp(prefix="imagehub-bench-ingest-")
    dbname = f"imagehub_bench_ingest_{run}" if args.db_url else None
    token = uuid.uuid4().hex
    webhook_port = free_port()
    registry = RegistryProcess(
        "http://127.0.0.1:1/none", token, workdir=os.path.join(workdir, "registry"), notify=False
    )
    processes = []
    engine = None
    vhost_created = db_created = failed = False
    problems = []
    try:
        create_vhost(args.management, vhost)
        vhost_created = True
        amqp_uri = broker(args.management).amqp_uri(vhost)
        db_url, database = catalog_database(args, dbname, workdir)
        db_created = bool(args.db_url)
        registry.start()
        env = migrated_catalog_env(
            amqp_uri,
            db_url,
            registry,
            CATALOG_LIBRARY_SYNC_INTERVAL="0",
            CATALOG_METRICS_PORT="0",
            WEBHOOK_METRICS_PORT="0",
            WEBHOOK_TOKEN=token,
            WEBHOOK_ADDRESS=f"127.0.0.1:{webhook_port}",
        )
        engine = create_engine(db_url)
        metadata.create_all(engine)
        log(f"workdir {workdir}, vhost {vhost}, registry {registry.url}, {database}")

        # 1. images
        tenants = [f"ib{i:02d}" for i in range(min(4, args.images))]
        images = []
        with requests.Session() as session:
            for i in range(args.images):
                repository = f"{tenants[i % len(tenants)]}/app{i:03d}"
                pushed = push_image(
                    registry.url, repository, "base", content=f"ingest {run} {i}".encode(), session=session
                )
                images.append((repository, pushed["digest"]))
        log(f"pushed {len(images)} images")

        # 2. the bare pipeline
        bare_config = os.path.join(workdir, "bare.yml")
        with open(bare_config, "w") as f:
            yaml.safe_dump({"AMQP_URI": amqp_uri, "DB_URIS": {f"{BARE_SERVICE}:Base": db_url}}, f)
        declare_bare_queue(amqp_uri)
        bare_ids = [str(uuid.uuid4()) for _ in range(args.events)]
        bare_send = send_bare(amqp_uri, bare_ids, args.senders)
        log(f"bare: {args.events} events sent in {bare_send:.1f} s")
        bare = NamekoProcess(env, os.path.join(workdir, "bare.log"), bare_config, "bench.ingest:BarePipeline").start()
        processes.append(bare)
        bare_cpu0 = cpu_seconds(bare.proc.pid)
        bare_seconds, bare_rows_timed = drain(
            engine, f"SELECT count(*) FROM {bare_events.name}", args.events, [bare], args.timeout
        )
        bare_cpu = cpu_seconds(bare.proc.pid)
        bare.stop()
        with engine.connect() as conn:
            bare_rows = conn.execute(sa.text(f"SELECT count(*) FROM {bare_events.name}")).scalar_one()
            bare_distinct = conn.execute(
                sa.text(f"SELECT count(DISTINCT event_id) FROM {bare_events.name}")
            ).scalar_one()
        bare_rate = bare_rows_timed / bare_seconds
        log(f"bare: {bare_rate:.0f} events/s")

        # 3. the catalog: notifications to the webhook, then the catalog drains them
        webhook = NamekoProcess(
            env, os.path.join(workdir, "webhook.log"), "services/webhook/config.yml", "webhook.service"
        ).start()
        processes.append(webhook)
        wait_until(
            lambda: (
                requests.get(f"http://127.0.0.1:{webhook_port}/health", timeout=1).ok
                if webhook.alive()
                else (_ for _ in ()).throw(SystemExit(webhook.log_tail()))
            ),
            timeout=30,
            interval=0.2,
            what="the webhook",
        )
        notifications = [
            push_notification(repo, digest, tag=f"t{n:06d}", registry_host=registry.host)
            for n, (repo, digest) in ((n, images[n % len(images)]) for n in range(args.events))
        ]
        webhook_seconds = post_notifications(
            f"http://127.0.0.1:{webhook_port}/registry/events", token, notifications, args.envelope, args.senders
        )
        log(f"webhook: {args.events} notifications accepted in {webhook_seconds:.1f} s")
        queue = topology.subscription(WEBHOOK, IMAGE_PUSHED, "catalog", "handle_image_pushed").queue
        wait_until(
            lambda: queue_consumers(args.management, vhost, queue).get("messages") == args.events,
            timeout=30,
            interval=0.2,
            what=f"{args.events} messages in {queue}",
        )
        catalogs = [
            CatalogProcess(env, os.path.join(workdir, f"catalog{i}.log")).start() for i in range(args.processes)
        ]
        processes.extend(catalogs)
        profiler = None
        if args.profile:
            profiler = subprocess.Popen(
                [
                    os.path.join(BIN, "py-spy"),
                    "record",
                    "-p",
                    str(catalogs[0].proc.pid),
                    "-r",
                    "250",
                    "-f",
                    "raw",
                    "-o",
                    args.profile,
                    "-d",
                    "600",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        cat_cpu0 = [cpu_seconds(c.proc.pid) for c in catalogs]
        cat_seconds, cat_rows_timed = drain(
            engine, "SELECT count(*) FROM processed_events", args.events, catalogs, args.timeout
        )
        cat_cpu = sum(cpu_seconds(c.proc.pid) - c0 for c, c0 in zip(catalogs, cat_cpu0, strict=True))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(30)
        time.sleep(1)  # anything late (a duplicate, a dead letter) has time to land
        counts = catalog_counts(engine, None)
        dead = queue_consumers(args.management, vhost, topology.DEAD_LETTER_QUEUE).get("messages", 0)
        cat_rate = cat_rows_timed / cat_seconds
        latencies = single_pushes(
            amqp_uri, f"http://127.0.0.1:{webhook_port}/registry/events", token, registry, images, args.latency
        )

        result = {
            "database": database,
            "events": args.events,
            "images": args.images,
            "catalog_processes": args.processes,
            "bare": {
                "sent": args.events,
                "send_seconds": round(bare_send, 2),
                "rows": bare_rows,
                "lost": args.events - bare_distinct,
                "duplicates": bare_rows - bare_distinct,
                "drain_seconds": round(bare_seconds, 2),
                "events_per_s": round(bare_rate, 1),
                "cpu_seconds": round(bare_cpu - bare_cpu0, 2),
            },
            "catalog": {
                "sent": args.events,
                "webhook_seconds": round(webhook_seconds, 2),
                "webhook_per_s": round(args.events / webhook_seconds, 1),
                **counts,
                "lost": args.events - counts["tag_history_events"],
                "duplicates": counts["tag_history_rows"] - counts["tag_history_events"],
                "dead_letter_queue": dead,
                "drain_seconds": round(cat_seconds, 2),
                "events_per_s": round(cat_rate, 1),
                "cpu_seconds": round(cat_cpu, 2),
            },
            "ratio": round(cat_rate / bare_rate, 3),
            "single_push_ms": latencies,
            "nproc": os.cpu_count(),
            "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        c = result["catalog"]
        for what in ("lost", "duplicates", "dead_letters", "set_aside", "dead_letter_queue"):
            if c[what]:
                problems.append(f"catalog: {c[what]} {what}")
        if c["tags"] != args.events or c["processed_events"] != args.events:
            problems.append(f"catalog: {c['tags']} tags, {c['processed_events']} processed events for {args.events}")
        for what in ("lost", "duplicates"):
            if result["bare"][what]:
                problems.append(f"bare: {result['bare'][what]} {what}")
        result["problems"] = problems
        b = result["bare"]
        print(f"ingest of {args.events} events on {database}, {args.processes} catalog process(es)")
        print(
            f"  bare pipeline   {b['events_per_s']:7.0f} events/s  "
            f"({b['drain_seconds']:.1f} s, CPU {b['cpu_seconds']:.1f} s)"
            f"  sent {b['sent']}, rows {b['rows']}, lost {b['lost']}, duplicates {b['duplicates']}"
        )
        print(
            f"  catalog         {c['events_per_s']:7.0f} events/s  "
            f"({c['drain_seconds']:.1f} s, CPU {c['cpu_seconds']:.1f} s)"
            f"  sent {c['sent']}, tags {c['tags']}, history rows {c['tag_history_rows']}, lost {c['lost']}, "
            f"duplicates {c['duplicates']}, dead letters {c['dead_letters'] + c['dead_letter_queue']}"
        )
        print(f"  ratio catalog / bare: {result['ratio']:.2f}   (webhook took them at {c['webhook_per_s']:.0f}/s)")
        if latencies:
            print(
                f"  single push, notification -> catalog.get_tag shows it, over {latencies['pushes']}: "
                f"p50 {latencies['p50']} ms, p99 {latencies['p99']} ms, worst {latencies['worst']} ms"
            )
        benchlib.write_json(args.json, result)
        if problems:
            print("PROBLEMS:\n  " + "\n  ".join(problems))
            failed = True
    except BaseException as exc:
        failed = True
        if not isinstance(exc, KeyboardInterrupt):
            for proc in processes:
                log(f"--- {proc.log_path} ---\n{proc.log_tail()}")
        raise
    finally:
        for proc in processes:
            proc.stop()
        registry.stop()
        if engine is not None:
            engine.dispose()
        remove_throwaways(args, vhost if vhost_created else None, dbname if db_created else None, workdir)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
