"""Database engines for the deployer, tuned per dialect (the service, its migrations, the tests).

The same choices as the catalog's (kept apart because services never import each other):
SQLite gets WAL, foreign keys and a short busy timeout (a lock wait blocks the whole eventlet
process); PostgreSQL gets pre-ping so a restarted server's dead connections are replaced.
"""
import os

import sqlalchemy as sa
from sqlalchemy.engine import make_url

SQLITE_BUSY_SECONDS = 5


def _on_sqlite_connect(connection, _record):
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(url):
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)
    if parsed.database not in (None, "", ":memory:"):
        # SQLite makes the file, not its folder (var/ on a fresh checkout).
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    return engine
