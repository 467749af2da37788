"""`imagehub pools`: the resource pools and their free capacity."""

from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from imagehub import render
from imagehub.app import cli
from imagehub.commands import deployment_views
from imagehub.common import (
    Session,
    session_options,
    show_list,
)


def pools_table(console: Console, result: Mapping[str, Any]) -> Table:
    """One row per host; a pool's name on each of its hosts, so the rows grep well."""
    rows = []
    for pool in result.get("items") or []:
        for host in pool.get("hosts") or []:
            capacity, free = host.get("capacity") or {}, host.get("free") or {}
            rows.append(
                (
                    pool.get("name"),
                    host.get("name"),
                    host.get("address"),
                    render.yes_no(host.get("reachable")),
                    deployment_views.free_of_total(free.get("cpus"), capacity.get("cpus"), deployment_views.number),
                    deployment_views.free_of_total(
                        free.get("memory_bytes"), capacity.get("memory_bytes"), render.human_size
                    ),
                    host.get("instances"),
                )
            )
    return render.fitted_table(
        console, ["POOL", "HOST", "ADDRESS", "REACHABLE", "CPUS FREE/TOTAL>", "MEMORY FREE/TOTAL>", "INSTANCES>"], rows
    )


def pool_notes(result: Mapping[str, Any]) -> list[str]:
    """Lines under the pools table: the default pool, and why a host is unreachable."""
    notes = [f"default pool: {pool.get('name')}" for pool in result.get("items") or [] if pool.get("default")]
    for pool in result.get("items") or []:
        for host in pool.get("hosts") or []:
            if host.get("reachable") is False:
                notes.append(f"{host.get('name')} is unreachable: {render.text(host.get('error'))}")
    return notes


@cli.command()
@session_options()
@click.pass_obj
def pools(session: Session) -> None:
    """List the resource pools: each host, whether it answers, and its free capacity."""
    result = session.deployer.list_pools()
    show_list(session, result, pools_table, "pools", "no resource pools", notes=pool_notes)
