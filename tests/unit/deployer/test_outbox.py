"""The deployer's events go through the outbox: written with the change, sent after the commit,
left for the relay when the broker refuses them, in order per deployment, same event_id."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from deployer import deployments as logic
from deployer import outbox
from deployer.aggregate import Deployment
from deployer.models import OutboxEvent
from shared.contracts.errors import Conflict
from shared.contracts.events import DEPLOYMENT_STATUS_CHANGED, ROLLOUT_REQUESTED
from shared.runtime import outbox as shared_outbox
from tests.unit.deployer.conftest import web_spec

LATER = datetime.now(UTC) + timedelta(hours=1)  # every row is old enough for the relay
MIN_AGE = timedelta(seconds=2)


class BrokerDown(ConnectionRefusedError):
    pass


@pytest.fixture
def broker(world):
    """``world.rt.publish`` refusing while ``down`` is set, as nameko's publisher does when
    RabbitMQ is away; what does go out is recorded in ``world.events`` as usual."""

    class Broker:
        down = False
        refused = []

        def publish(self, event_type, payload):
            if self.down:
                self.refused.append(payload["event_id"])
                raise BrokerDown("[Errno 111] Connection refused")
            world.publish(event_type, payload)

    fake = Broker()
    world.rt.publish = fake.publish
    return fake


def pending(world):
    with world.rt.transaction() as session:
        return [
            (r.event_type, r.event_id, r.ordering_key)
            for r in session.scalars(sa.select(OutboxEvent).order_by(OutboxEvent.id))
        ]


def relay(world, now=LATER):
    return outbox.relay(world.rt, MIN_AGE, now=now)


def create(world, name="web"):
    return logic.create_deployment(world.rt, "t1", web_spec(name=name))


class TestNormalPath:
    def test_events_are_sent_and_deleted_after_the_commit(self, world, broker):
        create(world)
        assert [kind for kind, _ in world.events] == [DEPLOYMENT_STATUS_CHANGED, ROLLOUT_REQUESTED]
        assert pending(world) == []

    def test_a_refused_change_writes_no_event(self, world, broker):
        created = create(world)
        before = len(world.events)
        with pytest.raises(Conflict):  # busy: its rollout has not run
            logic.update_deployment(world.rt, "t1", created["id"], {"replicas": 3, "image": "t1/web:v2"})
        assert (len(world.events), pending(world)) == (before, [])

    def test_an_event_for_a_row_outside_a_session_is_refused(self, world):
        with world.rt.transaction() as session:
            created = create(world)
            row = Deployment.get(session, created["id"]).row
            session.expunge(row)
        with pytest.raises(RuntimeError, match="not in a session"):
            Deployment(session, row)._status_event("running", None, 1)


class TestBrokerDown:
    def test_the_change_commits_and_its_events_wait_in_the_outbox(self, world, broker):
        broker.down = True
        created = create(world)  # answers: the change is committed
        assert created["status"] == "pending"
        assert [(kind, key) for kind, _, key in pending(world)] == [
            (DEPLOYMENT_STATUS_CHANGED, created["id"]),
            (ROLLOUT_REQUESTED, created["id"]),
        ]
        assert world.events == []
        assert len(broker.refused) == 1  # the first refusal stops the send: the rest stay in order

    def test_the_relay_sends_them_later_once_with_the_same_event_ids(self, world, broker):
        broker.down = True
        create(world)
        stored = [event_id for _, event_id, _ in pending(world)]
        assert relay(world) == 0  # still down: nothing sent, nothing lost
        broker.down = False
        assert relay(world) == 0  # the failed row waits out its back-off, and the rest of its key with it
        after_backoff = LATER + shared_outbox.BACKOFF_MAX
        assert relay(world, after_backoff) == 2
        assert [p["event_id"] for _, p in world.events] == stored
        assert pending(world) == [] and relay(world, after_backoff) == 0
        world.drain()  # the relayed rollout_requested is carried out
        assert [status for _, status in world.statuses()] == ["pending", "pulling", "starting", "running"]

    def test_rows_are_not_old_enough_for_the_relay_at_once(self, world, broker):
        broker.down = True
        create(world)
        broker.down = False
        assert outbox.relay(world.rt, timedelta(minutes=5)) == 0  # the normal path's head start
        assert len(pending(world)) == 2

    def test_a_later_change_sends_the_older_events_of_its_deployment_first(self, world, broker):
        broker.down = True
        first = create(world)
        other = create(world, name="other")
        older = [event_id for _, event_id, key in pending(world) if key == first["id"]]
        broker.down = False
        logic.delete_deployment(world.rt, "t1", first["id"])  # its own two events, after the two left over
        sent = [(p["deployment_id"], kind, p.get("status")) for kind, p in world.events]
        assert [p["event_id"] for _, p in world.events][:2] == older
        assert sent == [
            (first["id"], DEPLOYMENT_STATUS_CHANGED, "pending"),
            (first["id"], ROLLOUT_REQUESTED, None),
            (first["id"], DEPLOYMENT_STATUS_CHANGED, "deleting"),
            (first["id"], ROLLOUT_REQUESTED, None),
        ]
        # Another deployment's left-overs are not this transaction's business: the relay's.
        assert [key for _, _, key in pending(world)] == [other["id"], other["id"]]

    def test_an_unreadable_outbox_after_the_commit_does_not_fail_the_call(self, world, broker, monkeypatch):
        from sqlalchemy.exc import OperationalError

        def database_away():
            raise OperationalError("SELECT", {}, Exception("database is locked"))

        real = world.rt.transaction
        created = create(world)
        monkeypatch.setattr(world.rt, "transaction", database_away)
        assert outbox.send(world.rt, [(DEPLOYMENT_STATUS_CHANGED, {"event_id": "x"})]) == 0
        assert outbox.relay(world.rt, MIN_AGE, now=LATER) == 0
        monkeypatch.setattr(world.rt, "transaction", real)
        assert logic.get_deployment(world.rt, "t1", created["id"])["status"] == "pending"


class TestRolloutEvents:
    def test_statuses_a_rollout_could_not_send_follow_in_order(self, world, broker):
        created = create(world)
        broker.down = True
        world.drain()  # pulling, starting, running: each committed, none sent
        assert [status for _, status in world.statuses(created["id"])] == ["pending"]
        broker.down = False
        relay(world)
        assert [status for _, status in world.statuses(created["id"])] == ["pending", "pulling", "starting", "running"]
        assert len({p["event_id"] for _, p in world.events}) == len(world.events)
