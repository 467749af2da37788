"""`imagehub library`: the public library."""

import click

from imagehub import render
from imagehub.app import cli
from imagehub.common import (
    matching,
    paging_options,
    session_options,
    show_list,
)


def library_table(console, result):
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
def library(session, query, page, page_size):
    """List the public library, optionally filtered by QUERY.

    Public images live in the namespace `library` and are readable by every tenant.
    """
    result = session.catalog.list_public_repositories(query=query, page=page, page_size=page_size)
    show_list(session, result, library_table, "public repositories", f"no public repositories{matching(query)}")
