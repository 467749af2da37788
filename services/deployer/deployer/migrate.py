"""Bring the deployer database to the newest schema: ``python -m deployer.migrate``.

The URL is the service's own (``DB_URIS["deployer:Base"]`` in config.yml, read with nameko's
``${VAR:default}`` loader), so ``DEPLOYER_DB_URL`` moves the service and its migrations together.
"""
import argparse
import logging
import os
from importlib import resources

import yaml
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

from deployer import db

DB_URI_KEY = "deployer:Base"
DEFAULT_CONFIG = os.path.join("services", "deployer", "config.yml")

log = logging.getLogger("deployer.migrate")


def load_config(path=DEFAULT_CONFIG):
    """config.yml with the environment applied, as ``nameko run`` reads it."""
    from nameko.cli.main import setup_yaml_parser  # imports pkg_resources: only when needed

    setup_yaml_parser()
    with open(path) as f:
        return yaml.safe_load(f)


def upgrade(url, revision="head"):
    engine = db.create_engine(url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(resources.files("deployer").joinpath("migrations")))
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def main(argv=None):
    parser = argparse.ArgumentParser(description="Migrate the deployer database to the newest schema.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="the service's config.yml (default: %(default)s)")
    parser.add_argument("--revision", default="head", help="target revision (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    url = load_config(args.config)["DB_URIS"][DB_URI_KEY]
    log.info("migrating %s", make_url(url).render_as_string(hide_password=True))
    upgrade(url, args.revision)


if __name__ == "__main__":
    main()
