"""The migration builds exactly the models' schema, and `python -m catalog.migrate` finds the URL
through the service's config.yml."""
import os
import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from catalog import db
from catalog.models import Base

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


class TestMigration:
    def test_schema_matches_the_models(self, catalog_db_url):
        engine = db.create_engine(catalog_db_url)
        try:
            with engine.connect() as connection:
                assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        finally:
            engine.dispose()

    def test_migrate_command_reads_the_url_from_config_and_is_repeatable(self, db_url):
        env = dict(os.environ, CATALOG_DB_URL=db_url)
        for _ in range(2):
            done = subprocess.run([sys.executable, "-m", "catalog.migrate"], cwd=ROOT, env=env, timeout=60,
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
        engine = db.create_engine(db_url)
        try:
            with engine.connect() as connection:
                assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0001"
                assert set(sa.inspect(connection).get_table_names()) >= {
                    "repositories", "manifests", "tags", "tag_history", "processed_events", "set_aside_events"}
        finally:
            engine.dispose()

