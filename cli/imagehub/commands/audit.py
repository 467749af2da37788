"""`imagehub audit`: the audit trail of one service's state-changing calls (shared.runtime.audit)."""

from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from imagehub import render
from imagehub.app import cli
from imagehub.common import Session, paging_options, session_options, show_list

SERVICES = ("deployer", "catalog", "auth")


def audit_table(console: Console, result: Mapping[str, Any]) -> Table:
    rows = [
        (
            render.time_short(record.get("at")),
            record.get("action"),
            record.get("actor"),
            record.get("tenant_id") or "",
            record.get("target") or "",
            record.get("outcome"),
        )
        for record in result.get("items") or []
    ]
    return render.fitted_table(
        console, ["AT", "ACTION", "ACTOR", "TENANT", "TARGET", "OUTCOME"], rows, flexible="TARGET", wrap=True
    )


@cli.command()
@click.option(
    "--service",
    type=click.Choice(SERVICES),
    default="deployer",
    show_default=True,
    help="whose trail: deployments (deployer), tag deletes and resyncs (catalog), accounts and sign-ins (auth)",
)
@click.option("--action", metavar="SERVICE.METHOD", help="only this action, e.g. deployer.scale_deployment")
@click.option("--actor", metavar="ACTOR", help="only this actor, e.g. dev-1@727524 or platform:deployer")
@click.option("--all-tenants", is_flag=True, help="every tenant's records (platform admins only)")
@paging_options
@session_options(tenant=True)
@click.pass_obj
def audit(
    session: Session, service: str, action: str | None, actor: str | None, all_tenants: bool, page: int, page_size: int
) -> None:
    """Who changed what, and how it ended, newest first: the tenant's records (yours, signed in as a
    developer), or every tenant's with --all-tenants."""
    tenant = None if all_tenants else session.require_tenant("the trail is listed for one tenant (or --all-tenants)")
    result = session.list_audit(service, tenant, action=action, actor=actor, page=page, page_size=page_size)
    show_list(session, result, audit_table, "records", "no records")
