"""The catalog service: registry events in, the catalogue over RPC, ``tag_indexed``/``tag_removed`` out.

Entrypoints only translate: load with a schema, run the logic in one session, send the events
after the commit, dump with a schema. What happens when a handler fails is decided here, in one
place (``TRANSIENT_ERRORS``, given to ``shared.runtime.consumer``): a transient error returns the
event to its queue after a back-off, any other parks it as a dead letter with the reason. The
catalog also keeps the suite's dead-letter desk (``catalog.dead_letters``): it files every dead
letter of every service for platform admins, who list, show and replay them over RPC.

Outgoing events go through the transactional outbox (``catalog.outbox``): the logic writes them
in the transaction of the change; after the commit ``_send_outbox`` dispatches them, and the
``relay_outbox`` timer sends whatever that left behind.

Reconciliation passes (``catalog.resync``) run in a worker of ``run_resync``: started by its timer
every ``RESYNC_INTERVAL`` seconds, or at once by the ``resync`` RPC.
"""

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import eventlet
from marshmallow import Schema
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.orm import Session

from catalog import browsing, curation, dead_letters, deleting, indexing, outbox, resync, schemas
from catalog.dependencies import CatalogDatabase, CatalogSettings, Registry
from catalog.metrics import register_gauges
from catalog.mirror import schemas as mirror_schemas
from catalog.mirror import sources as library_sources
from catalog.mirror import sync as library_sync
from catalog.models import AuditRecord, Base
from shared.contracts.errors import USER_ERRORS, RegistryUnavailable, ServiceUnavailable
from shared.contracts.events import (
    EVENT_SET_ASIDE,
    IMAGE_DELETED,
    IMAGE_PUSHED,
    WEBHOOK,
    EventSetAside,
    ImageDeleted,
    ImagePushed,
    load_event,
)
from shared.contracts.reference import parse_reference
from shared.contracts.schemas import schema
from shared.runtime import audit  # the module, not its classes: `nameko run` takes every class here
from shared.runtime.audit import AuditTrail, target_from
from shared.runtime.clock import utcnow
from shared.runtime.consumer import RawMessage, Replayer, consume_dead_letters, consumes
from shared.runtime.identity import Caller, rpc
from shared.runtime.metrics import DatabaseGauges, Metrics
from shared.runtime.publishing import BROKER_ERRORS, ConfirmedEventDispatcher
from shared.runtime.timers import JobStarter, config_timer, job_timer
from shared.runtime.uow import Transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a transaction puts in the outbox: ``(event_type, payload)`` per event (``catalog.outbox.emit``).
Outgoing = Sequence[tuple[str, dict[str, Any]]]

# Worth another try: the registry or the database is away (or its schema not migrated yet), or
# a concurrent worker won a race on a unique constraint and a retry will find its row. Anything
# else (a payload that breaks the contract, a manifest that is not an image, a bug) cannot get
# better by retrying: the event is parked as a dead letter with the reason
# (``shared.runtime.consumer``), kept for an operator rather than redelivered forever.
TRANSIENT_ERRORS = (RegistryUnavailable, DBAPIError)
# ... except the database's refusal of a value (an overlong or NUL-bearing text): the same again.
PERMANENT_ERRORS = (DataError,)


class CatalogService(audit.AuditListing):
    name = "catalog"

    db = CatalogDatabase(Base)
    registry = Registry()
    dispatch = ConfirmedEventDispatcher()
    replayer = Replayer()
    settings = CatalogSettings()
    resync_jobs = JobStarter("run_resync")
    library_jobs = JobStarter("run_library_sync")
    caller = Caller()
    audit_model = AuditRecord
    metrics = Metrics()
    gauges = DatabaseGauges("db", register_gauges)
    audit_trail = AuditTrail(
        AuditRecord,
        {
            "delete_tag": target_from("repository", "tag"),
            "set_repository_info": target_from("repository"),
            "resync": target_from("namespace"),
            "set_library_source": target_from("name"),
            "remove_library_source": target_from("name"),
            "sync_library": target_from("source"),
        },
    )

    # -- events in -----------------------------------------------------------------------------

    @consumes(WEBHOOK, IMAGE_PUSHED, transient=TRANSIENT_ERRORS, permanent=PERMANENT_ERRORS, batch=True)
    def handle_image_pushed(self, payloads: list[Any]) -> list[Exception | None]:
        """The pushes that have arrived, in one transaction (``indexing.record_pushes``); one
        outcome per payload for ``shared.runtime.consumer``: None, or what that event failed with.
        Should the batch's transaction fail for another reason than the database being away, each
        event is applied alone, as it would have been without batching: one event's failure is
        its own."""
        outcomes: list[Exception | None] = [None] * len(payloads)
        events: dict[str, dict[str, Any]] = {}
        positions: dict[str, list[int]] = {}  # a copy redelivered into the same batch shares its outcome
        for i, payload in enumerate(payloads):
            try:
                event = load_event(ImagePushed, payload)
            except Exception as exc:  # noqa: BLE001 - that event's failure, settled alone
                outcomes[i] = exc
                continue
            events.setdefault(str(event["event_id"]), event)
            positions.setdefault(str(event["event_id"]), []).append(i)
        if not events:
            return outcomes
        try:
            batch = self._transaction(
                lambda session: indexing.record_pushes(session, self.registry, list(events.values()))
            )
        except Exception as exc:  # noqa: BLE001
            if isinstance(exc, TRANSIENT_ERRORS) and not isinstance(exc, PERMANENT_ERRORS):
                # The database away (its races were retried already): nothing was written, and
                # every event of the batch goes back to its queue.
                return [outcome or exc for outcome in outcomes]
            # Which event caused it is found by applying each alone.
            log.warning("a batch of %d push(es) failed, applied one at a time: %s", len(events), exc)
            failed: dict[str, Exception] = {}
            alone = list(events.values())
        else:
            self._send_outbox(batch.outgoing)
            failed, alone = batch.failed, batch.alone
        for event in alone:
            error = self._push_alone(event)
            if error is not None:
                failed[str(event["event_id"])] = error
        for event_id, error in failed.items():
            for i in positions.get(event_id, ()):
                outcomes[i] = error
        return outcomes

    def _push_alone(self, event: dict[str, Any]) -> Exception | None:
        """Apply one loaded ``image_pushed`` in its own transaction; what it failed with, if it did."""

        def apply(session: Session) -> list[Any]:
            return indexing.record_push(session, self.registry, event)

        try:
            outgoing = self._transaction(apply)
        except Exception as exc:  # noqa: BLE001 - the event's outcome, settled by the consumer
            return exc
        self._send_outbox(outgoing)
        return None

    @consumes(WEBHOOK, IMAGE_DELETED, transient=TRANSIENT_ERRORS, permanent=PERMANENT_ERRORS)
    def handle_image_deleted(self, payload: Any) -> None:
        self._consume(
            ImageDeleted, payload, lambda session, event: indexing.record_delete(session, self.registry, event)
        )

    @consumes(WEBHOOK, EVENT_SET_ASIDE, transient=TRANSIENT_ERRORS, permanent=PERMANENT_ERRORS)
    def handle_event_set_aside(self, payload: Any) -> None:
        self._consume(EventSetAside, payload, indexing.record_set_aside)

    def _consume(
        self, schema_cls: type[Schema], payload: Any, apply: Callable[[Session, dict[str, Any]], list[Any]]
    ) -> None:
        """Load the event, apply it in one transaction, send what it emitted. A failure propagates:
        ``shared.runtime.consumer`` retries a transient one and parks any other as a dead letter."""
        event = load_event(schema_cls, payload)
        outgoing = self._transaction(lambda session: apply(session, event))
        self._send_outbox(outgoing)

    def _transaction(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in one transaction, again if a concurrent worker won a race
        (``shared.runtime.uow``)."""
        return Transaction(lambda: self.db.get_session(close_on_exit=True), sleep=eventlet.sleep).run(work)

    # -- dead letters --------------------------------------------------------------------------

    @consume_dead_letters()
    def file_dead_letter(self, message: RawMessage) -> None:
        """File a message of the dead-letter queue for operators (``catalog.dead_letters``)."""
        letter = self._transaction(
            lambda session: dead_letters.view(
                dead_letters.file(
                    session, message.body, message.headers, message.routing_key, message.content_type, utcnow()
                )
            )
        )
        log.error(
            "dead letter %s filed: %s %s from %s (%s, %s death(s)): %s",
            letter["id"],
            letter["event_type"],
            letter["event_id"],
            letter["queue"],
            letter["reason"],
            letter["deaths"],
            letter["error"],
        )

    @rpc(expected_exceptions=USER_ERRORS)
    def list_dead_letters(self, status: str | None = None, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        """For platform admins: the suite's dead letters, the latest death first; ``status``
        ``parked`` (waiting for an operator) or ``replayed``. ``Forbidden`` for anyone else."""
        self.caller.admin()
        args = schemas.load_args(schemas.DeadLetterQuery, status=status, page=page, page_size=page_size)
        with self.db.get_session(close_on_exit=True) as session:
            return schemas.dump_page(schemas.DeadLetterOut, dead_letters.list_letters(session, **args))

    @rpc(expected_exceptions=USER_ERRORS)
    def get_dead_letter(self, dead_letter_id: int) -> dict[str, Any]:
        """For platform admins: one dead letter with its body and headers; ``NotFound``."""
        self.caller.admin()
        args = schemas.load_args(schemas.DeadLetterId, dead_letter_id=dead_letter_id)
        with self.db.get_session(close_on_exit=True) as session:
            letter = dead_letters.get(session, args["dead_letter_id"])
            return schemas.DeadLetterDetailOut().dump(dead_letters.view(letter, with_body=True))

    @rpc(expected_exceptions=(*USER_ERRORS, ServiceUnavailable))
    def replay_dead_letter(self, dead_letter_id: int) -> dict[str, Any]:
        """For platform admins: send a dead letter back to the one handler that gave up on it, and
        mark it replayed. Its handler dedupes on the event ID: an event handled meanwhile changes
        nothing. Should it fail again, it is filed again on the same row (``deaths`` + 1).
        ``NotFound``; ``Conflict`` for a queue no handler reads; ``BrokerUnavailable`` when the
        broker did not confirm it (then nothing is marked)."""
        admin = self.caller.admin()
        args = schemas.load_args(schemas.DeadLetterId, dead_letter_id=dead_letter_id)

        def replay(session: Session) -> dict[str, Any]:
            letter = dead_letters.get(session, args["dead_letter_id"], for_update=True)
            queue, body, headers, content_type = dead_letters.replay_message(letter)
            try:
                self.replayer(queue, body, headers, content_type)
            except BROKER_ERRORS as exc:
                raise ServiceUnavailable(f"the broker did not take the replay: {type(exc).__name__}: {exc}") from exc
            dead_letters.mark_replayed(letter, admin.describe(), utcnow())
            return dead_letters.view(letter)

        return schemas.DeadLetterOut().dump(self._transaction(replay))

    def _send_outbox(self, outgoing: Outgoing) -> None:
        """Dispatch the events a committed transaction put in the outbox.

        Never raises for the broker or the database: the change is committed and its events are
        safe in the outbox, so the incoming event is acked (or the RPC answered) all the same and
        the relay sends what is left.
        """
        event_ids = [payload["event_id"] for _, payload in outgoing]
        if not event_ids:
            return
        try:
            with self.db.get_session(close_on_exit=True) as session:
                outbox.send(session, self.dispatch, event_ids)
        except DBAPIError as exc:
            log.warning(
                "outbox unreadable after the commit, %d event(s) left for the relay: %s",
                len(event_ids),
                str(exc).splitlines()[0],
            )

    # -- the outbox relay ----------------------------------------------------------------------

    @config_timer("OUTBOX_RELAY_INTERVAL")
    def relay_outbox(self) -> None:
        """Send the events the normal path left in the outbox (broker down, process died), oldest
        first, once they are ``OUTBOX_RELAY_MIN_AGE`` seconds old; the next tick retries a failure."""
        min_age = timedelta(seconds=self.settings.outbox_relay_min_age)
        try:
            with self.db.get_session(close_on_exit=True) as session:
                outbox.relay(session, self.dispatch, min_age)
        except DBAPIError as exc:
            log.warning("outbox relay: database unavailable, retrying next tick: %s", str(exc).splitlines()[0])

    # -- RPC -----------------------------------------------------------------------------------

    @rpc(expected_exceptions=USER_ERRORS)
    def list_public_repositories(self, query: str | None = None, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        """Repositories of the public library (``library/*``) whose name contains ``query``.

        Returns ``{"items": [repository], "total", "page", "page_size"}`` ordered by name;
        ``InvalidRequest`` for a bad page, page size or query.
        """
        _ = self.caller.identity  # any verified caller
        args = schemas.load_args(schemas.PublicRepositoryQuery, query=query, page=page, page_size=page_size)
        with self.db.get_session(close_on_exit=True) as session:
            found = browsing.list_public_repositories(session, registry_host=self._public_host(), **args)
        return schemas.dump_page(schemas.RepositoryOut, found)

    @rpc(expected_exceptions=USER_ERRORS)
    def list_repositories(
        self,
        tenant_id: str,
        query: str | None = None,
        page: int = 1,
        page_size: int = 50,
        ownbase: bool | None = None,
    ) -> dict[str, Any]:
        """The tenant's own repositories, by name; ``ownbase`` True/False keeps only (or no)
        custom base images. ``InvalidRequest`` for a missing tenant_id or a bad argument."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(
            schemas.TenantRepositoryQuery,
            tenant_id=tenant_id,
            query=query,
            page=page,
            page_size=page_size,
            ownbase=ownbase,
        )
        with self.db.get_session(close_on_exit=True) as session:
            found = browsing.list_repositories(session, registry_host=self._public_host(), **args)
        return schemas.dump_page(schemas.RepositoryOut, found)

    @rpc(expected_exceptions=USER_ERRORS)
    def get_repository(self, tenant_id: str, repository: str) -> dict[str, Any]:
        """One repository with its tag count, latest tag and pull command.

        ``InvalidReference`` for a bad name, ``Forbidden`` for another tenant's, ``NotFound``.
        """
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(schemas.RepositoryRef, tenant_id=tenant_id, repository=repository)
        with self.db.get_session(close_on_exit=True) as session:
            found = browsing.get_repository(session, registry_host=self._public_host(), **args)
        return schema(schemas.RepositoryOut).dump(found)

    @rpc(expected_exceptions=USER_ERRORS)
    def set_repository_info(
        self, tenant_id: str | None, repository: str, description: str | None = None, overview: str | None = None
    ) -> dict[str, Any]:
        """Set a repository's description (one line) and overview (Markdown); None keeps the
        stored one. Returns the repository as ``get_repository`` does.

        A library repository only by platform admins, a tenant's by its developers (and admins).
        ``InvalidRequest`` naming ``description`` or ``overview`` and why (``catalog.curation``),
        ``InvalidReference``, ``Forbidden``, ``NotFound``.
        """
        identity = self.caller.for_tenant(tenant_id)
        args = schemas.load_args(
            schemas.RepositoryInfo,
            tenant_id=tenant_id,
            repository=repository,
            description=description,
            overview=overview,
        )
        found = self._transaction(
            lambda session: curation.set_info(session, admin=identity.admin, registry_host=self._public_host(), **args)
        )
        return schema(schemas.RepositoryOut).dump(found)

    @rpc(expected_exceptions=USER_ERRORS)
    def list_tags(self, tenant_id: str, repository: str, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        """The repository's tags (versions), most recently pushed first.

        Errors as ``get_repository``, plus ``InvalidRequest`` for a bad page or page size.
        """
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(
            schemas.TagPage, tenant_id=tenant_id, repository=repository, page=page, page_size=page_size
        )
        with self.db.get_session(close_on_exit=True) as session:
            found = browsing.list_tags(session, registry_host=self._public_host(), **args)
        return schemas.dump_page(schemas.TagOut, found)

    @rpc(expected_exceptions=USER_ERRORS)
    def get_tag(self, tenant_id: str, repository: str, tag: str) -> dict[str, Any]:
        """A version's detail: digest, image ID, creation time, creator, size, platform, layers,
        platforms (for a multi-arch index), pull command and the other tags on the same digest.

        Errors as ``get_repository``; ``InvalidReference`` for a bad tag; ``NotFound``.
        """
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(schemas.TagRef, tenant_id=tenant_id, repository=repository, tag=tag)
        with self.db.get_session(close_on_exit=True) as session:
            found = browsing.get_tag(session, registry_host=self._public_host(), **args)
        return schema(schemas.TagDetailOut).dump(found)

    @rpc(expected_exceptions=USER_ERRORS + (RegistryUnavailable,))
    def delete_tag(self, tenant_id: str, repository: str, tag: str, force: bool = False) -> dict[str, Any]:
        """Delete a version from the registry and the catalogue; returns
        ``{repository, tag, digest, deleted_tags}``.

        The registry deletes by digest: other tags on it make a ``Conflict`` naming them unless
        ``force``, which deletes them all. ``Forbidden`` for another tenant's repository and for
        the public library; ``NotFound``; ``RegistryUnavailable`` (nothing changed: retry later).
        """
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(schemas.DeleteTag, tenant_id=tenant_id, repository=repository, tag=tag, force=force)
        with self.db.get_session(close_on_exit=True) as session:
            result, outgoing = deleting.delete_tag(session, self.registry, **args)
        self._send_outbox(outgoing)
        return schema(schemas.DeletedTagOut).dump(result)

    @rpc(expected_exceptions=USER_ERRORS)
    def list_tag_history(
        self, tenant_id: str, repository: str, tag: str | None = None, page: int = 1, page_size: int = 50
    ) -> dict[str, Any]:
        """Pushes, moves and removals of the repository's tags (or one tag), newest first."""
        self.caller.for_tenant(tenant_id)
        args = schemas.load_args(
            schemas.HistoryQuery, tenant_id=tenant_id, repository=repository, tag=tag, page=page, page_size=page_size
        )
        with self.db.get_session(close_on_exit=True) as session:
            found = browsing.list_tag_history(session, **args)
        return schemas.dump_page(schemas.HistoryOut, found)

    @rpc(expected_exceptions=USER_ERRORS)
    def parse_reference(self, reference: str) -> dict[str, Any]:
        """``{registry, namespace, name, repository, tag, digest, is_ownbase, is_public}``;
        ``InvalidReference`` naming the broken rule."""
        _ = self.caller.identity  # any verified caller
        return parse_reference(reference).to_dict()

    @rpc(expected_exceptions=USER_ERRORS)
    def list_set_aside_events(self, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        """For operators: events that could not be used, newest first, with the reason."""
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.Paging, page=page, page_size=page_size)
        with self.db.get_session(close_on_exit=True) as session:
            found = browsing.list_set_aside_events(session, **args)
        return schemas.dump_page(schemas.SetAsideOut, found)

    # -- reconciliation with the registry ------------------------------------------------------

    @rpc(expected_exceptions=USER_ERRORS)
    def resync(self, namespace: str | None = None, wait: bool = False) -> dict[str, Any]:
        """For operators (never exposed to tenants: the report names every tenant's repositories):
        compare the catalogue with the registry, for one namespace or all, and repair it.

        Starts a pass and returns it as ``get_resync`` shows it (``status: "running"``); the pass
        runs in a worker of its own, ``get_resync(pass_id)`` follows it. With ``wait=True`` the
        call runs the pass and returns its end (mind the RPC timeout on a large registry).
        ``Conflict`` while another pass runs (one at a time); ``InvalidRequest`` for a bad argument.
        """
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.ResyncArgs, namespace=namespace, wait=wait)
        pass_id = self._transaction(lambda session: resync.start_pass(session, args["namespace"], resync.RPC))
        if args["wait"]:
            return schemas.ResyncPassOut().dump(self._run_pass(pass_id))
        self.resync_jobs.start_job(pass_id)
        with self.db.get_session(close_on_exit=True) as session:
            return schemas.ResyncPassOut().dump(resync.get_pass(session, pass_id))

    @rpc(expected_exceptions=USER_ERRORS)
    def get_resync(self, pass_id: int | None = None, items: bool = True) -> dict[str, Any]:
        """A resync pass (the latest if ``pass_id`` is None): status (``running``, ``finished``,
        ``failed``, ``interrupted``, ``abandoned``), progress counters, ``counts`` and, unless
        ``items=False``, the lists ``added``, ``moved``, ``removed``, ``pending_removal``,
        ``skipped``. ``NotFound``; ``InvalidRequest``."""
        self.caller.platform_or_admin()
        args = schemas.load_args(schemas.ResyncQuery, pass_id=pass_id, items=items)
        with self.db.get_session(close_on_exit=True) as session:
            return schemas.ResyncPassOut().dump(resync.get_pass(session, args["pass_id"], args["items"]))

    @job_timer("RESYNC_INTERVAL", allow_disabled=True)
    def run_resync(self, pass_id: int | None = None) -> None:
        """A timer tick (``pass_id`` None: start a whole-registry pass unless one ran lately), or
        the pass the ``resync`` RPC started."""
        if pass_id is None:
            interval = self.settings.resync_interval
            try:
                pass_id = self._transaction(lambda session: resync.start_periodic_pass(session, interval))
            except DBAPIError as exc:
                log.warning("periodic resync: database unavailable, retrying next tick: %s", str(exc).splitlines()[0])
                return
            if pass_id is None:
                return
        self._run_pass(pass_id)

    def _run_pass(self, pass_id: int) -> dict[str, Any]:
        return resync.Pass(
            pass_id,
            self._transaction,
            self.registry,
            self._send_outbox,
            page_size=self.settings.resync_page_size,
            cancelled=self.resync_jobs.stopping,
            max_removal_fraction=self.settings.resync_max_removal_fraction,
        ).run()

    # -- the public library's upstream sources ---------------------------------------------------

    @rpc(expected_exceptions=USER_ERRORS)
    def list_library_sources(self) -> dict[str, Any]:
        """For platform admins: the upstream images the library mirrors, by name."""
        self.caller.admin()

        def listing(session: Session) -> dict[str, Any]:
            self._seed_library_sources(session)
            found = [library_sources.view(source) for source in library_sources.list_sources(session)]
            return {"items": mirror_schemas.SourceOut(many=True).dump(found), "total": len(found)}

        return self._transaction(listing)

    @rpc(expected_exceptions=USER_ERRORS)
    def set_library_source(
        self,
        name: str,
        registry: str,
        repository: str,
        tags: list[str] | None = None,
        pattern: str | None = None,
        versions: str | None = None,
        newest: int | None = None,
        follow_removals: bool = False,
        enabled: bool = True,
        insecure: bool = False,
        credential: str | None = None,
    ) -> dict[str, Any]:
        """For platform admins: mirror ``registry/repository`` into ``library/<name>``, the tags
        chosen by ``tags``, ``pattern``, ``versions`` and ``newest``; creates the source or
        replaces every setting of it. ``InvalidRequest`` naming the argument."""
        admin = self.caller.admin()
        values = schemas.load_args(
            mirror_schemas.SourceIn,
            name=name,
            registry=registry,
            repository=repository,
            tags=[] if tags is None else tags,
            pattern=pattern,
            versions=versions,
            newest=newest,
            follow_removals=follow_removals,
            enabled=enabled,
            insecure=insecure,
            credential=credential,
        )
        library_sources.check_credential(values, self.settings.library.credentials_file)

        def set_it(session: Session) -> dict[str, Any]:
            self._seed_library_sources(session)
            source = library_sources.set_source(session, values, admin.describe(), utcnow())
            return mirror_schemas.SourceOut().dump(library_sources.view(source))

        return self._transaction(set_it)

    @rpc(expected_exceptions=USER_ERRORS)
    def remove_library_source(self, name: str) -> dict[str, Any]:
        """For platform admins: stop mirroring ``name``. What it copied stays in the library.
        ``NotFound``."""
        self.caller.admin()
        args = schemas.load_args(mirror_schemas.SourceName, name=name)

        def remove(session: Session) -> dict[str, Any]:
            self._seed_library_sources(session)
            library_sources.remove_source(session, args["name"])
            return {"name": args["name"], "removed": True}

        return self._transaction(remove)

    @rpc(expected_exceptions=USER_ERRORS)
    def sync_library(self, source: str | None = None, wait: bool = False) -> dict[str, Any]:
        """For platform admins: sync the library with every enabled source now (or with
        ``source`` alone, enabled or not). Starts the sync and returns it as ``get_library_sync``
        shows it; with ``wait=True`` runs it and returns its end (mind the RPC timeout).
        ``Conflict`` while another sync runs; ``NotFound`` for an unknown source."""
        self.caller.admin()
        args = schemas.load_args(mirror_schemas.SyncArgs, source=source, wait=wait)

        def start(session: Session) -> int:
            self._seed_library_sources(session)
            return library_sync.start_sync(session, args["source"], library_sync.RPC)

        sync_id = self._transaction(start)
        if args["wait"]:
            return mirror_schemas.SyncOut().dump(self._run_library_sync(sync_id))
        self.library_jobs.start_job(sync_id)
        with self.db.get_session(close_on_exit=True) as session:
            return mirror_schemas.SyncOut().dump(library_sync.get_sync(session, sync_id, items=False))

    @rpc(expected_exceptions=USER_ERRORS)
    def get_library_sync(self, sync_id: int | None = None, items: bool = True) -> dict[str, Any]:
        """For platform admins: a library sync (the latest if ``sync_id`` is None): its status
        (``running``, ``finished``, ``failed``, ``interrupted``, ``abandoned``), each source's
        listing, ``counts`` of its items by status and, unless ``items=False``, every item
        (source, tag, digest, status, attempts, error, seconds). ``NotFound``."""
        self.caller.admin()
        args = schemas.load_args(mirror_schemas.SyncQuery, sync_id=sync_id, items=items)
        with self.db.get_session(close_on_exit=True) as session:
            return mirror_schemas.SyncOut().dump(library_sync.get_sync(session, args["sync_id"], args["items"]))

    @job_timer("LIBRARY_SYNC_INTERVAL", allow_disabled=True)
    def run_library_sync(self, sync_id: int | None = None) -> None:
        """A timer tick (``sync_id`` None: sync every enabled source unless a sync ran lately), or
        the sync the ``sync_library`` RPC started."""
        if sync_id is None:
            interval = self.settings.library.sync_interval

            def start(session: Session) -> int | None:
                self._seed_library_sources(session)
                return library_sync.start_periodic_sync(session, interval)

            try:
                sync_id = self._transaction(start)
            except DBAPIError as exc:
                log.warning(
                    "periodic library sync: database unavailable, retrying next tick: %s", str(exc).splitlines()[0]
                )
                return
            if sync_id is None:
                return
        self._run_library_sync(sync_id)

    def _run_library_sync(self, sync_id: int) -> dict[str, Any]:
        return library_sync.SyncRun(
            sync_id,
            self._transaction,
            self.registry,
            self.settings.library,
            self._send_outbox,
            cancelled=self.library_jobs.stopping,
        ).run()

    def _seed_library_sources(self, session: Session) -> None:
        library_sources.ensure_seeded(session, self.settings.library.sources_file, utcnow())

    def _public_host(self) -> str:
        return self.settings.registry_public_host
