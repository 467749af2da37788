"""`imagehub tags`, `imagehub tag` and `imagehub delete`: versions of a repository."""

from collections.abc import Mapping, Sequence
from typing import Any

import click
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from imagehub import render
from imagehub.app import cli
from imagehub.common import (
    CommandError,
    Session,
    paging_options,
    repository_argument,
    session_options,
    show,
    show_list,
    tag_argument,
)
from shared.contracts.errors import Conflict


def tags_table(console: Console, result: Mapping[str, Any]) -> Table:
    rows = [
        (
            tag.get("tag"),
            render.short_digest(tag.get("digest")),
            render.short_id(tag.get("image_id")),
            render.human_size(tag.get("size")),
            render.time_short(tag.get("created")),
            render.time_short(tag.get("pushed_at")),
            tag.get("creator"),
        )
        for tag in result.get("items") or []
    ]
    return render.fitted_table(
        console, ["TAG", "DIGEST", "IMAGE ID", "SIZE>", "CREATED", "PUSHED", "CREATOR"], rows, flexible="CREATOR"
    )


def platform_name(platform: Any) -> str:
    if not isinstance(platform, dict):
        return str(platform)
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(p) for p in parts if p)


def platforms_text(platforms: Sequence[Any] | None) -> str:
    return render.joined([platform_name(p) for p in platforms]) if platforms else render.MISSING


def layers_table(layers: Sequence[Any] | None) -> Table | None:
    """The image's layer digests, in full; ``None`` when there are none (a multi-arch index)."""
    if not layers:
        return None
    table = render.plain_table("#>", "LAYER DIGEST")
    for number, digest in enumerate(layers, 1):
        table.add_row(Text(str(number)), Text(render.text(digest)))
    return table


def platforms_table(platforms: Sequence[Mapping[str, Any]] | None) -> Table | None:
    """The per-platform manifests of a multi-arch image, full digests; ``None`` for a single image."""
    if not platforms:
        return None
    table = render.plain_table("PLATFORM", "MANIFEST DIGEST", "SIZE>")
    for platform in platforms:
        table.add_row(
            Text(platform_name(platform)),
            Text(render.text(platform.get("digest"))),
            Text(render.human_size(platform.get("size"))),
        )
    return table


def tag_view(tag: Mapping[str, Any]) -> Group:
    platform = platform_name(tag)
    panel = render.key_value_panel(
        f"{tag.get('repository')}:{tag.get('tag')}",
        [
            ("Digest", tag.get("digest")),
            ("Image ID", tag.get("image_id")),
            ("Created", render.time_long(tag.get("created"))),
            ("Creator", tag.get("creator")),
            ("Pushed", render.time_long(tag.get("pushed_at"))),
            ("Size", render.size_detail(tag.get("size"))),
            ("Media type", tag.get("media_type")),
            ("Platform", platform),
            ("Platforms", platforms_text(tag.get("platforms"))),
            ("Layers", len(tag.get("layers") or []) or None),
            ("Other tags", render.joined(tag.get("other_tags"))),
            ("Pull", tag.get("pull_command")),
        ],
    )
    tables = [platforms_table(tag.get("platforms")), layers_table(tag.get("layers"))]
    return Group(panel, *(part for t in tables if t is not None for part in (Text(""), t)))


@cli.command()
@click.argument("repository", metavar="NS/NAME")
@paging_options
@session_options(tenant=True)
@click.pass_obj
def tags(session: Session, repository: str, page: int, page_size: int) -> None:
    """List the tags (versions) of a repository."""
    repository = repository_argument(repository)
    result = session.catalog.list_tags(session.tenant, repository, page=page, page_size=page_size)
    show_list(session, result, tags_table, "tags", f"no tags in {repository}")


@cli.command()
@click.argument("reference", metavar="NS/NAME[:TAG]")
@click.argument("tag", required=False)
@session_options(tenant=True)
@click.pass_obj
def tag(session: Session, reference: str, tag: str | None) -> None:
    """Show one version (tag) in detail.

    Digest, image ID, creator, size, platform, layers and pull command of NS/NAME:TAG (or
    NS/NAME TAG; without a tag, `latest`).
    """
    repository, tag = tag_argument(reference, tag, default_latest=True)
    result = session.catalog.get_tag(session.tenant, repository, tag)
    show(session, result, tag_view)


@cli.command()
@click.argument("reference", metavar="NS/NAME:TAG")
@click.argument("tag", required=False)
@click.option("--force", is_flag=True, help="also delete the other tags that share the image's digest")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@session_options(tenant=True)
@click.pass_obj
def delete(session: Session, reference: str, tag: str | None, force: bool, yes: bool) -> None:
    """Delete a tag (and, with --force, every tag sharing its digest).

    Deleting a tag deletes its image manifest from the registry. Without --yes the tag is looked
    up first and the deletion confirmed.
    """
    repository, tag = tag_argument(reference, tag, default_latest=False)
    tenant = session.require_tenant("a tag is deleted on behalf of a tenant")
    catalog = session.catalog
    if not yes:
        # NotFound surfaces here, before the question; the answer also names the tags that share
        # the digest, so the question can say what --force would take with it.
        current = catalog.get_tag(tenant, repository, tag)
        question = f"Delete {repository}:{tag} ({render.short_digest(current.get('digest'))})"
        if current.get("other_tags"):
            question += f"; tags sharing its digest: {', '.join(current['other_tags'])}"
            question += " (deleted too)" if force else " (without --force the delete is refused)"
        click.confirm(question + "?", abort=True, err=True)
    try:
        result = catalog.delete_tag(tenant, repository, tag, force=force)
    except Conflict as exc:
        raise CommandError(
            str(exc),
            hint=(
                "other tags point at the same image digest, and deleting a tag deletes that image for "
                f"all of them; `imagehub delete {repository}:{tag} --force` deletes them all"
            ),
        ) from exc
    if session.as_json:
        render.print_json(result)
        return
    deleted = render.joined(result.get("deleted_tags") or [tag])
    click.echo(
        f"Deleted from {result.get('repository', repository)}: {deleted} (digest {render.text(result.get('digest'))})"
    )
