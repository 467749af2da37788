import uuid

import pytest

from shared.contracts.errors import InvalidRequest
from shared.contracts.events import ImageDeleted, ImagePushed, TagIndexed, load_event, make_event

PUSH = dict(
    namespace="t1",
    repository="t1/app",
    tag="v1",
    digest="sha256:" + "a" * 64,
    media_type="application/vnd.docker.distribution.manifest.v2+json",
    size=527,
    actor="alice",
    request_id="r1",
    source_event_id="e1",
)


class TestMakeEvent:
    def test_stamps_id_and_time(self):
        event = make_event(ImagePushed, **PUSH)
        assert uuid.UUID(event["event_id"]).version == 4
        assert event["occurred_at"].endswith("+00:00")
        assert {k: event[k] for k in PUSH} == PUSH

    def test_keeps_a_given_event_id(self):
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "x"))
        assert make_event(ImagePushed, event_id=event_id, **PUSH)["event_id"] == event_id

    def test_missing_field_is_an_invalid_request_naming_it(self):
        values = dict(PUSH)
        del values["digest"]
        with pytest.raises(InvalidRequest, match="digest"):
            make_event(ImagePushed, **values)

    def test_round_trip_is_json_safe(self):
        import json

        event = make_event(
            TagIndexed,
            namespace="t1",
            repository="t1/app",
            tag="v1",
            digest=PUSH["digest"],
            previous_digest=None,
            image_id=None,
            pushed_at="2026-01-02T03:04:05Z",
            is_ownbase=False,
        )
        assert json.loads(json.dumps(event)) == event
        assert event["pushed_at"] == "2026-01-02T03:04:05+00:00"


class TestLoadEvent:
    def test_unknown_fields_are_ignored(self):
        event = make_event(
            ImageDeleted, namespace="t1", repository="t1/app", digest=None, tag="v1", source_event_id="e2"
        )
        event["added_in_a_later_version"] = 1
        loaded = load_event(ImageDeleted, event)
        assert "added_in_a_later_version" not in loaded
        assert loaded["tag"] == "v1"

    def test_wrong_type_is_an_invalid_request(self):
        event = make_event(ImagePushed, **PUSH)
        event["size"] = "big"
        with pytest.raises(InvalidRequest, match="size"):
            load_event(ImagePushed, event)
