"""shared.runtime.uow.Transaction: one transaction per try, races retried a bounded number of times,
anything else to the caller at once."""

from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from shared.runtime.uow import Transaction


class Base(DeclarativeBase):
    pass


class Row(Base):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)


@pytest.fixture
def engine(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path}/uow.db")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def sessions(engine):
    @contextmanager
    def session():
        with Session(engine) as s, s.begin():
            yield s

    return session


def rows(engine):
    with Session(engine) as s:
        return sorted(s.scalars(sa.select(Row.id)))


class TestTransaction:
    def test_the_work_commits_and_its_result_is_returned(self, engine):
        pauses = []
        assert Transaction(sessions(engine), sleep=pauses.append).run(lambda s: s.add(Row(id=1)) or "done") == "done"
        assert (rows(engine), pauses) == ([1], [])

    def test_a_lost_race_is_rolled_back_and_tried_again(self, engine):
        tries, pauses = [], []

        def work(session):
            tries.append(len(tries) + 1)
            session.add(Row(id=len(tries)))  # the first try's id is taken already: a unique-key race
            session.flush()
            return len(tries)

        with Session(engine) as s, s.begin():
            s.add(Row(id=1))
        assert Transaction(sessions(engine), sleep=pauses.append).run(work) == 2
        assert (rows(engine), tries, len(pauses)) == ([1, 2], [1, 2], 1)
        assert 0.02 <= pauses[0] <= 0.1

    def test_the_last_race_goes_to_the_caller_after_the_bounded_tries(self, engine):
        tries, pauses = [], []

        def work(session):
            tries.append(1)
            session.add(Row(id=1))
            session.flush()

        with Session(engine) as s, s.begin():
            s.add(Row(id=1))
        with pytest.raises(IntegrityError):
            Transaction(sessions(engine), attempts=3, sleep=pauses.append).run(work)
        assert (len(tries), len(pauses), rows(engine)) == (3, 2, [1])
        assert 0.02 <= pauses[0] <= 0.1 and 0.04 <= pauses[1] <= 0.2  # jittered, growing with the attempt

    def test_any_other_error_is_not_retried_and_nothing_commits(self, engine):
        tries = []

        def work(session):
            tries.append(1)
            session.add(Row(id=7))
            raise ValueError("a bug")

        with pytest.raises(ValueError, match="a bug"):
            Transaction(sessions(engine), sleep=lambda _: None).run(work)
        assert (len(tries), rows(engine)) == (1, [])
