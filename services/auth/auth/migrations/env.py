"""Alembic environment for the auth database: ``shared.runtime.db.Migrations.run_env``."""

from auth.migrate import migrations
from auth.models import Base

migrations.run_env(Base.metadata)
