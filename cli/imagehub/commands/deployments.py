"""The deployment commands: deploy, deployments, deployment, scale, update, auto-deploy, rollback,
revisions, undeploy."""

from typing import Any

import click

from imagehub import render, waiting
from imagehub.app import cli
from imagehub.commands import deployment_args, deployment_views, following
from imagehub.common import (
    Session,
    paging_options,
    session_options,
    show,
    show_list,
)


@cli.command()
@click.argument("image", metavar="NS/NAME[:TAG]")
@click.option("--name", required=True, metavar="NAME", help="the deployment's name, unique in the tenant (a DNS label)")
@click.option("--pool", metavar="POOL", help="the resource pool [default: the deployer's default pool]")
@click.option("--replicas", type=click.IntRange(min=0), metavar="N", help="instances to run [default: 1]")
@deployment_args.runtime_options
@deployment_args.wait_options
@session_options(tenant=True)
@click.pass_obj
def deploy(
    session: Session,
    image: str,
    name: str,
    pool: str | None,
    replicas: int | None,
    no_wait: bool,
    wait_timeout: float,
    **runtime: Any,
) -> None:
    """Deploy an image version onto a resource pool and follow it until it runs.

    NS/NAME[:TAG] is a version of the public library or of the tenant's own images (without a
    tag, `latest`); the deployer pins its digest. Exit 0 once running, 1 if it failed or is still not
    running after --wait-timeout.
    """
    image = deployment_args.image_argument(image, "'NS/NAME[:TAG]'")
    tenant = session.require_tenant(deployment_args.TENANT_OWNS)
    spec = dict(name=name, image=image, **deployment_args.given(pool=pool, replicas=replicas, **runtime))
    following.carry_out(
        session,
        tenant,
        lambda: session.deployer.create_deployment(tenant, spec),
        following.deploying,
        no_wait,
        wait_timeout,
    )


@cli.command()
@paging_options
@session_options(tenant=True)
@click.pass_obj
def deployments(session: Session, page: int, page_size: int) -> None:
    """List the tenant's deployments (not removed ones), by name.

    REPLICAS is running/desired: instances whose health check passed, of those asked for.
    """
    tenant = session.require_tenant(deployment_args.TENANT_OWNS)
    result = session.deployer.list_deployments(tenant, page=page, page_size=page_size)
    show_list(session, result, deployment_views.deployments_table, "deployments", f"no deployments for tenant {tenant}")


@cli.command()
@deployment_args.deployment_argument
@click.option("--wait", is_flag=True, help="first follow the deployment until its operation ends")
@deployment_args.wait_timeout_option
@session_options(tenant=True)
@click.pass_obj
def deployment(session: Session, deployment: str, wait: bool, wait_timeout: float) -> None:
    """Show one deployment: its settings, status and instances.

    DEPLOYMENT is its ID, the start of its ID, or its name. With --wait, exit 1 unless it ends
    running, stopped or deleted.
    """
    tenant, deployment_id = deployment_args.tenant_and_id(session, deployment)
    started = waiting.CLOCK.now()
    result = session.deployer.get_deployment(tenant, deployment_id)
    if wait:
        following.follow(
            session,
            tenant,
            result,
            started,
            wait_timeout,
            waiting.ROLLED_OUT + waiting.REMOVED,
            deployment_views.deployment_view,
        )
        return
    show(session, result, deployment_views.deployment_view)


@cli.command()
@deployment_args.deployment_argument
@click.argument("replicas", type=click.IntRange(min=0))
@deployment_args.wait_options
@session_options(tenant=True)
@click.pass_obj
def scale(session: Session, deployment: str, replicas: int, no_wait: bool, wait_timeout: float) -> None:
    """Run REPLICAS instances of the serving revision (0 stops them all)."""
    tenant, deployment_id = deployment_args.tenant_and_id(session, deployment)
    following.carry_out(
        session,
        tenant,
        lambda: session.deployer.scale_deployment(tenant, deployment_id, replicas),
        lambda answer: f"Scaling {following.named(answer)} to {replicas} replica(s)",
        no_wait,
        wait_timeout,
    )


@cli.command()
@deployment_args.deployment_argument
@click.option("--image", metavar="NS/NAME[:TAG]", callback=deployment_args._image, help="deploy another image")
@click.option("--tag", callback=deployment_args._tag, help="deploy another tag of the same image")
@deployment_args.runtime_options
@deployment_args.wait_options
@session_options(tenant=True)
@click.pass_obj
def update(
    session: Session,
    deployment: str,
    image: str | None,
    tag: str | None,
    no_wait: bool,
    wait_timeout: float,
    **runtime: Any,
) -> None:
    """Roll out a new revision with other settings, one instance at a time.

    Options left out keep their current values; --env, --port and the placement options replace
    the whole set. Start-first (the default), a new instance must pass its health check before an
    old one stops; stop-first, the old one stops first. If the new revision fails, the previous one
    keeps serving (exit 1).
    """
    if image is not None and tag is not None:
        raise click.UsageError("give --image or --tag, not both (put the tag in the image reference)")
    changes = deployment_args.given(image=image, tag=tag, **runtime)
    if not changes:
        raise click.UsageError("nothing to change: give --image, --tag or a setting (--env, --port, …)")
    tenant, deployment_id = deployment_args.tenant_and_id(session, deployment)
    following.carry_out(
        session,
        tenant,
        lambda: session.deployer.update_deployment(tenant, deployment_id, changes),
        following.new_revision("Updating"),
        no_wait,
        wait_timeout,
    )


@cli.command("auto-deploy")
@deployment_args.deployment_argument
@click.argument("policy")
@session_options(tenant=True)
@click.pass_obj
def auto_deploy(session: Session, deployment: str, policy: str) -> None:
    """Set which pushes roll the deployment out by themselves.

    POLICY is never (the default), force (a re-push of the tag it runs), semver:major, semver:minor
    or semver:patch (a higher version within that range; add +prerelease to take pre-releases,
    e.g. semver:minor+prerelease), glob:PATTERN or regexp:EXPRESSION (a pushed tag that matches,
    never a lower version). Takes effect at the next push; nothing is rolled out now.
    """
    tenant, deployment_id = deployment_args.tenant_and_id(session, deployment)
    result = session.deployer.set_auto_deploy(tenant, deployment_id, policy)
    if session.as_json:
        render.print_json(result)
        return
    click.echo(
        f"Auto-deploy of {following.named(result)}: {render.text((result.get('auto_deploy') or {}).get('policy'))}"
    )


@cli.command()
@deployment_args.deployment_argument
@click.option(
    "--revision",
    type=click.IntRange(min=1),
    metavar="N",
    help="the revision to return to [default: the one that served before the serving one]",
)
@deployment_args.wait_options
@session_options(tenant=True)
@click.pass_obj
def rollback(session: Session, deployment: str, revision: int | None, no_wait: bool, wait_timeout: float) -> None:
    """Return to an earlier revision's image and settings (as a new revision)."""
    tenant, deployment_id = deployment_args.tenant_and_id(session, deployment)
    following.carry_out(
        session,
        tenant,
        lambda: session.deployer.rollback_deployment(tenant, deployment_id, revision=revision),
        following.new_revision("Rolling back"),
        no_wait,
        wait_timeout,
    )


@cli.command()
@deployment_args.deployment_argument
@paging_options
@session_options(tenant=True)
@click.pass_obj
def revisions(session: Session, deployment: str, page: int, page_size: int) -> None:
    """List a deployment's revisions, newest first, with why each one failed."""
    tenant, deployment_id = deployment_args.tenant_and_id(session, deployment)
    result = session.deployer.list_revisions(tenant, deployment_id, page=page, page_size=page_size)
    show_list(
        session,
        result,
        deployment_views.revisions_table,
        "revisions",
        "no revisions",
        notes=deployment_views.revision_notes,
    )


@cli.command()
@deployment_args.deployment_argument
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@deployment_args.wait_options
@session_options(tenant=True)
@click.pass_obj
def undeploy(session: Session, deployment: str, yes: bool, no_wait: bool, wait_timeout: float) -> None:
    """Remove a deployment and every container it made, on every host.

    Without --yes the deployment is looked up first and the removal confirmed. Waits until the
    deployment is `deleted`.
    """
    tenant, deployment_id = deployment_args.tenant_and_id(session, deployment)
    deployer = session.deployer
    if not yes:
        current = deployer.get_deployment(tenant, deployment_id)
        click.confirm(
            f"Remove deployment {following.named(current)}: {len(current.get('instances') or [])} instance(s) of "
            f"{render.text(current.get('image'))} on pool {render.text(current.get('pool'))}?",
            abort=True,
            err=True,
        )
    following.carry_out(
        session,
        tenant,
        lambda: deployer.delete_deployment(tenant, deployment_id),
        lambda answer: f"Removing {following.named(answer)} and every container it made",
        no_wait,
        wait_timeout,
        succeeded=waiting.REMOVED,
    )
