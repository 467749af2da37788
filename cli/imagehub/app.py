"""The ``imagehub`` command group: its global options and the session every command gets."""

import click

from imagehub.common import (
    AMQP_HELP,
    JSON_HELP,
    TENANT_ENV,
    TENANT_HELP,
    TIMEOUT_HELP,
    TIMEOUT_TYPE,
    ImagehubGroup,
    Session,
)
from imagehub.rpc import DEFAULT_AMQP_URI, DEFAULT_TIMEOUT, NamekoTransport


@click.group(
    name="imagehub",
    cls=ImagehubGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--amqp-uri", envvar="AMQP_URI", default=DEFAULT_AMQP_URI, metavar="URI", help=AMQP_HELP)
@click.option(
    "--timeout",
    envvar="IMAGEHUB_TIMEOUT",
    type=TIMEOUT_TYPE,
    default=DEFAULT_TIMEOUT,
    metavar="SECONDS",
    help=TIMEOUT_HELP,
)
@click.option("--tenant", envvar=TENANT_ENV, metavar="TENANT", help=TENANT_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def cli(ctx: click.Context, amqp_uri: str, timeout: float, tenant: str | None, as_json: bool) -> None:
    """Browse the image catalogue of imagehub, manage its tags and deploy its images.

    Options above may also follow the command: imagehub tags t1/app --tenant t1
    """
    # Tests hand in a transport factory as `obj`; a real run connects through nameko.
    connect = ctx.obj if callable(ctx.obj) else NamekoTransport
    ctx.obj = Session(connect, amqp_uri, timeout, tenant or None, as_json)
    ctx.call_on_close(ctx.obj.close)
