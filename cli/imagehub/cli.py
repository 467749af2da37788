"""``imagehub``: browse the image catalogue, delete tags and deploy images, over nameko RPC.

Commands only translate: check the arguments (references go through
``shared.contracts.reference``, before any RPC), make one call through ``imagehub.rpc``, print the
answer with the rendering beside each command (``imagehub.commands``) or as JSON. Errors a user
can act on print as ``error: <message>`` on stderr with exit code 1; usage errors exit 2 (click's
convention). Deployer commands then follow the deployment until it settles
(``imagehub.waiting``), unless told not to.
"""

import logging

from imagehub.app import cli
from imagehub.commands import (  # noqa: F401 (they register their commands)
    account,
    audit,
    dead_letters,
    deployments,
    library,
    library_mirror,
    parse,
    pools,
    repos,
    resync,
    set_aside,
    tags,
)

__all__ = ["cli", "main"]


def main() -> None:
    # Library loggers (amqp, kombu) would otherwise reach stderr through logging's last resort.
    logging.getLogger().addHandler(logging.NullHandler())
    cli(prog_name="imagehub")
