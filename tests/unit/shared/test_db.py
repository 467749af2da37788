"""shared.runtime.db on real SQLite: the UTC column type, engines per dialect, the provider, the migrations."""

import sys
import textwrap
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from nameko.containers import ServiceContainer, WorkerContext
from nameko.testing.utils import get_extension
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from shared.runtime import db


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=db.NAMING_CONVENTION)
    type_annotation_map = db.TYPE_ANNOTATION_MAP


class Thing(Base):
    __tablename__ = "things"
    __table_args__ = (sa.UniqueConstraint("name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(20))
    at: Mapped[datetime | None]
    data: Mapped[dict | None]


@pytest.fixture
def engine(tmp_path):
    engine = db.create_engine(f"sqlite:///{tmp_path}/test.db")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


class TestUTCDateTime:
    def test_an_aware_datetime_comes_back_as_the_same_instant_in_utc(self, engine):
        at = datetime(2026, 1, 2, 8, 4, 5, 6, tzinfo=timezone(timedelta(hours=5)))
        with Session(engine) as session:
            session.add(Thing(id=1, name="a", at=at))
            session.commit()
        with Session(engine) as session:
            loaded = session.get(Thing, 1).at
        assert loaded == at
        assert loaded.tzinfo is UTC
        assert loaded.hour == 3

    def test_it_is_stored_naive_in_utc(self, engine):
        plus_five = timezone(timedelta(hours=5))
        with Session(engine) as session:
            session.add(Thing(id=1, name="a", at=datetime(2026, 1, 2, 8, 4, 5, tzinfo=plus_five)))
            session.commit()
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT at FROM things")) == "2026-01-02 03:04:05.000000"

    def test_a_naive_datetime_is_refused(self, engine):
        with Session(engine) as session:
            session.add(Thing(id=1, name="a", at=datetime(2026, 1, 2, 3, 4, 5)))
            with pytest.raises(StatementError, match="naive datetime"):
                session.commit()

    def test_none_stays_none(self, engine):
        with Session(engine) as session:
            session.add(Thing(id=1, name="a", at=None))
            session.commit()
        with Session(engine) as session:
            assert session.get(Thing, 1).at is None


class TestTypeAnnotationsAndNames:
    def test_dicts_are_json(self, engine):
        with Session(engine) as session:
            session.add(Thing(id=1, name="a", data={"k": [1, "two"]}))
            session.commit()
        with Session(engine) as session:
            assert session.get(Thing, 1).data == {"k": [1, "two"]}

    def test_constraints_are_named_by_the_convention(self, engine):
        inspector = sa.inspect(engine)
        assert inspector.get_pk_constraint("things")["name"] == "pk_things"
        assert [c["name"] for c in inspector.get_unique_constraints("things")] == ["uq_things_name"]


class TestEngines:
    def test_sqlite_gets_a_short_busy_timeout(self):
        assert db.engine_options("sqlite:///var/x.db") == {"connect_args": {"timeout": 5}}

    @pytest.mark.parametrize("url", ["postgresql://u:p@127.0.0.1:5432/x", "postgresql+psycopg2://u@db/x"])
    def test_postgresql_gets_pre_ping(self, url):
        assert db.engine_options(url) == {"pool_pre_ping": True}

    def test_a_sqlite_connection_has_wal_foreign_keys_and_the_busy_timeout(self, engine):
        with engine.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert (pragma("journal_mode"), pragma("foreign_keys"), pragma("busy_timeout")) == ("wal", 1, 5000)

    def test_the_sqlite_file_folder_is_created(self, tmp_path):
        engine = db.create_engine(sa.engine.make_url(f"sqlite:///{tmp_path}/var/nested/x.db"))
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        finally:
            engine.dispose()
        assert (tmp_path / "var" / "nested" / "x.db").is_file()

    def test_in_memory_sqlite_makes_no_folder(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        engine = db.create_engine("sqlite://")
        try:
            with engine.connect() as connection:
                assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        finally:
            engine.dispose()
        assert list(tmp_path.iterdir()) == []

    def test_a_postgresql_engine_pre_pings(self):
        engine = db.create_engine("postgresql://u:p@127.0.0.1:5432/x")  # not connected to
        try:
            assert engine.pool._pre_ping is True
        finally:
            engine.dispose()


class Service:
    name = "things"
    database = db.Database(Base)


class TestDatabaseProvider:
    def test_workers_get_sessions_on_the_tuned_engine(self, tmp_path):
        url = f"sqlite:///{tmp_path}/var/things.db"  # folder made by create_engine
        # AMQP_URI is only read (by inspection of the extensions), never connected to.
        container = ServiceContainer(Service, {"AMQP_URI": "memory://", "DB_URIS": {"things:Base": url}})
        provider = get_extension(container, db.Database)
        provider.setup()
        try:
            Base.metadata.create_all(provider.engine)
            worker_ctx = WorkerContext(container, None, None)
            wrapper = provider.get_dependency(worker_ctx)
            with wrapper.get_session() as session:  # commits on exit
                session.add(Thing(id=1, name="a", at=datetime(2026, 1, 2, tzinfo=UTC)))
            with wrapper.get_session() as session:
                assert session.get(Thing, 1).at == datetime(2026, 1, 2, tzinfo=UTC)
                assert session.connection().exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            provider.worker_teardown(worker_ctx)
        finally:
            provider.engine.dispose()

    def test_it_is_one_class(self):
        from shared.runtime.db import Database

        assert Database is db.Database
        assert (Database.__module__, Database.__qualname__) == ("shared.runtime.db", "Database")

    def test_other_names_are_still_missing(self):
        with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
            db.Nothing  # noqa: B018


MIGRATION = """\
revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

from alembic import op
import sqlalchemy as sa


def upgrade():
    op.create_table("things", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade():
    op.drop_table("things")
"""

ENV = """\
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
"""


@pytest.fixture
def migrations(tmp_path, monkeypatch):
    """A service package of our own (``things``) with one migration, and its config.yml."""
    package = tmp_path / "src" / "things"
    (package / "migrations" / "versions").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "migrations" / "env.py").write_text(ENV)
    (package / "migrations" / "versions" / "0001_things.py").write_text(MIGRATION)
    config = tmp_path / "config.yml"
    config.write_text(
        textwrap.dedent(f"""\
        AMQP_URI: ${{AMQP_URI:pyamqp://guest:guest@localhost}}
        DB_URIS:
          "things:Base": ${{THINGS_DB_URL:sqlite:///{tmp_path}/var/things.db}}
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.delenv("THINGS_DB_URL", raising=False)
    yield db.Migrations("things", "things:Base", str(config))
    sys.modules.pop("things", None)


def tables_and_version(url):
    engine = db.create_engine(url)
    try:
        with engine.connect() as connection:
            return (
                sorted(sa.inspect(connection).get_table_names()),
                connection.scalar(sa.text("SELECT version_num FROM alembic_version")),
            )
    finally:
        engine.dispose()


class TestMigrations:
    def test_the_url_is_the_default_in_the_service_config(self, migrations, tmp_path):
        assert migrations.database_url() == f"sqlite:///{tmp_path}/var/things.db"

    def test_the_environment_overrides_the_config(self, migrations, monkeypatch):
        monkeypatch.setenv("THINGS_DB_URL", "postgresql://u:secret@db/things")
        assert migrations.database_url() == "postgresql://u:secret@db/things"

    def test_another_config_file_may_be_given(self, migrations, tmp_path):
        other = tmp_path / "other.yml"
        other.write_text('DB_URIS:\n  "things:Base": ${OTHER_URL:sqlite:///other.db}\nMAX: ${MAX:5}\n')
        assert migrations.database_url(str(other)) == "sqlite:///other.db"
        assert db.load_config(str(other))["MAX"] == 5  # typed as YAML, like nameko run

    def test_upgrade_applies_the_service_migrations(self, migrations, tmp_path):
        url = f"sqlite:///{tmp_path}/upgraded.db"
        migrations.upgrade(url)
        assert tables_and_version(url) == (["alembic_version", "things"], "0001")

    def test_the_command_migrates_the_configured_database_and_is_repeatable(self, migrations, tmp_path):
        for _ in range(2):
            migrations.main([])
        assert tables_and_version(f"sqlite:///{tmp_path}/var/things.db") == (["alembic_version", "things"], "0001")

    def test_the_command_names_the_database_without_its_password(self, migrations, monkeypatch, caplog):
        monkeypatch.setattr(migrations, "upgrade", lambda url, revision: None)  # no server to reach
        monkeypatch.setenv("THINGS_DB_URL", "postgresql://u:secret@db/things")
        with caplog.at_level("INFO", logger="things.migrate"):
            migrations.main([])
        assert caplog.messages == ["migrating postgresql://u:***@db/things"]

    def test_the_command_takes_a_revision(self, migrations, tmp_path):
        migrations.main(["--revision", "base"])
        assert tables_and_version(f"sqlite:///{tmp_path}/var/things.db") == (["alembic_version"], None)
