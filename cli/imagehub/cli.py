"""``imagehub``: browse the image catalogue, delete tags and deploy images, over nameko RPC.

Commands only translate: check the arguments (references go through ``shared.contracts.reference``, before
any RPC), make one call through ``imagehub.rpc``, print the answer with ``imagehub.render`` or as
JSON. Errors a user can act on print as ``error: <message>`` on stderr with exit code 1; usage
errors exit 2 (click's convention). Deployer commands then follow the deployment until it
settles (``imagehub.waiting``), unless told not to.
"""

import logging
import re
import shlex

import click

from imagehub import render, waiting
from imagehub.rpc import DEFAULT_AMQP_URI, DEFAULT_TIMEOUT, Catalog, Deployer, NamekoTransport, RpcFailure, Unavailable
from shared.contracts.errors import Conflict, ImagehubError, InvalidReference
from shared.contracts.reference import parse_reference, validate_path_component, validate_tag

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

    def _connection(self):
        if self._transport is None:
            self._transport = self.connect(self.amqp_uri, self.timeout)
        return self._transport

    @property
    def catalog(self):
        return Catalog(self._connection())

    @property
    def deployer(self):
        return Deployer(self._connection())

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
            click.option(
                "--amqp-uri", metavar="URI", help=AMQP_HELP, expose_value=False, callback=_override("amqp_uri")
            ),
            click.option(
                "--timeout",
                metavar="SECONDS",
                type=TIMEOUT_TYPE,
                help=TIMEOUT_HELP,
                expose_value=False,
                callback=_override("timeout"),
            ),
            click.option(
                "--json", "as_json", is_flag=True, help=JSON_HELP, expose_value=False, callback=_override("as_json")
            ),
        ]
        if tenant:
            options.append(
                click.option(
                    "--tenant", metavar="TENANT", help=TENANT_HELP, expose_value=False, callback=_override("tenant")
                )
            )
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def paging_options(command):
    command = click.option(
        "--page-size", type=click.IntRange(min=1), default=50, show_default=True, help="items per page"
    )(command)
    return click.option("--page", type=click.IntRange(min=1), default=1, show_default=True, help="page number, from 1")(
        command
    )


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
            f"{reference!r} names a version; give the repository only (NS/NAME)", param_hint="'NS/NAME'"
        )
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
            param_hint="'NS/NAME:TAG'",
        )
    if tag is not None:
        if _has_tag(reference):
            raise click.BadParameter(
                f"the tag is given twice ({parsed.tag!r} in {reference!r}, and {tag!r})", param_hint="'TAG'"
            )
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


def show_list(session, result, build, noun, empty, notes=None):
    """JSON, or the table ``build`` makes, the lines ``notes(result)`` gives, and the page footer."""
    if session.as_json:
        render.print_json(result)
        return
    footer = render.page_footer(result, noun)
    if footer is None:
        click.echo(empty)
        return
    console = render.make_console()
    render.emit(console, build(console, result))
    for line in notes(result) if notes else []:
        click.echo(line)
    click.echo(footer)


def matching(query):
    return f" matching {query!r}" if query else ""


# -- commands -------------------------------------------------------------------------------------


@click.group(
    name="imagehub",
    cls=ImagehubGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--amqp-uri", envvar="AMQP_URI", default=DEFAULT_AMQP_URI, metavar="URI", help=AMQP_HELP)
@click.option(
    "--timeout",
    envvar="IMAGEHUB_TIMEOUT",
    type=TIMEOUT_TYPE,
    default=DEFAULT_TIMEOUT,
    metavar="SECONDS",
    help=TIMEOUT_HELP,
)
@click.option("--tenant", envvar=TENANT_ENV, metavar="TENANT", help=TENANT_HELP)
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def cli(ctx, amqp_uri, timeout, tenant, as_json):
    """Browse the image catalogue of imagehub, manage its tags and deploy its images.

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
    show_list(session, result, render.library_table, "public repositories", f"no public repositories{matching(query)}")


@cli.command()
@click.argument("query", required=False)
@click.option(
    "--ownbase/--no-ownbase", default=None, help="only custom base images (*_ownbase) / only the others [default: all]"
)
@paging_options
@session_options(tenant=True)
@click.pass_obj
def repos(session, query, ownbase, page, page_size):
    """List the tenant's repositories, optionally filtered by QUERY.

    KIND says `custom base` for the tenant's own base images (names ending in `_ownbase`).
    """
    tenant = session.require_tenant("repositories are listed for one tenant")
    result = session.catalog.list_repositories(tenant, query=query, page=page, page_size=page_size, ownbase=ownbase)
    show_list(
        session,
        result,
        render.repositories_table,
        "repositories",
        f"no repositories{matching(query)} for tenant {tenant}",
    )


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


# -- deployments: arguments -----------------------------------------------------------------------
# Only the shape of an option is checked here (KEY=VALUE, a port number, running:SECONDS); what a
# value may be (restart policies, memory sizes, replica limits, pools) is the deployer's to say.

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
RESOLVE_PAGE_SIZE = 200  # the deployer's largest page: one call for most tenants


def image_argument(reference, param_hint):
    """An image version to deploy, sent as written; the deployer resolves its tag to a digest."""
    parsed = _parse(reference, param_hint)
    if parsed.digest:
        raise click.BadParameter(
            f"{reference!r} names a digest; give a tag (the deployer pins the tag's digest itself)",
            param_hint=param_hint,
        )
    return reference


def _env(ctx, param, values):
    env = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param=param)
        env[name] = value  # the last one wins, as with `docker run -e`
    return env if values else None


def _port_number(text, item, low, param):
    if not text.isdigit() or not low <= int(text) <= 65535:
        raise click.BadParameter(f"{item!r}: {text!r} is not a port number from {low} to 65535", param=param)
    return int(text)


def _ports(ctx, param, values):
    ports = []
    for item in values:
        container, sep, host = item.partition(":")
        ports.append(
            {
                "container_port": _port_number(container, item, 1, param),
                "host_port": _port_number(host, item, 0, param) if sep else 0,
            }
        )
    return ports if values else None


def _health(ctx, param, value):
    if value is None:
        return None
    kind, _, detail = value.partition(":")
    if kind == "http" and detail.startswith("/"):
        return {"type": "http", "path": detail}
    if kind == "running":
        try:
            seconds = float(detail)
        except ValueError:
            seconds = -1.0
        if 0 <= seconds < float("inf"):
            return {"type": "running", "seconds": int(seconds) if seconds.is_integer() else seconds}
    raise click.BadParameter(
        f"{value!r} is neither running:SECONDS (a number, 0 or more) nor http:PATH (a path starting with '/')",
        param=param,
    )


def _command(ctx, param, value):
    if value is None:
        return None
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} cannot be split into words: {exc}", param=param) from None
    if not words:
        raise click.BadParameter("is empty; leave it out to run the image's own command", param=param)
    return words


def _image(ctx, param, value):
    return None if value is None else image_argument(value, "'--image'")


def _tag(ctx, param, value):
    try:
        return None if value is None else validate_tag(value)
    except InvalidReference as exc:
        raise click.BadParameter(str(exc), param=param) from None


def _auto_deploy(ctx, param, value):
    return None if value is None else {"policy": value}


POLICIES = (
    "never, force, semver:major|minor|patch (+prerelease to take pre-releases, e.g. "
    "semver:minor+prerelease), glob:PATTERN or regexp:EXPRESSION"
)


# Options shared by `deploy` and `update`, each a field of the spec (or of the changes) by its name.
RUNTIME_OPTIONS = [
    click.option(
        "--env",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_env,
        help="an environment variable (repeat for more; on update, the whole new set)",
    ),
    click.option(
        "--port",
        "ports",
        multiple=True,
        metavar="CONTAINER_PORT[:HOST_PORT]",
        callback=_ports,
        help="a port (repeat for more; on update, the whole new set); without HOST_PORT, or 0, "
        "the deployer allocates a free host port. Note the order: container port first",
    ),
    click.option("--cpu", type=float, metavar="CPUS", help="CPUs per instance, e.g. 0.5"),
    click.option("--memory", metavar="SIZE", help="memory per instance: 256m, 1g, or bytes"),
    click.option("--restart", "restart_policy", metavar="POLICY", help="no, on-failure, always or unless-stopped"),
    click.option(
        "--health",
        metavar="running:SECONDS|http:PATH",
        callback=_health,
        help="running when up for SECONDS, or when PATH answers 2xx on the first port",
    ),
    click.option("--auto-deploy", metavar="POLICY", callback=_auto_deploy, help=f"on a push: {POLICIES}"),
    click.option(
        "--command",
        metavar="COMMAND",
        callback=_command,
        help="run this instead of the image's command; split into words as a shell would",
    ),
]


def runtime_options(command):
    for option in reversed(RUNTIME_OPTIONS):
        command = option(command)
    return command


def given(**fields):
    """The fields the user gave: the deployer applies its own defaults to the others."""
    return {name: value for name, value in fields.items() if value is not None}


wait_timeout_option = click.option(
    "--wait-timeout",
    type=TIMEOUT_TYPE,
    default=waiting.DEFAULT_WAIT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="stop waiting after this long (the operation itself goes on)",
)


def wait_options(command):
    return click.option("--no-wait", is_flag=True, help="return once the deployer has accepted the request")(
        wait_timeout_option(command)
    )


def deployment_argument(command):
    return click.argument("deployment", metavar="DEPLOYMENT")(command)


TENANT_OWNS = "deployments belong to a tenant"


def tenant_and_id(session, deployment):
    """The tenant (required) and the ID of the deployment DEPLOYMENT names."""
    tenant = session.require_tenant(TENANT_OWNS)
    return tenant, resolve_deployment(session, tenant, deployment)


def _every_deployment(deployer, tenant):
    number = 1
    while True:
        result = deployer.list_deployments(tenant, page=number, page_size=RESOLVE_PAGE_SIZE)
        items = result.get("items") or []
        yield from items
        if not items or number * RESOLVE_PAGE_SIZE >= (result.get("total") or 0):
            return
        number += 1


def resolve_deployment(session, tenant, given_id):
    """The ID of DEPLOYMENT: an ID as it is; else the tenant's deployment of that name, or the one
    whose ID starts with it (as `imagehub deployments` shows IDs). Deleted deployments are not
    listed, so only their full ID reaches them."""
    if UUID.fullmatch(given_id):
        return given_id
    starting = []
    for item in _every_deployment(session.deployer, tenant):
        if item.get("name") == given_id:
            return item["id"]
        if str(item.get("id", "")).startswith(given_id.lower()):
            starting.append(item)
    if len(starting) == 1:
        return starting[0]["id"]
    if not starting:
        raise CommandError(
            f"tenant {tenant} has no deployment named {given_id!r} or with an ID starting with it",
            hint=f"`imagehub deployments --tenant {tenant}` lists them",
        )
    names = ", ".join(f"{item.get('name')} ({item['id']})" for item in starting)
    raise CommandError(f"{given_id!r} starts the ID of {len(starting)} deployments: {names}; give more of the ID")


# -- deployments: following one -------------------------------------------------------------------


def say(session, line):
    """Progress is the output of a command, unless --json: then stdout is kept for the JSON."""
    click.echo(line, err=session.as_json)


def watch_command(deployment, tenant):
    return f"imagehub deployment {deployment.get('id')} --wait --tenant {tenant}"


FAILURES = {
    "failed": "failed",
    "rollout_failed": "could not roll out",
    "rolled_back": "was rolled back",
    "degraded": "is degraded",
    "deleting": "is being removed",
    "deleted": "was removed",
}


def outcome_error(outcome, tenant, wait_timeout):
    """The ``CommandError`` for an outcome that is not the one asked for."""
    deployment, status = outcome.deployment, outcome.status
    name = deployment.get("name")
    if outcome.timed_out:
        return CommandError(
            f"deployment {name} is still {status} after {wait_timeout:g} s (--wait-timeout); the deployer "
            f"carries on in the background",
            hint=f"keep watching with `{watch_command(deployment, tenant)}`",
        )
    message = f"deployment {name} {FAILURES.get(status, f'is {status}')}"
    return CommandError(f"{message}: {deployment['reason']}" if deployment.get("reason") else message)


def follow(session, tenant, answer, started, wait_timeout, succeeded, view):
    """Report each status change of the deployment ``answer`` until it settles, then print it
    (``view``, or the final JSON); exit 1 unless its status is one of ``succeeded``."""
    deployer = session.deployer
    try:
        outcome = waiting.watch(
            lambda: deployer.get_deployment(tenant, answer["id"]),
            answer,
            lambda elapsed, deployment: say(session, render.progress_line(elapsed, deployment)),
            wait_timeout,
            waiting.CLOCK,
            started,
        )
    except KeyboardInterrupt:
        raise CommandError(
            f"stopped watching deployment {answer.get('name')}; the deployer carries on",
            hint=f"keep watching with `{watch_command(answer, tenant)}`",
        ) from None
    if session.as_json:
        render.print_json(outcome.deployment)
    elif (shown := view(outcome.deployment)) is not None:
        render.emit(render.make_console(), shown)
    if outcome.timed_out or outcome.status not in succeeded:
        raise outcome_error(outcome, tenant, wait_timeout)


def carry_out(session, tenant, request, headline, no_wait, wait_timeout, succeeded=waiting.ROLLED_OUT):
    """Make the ``request`` (an RPC that answers the deployment at once), then print where it
    stands (--no-wait) or follow it to its end; ``headline(answer)`` says what was asked."""
    started = waiting.CLOCK.now()  # --wait-timeout counts from the request
    answer = request()
    headline = headline(answer)
    if no_wait:
        if session.as_json:
            render.print_json(answer)
            return
        click.echo(headline)
        click.echo(f"status {render.text(answer.get('status'))}; follow it with `{watch_command(answer, tenant)}`")
        return
    say(session, headline)
    follow(session, tenant, answer, started, wait_timeout, succeeded, render.instances_view)


def named(deployment):
    return f"{render.text(deployment.get('name'))} ({render.short_uuid(deployment.get('id'))})"


def new_revision(verb):
    def headline(answer):
        return (
            f"{verb} {named(answer)}: revision {render.text(answer.get('revision'))}, "
            f"{render.text(answer.get('image'))}"
        )

    return headline


def deploying(answer):
    return (
        f"Deploying {render.text(answer.get('image'))} as {render.text(answer.get('name'))} "
        f"(id {render.text(answer.get('id'))}): revision {render.text(answer.get('revision'))}, "
        f"{render.text(answer.get('replicas'))} replica(s) on pool {render.text(answer.get('pool'))}"
    )


# -- deployments: commands ------------------------------------------------------------------------


@cli.command()
@click.argument("image", metavar="NS/NAME[:TAG]")
@click.option("--name", required=True, metavar="NAME", help="the deployment's name, unique in the tenant (a DNS label)")
@click.option("--pool", metavar="POOL", help="the resource pool [default: the deployer's default pool]")
@click.option("--replicas", type=click.IntRange(min=0), metavar="N", help="instances to run [default: 1]")
@runtime_options
@wait_options
@session_options(tenant=True)
@click.pass_obj
def deploy(session, image, name, pool, replicas, no_wait, wait_timeout, **runtime):
    """Deploy an image version onto a resource pool and follow it until it runs.

    NS/NAME[:TAG] is a version of the public library or of the tenant's own images (without a
    tag, `latest`); the deployer pins its digest. Exit 0 once running, 1 if it failed or is still not
    running after --wait-timeout.
    """
    image = image_argument(image, "'NS/NAME[:TAG]'")
    tenant = session.require_tenant(TENANT_OWNS)
    spec = dict(name=name, image=image, **given(pool=pool, replicas=replicas, **runtime))
    carry_out(
        session, tenant, lambda: session.deployer.create_deployment(tenant, spec), deploying, no_wait, wait_timeout
    )


@cli.command()
@paging_options
@session_options(tenant=True)
@click.pass_obj
def deployments(session, page, page_size):
    """List the tenant's deployments (not removed ones), by name.

    REPLICAS is running/desired: instances whose health check passed, of those asked for.
    """
    tenant = session.require_tenant(TENANT_OWNS)
    result = session.deployer.list_deployments(tenant, page=page, page_size=page_size)
    show_list(session, result, render.deployments_table, "deployments", f"no deployments for tenant {tenant}")


@cli.command()
@deployment_argument
@click.option("--wait", is_flag=True, help="first follow the deployment until its operation ends")
@wait_timeout_option
@session_options(tenant=True)
@click.pass_obj
def deployment(session, deployment, wait, wait_timeout):
    """Show one deployment: its settings, status and instances.

    DEPLOYMENT is its ID, the start of its ID, or its name. With --wait, exit 1 unless it ends
    running, stopped or deleted.
    """
    tenant, deployment_id = tenant_and_id(session, deployment)
    started = waiting.CLOCK.now()
    result = session.deployer.get_deployment(tenant, deployment_id)
    if wait:
        follow(
            session, tenant, result, started, wait_timeout, waiting.ROLLED_OUT + waiting.REMOVED, render.deployment_view
        )
        return
    show(session, result, render.deployment_view)


@cli.command()
@deployment_argument
@click.argument("replicas", type=click.IntRange(min=0))
@wait_options
@session_options(tenant=True)
@click.pass_obj
def scale(session, deployment, replicas, no_wait, wait_timeout):
    """Run REPLICAS instances of the serving revision (0 stops them all)."""
    tenant, deployment_id = tenant_and_id(session, deployment)
    carry_out(
        session,
        tenant,
        lambda: session.deployer.scale_deployment(tenant, deployment_id, replicas),
        lambda answer: f"Scaling {named(answer)} to {replicas} replica(s)",
        no_wait,
        wait_timeout,
    )


@cli.command()
@deployment_argument
@click.option("--image", metavar="NS/NAME[:TAG]", callback=_image, help="deploy another image")
@click.option("--tag", callback=_tag, help="deploy another tag of the same image")
@runtime_options
@wait_options
@session_options(tenant=True)
@click.pass_obj
def update(session, deployment, image, tag, no_wait, wait_timeout, **runtime):
    """Roll out a new revision with other settings, host by host.

    Options left out keep their current values; --env and --port replace the whole set. A new
    instance must pass its health check before an old one stops; if the new revision fails, the
    previous one keeps serving (exit 1).
    """
    if image is not None and tag is not None:
        raise click.UsageError("give --image or --tag, not both (put the tag in the image reference)")
    changes = given(image=image, tag=tag, **runtime)
    if not changes:
        raise click.UsageError("nothing to change: give --image, --tag or a setting (--env, --port, …)")
    tenant, deployment_id = tenant_and_id(session, deployment)
    carry_out(
        session,
        tenant,
        lambda: session.deployer.update_deployment(tenant, deployment_id, changes),
        new_revision("Updating"),
        no_wait,
        wait_timeout,
    )


@cli.command("auto-deploy")
@deployment_argument
@click.argument("policy")
@session_options(tenant=True)
@click.pass_obj
def auto_deploy(session, deployment, policy):
    """Set which pushes roll the deployment out by themselves.

    POLICY is never (the default), force (a re-push of the tag it runs), semver:major, semver:minor
    or semver:patch (a higher version within that range; add +prerelease to take pre-releases,
    e.g. semver:minor+prerelease), glob:PATTERN or regexp:EXPRESSION (a pushed tag that matches,
    never a lower version). Takes effect at the next push; nothing is rolled out now.
    """
    tenant, deployment_id = tenant_and_id(session, deployment)
    result = session.deployer.set_auto_deploy(tenant, deployment_id, policy)
    if session.as_json:
        render.print_json(result)
        return
    click.echo(f"Auto-deploy of {named(result)}: {render.text((result.get('auto_deploy') or {}).get('policy'))}")


@cli.command()
@deployment_argument
@click.option(
    "--revision",
    type=click.IntRange(min=1),
    metavar="N",
    help="the revision to return to [default: the one that served before the serving one]",
)
@wait_options
@session_options(tenant=True)
@click.pass_obj
def rollback(session, deployment, revision, no_wait, wait_timeout):
    """Return to an earlier revision's image and settings (as a new revision)."""
    tenant, deployment_id = tenant_and_id(session, deployment)
    carry_out(
        session,
        tenant,
        lambda: session.deployer.rollback_deployment(tenant, deployment_id, revision=revision),
        new_revision("Rolling back"),
        no_wait,
        wait_timeout,
    )


@cli.command()
@deployment_argument
@paging_options
@session_options(tenant=True)
@click.pass_obj
def revisions(session, deployment, page, page_size):
    """List a deployment's revisions, newest first, with why each one failed."""
    tenant, deployment_id = tenant_and_id(session, deployment)
    result = session.deployer.list_revisions(tenant, deployment_id, page=page, page_size=page_size)
    show_list(session, result, render.revisions_table, "revisions", "no revisions", notes=render.revision_notes)


@cli.command()
@deployment_argument
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@wait_options
@session_options(tenant=True)
@click.pass_obj
def undeploy(session, deployment, yes, no_wait, wait_timeout):
    """Remove a deployment and every container it made, on every host.

    Without --yes the deployment is looked up first and the removal confirmed. Waits until the
    deployment is `deleted`.
    """
    tenant, deployment_id = tenant_and_id(session, deployment)
    deployer = session.deployer
    if not yes:
        current = deployer.get_deployment(tenant, deployment_id)
        click.confirm(
            f"Remove deployment {named(current)}: {len(current.get('instances') or [])} instance(s) of "
            f"{render.text(current.get('image'))} on pool {render.text(current.get('pool'))}?",
            abort=True,
            err=True,
        )
    carry_out(
        session,
        tenant,
        lambda: deployer.delete_deployment(tenant, deployment_id),
        lambda answer: f"Removing {named(answer)} and every container it made",
        no_wait,
        wait_timeout,
        succeeded=waiting.REMOVED,
    )


@cli.command()
@session_options()
@click.pass_obj
def pools(session):
    """List the resource pools: each host, whether it answers, and its free capacity."""
    result = session.deployer.list_pools()
    show_list(session, result, render.pools_table, "pools", "no resource pools", notes=render.pool_notes)


# -- reconciliation with the registry -------------------------------------------------------------
# The catalog runs a pass in a worker of its own and answers at once; the CLI follows it with
# get_resync (counters only while it runs), then fetches the report once.


def resync_follow_hint(pass_id=None):
    return f"follow it with `imagehub resync-status{'' if pass_id is None else f' {pass_id}'} --wait`"


def resync_progress(report):
    return (
        report.get("status"),
        report.get("repositories_total"),
        report.get("repositories_scanned"),
        report.get("tags_scanned"),
        tuple(sorted((report.get("counts") or {}).items())),
    )


def follow_resync(session, answer, started, wait_timeout):
    """Report the pass's progress until it ends, print its report, exit 1 unless it finished."""
    catalog, pass_id = session.catalog, answer["pass_id"]
    try:
        outcome = waiting.watch(
            lambda: catalog.get_resync(pass_id, items=False),
            answer,
            lambda elapsed, report: say(session, render.resync_progress_line(elapsed, report)),
            wait_timeout,
            waiting.CLOCK,
            started,
            done=lambda report: report.get("status") != "running",
            state=resync_progress,
        )
    except KeyboardInterrupt:
        raise CommandError(
            f"stopped watching resync pass {pass_id}; the catalog carries on", hint=resync_follow_hint(pass_id)
        ) from None
    if outcome.timed_out:
        raise CommandError(
            f"resync pass {pass_id} is still running after {wait_timeout:g} s (--wait-timeout); the catalog carries on",
            hint=resync_follow_hint(pass_id),
        )
    show_resync(session, catalog.get_resync(pass_id))


def show_resync(session, report):
    if session.as_json:
        render.print_json(report)
    else:
        click.echo(render.resync_summary(report))
        if any((report.get("counts") or {}).values()):
            console = render.make_console()
            render.emit(console, render.resync_table(console, report))
    if report.get("status") not in ("running", "finished"):
        raise CommandError(
            f"resync pass {report.get('pass_id')} {report.get('status')}: {render.text(report.get('error'))}"
        )


@cli.command()
@click.argument("namespace", required=False)
@click.option("--no-wait", is_flag=True, help="return once the pass has started")
@wait_timeout_option
@session_options()
@click.pass_obj
def resync(session, namespace, no_wait, wait_timeout):
    """Compare the catalogue with the registry and repair it (operators).

    Without NAMESPACE, the whole registry. Tags the catalogue missed are indexed, moved tags
    follow the registry, and tags the registry no longer has are removed once two passes in a row
    miss them. Shows the progress, then every change. Exit 1 if the pass failed or is still
    running after --wait-timeout.
    """
    if namespace is not None:
        try:
            validate_path_component(namespace, "namespace")
        except InvalidReference as exc:
            raise click.BadParameter(str(exc), param_hint="'NAMESPACE'") from None
    started = waiting.CLOCK.now()
    try:
        answer = session.catalog.resync(namespace)
    except Conflict as exc:
        raise CommandError(str(exc), hint=resync_follow_hint()) from exc
    if no_wait:
        if session.as_json:
            render.print_json(answer)
            return
        click.echo(
            f"Resync pass {answer['pass_id']} ({render.resync_scope(answer)}) started; "
            f"{resync_follow_hint(answer['pass_id'])}"
        )
        return
    say(session, f"Resync pass {answer['pass_id']} ({render.resync_scope(answer)})")
    follow_resync(session, answer, started, wait_timeout)


@cli.command("resync-status")
@click.argument("pass_id", metavar="[PASS]", type=click.IntRange(min=1), required=False)
@click.option("--wait", is_flag=True, help="first follow the pass until it ends")
@wait_timeout_option
@session_options()
@click.pass_obj
def resync_status(session, pass_id, wait, wait_timeout):
    """Show a resync pass and what it changed (without PASS, the latest)."""
    started = waiting.CLOCK.now()
    if wait:
        follow_resync(session, session.catalog.get_resync(pass_id, items=False), started, wait_timeout)
        return
    show_resync(session, session.catalog.get_resync(pass_id))


def main():
    # Library loggers (amqp, kombu) would otherwise reach stderr through logging's last resort.
    logging.getLogger().addHandler(logging.NullHandler())
    cli(prog_name="imagehub")
