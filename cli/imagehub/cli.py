"""``imagehub``: browse the image catalogue and delete tags, over nameko RPC.

Commands only translate: check the arguments (references go through ``shared.reference``, before
any RPC), make one call through ``imagehub.rpc``, print the answer with ``imagehub.render`` or as
JSON. Errors a user can act on print as ``error: <message>`` on stderr with exit code 1; usage
errors exit 2 (click's convention).
"""
import logging

import click

from imagehub import render
from imagehub.rpc import DEFAULT_AMQP_URI, DEFAULT_TIMEOUT, Catalog, NamekoTransport, RpcFailure, Unavailable
from shared.errors import Conflict, ImagehubError, InvalidReference
from shared.reference import parse_reference, validate_tag

TENANT_ENV = "IMAGEHUB_TENANT"


class CommandError(click.ClickException):
    """``error: <message>`` (and ``hint: …``) on stderr, exit code 1."""

    exit_code = 1

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.hint = hint

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True)
        if self.hint:
            click.echo(f"hint: {self.hint}", err=True)


class ImagehubGroup(click.Group):
    """Turns the errors an RPC can end in into ``CommandError``: one mapping for every command."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ImagehubError, Unavailable, RpcFailure) as exc:
            raise CommandError(str(exc)) from exc


class Session:
    """Settings of one invocation and its RPC connection, opened on the first call."""

    def __init__(self, connect, amqp_uri, timeout, tenant, as_json):
        self.connect = connect
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self.tenant = tenant
        self.as_json = as_json
        self._transport = None

    @property
    def catalog(self):
        if self._transport is None:
            self._transport = self.connect(self.amqp_uri, self.timeout)
        return Catalog(self._transport)

    def require_tenant(self, why):
        if not self.tenant:
            raise click.UsageError(f"--tenant (or ${TENANT_ENV}) is required: {why}")
        return self.tenant

    def close(self):
        if self._transport is not None:
            self._transport.close()


# -- options that may stand before or after the command -------------------------------------------
# `imagehub --tenant t1 tags t1/app` and `imagehub tags t1/app --tenant t1` both work: the group
# reads the environment and defaults, a command's own option (when given) overrides them.

def _override(attribute):
    def callback(ctx, param, value):
        if value:  # not given (None, False); an empty --tenant "" is no tenant either
            setattr(ctx.find_object(Session), attribute, value)
    return callback


AMQP_HELP = f"broker URI [env AMQP_URI; default {DEFAULT_AMQP_URI}]"
TIMEOUT_HELP = f"seconds to wait for the service's answer [env IMAGEHUB_TIMEOUT; default {DEFAULT_TIMEOUT:g}]"
TENANT_HELP = f"the caller's tenant ID [env {TENANT_ENV}]"
JSON_HELP = "print the raw RPC result as JSON"
TIMEOUT_TYPE = click.FloatRange(min=0, min_open=True)


def session_options(tenant=False):
    def decorate(command):
        options = [
            click.option("--amqp-uri", metavar="URI", help=AMQP_HELP, expose_value=False,
                         callback=_override("amqp_uri")),
            click.option("--timeout", metavar="SECONDS", type=TIMEOUT_TYPE, help=TIMEOUT_HELP,
                         expose_value=False, callback=_override("timeout")),
            click.option("--json", "as_json", is_flag=True, help=JSON_HELP, expose_value=False,
                         callback=_override("as_json")),
        ]
        if tenant:
            options.append(click.option("--tenant", metavar="TENANT", help=TENANT_HELP,
                                        expose_value=False, callback=_override("tenant")))
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


def paging_options(command):
    command = click.option("--page-size", type=click.IntRange(min=1), default=50, show_default=True,
                           help="items per page")(command)
    return click.option("--page", type=click.IntRange(min=1), default=1, show_default=True,
                        help="page number, from 1")(command)


# -- reference arguments --------------------------------------------------------------------------

def _has_tag(reference):
    # A ':' after the last '/' (and before any '@') is a tag; one before it is a registry's port.
    return ":" in reference.split("@", 1)[0].rsplit("/", 1)[-1]


def _parse(reference, param_hint):
    try:
        return parse_reference(reference)
    except InvalidReference as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None


def repository_argument(reference):
    """``NS/NAME`` (a registry host in front, as in pull commands, is accepted) → ``"ns/name"``."""
    parsed = _parse(reference, "'NS/NAME'")
    if _has_tag(reference) or parsed.digest:
        raise click.BadParameter(
            f"{reference!r} names a version; give the repository only (NS/NAME)", param_hint="'NS/NAME'")
    return parsed.repository


def tag_argument(reference, tag, default_latest):
    """``NS/NAME:TAG`` or ``NS/NAME TAG`` → ``("ns/name", "tag")``.

    Without a tag, ``latest`` when ``default_latest`` (reading, as ``docker pull`` does), else a
    usage error (deleting never guesses).
    """
    parsed = _parse(reference, "'NS/NAME:TAG'")
    if parsed.digest:
        raise click.BadParameter(
            f"{reference!r} names a digest; give a tag (`imagehub tags {parsed.repository}` lists them)",
            param_hint="'NS/NAME:TAG'")
    if tag is not None:
        if _has_tag(reference):
            raise click.BadParameter(
                f"the tag is given twice ({parsed.tag!r} in {reference!r}, and {tag!r})", param_hint="'TAG'")
        try:
            return parsed.repository, validate_tag(tag)
        except InvalidReference as exc:
            raise click.BadParameter(str(exc), param_hint="'TAG'") from None
    if not _has_tag(reference) and not default_latest:
        raise click.BadParameter(f"{reference!r} has no tag; give NS/NAME:TAG", param_hint="'NS/NAME:TAG'")
    return parsed.repository, parsed.tag


# -- output ---------------------------------------------------------------------------------------

def show(session, result, view):
    """JSON for scripts, else the panel ``view(result)`` builds."""
    if session.as_json:
        render.print_json(result)
        return
    console = render.make_console()
    render.emit(console, view(result))


def show_list(session, result, build, noun, empty):
    if session.as_json:
        render.print_json(result)
        return
    footer = render.page_footer(result, noun)
    if footer is None:
        click.echo(empty)
        return
    console = render.make_console()
    render.emit(console, build(console, result))
    click.echo(footer)


def matching(query):
    return f" matching {query!r}" if query else ""


# -- commands -------------------------------------------------------------------------------------

@click.group(name="imagehub", cls=ImagehubGroup,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--amqp-uri", envvar="AMQP_URI", default=DEFAULT_AMQP_URI, metavar="URI", help=AMQP_HELP)
@click.option("--timeout", envvar="IMAGEHUB_TIMEOUT", type=TIMEOUT_TYPE, default=DEFAULT_TIMEOUT,
              metavar="SECONDS", help=TIMEOUT_HELP)
@click.option("--tenant", envvar=TENANT_ENV, metavar="TENANT", help=TENANT_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def cli(ctx, amqp_uri, timeout, tenant, as_json):
    """Browse the image catalogue of imagehub and manage its tags.

    Options above may also follow the command: imagehub tags t1/app --tenant t1
    """
    # Tests hand in a transport factory as `obj`; a real run connects through nameko.
    connect = ctx.obj if callable(ctx.obj) else NamekoTransport
    ctx.obj = Session(connect, amqp_uri, timeout, tenant or None, as_json)
    ctx.call_on_close(ctx.obj.close)


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
    show_list(session, result, render.library_table, "public repositories",
              f"no public repositories{matching(query)}")


@cli.command()
@click.argument("query", required=False)
@click.option("--ownbase/--no-ownbase", default=None,
              help="only custom base images (*_ownbase) / only the others [default: all]")
@paging_options
@session_options(tenant=True)
@click.pass_obj
def repos(session, query, ownbase, page, page_size):
    """List the tenant's repositories, optionally filtered by QUERY.

    KIND says `custom base` for the tenant's own base images (names ending in `_ownbase`).
    """
    tenant = session.require_tenant("repositories are listed for one tenant")
    result = session.catalog.list_repositories(
        tenant, query=query, page=page, page_size=page_size, ownbase=ownbase)
    show_list(session, result, render.repositories_table, "repositories",
              f"no repositories{matching(query)} for tenant {tenant}")


@cli.command()
@click.argument("repository", metavar="NS/NAME")
@session_options(tenant=True)
@click.pass_obj
def repo(session, repository):
    """Show one repository (and a library image's overview)."""
    repository = repository_argument(repository)
    result = session.catalog.get_repository(session.tenant, repository)
    show(session, result, render.repository_view)


@cli.command()
@click.argument("repository", metavar="NS/NAME")
@paging_options
@session_options(tenant=True)
@click.pass_obj
def tags(session, repository, page, page_size):
    """List the tags (versions) of a repository."""
    repository = repository_argument(repository)
    result = session.catalog.list_tags(session.tenant, repository, page=page, page_size=page_size)
    show_list(session, result, render.tags_table, "tags", f"no tags in {repository}")


@cli.command()
@click.argument("reference", metavar="NS/NAME[:TAG]")
@click.argument("tag", required=False)
@session_options(tenant=True)
@click.pass_obj
def tag(session, reference, tag):
    """Show one version (tag) in detail.

    Digest, image ID, creator, size, platform, layers and pull command of NS/NAME:TAG (or
    NS/NAME TAG; without a tag, `latest`).
    """
    repository, tag = tag_argument(reference, tag, default_latest=True)
    result = session.catalog.get_tag(session.tenant, repository, tag)
    show(session, result, render.tag_view)


@cli.command()
@click.argument("reference", metavar="NS/NAME:TAG")
@click.argument("tag", required=False)
@click.option("--force", is_flag=True, help="also delete the other tags that share the image's digest")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@session_options(tenant=True)
@click.pass_obj
def delete(session, reference, tag, force, yes):
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
        raise CommandError(str(exc), hint=(
            "other tags point at the same image digest, and deleting a tag deletes that image for "
            f"all of them; `imagehub delete {repository}:{tag} --force` deletes them all")) from exc
    if session.as_json:
        render.print_json(result)
        return
    deleted = render.joined(result.get("deleted_tags") or [tag])
    click.echo(f"Deleted from {result.get('repository', repository)}: {deleted} "
               f"(digest {render.text(result.get('digest'))})")


@cli.command()
@click.argument("reference")
@session_options()
@click.pass_obj
def parse(session, reference):
    """Show how the catalog parses an image reference.

    REFERENCE is [HOST[:PORT]/]NS/NAME[:TAG][@DIGEST]; the catalog applies the naming rules.
    """
    result = session.catalog.parse_reference(reference)
    show(session, result, lambda parsed: render.reference_view(reference, parsed))


@cli.command("set-aside")
@paging_options
@session_options()
@click.pass_obj
def set_aside(session, page, page_size):
    """List registry events set aside as unusable, newest first.

    Notifications the webhook or catalog could not use are kept, not dropped; this shows why.
    """
    result = session.catalog.list_set_aside_events(page=page, page_size=page_size)
    show_list(session, result, render.set_aside_table, "set-aside events", "no set-aside events")


def main():
    # Library loggers (amqp, kombu) would otherwise reach stderr through logging's last resort.
    logging.getLogger().addHandler(logging.NullHandler())
    cli(prog_name="imagehub")
