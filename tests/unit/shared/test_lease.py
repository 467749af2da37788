"""shared.runtime.lease.RowLease on a real table, SQLite and PostgreSQL: one holder at a time,
taken over only once silent, and a holder that was taken over cannot renew or release."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from shared.runtime.lease import RowLease

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STALE = timedelta(seconds=60)


class Base(DeclarativeBase):
    pass


class Lock(Base):
    __tablename__ = "locks"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    holder: Mapped[str | None]
    beat: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    note: Mapped[str | None]


LEASE = RowLease(Lock.id, Lock.holder, Lock.beat, STALE)


@pytest.fixture
def engine(db_url):
    engine = sa.create_engine(db_url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([Lock(id=1), Lock(id=2)])
        session.commit()
    yield engine
    engine.dispose()


def take(engine, holder, now, key=1, **kwargs):
    with Session(engine) as session, session.begin():
        return LEASE.take(session, key, holder, now, **kwargs)


def row(engine, key=1):
    with Session(engine) as session:
        found = session.get(Lock, key)
        return found.holder, found.beat, found.note


class TestTake:
    def test_a_free_row_is_taken_with_the_values_given(self, engine):
        assert take(engine, "a", NOW, note="first") is True
        holder, beat, note = row(engine)
        assert (holder, beat.replace(tzinfo=UTC) if beat.tzinfo is None else beat, note) == ("a", NOW, "first")

    def test_a_live_holder_keeps_it(self, engine):
        take(engine, "a", NOW)
        assert take(engine, "b", NOW + STALE - timedelta(seconds=1)) is False
        assert row(engine)[0] == "a"

    def test_a_silent_holder_is_taken_over(self, engine):
        take(engine, "a", NOW)
        assert take(engine, "b", NOW + STALE + timedelta(seconds=1)) is True
        assert row(engine)[0] == "b"

    def test_force_takes_it_from_a_live_holder(self, engine):
        take(engine, "a", NOW)
        assert take(engine, "b", NOW, force=True) is True
        assert row(engine)[0] == "b"

    def test_each_row_is_its_own_lease(self, engine):
        take(engine, "a", NOW, key=1)
        assert take(engine, "b", NOW, key=2) is True
        assert (row(engine, 1)[0], row(engine, 2)[0]) == ("a", "b")


class TestRenewAndRelease:
    def test_the_holder_renews_and_so_stays_live(self, engine):
        take(engine, "a", NOW)
        later = NOW + STALE
        with Session(engine) as session, session.begin():
            assert LEASE.renew(session, 1, "a", later) is True
        assert take(engine, "b", later + timedelta(seconds=30)) is False

    def test_a_holder_taken_over_can_neither_renew_nor_release(self, engine):
        take(engine, "a", NOW)
        take(engine, "b", NOW + STALE * 2)
        with Session(engine) as session, session.begin():
            assert LEASE.renew(session, 1, "a", NOW + STALE * 2) is False
            assert LEASE.release(session, 1, "a") is False
        assert row(engine)[0] == "b"

    def test_release_frees_it_for_the_next(self, engine):
        take(engine, "a", NOW)
        with Session(engine) as session, session.begin():
            assert LEASE.release(session, 1, "a", note="done") is True
        assert row(engine)[0::2] == (None, "done")
        assert take(engine, "b", NOW) is True


class TestIsLive:
    @pytest.mark.parametrize(
        "holder, beat, live",
        [
            ("a", NOW, True),
            ("a", NOW - STALE, True),
            ("a", NOW - STALE - timedelta(seconds=1), False),
            (None, NOW, False),
            ("a", None, False),
        ],
    )
    def test_live_means_held_and_heard_from_within_the_stale_limit(self, holder, beat, live):
        assert LEASE.is_live(holder, beat, NOW) is live
