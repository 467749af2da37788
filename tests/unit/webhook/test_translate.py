"""The translation table: every kind of registry event, 2.x and 3.x shapes, and what it becomes."""

import copy
from datetime import UTC, datetime

import pytest

from shared.contracts.events import SCHEMAS, WEBHOOK, load_event
from tests.support import DOCKER_MANIFEST_V2, OCI_INDEX, delete_notification, notification_envelope, push_notification
from webhook import translate
from webhook.translate import DISPATCH, IGNORE, SET_ASIDE, event_id_for, summarize, translate_envelope, translate_event

DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64
NOW = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
TIMESTAMP = "2026-01-02T03:04:05.123456789Z"  # distribution writes nanoseconds
TIMESTAMP_UTC = "2026-01-02T03:04:05.123456+00:00"


def push(repository="acme/app", digest=DIGEST, tag="v1", **kwargs):
    event = push_notification(repository, digest, tag=tag, event_id="ev-1", **kwargs)
    event["timestamp"] = TIMESTAMP
    event["request"]["id"] = "req-1"
    return event


def delete(repository="acme/app", digest=None, tag=None):
    event = delete_notification(repository, digest=digest, tag=tag, event_id="ev-2", request_id="req-2")
    event["timestamp"] = TIMESTAMP
    return event


def v3(event):
    """The same event as distribution 3.x sends it: "" and 0 where 2.x leaves a field out."""
    event = copy.deepcopy(event)
    target = event["target"]
    target.pop("length", None)
    for key in ("mediaType", "digest", "tag", "url"):
        target.setdefault(key, "")
    target.setdefault("size", 0)
    event["actor"] = {"name": event["actor"].get("name", "")}
    return event


def decide(event):
    decision = translate_event(event, now=NOW)
    if decision.payload is not None:  # every dispatched payload honours its shared contract
        assert load_event(SCHEMAS[(WEBHOOK, decision.event_type)], decision.payload)
    return decision


class TestNoiseIsIgnored:
    @pytest.mark.parametrize("shape", [lambda e: e, v3], ids=["2.x", "3.x"])
    def test_blob_push(self, shape):
        event = shape(push(tag=None, media_type="application/octet-stream"))
        assert decide(event) == translate.Decision(IGNORE, reason="blob events are not catalogued")

    @pytest.mark.parametrize("action", ["pull", "mount"])
    def test_pull_and_mount(self, action):
        event = dict(push(), action=action)
        assert decide(event) == translate.Decision(IGNORE, reason=f"{action} events are not catalogued")

    def test_noise_is_not_judged_for_validity(self):
        event = push(repository="Not/Valid/Name", media_type="application/octet-stream")
        assert decide(event).outcome == IGNORE


class TestManifestPushBecomesImagePushed:
    def test_push_by_tag_payload_is_exact(self):
        decision = decide(push(actor="alice", size=527))
        assert decision.outcome == DISPATCH
        assert decision.event_type == "image_pushed"
        assert decision.payload == {
            "event_id": event_id_for("ev-1", "image_pushed"),
            "occurred_at": TIMESTAMP_UTC,
            "namespace": "acme",
            "repository": "acme/app",
            "tag": "v1",
            "digest": DIGEST,
            "media_type": DOCKER_MANIFEST_V2,
            "size": 527,
            "actor": "alice",
            "request_id": "req-1",
            "source_event_id": "ev-1",
            "pushed_at": TIMESTAMP_UTC,
        }

    def test_platform_manifest_by_digest_has_no_tag(self):
        decision = decide(push(tag=None))
        assert decision.outcome == DISPATCH
        assert decision.payload["tag"] is None
        assert decision.payload["actor"] is None

    def test_index_media_type_is_passed_on(self):
        assert decide(push(media_type=OCI_INDEX)).payload["media_type"] == OCI_INDEX

    def test_3x_empty_strings_and_zero_are_absent(self):
        event = v3(push(tag=None))
        event["target"]["size"] = 0
        event["request"]["id"] = ""
        payload = decide(event).payload
        assert (payload["tag"], payload["actor"], payload["size"], payload["request_id"]) == (None, None, None, None)
        assert payload["digest"] == DIGEST

    def test_size_falls_back_to_length(self):
        event = push()
        event["target"]["size"] = 0
        event["target"]["length"] = 900
        assert decide(event).payload["size"] == 900

    def test_timestamp_with_an_offset_is_converted_to_utc(self):
        event = dict(push(), timestamp="2026-01-02T05:04:05+02:00")
        payload = decide(event).payload
        assert payload["pushed_at"] == payload["occurred_at"] == "2026-01-02T03:04:05+00:00"

    @pytest.mark.parametrize("timestamp", [None, "", "yesterday"])
    def test_missing_or_unreadable_timestamp(self, timestamp):
        event = dict(push(), timestamp=timestamp)
        payload = decide(event).payload
        assert payload["pushed_at"] is None
        assert payload["occurred_at"] == NOW.isoformat()


class TestDeletesBecomeImageDeleted:
    @pytest.mark.parametrize("shape", [lambda e: e, v3], ids=["2.x", "3.x"])
    @pytest.mark.parametrize(
        "digest, tag", [(DIGEST, None), (None, "v1"), (None, None)], ids=["manifest", "tag", "repository"]
    )
    def test_the_three_kinds(self, shape, digest, tag):
        decision = decide(shape(delete(digest=digest, tag=tag)))
        assert decision.outcome == DISPATCH
        assert decision.event_type == "image_deleted"
        assert decision.payload == {
            "event_id": event_id_for("ev-2", "image_deleted"),
            "occurred_at": TIMESTAMP_UTC,
            "namespace": "acme",
            "repository": "acme/app",
            "digest": digest,
            "tag": tag,
            "actor": None,
            "request_id": "req-2",
            "source_event_id": "ev-2",
        }

    def test_actor_is_kept(self):
        event = dict(delete(tag="v1"), actor={"name": "bob"})
        assert decide(event).payload["actor"] == "bob"


def without(event, *path):
    event = copy.deepcopy(event)
    *parents, key = path
    holder = event
    for parent in parents:
        holder = holder[parent]
    del holder[key]
    return event


def with_value(event, value, *path):
    event = copy.deepcopy(event)
    *parents, key = path
    holder = event
    for parent in parents:
        holder = holder[parent]
    holder[key] = value
    return event


UNUSABLE = {
    "unknown action": (with_value(push(), "archive", "action"), "unknown action 'archive'"),
    "no action": (without(push(), "action"), "event has no action"),
    "no id": (without(push(), "id"), "event has no id"),
    "empty id (3.x)": (with_value(push(), "", "id"), "event has no id"),
    "numeric id": (with_value(delete(tag="v1"), 7, "id"), "event has no id"),
    "no target": (without(push(), "target"), "event has no target object"),
    "target not an object": (with_value(delete(tag="v1"), "acme/app", "target"), "event has no target object"),
    "no repository": (without(push(), "target", "repository"), "event has no target.repository"),
    "three path components": (
        push(repository="acme/team/app"),
        "target.repository: repository 'acme/team/app' must be '<namespace>/<name>'",
    ),
    "one path component": (delete(repository="app", tag="v1"), "found 1 path component"),
    "upper case": (push(repository="Acme/app"), "namespace 'Acme' must be lower-case"),
    "push without digest": (without(push(), "target", "digest"), "manifest push has no target.digest"),
    "push with empty digest (3.x)": (with_value(push(), "", "target", "digest"), "manifest push has no target.digest"),
    "push with a bad digest": (push(digest="sha256:xyz"), "target.digest: digest 'sha256:xyz'"),
    "push without media type": (without(push(), "target", "mediaType"), "push has no target.mediaType"),
    "bad tag": (push(tag="-v1"), "target.tag: tag '-v1'"),
    "delete with a bad digest": (delete(digest="md5:abc"), "target.digest: digest 'md5:abc'"),
}


class TestUnusableEventsAreSetAside:
    @pytest.mark.parametrize("event, reason", UNUSABLE.values(), ids=UNUSABLE.keys())
    def test_reason_says_what_is_wrong(self, event, reason):
        decision = decide(event)
        assert decision.outcome == SET_ASIDE
        assert decision.event_type == "event_set_aside"
        assert reason in decision.reason
        assert decision.payload["reason"] == decision.reason
        assert decision.payload["payload"] == event  # the original, untouched

    def test_payload_is_exact(self):
        event = push(repository="acme/team/app")
        decision = decide(event)
        assert decision.payload == {
            "event_id": event_id_for("ev-1", "event_set_aside"),
            "occurred_at": TIMESTAMP_UTC,
            "source": "webhook",
            "reason": decision.reason,
            "source_event_id": "ev-1",
            "action": "push",
            "repository": "acme/team/app",
            "payload": event,
        }

    def test_a_translation_crash_is_set_aside_not_raised(self, monkeypatch):
        def broken(event, now=None):
            raise KeyError("surprise")

        monkeypatch.setattr(translate, "translate_event", broken)
        [decision] = translate_envelope([push()], now=NOW)
        assert decision.outcome == SET_ASIDE
        assert decision.reason == "could not translate the event (KeyError: 'surprise')"


class TestEventIdsAreDeterministic:
    def test_pinned_derivation(self):
        # Pinned: a change here re-dispatches every retried event under a new id.
        assert event_id_for("abc", "image_pushed") == "a17b30d1-ca67-5ba0-8562-9dcc340db908"
        assert event_id_for("abc", "image_deleted") == "93ee2809-42a6-5a43-bc90-48f3416e8199"

    @pytest.mark.parametrize(
        "event",
        [push(), delete(tag="v1"), push(repository="acme/a/b"), without(without(push(), "id"), "timestamp")],
        ids=["push", "delete", "set aside", "set aside without id or time"],
    )
    def test_a_retried_delivery_gives_the_same_event_id(self, event):
        first = translate_event(copy.deepcopy(event), now=NOW)
        retried = translate_event(copy.deepcopy(event), now=datetime.now(UTC))
        assert first.payload["event_id"] == retried.payload["event_id"]

    def test_a_retried_delivery_with_a_timestamp_is_identical(self):
        event = push()
        assert translate_event(event, now=NOW) == translate_event(copy.deepcopy(event))

    def test_different_events_get_different_ids(self):
        ids = {
            translate_event(event, now=NOW).payload["event_id"]
            for event in [
                push(),
                with_value(push(), "ev-9", "id"),
                delete(tag="v1"),
                without(push(repository="a/b/c"), "id"),
                without(push(repository="a/b/d"), "id"),
            ]
        }
        assert len(ids) == 5


class TestEnvelope:
    def test_decisions_in_order_and_counts(self):
        events = notification_envelope(
            push(),
            push(media_type="application/octet-stream"),
            delete(tag="v1"),
            with_value(push(), "pull", "action"),
            with_value(push(), "bogus", "action"),
        )["events"]
        decisions = translate_envelope(events, now=NOW)
        assert [d.outcome for d in decisions] == [DISPATCH, IGNORE, DISPATCH, IGNORE, SET_ASIDE]
        assert [d.event_type for d in decisions] == ["image_pushed", None, "image_deleted", None, "event_set_aside"]
        assert summarize(decisions) == {"accepted": 2, "set_aside": 1, "ignored": 2}

    def test_empty_envelope(self):
        assert summarize(translate_envelope([])) == {"accepted": 0, "set_aside": 0, "ignored": 0}
