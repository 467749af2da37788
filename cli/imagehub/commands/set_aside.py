"""`imagehub set-aside`: registry events the catalog could not use."""

from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from imagehub import render
from imagehub.app import cli
from imagehub.common import (
    Session,
    paging_options,
    session_options,
    show_list,
)


def set_aside_table(console: Console, result: Mapping[str, Any]) -> Table:
    rows = [
        (
            event.get("id"),
            render.time_short(event.get("at")),
            event.get("source"),
            event.get("action"),
            event.get("repository"),
            event.get("reason"),
        )
        for event in result.get("items") or []
    ]
    return render.fitted_table(
        console, ["ID", "AT", "SOURCE", "ACTION", "REPOSITORY", "REASON"], rows, flexible="REASON", wrap=True
    )


@cli.command("set-aside")
@paging_options
@session_options()
@click.pass_obj
def set_aside(session: Session, page: int, page_size: int) -> None:
    """List registry events set aside as unusable, newest first.

    Notifications the webhook or catalog could not use are kept, not dropped; this shows why.
    """
    result = session.catalog.list_set_aside_events(page=page, page_size=page_size)
    show_list(session, result, set_aside_table, "set-aside events", "no set-aside events")
