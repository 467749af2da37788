"""`imagehub parse`: how a reference reads under the naming rules."""

from collections.abc import Mapping
from typing import Any

import click
from rich.panel import Panel

from imagehub import render
from imagehub.app import cli
from imagehub.common import (
    Session,
    session_options,
    show,
)


def reference_view(reference: str, parsed: Mapping[str, Any]) -> Panel:
    return render.key_value_panel(
        reference,
        [
            ("Registry", parsed.get("registry")),
            ("Namespace", parsed.get("namespace")),
            ("Name", parsed.get("name")),
            ("Tag", parsed.get("tag")),
            ("Digest", parsed.get("digest")),
            ("Public", render.yes_no(parsed.get("is_public"))),
            ("Custom base", render.yes_no(parsed.get("is_ownbase"))),
        ],
    )


@cli.command()
@click.argument("reference")
@session_options()
@click.pass_obj
def parse(session: Session, reference: str) -> None:
    """Show how the catalog parses an image reference.

    REFERENCE is [HOST[:PORT]/]NS/NAME[:TAG][@DIGEST]; the catalog applies the naming rules.
    """
    result = session.catalog.parse_reference(reference)
    show(session, result, lambda parsed: reference_view(reference, parsed))
