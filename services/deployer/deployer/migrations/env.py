"""Alembic environment for the deployer database: ``shared.runtime.db.Migrations.run_env``."""

from deployer.migrate import migrations
from deployer.models import Base

migrations.run_env(Base.metadata)
