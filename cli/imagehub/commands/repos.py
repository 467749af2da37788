"""`imagehub repos`, `imagehub repo` and `imagehub describe`: the tenant's repositories, one
repository, and setting a repository's description and overview."""

from collections.abc import Mapping
from typing import IO, Any

import click
from rich import box
from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from imagehub import render
from imagehub.app import cli
from imagehub.common import (
    Session,
    matching,
    paging_options,
    repository_argument,
    session_options,
    show,
    show_list,
)
from shared.contracts.reference import PUBLIC_NAMESPACE


def repository_kind(repo: Mapping[str, Any]) -> str:
    if repo.get("is_ownbase"):
        return "custom base"
    return "public" if repo.get("is_public") else "private"


def repositories_table(console: Console, result: Mapping[str, Any]) -> Table:
    rows = [
        (
            repo.get("repository"),
            repository_kind(repo),
            repo.get("tag_count"),
            repo.get("latest_tag"),
            render.time_short(repo.get("updated_at")),
            repo.get("description"),
        )
        for repo in result.get("items") or []
    ]
    return render.fitted_table(
        console, ["REPOSITORY", "KIND", "TAGS>", "LATEST", "UPDATED", "DESCRIPTION"], rows, flexible="DESCRIPTION"
    )


def repository_view(repo: Mapping[str, Any]) -> Group | Panel:
    overview = repo.get("overview")
    with_overview = bool(repo.get("is_public") or overview)
    panel = render.key_value_panel(
        repo.get("repository") or f"{repo.get('namespace')}/{repo.get('name')}",
        [
            ("Description", repo.get("description")),
            ("Visibility", "public library" if repo.get("is_public") else "private"),
            ("Custom base", render.yes_no(repo.get("is_ownbase"))),
            ("Tags", repo.get("tag_count")),
            ("Latest", repo.get("latest_tag")),
            ("Pull", repo.get("pull_command")),
            ("Updated", render.time_long(repo.get("updated_at"))),
        ],
        expand=with_overview,
    )  # as wide as the overview below it
    if with_overview:
        body = Markdown(overview) if overview else Text("(no overview)", style="dim")
        return Group(panel, Panel(body, title="Overview", title_align="left", box=box.ROUNDED))
    return panel


@cli.command()
@click.argument("query", required=False)
@click.option(
    "--ownbase/--no-ownbase", default=None, help="only custom base images (*_ownbase) / only the others [default: all]"
)
@paging_options
@session_options(tenant=True)
@click.pass_obj
def repos(session: Session, query: str | None, ownbase: bool | None, page: int, page_size: int) -> None:
    """List the tenant's repositories, optionally filtered by QUERY.

    KIND says `custom base` for the tenant's own base images (names ending in `_ownbase`).
    """
    tenant = session.require_tenant("repositories are listed for one tenant")
    result = session.catalog.list_repositories(tenant, query=query, page=page, page_size=page_size, ownbase=ownbase)
    show_list(
        session,
        result,
        repositories_table,
        "repositories",
        f"no repositories{matching(query)} for tenant {tenant}",
    )


@cli.command()
@click.argument("repository", metavar="NS/NAME")
@session_options(tenant=True)
@click.pass_obj
def repo(session: Session, repository: str) -> None:
    """Show one repository (and a library image's overview)."""
    repository = repository_argument(repository)
    result = session.catalog.get_repository(session.tenant, repository)
    show(session, result, repository_view)


@cli.command()
@click.argument("repository", metavar="NS/NAME")
@click.option("--description", help="one line, at most 100 characters (an empty one clears it)")
@click.option(
    "--overview-file",
    type=click.File("r", encoding="utf-8"),
    help="the overview (Markdown, at most 25,000 characters) from FILE, or - for standard input",
)
@session_options(tenant=True)
@click.pass_obj
def describe(session: Session, repository: str, description: str | None, overview_file: IO[str] | None) -> None:
    """Set a repository's description and overview; what is not given is kept.

    A library repository (`library/NAME`) is described by platform admins, a tenant's by its
    developers. The overview is Markdown without raw HTML (show a tag in `code`) and without
    javascript: or data: links; the catalog refuses anything else, naming the field.
    """
    repository = repository_argument(repository)
    if description is None and overview_file is None:
        raise click.UsageError("give --description, --overview-file or both")
    overview = overview_file.read() if overview_file is not None else None
    if repository.startswith(PUBLIC_NAMESPACE + "/"):
        tenant = session.tenant
    else:
        tenant = session.require_tenant("a tenant's repository is described on its behalf")
    result = session.catalog.set_repository_info(tenant, repository, description=description, overview=overview)
    show(session, result, repository_view)
