"""The same ``rollout_requested`` delivered twice at once (issue 13), on the real broker, both
databases and the machine's two Docker engines: one run, the deployment running with its
replicas, and no container of that run removed.

A rollout request can reach the deployer's workers twice (a redelivery after a lost ack, or the
outbox relay's copy of an event whose first send was slow). Here a test-side listener bound to
``deployer.events`` / ``rollout_requested`` hears the real request and publishes the identical
payload on the same exchange at once; ``PairBarrier`` (``tests.support.pairs``) holds the real
delivery's worker until the copy has one too, so both start their handler together, before either
has claimed the request. The module's ``deployer_worker`` is replaced by ``PairedWorker``: the
same service with the barrier added (same name, queue and handler).

The first test leaves the two deliveries to the scheduler; the second forces the worst
interleaving of their claims (``ClaimRace``: both read the lock before either writes, the second
goes on once the first run has a container). It found the double rollout of issue 13: the claim
was a read-then-write, so both deliveries claimed the request and the second removed the first
run's containers; ``Deployment.locked_by`` now checks and renews the lock in one conditional
UPDATE that holds the row until the commit.

Counted, never assumed: deliveries (the handler's results), runs (deliveries that claimed the
request: those the deployer did not drop as "already under way", from its own log records),
containers started and removed (the engines' own event streams for the deployment's label).
"""

import logging
import re
import time
from dataclasses import dataclass

import eventlet
import pytest
import sqlalchemy as sa
from nameko.containers import ServiceContainer
from nameko.events import event_handler
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter

from deployer.dependencies import DeployerDatabase
from deployer.service import DeployerWorker
from shared.contracts.events import DEPLOYER, ROLLOUT_REQUESTED
from tests.integration.deployer.conftest import WAIT, labelled, poll
from tests.support.pairs import COPIES, PairBarrier, barrier_of

pytestmark = pytest.mark.docker

REPLICAS = 2
ONE_RUN_STATUSES = [(1, "pending"), (1, "pulling"), (1, "starting"), (1, "running")]
DROPPED = "is stale or already under way: dropped"  # deployer.rollout's record of a request left alone
# ... and of a run that lost its claim mid-way ("rollout of %s revision %s stopped: %s", or "rollout
# of %s stopped while failing: %s")
ABORTED = re.compile(r"^rollout of \S+ (revision \d+ )?stopped")


def is_rollout(payload):
    """The requests this module delivers twice: rollouts (a deletion at clean-up is left single)."""
    return payload.get("action") == "rollout"


class PairedWorker(DeployerWorker):
    """The deployer's rollout worker as it is, plus the test's barrier."""

    pairs = PairBarrier("handle_rollout_requested", holds=is_rollout)


@pytest.fixture(scope="module")
def worker(containers):
    """``PairedWorker`` in place of the module's ``deployer_worker`` (stopped: one consumer of the
    queue), on the same configuration."""
    containers["deployer_worker"].stop()
    paired = ServiceContainer(PairedWorker, containers["deployer"].config)
    paired.start()
    yield paired
    paired.kill()


@pytest.fixture(scope="module")
def copies(vhost_config):
    """A listener bound to ``deployer.events`` / ``rollout_requested`` that publishes, the moment it
    hears a rollout request, the identical payload on the same exchange, once per event ID (it
    hears its own copy too). Returns ``{event_id: payload}`` of what it copied."""
    copied = {}
    dispatch = event_dispatcher(vhost_config)

    class RolloutCopier:
        name = "rollout_copier"

        @event_handler(DEPLOYER, ROLLOUT_REQUESTED)
        def copy(self, payload):
            if is_rollout(payload) and payload["event_id"] not in copied:
                copied[payload["event_id"]] = payload
                dispatch(DEPLOYER, ROLLOUT_REQUESTED, payload)

    container = ServiceContainer(RolloutCopier, dict(vhost_config, max_workers=1))
    container.start()
    yield copied
    container.kill()


def container_events(engines, deployment_id, since):
    """``[(engine, action, container id)]`` the engines reported for the deployment's containers
    from ``since`` (``time.time()``) until now. Unix times with their fraction: the SDK would cut
    a datetime to the second, and miss what happened in the last one."""
    until = time.time()
    return [
        (name, event["Action"], event["id"])
        for name, client in engines.items()
        for event in client.events(
            since=since,
            until=until,
            filters={"type": "container", "label": f"imagehub.deployment={deployment_id}"},
            decode=True,
        )
    ]


class ClaimRace:
    """The worst interleaving of two claims, on the worker's real database engine. Each delivery's
    claim begins by reading the deployment's lock (its first ``SELECT deployments.…``); the first
    reader waits, just after its read, until the second has read too (at most ``READ_WAIT``: a
    deployer that locks the row as it reads makes the second wait for the first instead), and the
    second waits, just after its read and before it writes anything, until the test calls
    ``release()``. Nothing is faked and no lock is held while waiting: the hook only delays a
    worker between two statements, as a pause of its process (GC, CPU starvation) would — and
    never one whose transaction has already written (a claim that checks and takes the lock in one
    statement holds the row from then on: there is no interleaving left to force, and ``held``
    stays 0)."""

    LOCK_READ = "SELECT deployments."
    READ_WAIT = 5.0

    def __init__(self, engine):
        self.engine = engine
        self.armed = False
        self.known = set()
        self.reads = 0
        self.held = 0  # reads after which a worker was held (the first two)
        self.both_read = eventlet.event.Event()
        self.released = eventlet.event.Event()
        self.writing = set()  # connections whose transaction has written
        sa.event.listen(engine, "after_cursor_execute", self.after_execute)
        sa.event.listen(engine, "commit", self.ended)
        sa.event.listen(engine, "rollback", self.ended)

    def arm(self):
        """Hold the next two reads of a deployment created from now on (not, say, the reads of an
        earlier test's deployment being torn down meanwhile)."""
        with self.engine.connect() as conn:
            self.known = set(conn.scalars(sa.text("SELECT id FROM deployments")))
        self.armed = True

    def ended(self, conn):
        self.writing.discard(id(conn))

    def after_execute(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE")):
            self.writing.add(id(conn))
            return
        if not self.armed or not statement.startswith(self.LOCK_READ) or id(conn) in self.writing:
            return
        values = parameters.values() if isinstance(parameters, dict) else parameters
        if any(value in self.known for value in values):
            return
        self.reads += 1
        if self.reads == 1:
            self.held += 1
            self.both_read.wait(self.READ_WAIT)
        elif self.reads == 2:
            self.held += 1
            self.both_read.send(True)
            self.released.wait(WAIT)

    def release(self):
        self.armed = False
        if not self.released.ready():
            self.released.send(True)

    def close(self):
        self.release()
        sa.event.remove(self.engine, "after_cursor_execute", self.after_execute)
        sa.event.remove(self.engine, "commit", self.ended)
        sa.event.remove(self.engine, "rollback", self.ended)


@pytest.fixture
def claim_race(worker):
    race = ClaimRace(next(d for d in worker.dependencies if isinstance(d, DeployerDatabase)).engine)
    yield race
    race.close()


@dataclass
class Twice:
    """What delivering one rollout request twice did, counted."""

    deployment_id: str
    deliveries: int
    together: bool  # both copies met at the barrier and ran at the same time
    runs: int  # deliveries that claimed the request (the others were dropped as already under way)
    dropped: int
    aborted: int  # runs that lost their claim mid-way and stopped
    final: dict
    revisions: list
    started: set  # IDs of the containers the engines started for the deployment
    removed: set  # ... and removed
    shown: set  # ... and show at the end

    def report(self, extra=""):
        print(
            f"deliveries={self.deliveries} together={self.together} runs={self.runs} dropped={self.dropped} "
            f"aborted={self.aborted} revisions={len(self.revisions)} containers started={len(self.started)} "
            f"removed={len(self.removed)} shown at the end={len(self.shown)} final status={self.final['status']} "
            f"instances recorded={len(self.final['instances'])}{extra}"
        )


def deliver_twice(deployer, worker, copies, engines, caplog, meanwhile=lambda deployment_id: None):
    """Create a deployment; its rollout request reaches ``worker`` twice at once (the real delivery
    and the listener's copy, paired by the barrier). ``meanwhile(deployment_id)`` runs while the
    deliveries are being handled. Returns the counts once both are handled and it has settled."""
    caplog.set_level(logging.INFO, logger="deployer.rollout")
    since = time.time()
    deliveries, errors = [], []

    def both_copies(worker_ctx, result, exc_info):
        payload = worker_ctx.args[0]
        if is_rollout(payload):
            deliveries.append(payload)
            if exc_info is not None:
                errors.append(exc_info[1])
        return len(deliveries) >= COPIES

    with entrypoint_waiter(worker, "handle_rollout_requested", callback=both_copies, timeout=WAIT):
        deployment_id = deployer.create(replicas=REPLICAS)["id"]
        meanwhile(deployment_id)
    assert errors == []
    [request] = [p for p in copies.values() if p["deployment_id"] == deployment_id]
    assert deliveries == [request] * COPIES  # the copy is the real request, as JSON
    pairs = barrier_of(worker)

    final = deployer.settle(deployment_id)
    events = container_events(engines, deployment_id, since)
    records = [
        r.getMessage() for r in caplog.records if r.name == "deployer.rollout" and deployment_id in r.getMessage()
    ]
    dropped = sum(1 for m in records if DROPPED in m)
    return Twice(
        deployment_id=deployment_id,
        deliveries=len(deliveries),
        together=pairs.met.get(request["event_id"]) is True and pairs.overlapped(request["event_id"]),
        runs=len(deliveries) - dropped,
        dropped=dropped,
        aborted=sum(1 for m in records if ABORTED.match(m)),
        final=final,
        revisions=deployer.call.list_revisions(deployer.tenant, deployment_id)["items"],
        started={cid for _, action, cid in events if action == "start"},
        removed={cid for _, action, cid in events if action == "destroy"},
        shown=shown(engines, deployment_id),
    )


def shown(engines, deployment_id):
    """IDs of the deployment's containers the engines show (running ones)."""
    return {c.id for found in labelled(engines, deployment_id).values() for c in found}


def assert_one_rollout(twice, status_events):
    """The deployment runs its replicas, from one revision, on the containers one run started."""
    assert (twice.final["status"], twice.final["revision"], twice.final["serving_revision"]) == ("running", 1, 1)
    assert [(r["revision"], r["status"]) for r in twice.revisions] == [(1, "running")]
    assert len(twice.final["instances"]) == REPLICAS
    assert (len(twice.started), twice.removed) == (REPLICAS, set())
    assert twice.shown == twice.started == {i["container_id"] for i in twice.final["instances"]}
    poll(
        lambda: (
            status_events.of(twice.deployment_id) == [(1, "pending"), (1, "pulling"), (1, "starting"), (1, "running")]
        ),
        what="one run's status events",
    )


class TestSameRolloutTwiceAtOnce:
    def test_one_run_rolls_out_and_no_container_is_removed(
        self, deployer, worker, copies, engines, status_events, caplog
    ):
        """As the scheduler interleaves them. Exactly one delivery carries the rollout: the other is
        dropped, or (when both read the lock before either wrote its claim: the race the next test
        forces) it gives up at its next step, before it has touched an engine."""
        twice = deliver_twice(deployer, worker, copies, engines, caplog)
        twice.report()
        assert twice.deliveries == COPIES and twice.together, "the two deliveries were not in flight together"
        assert (twice.runs - twice.aborted, twice.dropped + twice.aborted) == (1, 1)
        assert_one_rollout(twice, status_events)

    def test_a_claim_written_late_removes_no_container_of_the_first_run(
        self, deployer, worker, copies, engines, status_events, caplog, claim_race
    ):
        """Both deliveries read the lock before either writes its claim, and the second goes on only
        once the first run has a container on an engine (``ClaimRace``)."""
        before = {}

        def once_the_first_run_has_a_container(deployment_id):
            before["shown"] = poll(
                lambda: shown(engines, deployment_id), what="a container of the first run on an engine"
            )
            before["held"] = claim_race.held
            claim_race.release()

        claim_race.arm()
        twice = deliver_twice(deployer, worker, copies, engines, caplog, once_the_first_run_has_a_container)
        kept = before["shown"] & twice.shown
        twice.report(
            f" lock reads held={before['held']} shown before the second could act={len(before['shown'])} "
            f"of them kept={len(kept)}"
        )
        assert twice.deliveries == COPIES and twice.together, "the two deliveries were not in flight together"
        assert (twice.runs, twice.dropped, twice.aborted) == (1, 1, 0)
        assert kept == before["shown"] and not before["shown"] & twice.removed
        assert_one_rollout(twice, status_events)
