"""Alembic environment for the catalog database: ``shared.runtime.db.Migrations.run_env``."""

from catalog.migrate import migrations
from catalog.models import Base

migrations.run_env(Base.metadata)
