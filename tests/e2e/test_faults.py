"""Fault injection on the whole suite (issue 6): real processes killed and restarted, the real
broker stopped, the registry restarted with events in its queue, events duplicated, reordered
and late, the catalogue's PostgreSQL database closed to connections.

Each scenario ends with the same two checks: the catalogue holds exactly what the registry
holds (every ``(repository, tag, digest)`` of the tenant), and no event was applied twice
(no two tag-history rows carry one event id, and every tag has exactly one history row per push
that moved it). Each prints a ``FIGURES`` line (run with ``-s``); docs/reliability.md has them.

The stack runs its own vhost, registry and databases; only the broker scenario touches a shared
process (RabbitMQ's app is stopped and started, as in test_broker_outage.py). Periodic resync is
off, so what repairs the catalogue in scenarios 1, 2, 4 and 5 is the event path alone.
"""

import signal
import subprocess
import threading
import time
import uuid
from collections import Counter

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import TEST_PG_URL
from tests.e2e.stack import Stack
from tests.e2e.test_broker_outage import broker_answers, management_answers, rabbitmqctl
from tests.support import NotificationSink, push_image, wait_until
from tests.support.deliveries import EventQueue

pytestmark = [pytest.mark.docker, pytest.mark.timeout(240)]

AGREE_TIMEOUT = 90


# -- the stack: its catalogue on a PostgreSQL database of its own ---------------------------------


def psql(sql, database="postgres"):
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-qAt", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory):
    database = f"imagehub_faults_{uuid.uuid4().hex[:8]}"
    psql(f"CREATE DATABASE {database} OWNER imagehub")
    stack = Stack(str(tmp_path_factory.mktemp("faults")))
    # The services share this dict: what is set here is what they start with.
    stack.env.update(CATALOG_DB_URL=TEST_PG_URL.rsplit("/", 1)[0] + f"/{database}", CATALOG_RESYNC_INTERVAL="0")
    stack.database = database
    try:
        stack.start()
        # Every tag_indexed the catalogue dispatches, on a durable queue of the test's own (it
        # outlives the broker restart of the broker scenario).
        stack.indexed = EventQueue(stack.amqp_uri, "catalog", ["tag_indexed"])
        yield stack
    finally:
        if getattr(stack, "indexed", None):
            stack.indexed.close()
        stack.stop()
        psql(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


@pytest.fixture
def tenant(fault_stack):
    tenant_id = str(uuid.uuid4().int)[:8]
    fault_stack.add_tenant(tenant_id)
    return tenant_id


# -- the two states compared ------------------------------------------------------------------------


def registry_state(registry, namespace):
    """``{(repository, tag, digest)}`` of the namespace, read from the registry's own API (as the
    admin)."""
    state = set()
    for repository in registry.repositories():
        if repository.startswith(namespace + "/"):
            for tag in registry.tags(repository):
                digest = registry.manifest_digest(repository, tag)
                if digest:
                    state.add((repository, tag, digest))
    return state


def pages(stack, method, *args):
    page = 1
    while True:
        listing = stack.rpc("catalog", method, *args, page=page, page_size=100)
        yield from listing["items"]
        if page * 100 >= listing["total"]:
            return
        page += 1


def catalogue_state(stack, tenant):
    return {
        (tag["repository"], tag["tag"], tag["digest"])
        for repository in pages(stack, "list_repositories", tenant)
        for tag in pages(stack, "list_tags", tenant, repository["repository"])
    }


def history(stack, tenant):
    return [
        row
        for repository in pages(stack, "list_repositories", tenant)
        for row in pages(stack, "list_tag_history", tenant, repository["repository"])
    ]


def wait_agree(stack, tenant, since, timeout=AGREE_TIMEOUT):
    """Wait until catalogue == registry; returns (state, seconds from ``since``)."""
    expected = registry_state(stack.registry, tenant)

    def agree():
        try:
            return catalogue_state(stack, tenant) == expected
        except Exception:  # the catalog restarting, the broker coming back: keep asking
            return False

    try:
        wait_until(agree, timeout=timeout, interval=0.25, what="catalogue == registry")
    except TimeoutError:
        got = catalogue_state(stack, tenant)
        raise AssertionError(
            f"catalogue != registry after {timeout}s: missing {sorted(expected - got)}, extra {sorted(got - expected)}"
        ) from None
    return expected, time.monotonic() - since


def catalogued_manifests(stack, tenant):
    """``{(repository, digest)}`` the catalogue's database holds for the tenant, read directly:
    a push the catalog indexed leaves its manifest there even when a newer push of the same tag
    had overtaken it (it then moves no tag)."""
    rows = database_rows(
        stack.env["CATALOG_DB_URL"],
        "SELECT r.namespace || '/' || r.name, m.digest FROM manifests m"
        " JOIN repositories r ON m.repository_id = r.id WHERE r.namespace = :tenant",
        tenant=tenant,
    )
    return {(repository, digest) for repository, digest in rows}


def database_rows(url, sql, **params):
    """The rows of ``sql`` on a service's database, read directly (what the test counts)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()
    finally:
        engine.dispose()


def assert_applied_once(stack, tenant, burst):
    """Every one of the burst's pushes (each of distinct content: a digest of its own) reached
    the catalogue — its manifest is there — and none was applied twice (no history row twice for
    one event). A push overtaken by a newer push of its tag moves no tag (the registry, asked,
    says the tag is elsewhere) but is indexed all the same. Returns the history rows."""
    rows = history(stack, tenant)
    by_event = Counter(row["event_id"] for row in rows if row["event_id"])
    assert [e for e, n in by_event.items() if n > 1] == []
    pushed = set(burst.digests.values())
    assert len(pushed) == len(burst.plan)  # one digest per push: each is told apart
    wait_until(
        lambda: pushed <= catalogued_manifests(stack, tenant),
        timeout=30,
        interval=0.25,
        what="every pushed manifest in the catalogue",
    )
    moved = Counter((row["repository"], row["tag"]) for row in rows if row["action"] in ("pushed", "moved"))
    pushes_per_tag = burst.pushes_per_tag()
    assert set(moved) == set(pushes_per_tag)
    assert all(moved[key] <= pushes for key, pushes in pushes_per_tag.items()), moved
    return rows


def resync(stack, namespace):
    """One resync pass of the namespace, waited for; its counts."""
    with stack.admin_proxy(timeout=60) as proxy:
        report = proxy.catalog.resync(namespace=namespace, wait=True)
    assert report["status"] == "finished", report
    return report["counts"]


def applied_twice(rows):
    """History rows beyond the first for one event ID: a push applied more than once, counted."""
    return sum(n - 1 for n in Counter(row["event_id"] for row in rows if row["event_id"]).values() if n > 1)


def lost(stack, tenant):
    """Tags the registry has that the catalogue does not, or points elsewhere: counted now."""
    return len(registry_state(stack.registry, tenant) - catalogue_state(stack, tenant))


def figures(scenario, **values):
    print(f"\nFIGURES {scenario} " + " ".join(f"{k}={v}" for k, v in values.items()))


# -- a burst of pushes through the registry's HTTP API, in the background ---------------------------


class Burst:
    """``count`` pushes of distinct content over a few repositories and tags (tags are re-pushed,
    so tags move), made by ``workers`` threads, each on its own repository so that the order of
    pushes to one tag is known.

    Each worker pushes its first quarter, then waits at a gate (``wait_held``) until the test has
    broken something and calls ``release()``: so pushes are certain to happen during the fault,
    however long breaking it took.

    The workers push as the tenant's developer account, sharing ``session``'s token auth (one
    password check for the whole burst; it is thread-safe), each on a connection of its own."""

    def __init__(self, registry, tenant, session, count=48, workers=4, tags_per_repository=3, interval=0.25):
        self.registry, self.tenant, self.auth = registry, tenant, session.auth
        self.plan = [
            (f"{tenant}/burst{n % workers}", f"t{(n // workers) % tags_per_repository}", n) for n in range(count)
        ]
        self.workers, self.interval = workers, interval
        self.done = Counter()
        self.digests = {}  # push number -> the digest the registry gave it
        self.errors = []
        self.threads = []
        self.held = threading.Semaphore(0)
        self.gate = threading.Event()

    def pushes_per_tag(self):
        return Counter((repository, tag) for repository, tag, _ in self.plan)

    def start(self):
        for worker in range(self.workers):
            mine = [p for p in self.plan if p[0] == f"{self.tenant}/burst{worker}"]
            thread = threading.Thread(target=self._push, args=(mine,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def wait_held(self, timeout=60):
        """Wait until every worker has pushed its first quarter and stopped at the gate."""
        for _ in range(self.workers):
            assert self.held.acquire(timeout=timeout), "the burst's first quarter did not finish"
        assert self.errors == []
        return self.pushed

    def release(self):
        self.gate.set()

    def _push(self, plan):
        session = requests.Session()
        session.auth = self.auth
        for number, (repository, tag, n) in enumerate(plan):
            if number == len(plan) // 4:
                self.held.release()
                self.gate.wait(120)
            try:
                pushed = push_image(
                    self.registry.url, repository, tag, content=f"burst-{self.tenant}-{n}".encode(), session=session
                )
                self.digests[n] = (repository, pushed["digest"])
                self.done[repository] += 1
            except Exception as exc:  # recorded and asserted on, never swallowed
                self.errors.append(f"{repository}:{tag} #{n}: {exc!r}")
            time.sleep(self.interval)

    @property
    def pushed(self):
        return sum(self.done.values())

    def wait(self, timeout=120):
        self.release()
        for thread in self.threads:
            thread.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "the burst did not finish"
        assert self.errors == []
        assert self.pushed == len(self.plan)
        return time.monotonic()


def check_indexed(stack, tenant, rows):
    """``tag_indexed``: exactly one distinct event per history row that pushed or moved a tag
    (waited for: the outbox relays after commit); deliveries of one event twice are counted."""
    applied = Counter((r["repository"], r["tag"], r["digest"]) for r in rows if r["action"] in ("pushed", "moved"))

    def distinct():
        events = {e["event_id"]: e for e in stack.indexed.payloads("tag_indexed", namespace=tenant)}
        return Counter((e["repository"], e["tag"], e["digest"]) for e in events.values())

    wait_until(
        lambda: set(distinct()) >= set(applied), timeout=30, interval=0.25, what="a tag_indexed per applied push"
    )
    assert distinct() == applied
    events = stack.indexed.payloads("tag_indexed", namespace=tenant)
    return len(events), len(events) - len({e["event_id"] for e in events})


# -- the scenarios ------------------------------------------------------------------------------------


def deployer_processed(stack, event_ids):
    """How many of ``event_ids`` the deployer recorded as processed (its idempotency keys, one row
    per event: a second would break the primary key), read from its database."""
    found = {row[0] for row in database_rows(stack.env["DEPLOYER_DB_URL"], "SELECT event_id FROM processed_events")}
    return len(set(event_ids) & found)


class TestServiceKilled:
    """Each service on the event path SIGKILLed mid-burst: the catalog (its queue holds what the
    webhook publishes meanwhile), the webhook (the registry retries what it could not deliver),
    the deployer (its worker's queue holds the catalog's tag_indexed)."""

    @pytest.mark.parametrize("victims", [("catalog",), ("webhook", "deployer")], ids=["catalog", "webhook+deployer"])
    def test_sigkill_during_a_burst_loses_and_doubles_nothing(self, fault_stack, tenant, victims):
        stack = fault_stack
        burst = Burst(stack.registry, tenant, stack.session(tenant)).start()
        killed_at = burst.wait_held()
        for victim in victims:
            stack.services[victim].stop(signal.SIGKILL)
        burst.release()
        time.sleep(3)  # pushes go on while they are dead
        during = burst.pushed - killed_at
        for victim in victims:
            stack.services[victim].start()
        ended = burst.wait()
        state, seconds = wait_agree(stack, tenant, ended)
        assert len(state) == 12  # 4 repositories x 3 tags
        rows = assert_applied_once(stack, tenant, burst)
        delivered, redelivered = check_indexed(stack, tenant, rows)
        indexed_ids = {e["event_id"] for e in stack.indexed.payloads("tag_indexed", namespace=tenant)}
        wait_until(
            lambda: deployer_processed(stack, indexed_ids) == len(indexed_ids),
            timeout=30,
            interval=0.25,
            what="the deployer to process every tag_indexed",
        )
        assert during > 0
        figures(
            f"{'+'.join(victims)}-sigkill",
            pushes=len(burst.plan),
            manifests_catalogued=len(set(burst.digests.values()) & catalogued_manifests(stack, tenant)),
            pushed_while_dead=during,
            history_rows=len(rows),
            tag_indexed=delivered,
            tag_indexed_redelivered=redelivered,
            tag_indexed_processed_by_deployer=deployer_processed(stack, indexed_ids),
            lost=lost(stack, tenant),
            applied_twice=applied_twice(rows),
            seconds_to_agree=f"{seconds:.2f}",
        )


@pytest.mark.exclusive  # stops the machine's RabbitMQ: every other test would see it gone
class TestBrokerStopped:
    def test_rabbitmq_stopped_during_a_burst(self, fault_stack, tenant):
        stack = fault_stack
        burst = Burst(stack.registry, tenant, stack.session(tenant)).start()
        burst.wait_held()
        rabbitmqctl("stop_app")
        try:
            stopped_at = burst.pushed
            burst.release()
            time.sleep(4)  # the registry's notifications get 503 and stay in its queue
            during = burst.pushed - stopped_at
        finally:
            rabbitmqctl("start_app")
            wait_until(broker_answers, timeout=60, what="broker back")
            wait_until(management_answers, timeout=60, what="management API back")
        ended = burst.wait()
        state, seconds = wait_agree(stack, tenant, ended)
        assert len(state) == 12
        rows = assert_applied_once(stack, tenant, burst)
        delivered, redelivered = check_indexed(stack, tenant, rows)
        assert during > 0, "no push happened while the broker was down: the scenario tested nothing"
        # A worker that acknowledged on the dying connection used to kill its container (and the
        # `nameko run` process with it): see shared/runtime/amqp.py.
        assert {name: s.proc.poll() for name, s in stack.services.items()} == dict.fromkeys(stack.services)
        figures(
            "broker-stopped",
            pushes=len(burst.plan),
            manifests_catalogued=len(set(burst.digests.values()) & catalogued_manifests(stack, tenant)),
            pushed_while_down=during,
            history_rows=len(rows),
            tag_indexed=delivered,
            tag_indexed_redelivered=redelivered,
            lost=lost(stack, tenant),
            applied_twice=applied_twice(rows),
            seconds_to_agree=f"{seconds:.2f}",
        )


class TestEventsLostWithTheRegistry:
    def test_resync_repairs_what_a_registry_restart_dropped(self, fault_stack, tenant):
        """The webhook is down while images are pushed and one is deleted; the registry is
        restarted with those events in its (in-memory) queue, so they are gone for good. The
        catalogue is then behind, and a resync pass brings it level."""
        stack = fault_stack
        session = stack.session(tenant)
        kept = push_image(stack.registry.url, f"{tenant}/app", "v1", content=f"{tenant}-kept".encode(), session=session)
        doomed = push_image(
            stack.registry.url, f"{tenant}/app", "old", content=f"{tenant}-doomed".encode(), session=session
        )
        wait_agree(stack, tenant, time.monotonic())

        webhook = stack.services["webhook"]
        webhook.stop()
        try:
            lost = [
                push_image(
                    stack.registry.url,
                    f"{tenant}/lost{n % 3}",
                    f"v{n}",
                    content=f"{tenant}-lost-{n}".encode(),
                    session=session,
                )
                for n in range(9)
            ]
            stack.registry.delete_manifest(f"{tenant}/app", doomed["digest"])
            stack.registry.stop()  # its queue of undelivered events goes with it
            stack.registry.start()
        finally:
            webhook.start()
            wait_until(
                lambda: requests.get(f"{stack.webhook_url}/health", timeout=1).ok, timeout=30, what="webhook back"
            )

        expected = registry_state(stack.registry, tenant)
        time.sleep(2)  # time enough for anything still in flight to arrive: nothing should
        behind = catalogue_state(stack, tenant)
        missing, extra = expected - behind, behind - expected
        assert len(missing) == 9 and extra == {(f"{tenant}/app", "old", doomed["digest"])}

        started = time.monotonic()
        first = resync(stack, tenant)
        # a tag missing once is not removed yet: only on the second pass that misses it
        assert (first["added"], first["removed"], first["pending_removal"]) == (9, 0, 1)
        second = resync(stack, tenant)
        assert (second["added"], second["removed"], second["pending_removal"]) == (0, 1, 0)
        state, seconds = wait_agree(stack, tenant, started, timeout=5)
        assert (f"{tenant}/app", "v1", kept["digest"]) in state
        assert {(f"{tenant}/lost{n % 3}", f"v{n}", p["digest"]) for n, p in enumerate(lost)} <= state
        third = resync(stack, tenant)
        assert (third["added"], third["moved"], third["removed"], third["pending_removal"]) == (0, 0, 0, 0)
        figures(
            "registry-restart-resync",
            events_lost=len(missing) + len(extra),
            resync_passes=2,
            added=first["added"],
            removed=second["removed"],
            seconds_to_agree=f"{seconds:.2f}",
        )


# Alone: its expected history assumes the catalog's workers take the replayed events in the order
# they are posted. On a loaded machine a late push posted after a newer one can be handled first
# (concurrent workers), and is then applied and moved on from instead of ignored: the end state is
# right, the history has one row more. A known ordering race of the catalog (issue 13), not of this
# test.
@pytest.mark.exclusive
class TestDuplicatedReorderedLate:
    def test_real_events_replayed_out_of_order_and_twice(self, fault_stack, tenant):
        """The registry's own notifications for a sequence of pushes and deletes, recorded,
        then delivered to the webhook newest first, each twice, and once more after that."""
        stack = fault_stack
        registry, recorder, session = stack.registry, NotificationSink(stack.registry.token), stack.session(tenant)
        webhook_url = registry.webhook_url
        registry.stop()
        registry.webhook_url = recorder.url
        registry.start()
        try:
            repo = f"{tenant}/order"

            def push(tag, content):
                return push_image(registry.url, repo, tag, content=f"{tenant}-{content}".encode(), session=session)

            push("t", "a")
            b = push("t", "b")  # t moves a -> b
            c = push("u", "c")
            registry.delete_manifest(repo, c["digest"])  # u gone ...
            time.sleep(0.01)
            c2 = push("u", "c")  # ... and back
            d = push("v", "d")
            registry.delete_manifest(repo, d["digest"])  # v gone for good
            wait_until(
                lambda: (
                    len(
                        [
                            e
                            for e in recorder.events
                            if e["action"] in ("push", "delete")
                            and e["target"].get("mediaType") != "application/octet-stream"
                        ]
                    )
                    >= 9
                ),
                timeout=30,
                what="the registry's 9 notifications",
            )
        finally:
            registry.stop()
            registry.webhook_url = webhook_url
            registry.start()
            recorder.close()
        assert c2["digest"] == c["digest"]
        events = [
            e
            for e in recorder.events
            if e["action"] in ("push", "delete") and e["target"].get("mediaType") != "application/octet-stream"
        ]
        # A manifest delete is told twice by Distribution: by digest, then once per tag it removed.
        assert [(e["action"], "tag" in e["target"] and e["target"]["tag"]) for e in events] == [
            ("push", "t"),
            ("push", "t"),
            ("push", "u"),
            ("delete", False),
            ("delete", "u"),
            ("push", "u"),
            ("push", "v"),
            ("delete", False),
            ("delete", "v"),
        ]

        started = time.monotonic()
        replay = list(reversed(events))
        posted = 0
        for event in replay:  # newest first, each one twice in a row
            for _ in range(2):
                resp = stack.post_events({"events": [event]})
                assert resp.status_code == 200, resp.text
                posted += 1
        state, seconds = wait_agree(stack, tenant, started)
        assert state == {(repo, "t", b["digest"]), (repo, "u", c["digest"])}
        # and all of them again, in the order they happened, long after
        for event in events:
            assert stack.post_events({"events": [event]}).status_code == 200
            posted += 1
        time.sleep(2)
        assert catalogue_state(stack, tenant) == state
        tag_t = [r for r in history(stack, tenant) if r["tag"] == "t"]
        # t: the late push of a (older than b) is not applied at all
        assert [(r["action"], r["digest"]) for r in tag_t] == [("pushed", b["digest"])]
        rows = history(stack, tenant)
        by_event = Counter(r["event_id"] for r in rows)
        assert [e for e, n in by_event.items() if n > 1] == []
        figures(
            "duplicated-reordered-late",
            registry_events=len(events),
            deliveries=posted,
            history_rows=len(rows),
            applied_twice=applied_twice(rows),
            seconds_to_agree=f"{seconds:.2f}",
        )


class TestGarbageCollected:
    def test_the_catalogue_agrees_with_the_registry_after_garbage_collection(self, fault_stack, tenant):
        """A tag deleted through the catalog and a tag moved (its old manifest left untagged);
        the registry stopped, `garbage-collect --delete-untagged` run on its storage, started
        again. GC removes manifests without a notification: the catalogue must still agree."""
        stack = fault_stack
        session = stack.session(tenant)
        repository = f"{tenant}/gc"
        old = push_image(stack.registry.url, repository, "v1", content=f"{tenant}-a".encode(), session=session)
        new = push_image(stack.registry.url, repository, "v1", content=f"{tenant}-b".encode(), session=session)
        doomed = push_image(stack.registry.url, repository, "old", content=f"{tenant}-c".encode(), session=session)
        wait_agree(stack, tenant, time.monotonic())
        stack.rpc("catalog", "delete_tag", tenant, repository, "old")
        wait_agree(stack, tenant, time.monotonic())

        stack.registry.stop()
        try:
            collected = subprocess.run(
                ["docker-registry", "garbage-collect", "--delete-untagged", stack.registry.config_path],
                capture_output=True,
                text=True,
                timeout=60,
            )
        finally:
            stack.registry.start()
        assert collected.returncode == 0, collected.stderr
        deleting = collected.stdout.count("manifest eligible for deletion")
        gone = [
            d["digest"] for d in (old, doomed) if stack.registry.manifest(repository, d["digest"]).status_code == 404
        ]
        started = time.monotonic()
        counts = [resync(stack, tenant) for _ in range(2)]  # a removal needs two passes that miss it
        state, seconds = wait_agree(stack, tenant, started)
        figures(
            "registry-garbage-collected",
            manifests_collected=deleting,
            manifests_gone=len(gone),
            tags_in_registry=len(registry_state(stack.registry, tenant)),
            tags_in_catalogue=len(state),
            resync_changes=sum(sum(c.values()) for c in counts),
            lost=lost(stack, tenant),
            seconds_to_agree=f"{seconds:.2f}",
        )
        assert sorted(gone) == sorted([old["digest"], doomed["digest"]])
        assert state == {(repository, "v1", new["digest"])}
        assert stack.rpc("catalog", "get_tag", tenant, repository, "v1")["digest"] == new["digest"]


class TestDatabaseUnavailable:
    def test_catalog_database_closed_to_connections_during_a_burst(self, fault_stack, tenant):
        stack = fault_stack
        burst = Burst(stack.registry, tenant, stack.session(tenant)).start()
        burst.wait_held()
        psql(f"ALTER DATABASE {stack.database} ALLOW_CONNECTIONS false")
        try:
            psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{stack.database}'")
            closed_at = burst.pushed
            burst.release()
            time.sleep(10)  # ten seconds without the database: events retried with a growing pause
            during = burst.pushed - closed_at
        finally:
            psql(f"ALTER DATABASE {stack.database} ALLOW_CONNECTIONS true")
        ended = burst.wait()
        state, seconds = wait_agree(stack, tenant, ended)
        assert len(state) == 12
        rows = assert_applied_once(stack, tenant, burst)
        delivered, redelivered = check_indexed(stack, tenant, rows)
        assert during > 0
        assert stack.services["catalog"].proc.poll() is None, "the catalog died with its database"
        figures(
            "database-unavailable",
            pushes=len(burst.plan),
            manifests_catalogued=len(set(burst.digests.values()) & catalogued_manifests(stack, tenant)),
            pushed_while_down=during,
            history_rows=len(rows),
            tag_indexed=delivered,
            tag_indexed_redelivered=redelivered,
            lost=lost(stack, tenant),
            applied_twice=applied_twice(rows),
            seconds_to_agree=f"{seconds:.2f}",
        )
