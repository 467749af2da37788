"""The migration builds exactly the models' schema, and ``python -m deployer.migrate`` finds the
URL through the service's config.yml (``DEPLOYER_DB_URL``)."""

import os
import subprocess
import sys

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from deployer.models import Base
from shared.runtime import db
from tests.e2e.stack import ROOT


class TestMigration:
    def test_migrate_command_builds_the_models_schema_repeatably(self, db_url):
        env = dict(os.environ, DEPLOYER_DB_URL=db_url)
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-m", "deployer.migrate"],
                cwd=ROOT,
                env=env,
                timeout=60,
                capture_output=True,
                text=True,
            )
            assert done.returncode == 0, done.stderr
        engine = db.create_engine(db_url)
        try:
            with engine.connect() as connection:
                assert connection.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0006"
                assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
                indexes = {i["name"]: i for i in sa.inspect(connection).get_indexes("deployments")}
                assert indexes["uq_deployments_tenant_id_name_live"]["unique"]
        finally:
            engine.dispose()

    def test_a_deleted_deployments_name_is_free_again(self, db_url):
        """The partial unique index: one live deployment per tenant and name, any number deleted."""
        subprocess.run(
            [sys.executable, "-m", "deployer.migrate"],
            cwd=ROOT,
            timeout=60,
            check=True,
            capture_output=True,
            env=dict(os.environ, DEPLOYER_DB_URL=db_url),
        )
        engine = db.create_engine(db_url)
        row = (
            "INSERT INTO deployments (id, tenant_id, name, pool, replicas, revision, status, auto_deploy, "
            "created_at, updated_at, deleted_at) VALUES (:id, 't1', 'web', 'default', 1, 1, 'deleted', '{}', "
            "'2026-01-01', '2026-01-01', :deleted)"
        )
        try:
            with engine.begin() as connection:
                connection.execute(sa.text(row), {"id": "a", "deleted": "2026-01-02"})
                connection.execute(sa.text(row), {"id": "b", "deleted": "2026-01-03"})
                connection.execute(sa.text(row), {"id": "c", "deleted": None})
            try:
                with engine.begin() as connection:
                    connection.execute(sa.text(row), {"id": "d", "deleted": None})
            except sa.exc.IntegrityError:
                pass
            else:
                raise AssertionError("a second live deployment named 'web' was accepted")
        finally:
            engine.dispose()
