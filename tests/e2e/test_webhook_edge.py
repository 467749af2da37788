"""The webhook as the registry sees it: auth, bad bodies, retries of the same envelope."""

from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support import notification_envelope, push_image, push_notification


class TestWebhookRefusals:
    def test_wrong_or_missing_token_is_401(self, stack):
        body = notification_envelope()
        assert stack.post_events(body, token="wrong").status_code == 401
        assert stack.post_events(body, token=False).status_code == 401

    def test_garbage_is_400_with_a_reason(self, stack):
        resp = stack.post_events(b"{not json")
        assert resp.status_code == 400
        assert resp.json()["error"]
        resp = stack.post_events({"events": "nope"})
        assert resp.status_code == 400
        assert "events" in resp.json()["error"]


class TestRedelivery:
    def test_same_envelope_twice_is_applied_once(self, stack, tenant):
        """A retried (late) envelope must not move a tag back to an older digest."""
        repository = f"{tenant}/retry"
        session = stack.session(tenant)
        first = push_image(stack.registry.url, repository, None, content=b"first", session=session)
        second = push_image(stack.registry.url, repository, None, content=b"second", session=session)
        envelope_a = notification_envelope(push_notification(repository, first["digest"], tag="v1"))
        envelope_b = notification_envelope(push_notification(repository, second["digest"], tag="v1"))

        assert stack.post_events(envelope_a).status_code == 200
        wait_for_tag(stack, tenant, repository, "v1", first["digest"])
        assert stack.post_events(envelope_b).status_code == 200
        wait_for_tag(stack, tenant, repository, "v1", second["digest"])
        assert stack.post_events(envelope_a).status_code == 200  # the registry's retry

        # Wait until the catalogue has consumed everything it was sent, then check the tag.
        marker = push_image(stack.registry.url, repository, "marker", content=b"marker", session=session)
        wait_for_tag(stack, tenant, repository, "marker", marker["digest"])
        assert stack.rpc("catalog", "get_tag", tenant, repository, "v1")["digest"] == second["digest"]
        history = stack.rpc("catalog", "list_tags", tenant, repository)
        assert sorted(t["tag"] for t in history["items"]) == ["marker", "v1"]
