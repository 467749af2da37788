"""What every command shares: the invocation's session (its RPC connection and options), the
options that may stand before or after a command, reference arguments, and how answers print."""

from collections.abc import Callable, Iterable, Mapping
from typing import IO, Any, TypeVar

import click
from rich.console import Console, RenderableType

from imagehub import render, sessions
from imagehub.rpc import (
    DEFAULT_AMQP_URI,
    DEFAULT_TIMEOUT,
    Auth,
    Catalog,
    Connect,
    Deployer,
    Refused,
    RpcFailure,
    Transport,
    Unavailable,
)
from shared.contracts.errors import ImagehubError, InvalidReference, Unauthorized
from shared.contracts.reference import Reference, parse_reference, validate_tag

TENANT_ENV = "IMAGEHUB_TENANT"

# A command function (or a click command) that a decorator hands back as it got it, options added.
F = TypeVar("F", bound=Callable[..., Any])


class CommandError(click.ClickException):
    """``error: <message>`` (and ``hint: …``) on stderr, exit code 1."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)
        if self.hint:
            click.echo(f"hint: {self.hint}", err=True)


class ImagehubGroup(click.Group):
    """Turns the errors an RPC can end in into ``CommandError``: one mapping for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Unauthorized as exc:
            raise CommandError(str(exc), hint="sign in with `imagehub login`") from exc
        except Refused as exc:
            raise CommandError(
                str(exc), hint="each broker user may call only what deploy/broker/access.yml gives it"
            ) from exc
        except (ImagehubError, Unavailable, RpcFailure) as exc:
            raise CommandError(str(exc)) from exc


class Session:
    """Settings of one invocation and its RPC connection, opened on the first call."""

    def __init__(self, connect: Connect, amqp_uri: str, timeout: float, tenant: str | None, as_json: bool) -> None:
        self.connect = connect
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self._tenant = tenant
        self.as_json = as_json
        self._transport: Transport | None = None

    @property
    def signed_in(self) -> dict[str, Any] | None:
        """What ``imagehub login`` stored for this broker (None: not signed in, or expired)."""
        return sessions.load(self.amqp_uri)

    @property
    def tenant(self) -> str | None:
        """``--tenant``, else the signed-in developer's own tenant."""
        if self._tenant:
            return self._tenant
        signed_in = self.signed_in
        return signed_in.get("tenant_id") if signed_in else None

    @tenant.setter
    def tenant(self, value: str | None) -> None:
        self._tenant = value

    def _connection(self, anonymous: bool = False) -> Transport:
        if self._transport is None:
            signed_in = None if anonymous else self.signed_in
            if signed_in:
                self._transport = self.connect(self.amqp_uri, self.timeout, identity=signed_in["identity"])
            else:
                self._transport = self.connect(self.amqp_uri, self.timeout)
        return self._transport

    def auth(self, anonymous: bool = False) -> Auth:
        return Auth(self._connection(anonymous))

    def list_audit(self, service: str, tenant_id: str | None, **filters: Any) -> dict[str, Any]:
        """``<service>.list_audit``: the audit trail of ``service`` (auth, catalog, deployer)."""
        result: dict[str, Any] = self._connection().call(service, "list_audit", tenant_id, **filters)
        return result

    @property
    def catalog(self) -> Catalog:
        return Catalog(self._connection())

    @property
    def deployer(self) -> Deployer:
        return Deployer(self._connection())

    def require_tenant(self, why: str) -> str:
        if not self.tenant:
            raise click.UsageError(f"--tenant (or ${TENANT_ENV}) is required: {why}")
        return self.tenant

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


# -- options that may stand before or after the command -------------------------------------------
# `imagehub --tenant t1 tags t1/app` and `imagehub tags t1/app --tenant t1` both work: the group
# reads the environment and defaults, a command's own option (when given) overrides them.


def _override(attribute: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value:  # not given (None, False); an empty --tenant "" is no tenant either
            setattr(ctx.find_object(Session), attribute, value)

    return callback


AMQP_HELP = f"broker URI, with the broker user's password [env AMQP_URI; default {DEFAULT_AMQP_URI}]"
TIMEOUT_HELP = f"seconds to wait for the service's answer [env IMAGEHUB_TIMEOUT; default {DEFAULT_TIMEOUT:g}]"
TENANT_HELP = f"the tenant to act in [env {TENANT_ENV}; default: the signed-in developer's own]"
JSON_HELP = "print the raw RPC result as JSON"
TIMEOUT_TYPE = click.FloatRange(min=0, min_open=True)


def session_options(tenant: bool = False) -> Callable[[F], F]:
    def decorate(command: F) -> F:
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


def paging_options(command: F) -> F:
    command = click.option(
        "--page-size", type=click.IntRange(min=1), default=50, show_default=True, help="items per page"
    )(command)
    return click.option("--page", type=click.IntRange(min=1), default=1, show_default=True, help="page number, from 1")(
        command
    )


# -- reference arguments --------------------------------------------------------------------------


def _has_tag(reference: str) -> bool:
    # A ':' after the last '/' (and before any '@') is a tag; one before it is a registry's port.
    return ":" in reference.split("@", 1)[0].rsplit("/", 1)[-1]


def parse_argument(reference: str, param_hint: str) -> Reference:
    try:
        return parse_reference(reference)
    except InvalidReference as exc:
        raise click.BadParameter(str(exc), param_hint=param_hint) from None


def repository_argument(reference: str) -> str:
    """``NS/NAME`` (a registry host in front, as in pull commands, is accepted) → ``"ns/name"``."""
    parsed = parse_argument(reference, "'NS/NAME'")
    if _has_tag(reference) or parsed.digest:
        raise click.BadParameter(
            f"{reference!r} names a version; give the repository only (NS/NAME)", param_hint="'NS/NAME'"
        )
    return parsed.repository


def tag_argument(reference: str, tag: str | None, default_latest: bool) -> tuple[str, str]:
    """``NS/NAME:TAG`` or ``NS/NAME TAG`` → ``("ns/name", "tag")``.

    Without a tag, ``latest`` when ``default_latest`` (reading, as ``docker pull`` does), else a
    usage error (deleting never guesses).
    """
    parsed = parse_argument(reference, "'NS/NAME:TAG'")
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
    # parse_reference gives a tag (`latest` if none is written) whenever there is no digest, refused above.
    return parsed.repository, parsed.tag  # type: ignore[return-value]  # Reference.tag is None only with a digest


# -- output ---------------------------------------------------------------------------------------


def show(session: Session, result: Mapping[str, Any], view: Callable[[Mapping[str, Any]], RenderableType]) -> None:
    """JSON for scripts, else the panel ``view(result)`` builds."""
    if session.as_json:
        render.print_json(result)
        return
    console = render.make_console()
    render.emit(console, view(result))


def show_list(
    session: Session,
    result: Mapping[str, Any],
    build: Callable[[Console, Mapping[str, Any]], RenderableType],
    noun: str,
    empty: str,
    notes: Callable[[Mapping[str, Any]], Iterable[str]] | None = None,
) -> None:
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


def matching(query: str | None) -> str:
    return f" matching {query!r}" if query else ""


def say(session: Session, line: str) -> None:
    """Progress is the output of a command, unless --json: then stdout is kept for the JSON."""
    click.echo(line, err=session.as_json)
