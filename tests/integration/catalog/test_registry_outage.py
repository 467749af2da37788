"""The registry goes away: events are requeued, not lost, and deletes change nothing."""

import eventlet
import pytest
from nameko.testing.services import entrypoint_waiter

from shared.contracts.errors import RegistryUnavailable
from shared.contracts.events import IMAGE_PUSHED, WEBHOOK
from tests.support import push_image


@pytest.fixture
def registry(registry_factory):
    """A registry of this test's own, since the test stops it."""
    return registry_factory()


class TestRegistryOutage:
    def test_push_event_is_requeued_until_the_registry_is_back(self, registry, catalog, webhook, rpc, tenant):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        registry.stop()
        payload = webhook.pushed(image)
        outcomes = []

        def until_indexed(worker_ctx, result, exc_info):
            taken = worker_ctx.args[0]  # the batch
            if payload not in taken:
                return False
            outcome = exc_info[1] if exc_info else result[taken.index(payload)]
            outcomes.append(type(outcome) if outcome is not None else None)
            if len(outcomes) == 2:  # requeued at least once: bring the registry back
                eventlet.spawn(registry.start)
            return outcome is None

        with entrypoint_waiter(catalog, "handle_image_pushed", callback=until_indexed, timeout=30):
            webhook.dispatch(WEBHOOK, IMAGE_PUSHED, payload)

        assert outcomes[:2] == [RegistryUnavailable, RegistryUnavailable]
        assert outcomes[-1] is None
        assert rpc.get_tag(tenant, f"{tenant}/app", "v1")["digest"] == image["digest"]
        assert rpc.list_set_aside_events()["total"] == 0

    def test_delete_tag_fails_cleanly_while_the_registry_is_away(self, registry, webhook, rpc, tenant):
        image = push_image(registry.url, f"{tenant}/app", "v1", content=tenant.encode())
        webhook.push(image)
        registry.stop()
        with pytest.raises(RegistryUnavailable, match="unreachable"):
            rpc.delete_tag(tenant, f"{tenant}/app", "v1")
        assert rpc.get_repository(tenant, f"{tenant}/app")["tag_count"] == 1

        registry.start()
        assert rpc.delete_tag(tenant, f"{tenant}/app", "v1")["deleted_tags"] == ["v1"]
        assert registry.tags(f"{tenant}/app") == []
