"""Bring the catalog database to the newest schema: ``python -m catalog.migrate``.

The database URL comes from the service's own ``config.yml`` (``DB_URIS["catalog:Base"]``), read
with nameko's ``${VAR:default}`` loader, so the service and its migrations share one set of
defaults: ``CATALOG_DB_URL`` overrides both.
"""
import argparse
import logging
import os
from importlib import resources

import yaml
from alembic import command
from alembic.config import Config

from catalog import db

DB_URI_KEY = "catalog:Base"
DEFAULT_CONFIG = os.path.join("services", "catalog", "config.yml")


def load_config(path=DEFAULT_CONFIG):
    from nameko.cli.main import setup_yaml_parser  # imports pkg_resources: only when needed

    setup_yaml_parser()
    with open(path) as f:
        return yaml.safe_load(f)


def database_url(path=DEFAULT_CONFIG):
    return load_config(path)["DB_URIS"][DB_URI_KEY]


def alembic_config():
    config = Config()
    config.set_main_option("script_location", str(resources.files("catalog").joinpath("migrations")))
    return config


def upgrade(url, revision="head"):
    """Migrate the database at ``url`` (on an engine configured as the service's)."""
    engine = db.create_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Migrate the catalog database to the newest schema.")
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help="the service's config.yml (default: %(default)s)")
    parser.add_argument("--revision", default="head", help="target revision (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = database_url(args.config)
    logging.getLogger("catalog.migrate").info("migrating %s", _without_password(url))
    upgrade(url, args.revision)


def _without_password(url):
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    main()
