"""Alembic environment for the auth database.

``auth.migrate`` hands over an open connection; from the ``alembic`` command line the URL
comes from the service's config.yml.
"""
from alembic import context

from auth import db
from auth.models import Base


def run(connection):
    # Batch mode lets later revisions ALTER tables on SQLite too.
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run python -m auth.migrate")
if context.config.attributes.get("connection") is not None:
    run(context.config.attributes["connection"])
else:
    from auth.migrate import DB_URI_KEY, load_config

    engine = db.create_engine(load_config()["DB_URIS"][DB_URI_KEY])
    try:
        with engine.begin() as connection:
            run(connection)
    finally:
        engine.dispose()
