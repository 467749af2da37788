"""`imagehub dead-letters`: the events a handler of the suite gave up on, shown and replayed (admins)."""

import json
from collections.abc import Mapping
from typing import Any

import click
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from imagehub import render
from imagehub.app import cli
from imagehub.common import ImagehubGroup, Session, paging_options, session_options, show, show_list

STATUSES = ("parked", "replayed")


@cli.group("dead-letters", cls=ImagehubGroup)
def dead_letters() -> None:
    """Events a handler gave up on, kept with the reason (platform admins).

    A handler retries an event that failed for a passing reason (the database or the registry
    away) with a growing pause, a bounded number of times; one that can never work (a payload
    that breaks the contract, a bug) or ran out of retries is parked here instead of blocking the
    events behind it. Replay sends it back to that handler once the cause is fixed; handlers are
    idempotent, so an event handled meanwhile changes nothing.
    """


def letters_table(console: Console, result: Mapping[str, Any]) -> Table:
    rows = [
        (
            letter.get("id"),
            render.time_short(letter.get("last_dead_at")),
            letter.get("status"),
            f"{letter.get('source')}.{letter.get('event_type')}",
            letter.get("reason"),
            letter.get("deaths"),
            letter.get("error") or "",
        )
        for letter in result.get("items") or []
    ]
    return render.fitted_table(
        console, ["ID", "DIED", "STATUS", "EVENT", "REASON", "DEATHS", "ERROR"], rows, flexible="ERROR", wrap=True
    )


@dead_letters.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="only those parked (waiting) or replayed")
@paging_options
@session_options()
@click.pass_obj
def list_letters(session: Session, status: str | None, page: int, page_size: int) -> None:
    """List dead letters, the latest death first."""
    result = session.catalog.list_dead_letters(status=status, page=page, page_size=page_size)
    show_list(session, result, letters_table, "dead letters", "no dead letters")


def letter_view(letter: Mapping[str, Any]) -> Group:
    pairs = [
        ("event", f"{letter.get('source')}.{letter.get('event_type')} {letter.get('event_id')}"),
        ("queue", letter.get("queue")),
        ("status", letter.get("status")),
        ("reason", letter.get("reason")),
        ("error", letter.get("error") or "—"),
        ("deliveries", letter.get("deliveries")),
        ("deaths", letter.get("deaths")),
        ("first died", render.time_long(letter.get("first_dead_at"))),
        ("last died", render.time_long(letter.get("last_dead_at"))),
        ("replays", letter.get("replays")),
        ("replayed", f"{render.time_long(letter.get('replayed_at'))} by {letter.get('replayed_by')}")
        if letter.get("replayed_at")
        else ("replayed", "—"),
    ]
    body = letter.get("body") or ""
    try:
        body = json.dumps(json.loads(body), indent=2, sort_keys=True)
    except ValueError:
        pass  # not JSON: shown as it came
    return Group(render.key_value_panel(f"Dead letter {letter.get('id')}", pairs), Text(body))


@dead_letters.command("show")
@click.argument("dead_letter_id", metavar="ID", type=click.IntRange(min=1))
@session_options()
@click.pass_obj
def show_letter(session: Session, dead_letter_id: int) -> None:
    """Show a dead letter: why it died, and the event as it was sent."""
    show(session, session.catalog.get_dead_letter(dead_letter_id), letter_view)


@dead_letters.command("replay")
@click.argument("dead_letter_ids", metavar="ID...", type=click.IntRange(min=1), nargs=-1, required=True)
@session_options()
@click.pass_obj
def replay(session: Session, dead_letter_ids: tuple[int, ...]) -> None:
    """Send dead letters back to the handler that gave up on them."""
    replayed = [session.catalog.replay_dead_letter(dead_letter_id) for dead_letter_id in dead_letter_ids]
    if session.as_json:
        render.print_json(replayed)
        return
    for letter in replayed:
        click.echo(
            f"Replayed dead letter {letter['id']} ({letter['event_type']} {letter['event_id']}) to {letter['queue']}"
        )
