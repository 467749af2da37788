"""`imagehub library`: the public library."""

from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from imagehub import render
from imagehub.app import cli
from imagehub.common import (
    Session,
    matching,
    paging_options,
    session_options,
    show_list,
)


def library_table(console: Console, result: Mapping[str, Any]) -> Table:
    rows = [
        (
            repo.get("name"),
            repo.get("description"),
            repo.get("latest_tag"),
            repo.get("tag_count"),
            repo.get("pull_command"),
        )
        for repo in result.get("items") or []
    ]
    return render.fitted_table(
        console, ["NAME", "DESCRIPTION", "LATEST", "TAGS>", "PULL COMMAND"], rows, flexible="DESCRIPTION"
    )


@cli.command()
@click.argument("query", required=False)
@paging_options
@session_options()
@click.pass_obj
def library(session: Session, query: str | None, page: int, page_size: int) -> None:
    """List the public library, optionally filtered by QUERY.

    Public images live in the namespace `library` and are readable by every tenant.
    """
    result = session.catalog.list_public_repositories(query=query, page=page, page_size=page_size)
    show_list(session, result, library_table, "public repositories", f"no public repositories{matching(query)}")
