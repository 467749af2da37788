"""Signing in and out: ``imagehub login`` asks ``auth.sign_in`` for an identity and keeps it
(``imagehub.sessions``); every later command sends it, so the services know on whose behalf
the CLI calls and which tenant it may act in."""

import sys
from collections.abc import Mapping
from typing import Any

import click

from imagehub import sessions
from imagehub.app import cli
from imagehub.common import CommandError, Session, session_options
from imagehub.rpc import Refused, RpcFailure, Unavailable
from shared.contracts.errors import ImagehubError


def _describe(entry: Mapping[str, Any]) -> str:
    who = entry.get("account")
    where = "platform admin" if entry.get("is_admin") else f"tenant {entry.get('tenant_id')}"
    return f"{who} ({where}), until {entry.get('expires_at')}"


@cli.command()
@click.option("--user", "-u", envvar="IMAGEHUB_USER", prompt="account", help="account name [env IMAGEHUB_USER]")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@session_options()
@click.pass_obj
def login(session: Session, user: str, password_stdin: bool) -> None:
    """Sign in with your account (the one you `docker login` with)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True)
    if not password:
        raise CommandError("no password given")
    answer = session.auth(anonymous=True).sign_in(user, password)
    sessions.save(session.amqp_uri, answer)
    click.echo(f"signed in as {_describe(answer)}")


@cli.command()
@session_options()
@click.pass_obj
def logout(session: Session) -> None:
    """End the session on the platform and forget the identity `imagehub login` stored."""
    entry = session.signed_in
    if entry is not None:
        try:
            session.auth().sign_out()
        except (ImagehubError, Refused, RpcFailure, Unavailable) as exc:
            # Forgotten here all the same; the platform lets it lapse when it expires.
            click.echo(
                f"warning: the platform did not end the session ({exc}); it lapses at {entry.get('expires_at')}",
                err=True,
            )
    if sessions.forget(session.amqp_uri):
        click.echo("signed out")
    else:
        click.echo("not signed in")


@cli.command()
@session_options()
@click.pass_obj
def whoami(session: Session) -> None:
    """Who the CLI calls as, on this broker."""
    entry = session.signed_in
    if entry is None:
        raise CommandError("not signed in (or the identity expired)", hint="sign in with `imagehub login`")
    click.echo(_describe(entry))
