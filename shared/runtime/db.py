"""Database plumbing for the services that own a database (catalog, deployer), written once.

* ``UTCDateTime``, ``TYPE_ANNOTATION_MAP`` and ``NAMING_CONVENTION`` for each service's
  declarative ``Base``: datetimes are stored as naive UTC (the one form SQLite and PostgreSQL
  agree on) and always come back aware in UTC, so the rest of the code never meets a naive one.
* ``create_engine``: an engine tuned for its database, for the service's provider, its
  migrations and the tests alike.
* ``Database``: nameko-sqlalchemy's provider on such an engine.
* ``Migrations``: ``python -m <service>.migrate``, Alembic on the URL in the service's config.yml.

The tables, the ``Base`` they hang on and the Alembic scripts stay in each service.
"""

import argparse
import functools
import logging
import os
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
import yaml
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

# Constraint names that Alembic (and batch mode on SQLite) can refer to later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# How long an SQLite write waits for another connection's lock before "database is locked".
# It blocks the whole (eventlet) process while it waits, so it stays short; the handlers'
# retries take over after it.
SQLITE_BUSY_TIMEOUT_SECONDS = 5


class UTCDateTime(TypeDecorator):
    """An aware datetime, stored as naive UTC; a naive one is refused rather than guessed at."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; only aware datetimes are stored (in UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# A declarative Base's ``type_annotation_map``: ``Mapped[datetime]`` is UTC, dicts and lists JSON.
TYPE_ANNOTATION_MAP = {datetime: UTCDateTime(), dict: sa.JSON(), list: sa.JSON()}


# -- engines -----------------------------------------------------------------------------------


def engine_options(url: str) -> dict[str, Any]:
    """Keyword arguments for ``sqlalchemy.create_engine`` that suit the database behind ``url``."""
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
    # A pooled connection may have been closed by a database restart: check before use.
    return {"pool_pre_ping": True}


def create_engine(url: str) -> sa.engine.Engine:
    """An engine for ``url`` (a string or a ``URL``) tuned for its database; see ``engine_options``."""
    _ensure_sqlite_directory(url)
    engine = sa.create_engine(url, **engine_options(url))
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (RPC) run while a worker writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _ensure_sqlite_directory(url: str) -> None:
    """SQLite creates the file but not its folder (``var/`` on a fresh checkout)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)


# -- the nameko provider -----------------------------------------------------------------------


def __getattr__(name: str) -> Any:
    # ``Database`` subclasses a nameko extension, and importing nameko's extensions imports
    # eventlet (which prints its banner). The models, the migrations and the domain logic import
    # this module for the column type and the engine only, so the provider is built on first use.
    if name == "Database":
        return _database_provider()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _database_provider() -> type:
    from nameko_sqlalchemy import Database as NamekoDatabase
    from nameko_sqlalchemy.database import Session
    from sqlalchemy.orm import sessionmaker

    class Database(NamekoDatabase):
        """nameko-sqlalchemy's ``Database`` on an engine from ``create_engine``.

        ``Database`` takes engine options only at class definition, before the URL is known (and
        1.5.0 ignores ``DB_ENGINE_OPTIONS``); SQLite needs a busy timeout and WAL, PostgreSQL
        pre-ping, so the engine is rebuilt here once the URL is read.
        """

        engine: sa.engine.Engine

        def setup(self) -> None:
            super().setup()
            self.engine.dispose()
            self.engine = create_engine(self.db_uri)
            self.Session = sessionmaker(bind=self.engine, class_=Session, **self.session_options)

    Database.__module__, Database.__qualname__ = __name__, "Database"
    return Database


# -- migrations --------------------------------------------------------------------------------


def load_config(path: str) -> dict[str, Any]:
    """A service's config.yml with the environment applied (``${VAR:default}``), as ``nameko run`` reads it."""
    from nameko.cli.main import setup_yaml_parser  # imports pkg_resources: only when needed

    setup_yaml_parser()
    with open(path) as f:
        return yaml.safe_load(f)


class Migrations:
    """A service's Alembic scripts (``<package>/migrations``) and the database they apply to.

    The URL is the service's own ``DB_URIS[db_uri_key]`` from its config.yml, read as
    ``nameko run`` reads it, so the service and its migrations share one set of defaults and one
    environment variable moves both.
    """

    def __init__(self, package: str, db_uri_key: str, default_config: str) -> None:
        self.package = package
        self.db_uri_key = db_uri_key
        self.default_config = default_config

    def load_config(self, path: str | None = None) -> dict[str, Any]:
        return load_config(self.default_config if path is None else path)

    def database_url(self, path: str | None = None) -> str:
        return self.load_config(path)["DB_URIS"][self.db_uri_key]

    def alembic_config(self) -> Any:
        config = Config()
        config.set_main_option("script_location", str(resources.files(self.package).joinpath("migrations")))
        return config

    def upgrade(self, url: str, revision: str = "head") -> None:
        """Migrate the database at ``url`` (on an engine configured as the service's)."""
        engine = create_engine(url)
        try:
            with engine.begin() as connection:
                config = self.alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        finally:
            engine.dispose()

    def run_env(self, metadata: sa.MetaData) -> None:
        """The body of every service's ``migrations/env.py`` (``context`` is Alembic's, set up
        by whoever runs the scripts). ``upgrade`` hands over an open connection; from the
        ``alembic`` command line the URL comes from the service's config.yml."""
        from alembic import context

        def run(connection: Any) -> None:
            # Batch mode lets later revisions ALTER tables on SQLite too.
            context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
            with context.begin_transaction():
                context.run_migrations()

        if context.is_offline_mode():
            raise SystemExit(f"offline (--sql) migrations are not supported; run python -m {self.package}.migrate")
        connection = context.config.attributes.get("connection")
        if connection is not None:
            run(connection)
            return
        engine = create_engine(self.database_url())
        try:
            with engine.begin() as connection:
                run(connection)
        finally:
            engine.dispose()

    def main(self, argv: list[str] | None = None) -> None:
        """The ``python -m <service>.migrate [--config PATH] [--revision REV]`` command."""
        parser = argparse.ArgumentParser(description=f"Migrate the {self.package} database to the newest schema.")
        parser.add_argument(
            "--config", default=self.default_config, help="the service's config.yml (default: %(default)s)"
        )
        parser.add_argument("--revision", default="head", help="target revision (default: %(default)s)")
        args = parser.parse_args(argv)
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        url = self.database_url(args.config)
        logging.getLogger(f"{self.package}.migrate").info(
            "migrating %s", make_url(url).render_as_string(hide_password=True)
        )
        self.upgrade(url, args.revision)
