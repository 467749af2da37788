"""shared.runtime.pagination: the list answer, and pages of a real (SQLite) query."""

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, joinedload, mapped_column, relationship

from shared.runtime.clock import utcnow
from shared.runtime.pagination import listing, page_of


class Base(DeclarativeBase):
    pass


class Parent(Base):
    __tablename__ = "parents"
    id: Mapped[int] = mapped_column(primary_key=True)
    children: Mapped[list["Child"]] = relationship()


class Child(Base):
    __tablename__ = "children"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(sa.ForeignKey("parents.id"))


@pytest.fixture
def session():
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for i in range(1, 8):
            session.add(Parent(id=i, children=[Child(), Child(), Child()]))
        session.commit()
        yield session
    engine.dispose()


class TestListing:
    def test_has_the_contracts_four_keys(self):
        assert listing(("a", "b"), 12, 2, 2) == {"items": ["a", "b"], "total": 12, "page": 2, "page_size": 2}


class TestPageOf:
    def test_pages_follow_the_order_and_count_every_row(self, session):
        stmt = sa.select(Parent).order_by(Parent.id.desc())
        pages = [page_of(session, stmt, page, 3) for page in (1, 2, 3, 4)]
        assert [[p.id for p in rows] for rows, _ in pages] == [[7, 6, 5], [4, 3, 2], [1], []]
        assert {total for _, total in pages} == {7}

    def test_an_eager_loaded_collection_gives_each_entity_once(self, session):
        stmt = sa.select(Parent).options(joinedload(Parent.children)).order_by(Parent.id)
        rows, total = page_of(session, stmt, 1, 5)
        assert [p.id for p in rows] == [1, 2, 3, 4, 5]
        assert total == 7
        assert [len(p.children) for p in rows] == [3] * 5

    def test_an_empty_query_has_total_zero(self, session):
        assert page_of(session, sa.select(Parent).where(Parent.id > 100).order_by(Parent.id), 1, 10) == ([], 0)


class TestClock:
    def test_utcnow_is_aware_utc(self):
        now = utcnow()
        assert now.utcoffset() is not None and now.utcoffset().total_seconds() == 0
