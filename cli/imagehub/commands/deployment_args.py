"""Arguments and options of the deployment commands, and finding a deployment by name or ID."""

import re
import shlex
from collections.abc import Iterator
from typing import Any

import click

from imagehub import waiting
from imagehub.common import (
    TIMEOUT_TYPE,
    CommandError,
    F,
    Session,
    parse_argument,
)
from imagehub.rpc import Deployer
from shared.contracts.errors import InvalidReference
from shared.contracts.reference import validate_tag

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
RESOLVE_PAGE_SIZE = 200  # the deployer's largest page: one call for most tenants


def image_argument(reference: str, param_hint: str) -> str:
    """An image version to deploy, sent as written; the deployer resolves its tag to a digest."""
    parsed = parse_argument(reference, param_hint)
    if parsed.digest:
        raise click.BadParameter(
            f"{reference!r} names a digest; give a tag (the deployer pins the tag's digest itself)",
            param_hint=param_hint,
        )
    return reference


def _env(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str] | None:
    env: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param=param)
        env[name] = value  # the last one wins, as with `docker run -e`
    return env if values else None


def _port_number(text: str, item: str, low: int, param: click.Parameter) -> int:
    if not text.isdigit() or not low <= int(text) <= 65535:
        raise click.BadParameter(f"{item!r}: {text!r} is not a port number from {low} to 65535", param=param)
    return int(text)


def _ports(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list[dict[str, int]] | None:
    ports: list[dict[str, int]] = []
    for item in values:
        container, sep, host = item.partition(":")
        ports.append(
            {
                "container_port": _port_number(container, item, 1, param),
                "host_port": _port_number(host, item, 0, param) if sep else 0,
            }
        )
    return ports if values else None


def _health(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any] | None:
    if value is None:
        return None
    kind, _, detail = value.partition(":")
    if kind == "http" and detail.startswith("/"):
        return {"type": "http", "path": detail}
    if kind == "running":
        try:
            seconds = float(detail)
        except ValueError:
            seconds = -1.0
        if 0 <= seconds < float("inf"):
            return {"type": "running", "seconds": int(seconds) if seconds.is_integer() else seconds}
    raise click.BadParameter(
        f"{value!r} is neither running:SECONDS (a number, 0 or more) nor http:PATH (a path starting with '/')",
        param=param,
    )


def _command(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} cannot be split into words: {exc}", param=param) from None
    if not words:
        raise click.BadParameter("is empty; leave it out to run the image's own command", param=param)
    return words


def _image(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else image_argument(value, "'--image'")


def _tag(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    try:
        return None if value is None else validate_tag(value)
    except InvalidReference as exc:
        raise click.BadParameter(str(exc), param=param) from None


def _auto_deploy(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, str] | None:
    return None if value is None else {"policy": value}


POLICIES = (
    "never, force, semver:major|minor|patch (+prerelease to take pre-releases, e.g. "
    "semver:minor+prerelease), glob:PATTERN or regexp:EXPRESSION"
)


# Options shared by `deploy` and `update`, each a field of the spec (or of the changes) by its name.
RUNTIME_OPTIONS = [
    click.option(
        "--env",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_env,
        help="an environment variable (repeat for more; on update, the whole new set)",
    ),
    click.option(
        "--port",
        "ports",
        multiple=True,
        metavar="CONTAINER_PORT[:HOST_PORT]",
        callback=_ports,
        help="a port (repeat for more; on update, the whole new set); without HOST_PORT, or 0, "
        "the deployer allocates a free host port. Note the order: container port first",
    ),
    click.option("--cpu", type=float, metavar="CPUS", help="CPUs per instance, e.g. 0.5"),
    click.option("--memory", metavar="SIZE", help="memory per instance: 256m, 1g, or bytes"),
    click.option("--restart", "restart_policy", metavar="POLICY", help="no, on-failure, always or unless-stopped"),
    click.option(
        "--health",
        metavar="running:SECONDS|http:PATH",
        callback=_health,
        help="running when up for SECONDS, or when PATH answers 2xx on the first port",
    ),
    click.option(
        "--update-strategy",
        type=click.Choice(["start-first", "stop-first"]),
        help="start-first: a new instance answers before an old one stops (the default); stop-first: "
        "the old one stops first, each replaced instance is down until its successor starts (the "
        "default with a fixed host port)",
    ),
    click.option(
        "--constraint",
        "constraints",
        multiple=True,
        metavar="CONSTRAINT",
        help="swarm pools: run only on nodes where it holds, e.g. node.labels.imagehub.host==local-2 (repeat for more)",
    ),
    click.option(
        "--max-per-node",
        type=click.IntRange(min=1),
        metavar="N",
        help="swarm pools: at most N instances on one node",
    ),
    click.option("--auto-deploy", metavar="POLICY", callback=_auto_deploy, help=f"on a push: {POLICIES}"),
    click.option(
        "--command",
        metavar="COMMAND",
        callback=_command,
        help="run this instead of the image's command; split into words as a shell would",
    ),
]


def runtime_options(command: F) -> F:
    for option in reversed(RUNTIME_OPTIONS):
        command = option(command)
    return command


def given(**fields: Any) -> dict[str, Any]:
    """The fields the user gave: the deployer applies its own defaults to the others. --constraint
    and --max-per-node make the spec's ``placement``."""
    constraints, per_node = fields.pop("constraints", ()), fields.pop("max_per_node", None)
    if constraints or per_node is not None:
        placement: dict[str, Any] = {"constraints": list(constraints)}
        if per_node is not None:
            placement["max_per_node"] = per_node
        fields["placement"] = placement
    return {name: value for name, value in fields.items() if value is not None}


wait_timeout_option = click.option(
    "--wait-timeout",
    type=TIMEOUT_TYPE,
    default=waiting.DEFAULT_WAIT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="stop waiting after this long (the operation itself goes on)",
)


def wait_options(command: F) -> F:
    return click.option("--no-wait", is_flag=True, help="return once the deployer has accepted the request")(
        wait_timeout_option(command)
    )


def deployment_argument(command: F) -> F:
    return click.argument("deployment", metavar="DEPLOYMENT")(command)


TENANT_OWNS = "deployments belong to a tenant"


def tenant_and_id(session: Session, deployment: str) -> tuple[str, str]:
    """The tenant (required) and the ID of the deployment DEPLOYMENT names."""
    tenant = session.require_tenant(TENANT_OWNS)
    return tenant, resolve_deployment(session, tenant, deployment)


def _every_deployment(deployer: Deployer, tenant: str) -> Iterator[dict[str, Any]]:
    number = 1
    while True:
        result = deployer.list_deployments(tenant, page=number, page_size=RESOLVE_PAGE_SIZE)
        items = result.get("items") or []
        yield from items
        if not items or number * RESOLVE_PAGE_SIZE >= (result.get("total") or 0):
            return
        number += 1


def resolve_deployment(session: Session, tenant: str, given_id: str) -> str:
    """The ID of DEPLOYMENT: an ID as it is; else the tenant's deployment of that name, or the one
    whose ID starts with it (as `imagehub deployments` shows IDs). Deleted deployments are not
    listed, so only their full ID reaches them."""
    if UUID.fullmatch(given_id):
        return given_id
    starting: list[dict[str, Any]] = []
    for item in _every_deployment(session.deployer, tenant):
        if item.get("name") == given_id:
            return item["id"]
        if str(item.get("id", "")).startswith(given_id.lower()):
            starting.append(item)
    if len(starting) == 1:
        return starting[0]["id"]
    if not starting:
        raise CommandError(
            f"tenant {tenant} has no deployment named {given_id!r} or with an ID starting with it",
            hint=f"`imagehub deployments --tenant {tenant}` lists them",
        )
    names = ", ".join(f"{item.get('name')} ({item['id']})" for item in starting)
    raise CommandError(f"{given_id!r} starts the ID of {len(starting)} deployments: {names}; give more of the ID")
