"""How deployments, their instances, revisions and progress look on a terminal."""

import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from imagehub import render

SHORT_UUID = 8  # the first group of a deployment's UUID: what `imagehub deployments` shows


def short_uuid(value: object) -> str:
    return str(value)[:SHORT_UUID] if value else render.MISSING


def number(value: float | str | None) -> str:
    """``30.0`` → ``30``, ``0.25`` → ``0.25``."""
    return render.MISSING if value is None else f"{float(value):g}"


def free_of_total(free: Any, total: Any, unit: Callable[[Any], str]) -> str:
    return f"{unit(free)}/{unit(total)}"


def running_count(deployment: Mapping[str, Any]) -> int:
    """Instances whose health check passed (state ``running``)."""
    return sum(1 for i in deployment.get("instances") or [] if i.get("state") == "running")


def replicas_text(deployment: Mapping[str, Any]) -> str:
    """``running/desired``."""
    return f"{running_count(deployment)}/{render.text(deployment.get('replicas'))}"


def progress_line(elapsed: float, deployment: Mapping[str, Any]) -> str:
    """``   2.5s  starting`` (``: reason`` when there is one): one line per change while waiting."""
    line = f"{elapsed:6.1f}s  {render.text(deployment.get('status'))}"
    return f"{line}: {deployment['reason']}" if deployment.get("reason") else line


def command_text(command: list[str] | str | None) -> str:
    if not command:
        return "(the image's own)"
    return shlex.join(command) if isinstance(command, list) else str(command)


def env_text(env: Mapping[str, object] | None) -> str:
    """One ``KEY=VALUE`` per line, sorted."""
    return "\n".join(f"{key}={value}" for key, value in sorted((env or {}).items())) or render.MISSING


def port_text(port: Mapping[str, Any]) -> str:
    container, host = port.get("container_port"), port.get("host_port")
    host = f"host {host}" if host else "host port allocated"
    return f"{container} -> {host}" if container else host


def health_text(health: Mapping[str, Any] | None) -> str:
    if not health:
        return render.MISSING
    if health.get("type") == "http":
        return (
            f"http GET {health.get('path')} on ports[{health.get('port_index')}], answered within "
            f"{number(health.get('timeout'))} s"
        )
    return f"running for {number(health.get('seconds'))} s"


def deployments_table(console: Console, result: Mapping[str, Any]) -> Table:
    rows = [
        (
            short_uuid(d.get("id")),
            d.get("name"),
            d.get("image"),
            d.get("revision"),
            replicas_text(d),
            d.get("status"),
            render.time_short(d.get("updated_at")),
        )
        for d in result.get("items") or []
    ]
    return render.fitted_table(
        console, ["ID", "NAME", "IMAGE", "REVISION>", "REPLICAS>", "STATUS", "UPDATED"], rows, flexible="IMAGE"
    )


def instances_table(instances: Iterable[Mapping[str, Any]]) -> Table:
    """Where each replica runs and answers; the reason (why it is not running) wraps, nothing is cut."""
    table = render.plain_table("HOST", "ADDRESS", "STATE", "REVISION>", "CONTAINER", "REASON")
    reason = table.columns[-1]
    reason.no_wrap, reason.overflow = False, "fold"
    for instance in instances:
        table.add_row(
            *(
                Text(render.text(cell))
                for cell in (
                    instance.get("host"),
                    instance.get("address"),
                    instance.get("state"),
                    instance.get("revision"),
                    render.short_id(instance.get("container_id")),
                    instance.get("reason"),
                )
            )
        )
    return table


def instances_view(deployment: Mapping[str, Any]) -> Table | Text | None:
    """The instances table, a line saying there are none, or None once the deployment is gone."""
    instances = deployment.get("instances") or []
    if instances:
        return instances_table(instances)
    return None if deployment.get("status") == "deleted" else Text("no instances")


def revision_text(deployment: Mapping[str, Any]) -> str:
    revision, serving = deployment.get("revision"), deployment.get("serving_revision")
    if serving is None or serving == revision:
        return render.text(revision)
    return f"{revision} (revision {serving} serving)"


def pending_push_pairs(push: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """A row for a push the policy follows that waits for the operation in progress, if any."""
    if not push:
        return []
    return [
        (
            "Pending",
            f"push of {render.text(push.get('tag'))} ({render.short_digest(push.get('digest'))}), rolled out when "
            f"the operation in progress ends",
        )
    ]


def strategy_pairs(spec: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """How a new revision replaces the instances, and where a swarm may place them (when set)."""
    pairs: list[tuple[str, Any]] = []
    if spec.get("update_strategy"):
        pairs.append(("Update", spec["update_strategy"]))
    placement = spec.get("placement") or {}
    rules = list(placement.get("constraints") or [])
    if placement.get("max_per_node"):
        rules.append(f"at most {placement['max_per_node']} per node")
    if rules:
        pairs.append(("Placement", render.joined(rules)))
    return pairs


def deployment_view(deployment: Mapping[str, Any]) -> Group:
    """The image and settings shown are the newest revision's, which is not always the serving one."""
    spec = deployment.get("spec") or {}
    pairs = [
        ("ID", deployment.get("id")),
        ("Revision", revision_text(deployment)),
        ("Image", deployment.get("image")),
        ("Digest", deployment.get("digest")),
        ("Pool", deployment.get("pool")),
        ("Replicas", f"{render.text(deployment.get('replicas'))} ({running_count(deployment)} running)"),
        ("Status", deployment.get("status")),
        ("Reason", deployment.get("reason")),
        ("Command", command_text(spec.get("command"))),
        ("Env", env_text(spec.get("env"))),
        ("Ports", render.joined([port_text(p) for p in spec.get("ports") or []])),
        ("CPUs", number(spec.get("cpu"))),
        ("Memory", render.human_size(spec.get("memory_bytes"))),
        ("Restart", spec.get("restart_policy")),
        ("Health", health_text(spec.get("health"))),
        *strategy_pairs(spec),
        ("Auto-deploy", (deployment.get("auto_deploy") or {}).get("policy")),
        *pending_push_pairs(deployment.get("pending_push")),
        ("Created", render.time_long(deployment.get("created_at"))),
        ("Updated", render.time_long(deployment.get("updated_at"))),
    ]
    if deployment.get("deleted_at"):
        pairs.append(("Deleted", render.time_long(deployment.get("deleted_at"))))
    panel = render.key_value_panel(render.text(deployment.get("name")), pairs)
    instances = deployment.get("instances") or []
    if not instances:
        return Group(panel, Text("no instances"))
    return Group(panel, Text(""), instances_table(instances))


def trigger_text(revision: Mapping[str, Any]) -> str:
    """``update``, ``rollback to 1``, ``auto-deploy by alice`` (who pushed what it follows)."""
    if revision.get("rollback_to") is not None:
        return f"{render.text(revision.get('trigger'))} to {revision['rollback_to']}"
    actor = (revision.get("push") or {}).get("actor")
    if actor:
        return f"{render.text(revision.get('trigger'))} by {actor}"
    return render.text(revision.get("trigger"))


def revisions_table(console: Console, result: Mapping[str, Any]) -> Table:
    rows = [
        (
            r.get("revision"),
            r.get("image"),
            render.short_digest(r.get("digest")),
            r.get("status"),
            trigger_text(r),
            render.time_short(r.get("created_at")),
        )
        for r in result.get("items") or []
    ]
    return render.fitted_table(
        console, ["REVISION>", "IMAGE", "DIGEST", "STATUS", "TRIGGER", "CREATED"], rows, flexible="IMAGE"
    )


def revision_notes(result: Mapping[str, Any]) -> list[str]:
    """Lines under the revisions table: why each failed one failed, in full."""
    return [f"revision {r.get('revision')}: {r['reason']}" for r in result.get("items") or [] if r.get("reason")]
