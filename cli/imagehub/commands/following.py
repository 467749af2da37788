"""Following a deployment after a request, until it settles: progress lines, then its view."""

from collections.abc import Callable, Mapping
from typing import Any

import click
from rich.console import RenderableType

from imagehub import render, waiting
from imagehub.commands import deployment_views
from imagehub.common import (
    CommandError,
    Session,
    say,
)


def watch_command(deployment: Mapping[str, Any], tenant: str) -> str:
    return f"imagehub deployment {deployment.get('id')} --wait --tenant {tenant}"


FAILURES = {
    "failed": "failed",
    "rollout_failed": "could not roll out",
    "rolled_back": "was rolled back",
    "degraded": "is degraded",
    "deleting": "is being removed",
    "deleted": "was removed",
}


def outcome_error(outcome: waiting.Outcome, tenant: str, wait_timeout: float) -> CommandError:
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


def follow(
    session: Session,
    tenant: str,
    answer: dict[str, Any],
    started: float,
    wait_timeout: float,
    succeeded: tuple[str, ...],
    view: Callable[[Mapping[str, Any]], RenderableType | None],
) -> None:
    """Report each status change of the deployment ``answer`` until it settles, then print it
    (``view``, or the final JSON); exit 1 unless its status is one of ``succeeded``."""
    deployer = session.deployer
    try:
        outcome = waiting.watch(
            lambda: deployer.get_deployment(tenant, answer["id"]),
            answer,
            lambda elapsed, deployment: say(session, deployment_views.progress_line(elapsed, deployment)),
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


def carry_out(
    session: Session,
    tenant: str,
    request: Callable[[], dict[str, Any]],
    headline: Callable[[dict[str, Any]], str],
    no_wait: bool,
    wait_timeout: float,
    succeeded: tuple[str, ...] = waiting.ROLLED_OUT,
) -> None:
    """Make the ``request`` (an RPC that answers the deployment at once), then print where it
    stands (--no-wait) or follow it to its end; ``headline(answer)`` says what was asked."""
    started = waiting.CLOCK.now()  # --wait-timeout counts from the request
    answer = request()
    headline = headline(answer)  # type: ignore[assignment]  # the parameter's name is reused for its line
    if no_wait:
        if session.as_json:
            render.print_json(answer)
            return
        click.echo(headline)
        click.echo(f"status {render.text(answer.get('status'))}; follow it with `{watch_command(answer, tenant)}`")
        return
    say(session, headline)  # type: ignore[arg-type]  # a str by now: see above
    follow(session, tenant, answer, started, wait_timeout, succeeded, deployment_views.instances_view)


def named(deployment: Mapping[str, Any]) -> str:
    return f"{render.text(deployment.get('name'))} ({deployment_views.short_uuid(deployment.get('id'))})"


def new_revision(verb: str) -> Callable[[Mapping[str, Any]], str]:
    def headline(answer: Mapping[str, Any]) -> str:
        return (
            f"{verb} {named(answer)}: revision {render.text(answer.get('revision'))}, "
            f"{render.text(answer.get('image'))}"
        )

    return headline


def deploying(answer: Mapping[str, Any]) -> str:
    return (
        f"Deploying {render.text(answer.get('image'))} as {render.text(answer.get('name'))} "
        f"(id {render.text(answer.get('id'))}): revision {render.text(answer.get('revision'))}, "
        f"{render.text(answer.get('replicas'))} replica(s) on pool {render.text(answer.get('pool'))}"
    )
