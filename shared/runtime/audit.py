"""The audit trail: every state-changing call, who made it, on whose behalf, what, when, and how it
ended, kept append-only in the database of the service that answered it.

* ``AuditRecordMixin``: the ``audit_log`` table each service mixes into its ``Base`` (its
  migrations create it). Rows are only ever inserted: no code here or in a service updates or
  deletes one.
* ``AuditTrail`` (a dependency provider): declared with the names of the service's
  state-changing RPC methods, it writes one row when such a call ends — answered, refused
  (``Forbidden``, ``Unauthorized``, ``Conflict``, ...) or failed — from the worker's verified
  identity (``shared.runtime.identity``), the ``tenant_id`` the call named and the thing it
  named (a repository and tag, a deployment, an account). It writes in its own transaction after
  the call, so a refused call is recorded too; a process killed between the call's commit and
  the record loses that record (docs/security.md).
* ``list_audit``: what each service's ``list_audit`` RPC answers; ``AuditListing``: that RPC, mixed
  into a service class.
"""

import inspect
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from marshmallow import fields, validate
from nameko.containers import WorkerContext
from nameko.extensions import DependencyProvider
from sqlalchemy.orm import Mapped, Session, mapped_column

from shared.contracts.errors import USER_ERRORS, ImagehubError
from shared.contracts.schemas import Paging, load_args, validate_tenant_id
from shared.runtime.clock import utcnow
from shared.runtime.identity import BROKER_USER_KEY, CallerContext, Identity, IdentityVerifier, identify, rpc
from shared.runtime.pagination import after_id, encode_cursor, listing, page_of

log = logging.getLogger(__name__)

TEXT = 255
OK = "ok"


class AuditRecordMixin:
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(sa.String(64))  # "<service>.<method>"
    actor: Mapped[str] = mapped_column(sa.String(TEXT))  # who: "dev-1@t1", "platform:deployer", ...
    broker_user: Mapped[str | None] = mapped_column(sa.String(TEXT))  # through which broker user
    on_behalf_of: Mapped[str | None] = mapped_column(sa.String(TEXT))  # the person, if one
    tenant_id: Mapped[str | None] = mapped_column(sa.String(TEXT), index=True)  # the tenant acted in
    target: Mapped[str | None] = mapped_column(sa.String(1024))  # what: "t1/app:v1", a deployment ID
    outcome: Mapped[str] = mapped_column(sa.String(64))  # "ok", or the error's class name
    detail: Mapped[str | None] = mapped_column(sa.Text())  # the error's message


def _text(value: Any, limit: int = TEXT) -> str | None:
    """What a column can hold of any value a caller sent: NUL and lone surrogates (which no database
    stores) escaped, cut to ``limit``."""
    if value is None:
        return None
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return text[:limit]


def describe_caller(context_data: Mapping[str, Any], verifier: IdentityVerifier | None) -> tuple[str, Identity | None]:
    """``(actor, identity)``: the verified identity, or what is known of a caller that had none."""
    try:
        identity = identify(context_data, verifier)
    except ImagehubError:
        return f"unverified:{context_data.get(BROKER_USER_KEY) or 'unknown'}", None
    return identity.describe(), identity


# A method's target: the arguments (besides tenant_id) that name the thing it changes.
TargetOf = Callable[[Mapping[str, Any]], str | None]


def target_from(*names: str) -> TargetOf:
    """``repository:tag`` style: the named arguments that were given, joined by ``:``."""

    def target(arguments: Mapping[str, Any]) -> str | None:
        given = [str(arguments[n]) for n in names if arguments.get(n) is not None]
        return ":".join(given) or None

    return target


def new_record(model: type[Any], **fields: Any) -> Any:
    """A row to add in the session of the change it records (what a service does on its own,
    auto-deploy say, with no RPC call to hang it on)."""
    return model(
        at=utcnow(), **{k: _text(v, 1024 if k == "target" else TEXT) if k != "detail" else v for k, v in fields.items()}
    )


class AuditTrail(DependencyProvider):
    """``audit = AuditTrail(AuditRecord, {"delete_tag": target_from("repository", "tag"), ...})`` on a
    service with a ``db`` and a ``caller`` (``shared.runtime.identity.Caller``)."""

    def __init__(self, model: type[Any], actions: Mapping[str, TargetOf], database_attribute: str = "db") -> None:
        self.model = model
        self.actions = dict(actions)
        self.database_attribute = database_attribute

    def get_dependency(self, worker_ctx: WorkerContext) -> None:
        return None

    def worker_result(self, worker_ctx: WorkerContext, result: Any = None, exc_info: Any = None) -> None:
        method = worker_ctx.entrypoint.method_name
        if method not in self.actions:
            return
        try:
            self._record(worker_ctx, method, exc_info)
        except Exception:  # the call's own answer stands whatever happens here; the log says why
            log.exception("audit: could not record %s.%s", worker_ctx.service_name, method)

    def _record(self, worker_ctx: WorkerContext, method: str, exc_info: Any) -> None:
        service = worker_ctx.service
        bound = inspect.signature(getattr(type(service), method)).bind_partial(
            service, *worker_ctx.args, **worker_ctx.kwargs
        )
        arguments = dict(bound.arguments)
        caller = getattr(service, "caller", None)
        verifier = caller.verifier if isinstance(caller, CallerContext) else None
        actor, identity = describe_caller(worker_ctx.context_data, verifier)
        error = exc_info[1] if exc_info else None
        tenant = arguments.get("tenant_id")
        record = self.model(
            at=utcnow(),
            action=f"{worker_ctx.service_name}.{method}",
            actor=_text(actor),
            broker_user=_text(worker_ctx.context_data.get(BROKER_USER_KEY)),
            on_behalf_of=_text(identity.name) if identity is not None and not identity.is_platform else None,
            tenant_id=_text(tenant if isinstance(tenant, str) else None),
            target=_text(self.actions[method](arguments), 1024),
            outcome=OK if error is None else type(error).__name__[:64],
            detail=None if error is None else _text(error, 2000),
        )
        database = getattr(service, self.database_attribute)
        with database.get_session(close_on_exit=True) as session:
            session.add(record)
            session.commit()


class AuditQuery(Paging):
    tenant_id = fields.String(load_default=None, allow_none=True, validate=validate_tenant_id)
    action = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=64))
    actor = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=TEXT))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=512))


def list_audit(session: Session, model: type[Any], caller: CallerContext, **arguments: Any) -> dict[str, Any]:
    """What each service's ``list_audit(tenant_id=None, action=None, actor=None, page, page_size,
    cursor=None)`` answers, newest first: a tenant's records to whoever may act in it (its
    developers, the platform, admins), every tenant's (``tenant_id=None``) to the platform and
    admins only. Each answer carries ``next_cursor`` (None at the end): passed back as ``cursor``,
    it gives the records after the last one seen, however many were added meanwhile (``total``
    and ``page`` are then None)."""
    args = load_args(AuditQuery, **arguments)
    if args["tenant_id"] is None:
        caller.platform_or_admin()
    else:
        caller.for_tenant(args["tenant_id"])
    query = sa.select(model)
    if args["tenant_id"] is not None:
        query = query.where(model.tenant_id == args["tenant_id"])
    if args["action"]:
        query = query.where(model.action == args["action"])
    if args["actor"]:
        query = query.where(model.actor == args["actor"])
    if args["cursor"] is not None:  # the position after the last record seen: no row skipped or seen twice
        rows, next_cursor = after_id(session, query, model.id, args["cursor"], args["page_size"])
        answer = listing([dump(r) for r in rows], len(rows), 1, args["page_size"])
        return dict(answer, total=None, page=None, next_cursor=next_cursor)
    rows, total = page_of(session, query.order_by(model.id.desc()), args["page"], args["page_size"])
    answer = listing([dump(r) for r in rows], total, args["page"], args["page_size"])
    more = args["page"] * args["page_size"] < total
    return dict(answer, next_cursor=encode_cursor({"id": rows[-1].id}) if more and rows else None)


def dump(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": record.at.isoformat(),
        "action": record.action,
        "actor": record.actor,
        "broker_user": record.broker_user,
        "on_behalf_of": record.on_behalf_of,
        "tenant_id": record.tenant_id,
        "target": record.target,
        "outcome": record.outcome,
        "detail": record.detail,
    }


class AuditListing:
    """Mixed into a service class: its ``list_audit`` RPC (see ``list_audit``), over the service's
    ``db``, ``caller`` and ``audit_model`` (its ``AuditRecord``)."""

    audit_model: type[Any]
    db: Any
    caller: Any

    @rpc(expected_exceptions=USER_ERRORS)
    def list_audit(
        self,
        tenant_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        page: int = 1,
        page_size: int = 50,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        """The audit trail of this service's state-changing calls, newest first: a tenant's records
        to whoever may act in it, every tenant's (``tenant_id=None``) to the platform and platform
        admins. ``InvalidRequest``, ``Forbidden``, ``Unauthorized``."""
        with self.db.get_session(close_on_exit=True) as session:
            return list_audit(
                session,
                self.audit_model,
                self.caller,
                tenant_id=tenant_id,
                action=action,
                actor=actor,
                page=page,
                page_size=page_size,
                cursor=cursor,
            )
