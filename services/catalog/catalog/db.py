"""Engines tuned per database; used by the service's provider, the migrations and the tests."""
import os

import sqlalchemy as sa
from sqlalchemy.engine import make_url

# How long an SQLite write waits for another connection's lock before "database is locked".
# It blocks the whole (eventlet) process while it waits, so it stays short; the handlers'
# retries take over after it.
SQLITE_BUSY_TIMEOUT_SECONDS = 5


def _sqlite_on_connect(dbapi_connection, _record):
    cursor = dbapi_connection.cursor()
    # WAL lets readers (RPC) run while a worker writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def engine_options(url):
    """Keyword arguments for ``create_engine`` that suit the database behind ``url``."""
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
    # A pooled connection may have been closed by a database restart: check before use.
    return {"pool_pre_ping": True}


def configure_engine(engine):
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def create_engine(url):
    ensure_sqlite_directory(url)
    return configure_engine(sa.create_engine(url, **engine_options(url)))


def ensure_sqlite_directory(url):
    """SQLite creates the file but not its folder (``var/`` on a fresh checkout)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = os.path.dirname(os.path.abspath(parsed.database))
        os.makedirs(folder, exist_ok=True)
