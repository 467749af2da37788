"""The migration builds exactly the models' schema, and `python -m catalog.migrate` finds the URL
through the service's config.yml."""

import os
import subprocess
import sys

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from catalog.migrate import alembic_config, upgrade
from catalog.models import Base
from shared.runtime import db

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
            done = subprocess.run(
                [sys.executable, "-m", "catalog.migrate"], cwd=ROOT, env=env, timeout=60, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
        engine = db.create_engine(db_url)
        try:
            with engine.connect() as connection:
                assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0006"
                assert set(sa.inspect(connection).get_table_names()) >= {
                    "repositories",
                    "manifests",
                    "tags",
                    "tag_history",
                    "processed_events",
                    "set_aside_events",
                    "outbox",
                    "resync_passes",
                    "resync_lock",
                    "resync_missing",
                    "dead_letters",
                    "library_sources",
                    "library_syncs",
                    "library_sync_items",
                    "library_sync_lock",
                    "library_mirrored_tags",
                }
                # the second run did not add a second lock row
                assert connection.execute(sa.text("SELECT id, pass_id FROM resync_lock")).all() == [(1, None)]
                assert connection.execute(sa.text("SELECT id, sync_id FROM library_sync_lock")).all() == [(1, None)]
        finally:
            engine.dispose()

    def test_0002_adds_the_outbox_to_a_0001_database_with_data_and_downgrades(self, db_url):
        upgrade(db_url, "0001")
        engine = db.create_engine(db_url)
        try:
            with engine.begin() as connection:
                connection.execute(
                    sa.text(
                        "INSERT INTO repositories (namespace, name, is_public, is_ownbase, description, overview, "
                        "created_at, updated_at) VALUES ('t1', 'app', false, false, '', '', "
                        "'2026-01-02 03:04:05', '2026-01-02 03:04:05')"
                    )
                )
            upgrade(db_url)
            with engine.connect() as connection:
                assert connection.scalar(sa.text("SELECT count(*) FROM repositories")) == 1
                assert connection.scalar(sa.text("SELECT count(*) FROM outbox")) == 0

            with engine.begin() as connection:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.downgrade(config, "0001")
            with engine.connect() as connection:
                assert "outbox" not in sa.inspect(connection).get_table_names()
                assert connection.scalar(sa.text("SELECT count(*) FROM repositories")) == 1
        finally:
            engine.dispose()

    def test_0003_adds_reconciliation_with_its_free_lock_and_downgrades(self, db_url):
        upgrade(db_url, "0002")
        upgrade(db_url)
        engine = db.create_engine(db_url)
        try:
            with engine.connect() as connection:
                assert connection.execute(sa.text("SELECT id, pass_id, heartbeat_at FROM resync_lock")).all() == [
                    (1, None, None)
                ]
            with engine.begin() as connection:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.downgrade(config, "0002")
            with engine.connect() as connection:
                assert not {"resync_passes", "resync_lock", "resync_missing"} & set(
                    sa.inspect(connection).get_table_names()
                )
        finally:
            engine.dispose()
