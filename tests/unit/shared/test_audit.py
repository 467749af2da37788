"""shared.runtime.audit: one row per state-changing call, from what the worker knew, and never an
effect on the call's own answer."""

import types

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Session

from shared.contracts.errors import Forbidden, InvalidRequest, NotFound
from shared.runtime import audit
from shared.runtime.audit import AuditRecordMixin, AuditTrail, target_from
from shared.runtime.db import create_engine
from shared.runtime.identity import BROKER_USER_KEY, CallerContext


class Base(DeclarativeBase):
    pass


class Record(AuditRecordMixin, Base):
    pass


class FakeDatabase:
    def __init__(self, engine):
        self.engine = engine

    def get_session(self, close_on_exit=True):
        return Session(self.engine)


class Service:
    def delete_tag(self, tenant_id, repository, tag, force=False):
        raise AssertionError("never called: the trail reads the call, it does not make it")

    def list_tags(self, tenant_id, repository):
        raise AssertionError


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/audit.db")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def finish(engine, method, args, context, error=None):
    service = Service()
    service.db = FakeDatabase(engine)
    service.caller = CallerContext(context, None)
    trail = AuditTrail(Record, {"delete_tag": target_from("repository", "tag")})
    worker_ctx = types.SimpleNamespace(
        entrypoint=types.SimpleNamespace(method_name=method),
        service=service,
        service_name="catalog",
        args=args,
        kwargs={},
        context_data=context,
    )
    exc_info = (type(error), error, None) if error else None
    trail.worker_result(worker_ctx, None, exc_info)
    with Session(engine) as session:
        return [audit.dump(r) for r in session.scalars(sa.select(Record))]


def test_a_call_is_recorded_once_with_actor_tenant_target_and_outcome(engine):
    [row] = finish(engine, "delete_tag", ("t1", "t1/app", "v1"), {BROKER_USER_KEY: "imagehub-platform"})
    assert {
        k: row[k] for k in ("action", "actor", "broker_user", "on_behalf_of", "tenant_id", "target", "outcome")
    } == {
        "action": "catalog.delete_tag",
        "actor": "platform:platform",
        "broker_user": "imagehub-platform",
        "on_behalf_of": None,
        "tenant_id": "t1",
        "target": "t1/app:v1",
        "outcome": "ok",
    }


def test_a_refused_call_is_recorded_with_its_error_and_an_unverified_caller_as_such(engine):
    rows = finish(engine, "delete_tag", ("t2", "t2/app", "v1"), {BROKER_USER_KEY: "imagehub-gateway"}, Forbidden("no"))
    assert [(r["actor"], r["outcome"], r["detail"]) for r in rows] == [
        ("unverified:imagehub-gateway", "Forbidden", "no")
    ]


def test_reads_are_not_recorded(engine):
    assert finish(engine, "list_tags", ("t1", "t1/app"), {BROKER_USER_KEY: "imagehub-platform"}) == []


def test_what_no_database_stores_is_escaped_not_a_crash(engine):
    rows = finish(
        engine, "delete_tag", ("t\x00\ud800", "x/y", "v"), {BROKER_USER_KEY: "imagehub-platform"}, NotFound("x")
    )
    assert rows[0]["tenant_id"] == "t\\x00\\ud800"


def test_a_failing_record_never_reaches_the_caller(engine, caplog):
    Base.metadata.drop_all(engine)  # no table: the insert fails
    with pytest.raises(sa.exc.OperationalError):  # the table is gone: reading it back fails too
        finish(engine, "delete_tag", ("t1", "t1/app", "v1"), {BROKER_USER_KEY: "imagehub-platform"})
    assert "audit: could not record catalog.delete_tag" in caplog.text


def test_the_cursor_pages_through_a_growing_trail_without_skipping_or_repeating(engine):
    platform = CallerContext({BROKER_USER_KEY: "imagehub-platform"}, None)

    def add(n):
        with Session(engine) as session:
            session.add(
                audit.new_record(Record, action="catalog.delete_tag", actor="a", tenant_id="t1", target=n, outcome="ok")
            )
            session.commit()

    def listed(**kw):
        with Session(engine) as session:
            return audit.list_audit(session, Record, platform, tenant_id="t1", page_size=2, **kw)

    for n in range(5):
        add(f"r{n}")
    first = listed()
    assert ([r["target"] for r in first["items"]], first["total"]) == (["r4", "r3"], 5)
    add("r5")  # a page by number would now shift; the cursor does not
    second = listed(cursor=first["next_cursor"])
    third = listed(cursor=second["next_cursor"])
    assert [r["target"] for r in second["items"] + third["items"]] == ["r2", "r1", "r0"]
    assert (second["total"], third["next_cursor"]) == (None, None)


@pytest.mark.parametrize("cursor", ["", "garbage!", "eyJpZCI6ICIxIn0", "e30", "W10", "x" * 600])
def test_a_cursor_not_given_by_the_service_is_invalid_request(engine, cursor):
    platform = CallerContext({BROKER_USER_KEY: "imagehub-platform"}, None)
    with Session(engine) as session, pytest.raises(InvalidRequest, match="cursor"):
        audit.list_audit(session, Record, platform, tenant_id="t1", cursor=cursor)
