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


def members(pool: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], str]]:
    """A pool's hosts (an engines pool) or nodes (a swarm), each with its state in a word:
    ``yes``/``no`` for an engine that answers or not, ``ready/active``, ``down/drain``… for a node."""
    if pool.get("kind") == "swarm":
        return [(node, f"{node.get('state')}/{node.get('availability')}") for node in pool.get("nodes") or []]
    return [(host, render.yes_no(host.get("reachable"))) for host in pool.get("hosts") or []]


def pools_table(console: Console, result: Mapping[str, Any]) -> Table:
    """One row per host or swarm node; a pool's name on each row, so the rows grep well."""
    rows = []
    for pool in result.get("items") or []:
        for member, state in members(pool):
            capacity, free = member.get("capacity") or {}, member.get("free") or {}
            rows.append(
                (
                    pool.get("name"),
                    pool.get("kind", "engines"),
                    member.get("name"),
                    member.get("address"),
                    state,
                    deployment_views.free_of_total(free.get("cpus"), capacity.get("cpus"), deployment_views.number),
                    deployment_views.free_of_total(
                        free.get("memory_bytes"), capacity.get("memory_bytes"), render.human_size
                    ),
                    member.get("instances"),
                )
            )
    return render.fitted_table(
        console,
        ["POOL", "KIND", "HOST", "ADDRESS", "STATE", "CPUS FREE/TOTAL>", "MEMORY FREE/TOTAL>", "INSTANCES>"],
        rows,
    )


def pool_notes(result: Mapping[str, Any]) -> list[str]:
    """Lines under the pools table: the default pool, and why a host is unreachable."""
    notes = [f"default pool: {pool.get('name')}" for pool in result.get("items") or [] if pool.get("default")]
    for pool in result.get("items") or []:
        if pool.get("kind") == "swarm" and pool.get("reachable") is False:
            notes.append(f"swarm pool {pool.get('name')}: no manager answers: {render.text(pool.get('error'))}")
        for host in pool.get("hosts") or []:
            if host.get("reachable") is False:
                notes.append(f"{host.get('name')} is unreachable: {render.text(host.get('error'))}")
    return notes


@cli.command()
@session_options()
@click.pass_obj
def pools(session: Session) -> None:
    """List the resource pools: each host (a swarm's nodes), its state, and its free capacity."""
    result = session.deployer.list_pools()
    show_list(session, result, pools_table, "pools", "no resource pools", notes=pool_notes)
