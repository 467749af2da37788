"""The auth database on SQLite and PostgreSQL: the migration builds the models' schema,
`python -m auth.migrate` finds the URL through config.yml, and logins (with their failure
counting upsert) behave the same on both."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session

from auth import accounts, logins
from auth.exceptions import TooManyAttempts, Unauthorized
from auth.migrate import alembic_config, upgrade
from auth.models import Base, LoginFailure
from auth.passwords import Hasher
from auth.settings import LoginPolicy
from shared.runtime import db
from tests.integration.auth.helpers import ROOT
from tests.support import downgrade

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# The catalogue's robot as revision 0003 stored it, before platform robots had namespaces.
CATALOG_ROBOT_0003 = {
    "id": "r1",
    "name": "_platform+catalog",
    "kind": "robot",
    "tenant_id": None,
    "is_admin": False,
    "actions": ["pull", "delete"],
    "catalog": True,
    "description": "",
    "password_hash": "x",
    "credential_generation": 1,
    "created_at": T0.replace(tzinfo=None),
    "updated_at": T0.replace(tzinfo=None),
}


@pytest.fixture
def auth_db_url(db_url):
    upgrade(db_url)
    return db_url


class TestMigration:
    def test_schema_matches_the_models(self, auth_db_url):
        engine = db.create_engine(auth_db_url)
        try:
            with engine.connect() as connection:
                assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        finally:
            engine.dispose()

    def test_migrate_command_reads_the_url_from_config_and_is_repeatable(self, db_url):
        env = dict(os.environ, AUTH_DB_URL=db_url)
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-m", "auth.migrate"], cwd=ROOT, env=env, timeout=60, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
        engine = db.create_engine(db_url)
        try:
            with engine.connect() as connection:
                assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0004"
                assert set(sa.inspect(connection).get_table_names()) == {
                    "alembic_version",
                    "tenants",
                    "accounts",
                    "login_failures",
                    "audit_log",
                    "ended_sessions",
                }
        finally:
            engine.dispose()

    def test_0004_leaves_every_platform_robot_unrestricted_and_downgrades(self, db_url):
        upgrade(db_url, "0003")
        engine = db.create_engine(db_url)
        try:
            with engine.begin() as connection:  # the 0003 table, as it is on disk: not the model
                table = sa.Table("accounts", sa.MetaData(), autoload_with=connection)
                connection.execute(table.insert(), [dict(CATALOG_ROBOT_0003)])
            upgrade(db_url)
            with Session(engine) as session:
                robot = accounts.get_account(session, "_platform+catalog")
                assert (robot.actions, robot.catalog, robot.namespaces) == (["pull", "delete"], True, None)
                assert logins.principal_of(robot).namespaces is None  # every namespace, as before
                robot.namespaces = ["library"]
                session.commit()
            downgrade(engine, alembic_config, "0003")
            with engine.connect() as connection:
                columns = {c["name"] for c in sa.inspect(connection).get_columns("accounts")}
                assert "namespaces" not in columns and "catalog" in columns
                assert connection.scalar(sa.text("SELECT name FROM accounts")) == "_platform+catalog"
        finally:
            engine.dispose()

    def test_downgrade_removes_every_table(self, auth_db_url):
        engine = db.create_engine(auth_db_url)
        try:
            downgrade(engine, alembic_config, "base")
            with engine.connect() as connection:
                assert set(sa.inspect(connection).get_table_names()) == {"alembic_version"}
        finally:
            engine.dispose()


class TestLoginsOnEitherDatabase:
    def test_failures_are_counted_and_slowed_down_and_a_success_clears_them(self, auth_db_url):
        hasher = Hasher(time_cost=1, memory_cost=8192, parallelism=1)
        policy = LoginPolicy(free_failures=2, max_delay=4, window=900)
        engine = db.create_engine(auth_db_url)
        try:
            with Session(engine) as session:
                accounts.create_tenant(session, "acme", "", T0)
                accounts.create_account(session, hasher, "alice", "alice-secret", "acme", False, False, "", T0)
                session.commit()

                def attempt(password, seconds):
                    outcome = logins.authenticate(
                        session, hasher, None, policy, "alice", password, T0 + timedelta(seconds=seconds)
                    )
                    session.commit()
                    return type(outcome.error)

                assert [attempt("wrong", s) for s in (0, 1, 2)] == [Unauthorized] * 3
                name_key, address_key = logins.failure_keys("", "alice")
                counted = sa.select(LoginFailure.failures, LoginFailure.blocked_until)
                assert session.execute(counted.where(LoginFailure.name == name_key)).one() == (
                    3,
                    T0 + timedelta(seconds=3),
                )
                # The address counts the same failures, within its own (larger) allowance.
                assert session.execute(counted.where(LoginFailure.name == address_key)).one() == (3, None)
                assert attempt("alice-secret", 2.5) is TooManyAttempts
                assert attempt("alice-secret", 3) is type(None)
                # A success clears the name's count at that address; the address's stays counted.
                assert session.scalars(sa.select(LoginFailure.name)).all() == [address_key]
        finally:
            engine.dispose()
