"""Bring the auth database to the newest schema: ``python -m auth.migrate``.

The URL is the service's own (``DB_URIS["auth:Base"]`` in config.yml, read with nameko's
``${VAR:default}`` loader), so ``AUTH_DB_URL`` moves the service and its migrations together.
The work is ``shared.runtime.db.Migrations``'.
"""

import os

from shared.runtime.db import Migrations

DB_URI_KEY = "auth:Base"
DEFAULT_CONFIG = os.path.join("services", "auth", "config.yml")

migrations = Migrations("auth", DB_URI_KEY, DEFAULT_CONFIG)
# The names the migrations' env.py, the tests and scripts/services.sh use.
load_config = migrations.load_config
database_url = migrations.database_url
alembic_config = migrations.alembic_config
upgrade = migrations.upgrade
main = migrations.main

if __name__ == "__main__":
    main()
