"""Bring the catalog database to the newest schema: ``python -m catalog.migrate``.

The database URL comes from the service's own ``config.yml`` (``DB_URIS["catalog:Base"]``), read
with nameko's ``${VAR:default}`` loader, so the service and its migrations share one set of
defaults: ``CATALOG_DB_URL`` overrides both. The work is ``shared.runtime.db.Migrations``'.
"""

import os

from shared.runtime.db import Migrations

DB_URI_KEY = "catalog:Base"
DEFAULT_CONFIG = os.path.join("services", "catalog", "config.yml")

migrations = Migrations("catalog", DB_URI_KEY, DEFAULT_CONFIG)
# The names the migrations' env.py, the tests and scripts/services.sh use.
load_config = migrations.load_config
database_url = migrations.database_url
alembic_config = migrations.alembic_config
upgrade = migrations.upgrade
main = migrations.main

if __name__ == "__main__":
    main()
