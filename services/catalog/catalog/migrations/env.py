"""Alembic environment for the catalog database.

``catalog.migrate`` hands over an open connection (``config.attributes["connection"]``); run
from the ``alembic`` command line instead, the URL comes from the service's config.yml.
"""
from alembic import context

from catalog import db
from catalog.models import Base

target_metadata = Base.metadata


def run_migrations(connection):
    # batch mode lets later revisions ALTER tables on SQLite as well.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    from catalog.migrate import database_url

    engine = db.create_engine(database_url())
    try:
        with engine.begin() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run python -m catalog.migrate")
run_migrations_online()
