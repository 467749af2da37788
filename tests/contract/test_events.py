"""Event contracts: what each producer emits is what the design promises and what every consumer
loads. A failure here means a change would break another service or a platform component."""

import json

import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from catalog import indexing
from catalog.service import CatalogService
from deployer.service import DeployerService, DeployerWorker
from shared.contracts import events, topology
from shared.runtime.consumer import consumes
from tests.support import delete_notification, push_notification
from tests.unit.catalog.conftest import FakeRegistry, deleted, pushed
from webhook.translate import DISPATCH, SET_ASIDE, translate_envelope

DIGEST = "sha256:" + "c" * 64

# The key fields of each event, as ../shared/design.md names them (plus event_id, occurred_at).
DESIGN_FIELDS = {
    (events.WEBHOOK, events.IMAGE_PUSHED): {
        "namespace",
        "repository",
        "tag",
        "digest",
        "media_type",
        "size",
        "actor",
        "request_id",
        "source_event_id",
    },
    (events.WEBHOOK, events.IMAGE_DELETED): {
        "namespace",
        "repository",
        "digest",
        "tag",
        "actor",
        "request_id",
        "source_event_id",
    },
    (events.CATALOG, events.TAG_INDEXED): {
        "namespace",
        "repository",
        "tag",
        "digest",
        "previous_digest",
        "image_id",
        "pushed_at",
        "is_ownbase",
    },
    (events.CATALOG, events.TAG_REMOVED): {"namespace", "repository", "tag", "digest"},
    (events.DEPLOYER, events.DEPLOYMENT_STATUS_CHANGED): {"deployment_id", "tenant_id", "revision", "status", "reason"},
}

# Every registry event the webhook dispatches, in the shapes Distribution sends.
REGISTRY_EVENTS = [
    push_notification("t1/app", DIGEST, tag="v1", actor="alice"),
    push_notification("t1/app", DIGEST),  # a platform manifest of a multi-arch push: no tag
    delete_notification("t1/app", digest=DIGEST),
    delete_notification("t1/app", tag="v1"),
    delete_notification("t1/app"),
    push_notification("T1/Bad", DIGEST, tag="v1"),  # set aside
]


def consumers():
    """(source service, event type) → handler names, for every @event_handler in the suite."""
    found = {}
    for name in dir(CatalogService):
        for entrypoint in getattr(getattr(CatalogService, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if hasattr(entrypoint, "event_type"):
                found.setdefault((entrypoint.source_service, entrypoint.event_type), []).append(name)
    return found


def queues(*service_classes):
    """(source service, event type) → the queue names nameko declares, for every @event_handler
    of these service classes, read from the handlers as nameko sets them up (no broker needed)."""
    from nameko.containers import ServiceContainer
    from nameko.events import EventHandler

    found = {}
    for service_cls in service_classes:
        container = ServiceContainer(service_cls, {"AMQP_URI": "memory://"})
        for entrypoint in container.entrypoints:
            if isinstance(entrypoint, EventHandler):
                entrypoint.setup()
                found.setdefault((entrypoint.source_service, entrypoint.event_type), []).append(entrypoint.queue.name)
    return found


class TestDesignContract:
    @pytest.mark.parametrize("key", sorted(DESIGN_FIELDS))
    def test_schema_carries_the_design_fields(self, key):
        declared = set(events.SCHEMAS[key]().fields)
        assert DESIGN_FIELDS[key] | {"event_id", "occurred_at"} <= declared

    def test_handler_names_are_stable(self):
        # The method name is part of nameko's queue name: renaming one strands its queue.
        assert consumers() == {
            (events.WEBHOOK, events.IMAGE_PUSHED): ["handle_image_pushed"],
            (events.WEBHOOK, events.IMAGE_DELETED): ["handle_image_deleted"],
            (events.WEBHOOK, events.EVENT_SET_ASIDE): ["handle_event_set_aside"],
        }

    def test_the_deployers_queue_names_are_stable(self):
        # nameko run deployer.service starts both classes; the long work is deployer_worker's,
        # the RPC's class consumes no event. Renaming a class or a handler strands its queue.
        assert queues(DeployerService) == {}
        assert queues(DeployerWorker) == {
            (events.DEPLOYER, events.ROLLOUT_REQUESTED): [
                "evt-deployer-rollout_requested--deployer_worker.handle_rollout_requested"
            ],
            (events.CATALOG, events.TAG_INDEXED): ["evt-catalog-tag_indexed--deployer_worker.handle_tag_indexed"],
        }

    def test_the_topology_names_every_handler_and_nothing_else(self):
        # The set-up declares the queues SUBSCRIPTIONS names before any service starts; a handler
        # it did not name would leave its events nowhere until it first ran.
        declared = sorted(s.queue for s in topology.SUBSCRIPTIONS)
        handled = sorted(q for found in queues(CatalogService, DeployerWorker).values() for q in found)
        assert handled == declared

    def test_a_handler_the_topology_does_not_name_refuses_to_start(self):
        from nameko.containers import ServiceContainer

        class Renamed:
            name = "catalog"

            @consumes(events.WEBHOOK, events.IMAGE_PUSHED)
            def handle_image_pushed_v2(self, payload):
                pass

        container = ServiceContainer(Renamed, {"AMQP_URI": "memory://"})  # entrypoints refer to it weakly
        [entrypoint] = container.entrypoints
        with pytest.raises(topology.UnknownSubscription, match="handle_image_pushed_v2"):
            entrypoint.setup()

    def test_only_events_a_handler_of_the_suite_consumes_are_published_mandatory(self):
        assert [
            (source, kind)
            for source, kinds in (
                (events.WEBHOOK, [events.IMAGE_PUSHED, events.IMAGE_DELETED, events.EVENT_SET_ASIDE]),
                (events.CATALOG, [events.TAG_INDEXED, events.TAG_REMOVED]),
                (events.DEPLOYER, [events.DEPLOYMENT_STATUS_CHANGED, events.ROLLOUT_REQUESTED]),
            )
            for kind in kinds
            if not topology.has_subscribers(source, kind)
        ] == [(events.CATALOG, events.TAG_REMOVED), (events.DEPLOYER, events.DEPLOYMENT_STATUS_CHANGED)]


class TestWebhookToCatalog:
    def test_every_dispatched_event_loads_in_its_consumer(self):
        decisions = translate_envelope(REGISTRY_EVENTS)
        assert [d.outcome for d in decisions] == [DISPATCH] * 5 + [SET_ASIDE]
        handled = consumers()
        for decision in decisions:
            key = (events.WEBHOOK, decision.event_type)
            assert key in handled, f"nobody consumes {key}"
            payload = json.loads(json.dumps(decision.payload))  # as it crosses AMQP
            loaded = events.load_event(events.SCHEMAS[key], payload)
            assert str(loaded["event_id"]) == payload["event_id"]
            if key in DESIGN_FIELDS:
                assert DESIGN_FIELDS[key] <= set(payload)


class TestCatalogOutput:
    def test_tag_indexed_and_tag_removed_load_with_their_schemas(self, session):
        registry = FakeRegistry()
        image = registry.add_image("t1/java_ownbase", content="base")
        out = indexing.record_push(
            session, registry, pushed("t1/java_ownbase", image["digest"], tag="1.0", actor="alice")
        )
        session.commit()
        out += indexing.record_delete(session, registry, deleted("t1/java_ownbase", tag="1.0"))
        session.commit()

        assert [event_type for event_type, _ in out] == [events.TAG_INDEXED, events.TAG_REMOVED]
        for event_type, payload in out:
            payload = json.loads(json.dumps(payload))
            key = (events.CATALOG, event_type)
            events.load_event(events.SCHEMAS[key], payload)
            assert DESIGN_FIELDS[key] <= set(payload)
        indexed = out[0][1]
        assert (
            indexed["repository"],
            indexed["tag"],
            indexed["digest"],
            indexed["image_id"],
            indexed["is_ownbase"],
            indexed["previous_digest"],
        ) == ("t1/java_ownbase", "1.0", image["digest"], image["image_id"], True, None)
