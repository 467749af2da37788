"""The registry as referee: a notification the catalogue disagrees with is settled by what the
registry's tag points at now (``catalog.referee``, applied by ``catalog.indexing``)."""

import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import indexing
from catalog.models import Manifest, ProcessedEvent, Repository, Tag, TagHistory
from shared.contracts.errors import RegistryUnavailable
from shared.contracts.events import TAG_INDEXED, TAG_REMOVED
from tests.unit.catalog.conftest import at, deleted, pushed

REPOSITORY = "t1/app"


def apply_push(session, registry, event):
    outgoing = indexing.record_push(session, registry, event)
    session.commit()
    return outgoing


def apply_delete(session, registry, event):
    outgoing = indexing.record_delete(session, registry, event)
    session.commit()
    return outgoing


def tag_row(session):
    """``(digest, pushed_at)`` of t1/app:v1 as the catalogue holds it, or None."""
    session.expire_all()
    row = session.execute(
        sa.select(Manifest.digest, Tag.pushed_at).join(Tag.manifest).where(Tag.name == "v1")
    ).one_or_none()
    return tuple(row) if row else None


def history(session):
    return [
        (h.action, h.digest, h.previous_digest, h.actor, h.event_id)
        for h in session.scalars(sa.select(TagHistory).order_by(TagHistory.id))
    ]


def tag_digest_calls(registry):
    return [call for call in registry.calls if call[0] == "tag_digest"]


@pytest.fixture
def stored(session, registry):
    """t1/app:v1 on digest S, pushed at 20 s, in the catalogue and (until a test changes it) the
    registry; E and T are two more images in the registry's storage, not catalogued."""
    s = registry.push(REPOSITORY, "v1", content="stored")
    e = registry.add_image(REPOSITORY, "event")
    t = registry.add_image(REPOSITORY, "third")
    apply_push(session, registry, pushed(REPOSITORY, s["digest"], tag="v1", pushed_at=at(20)))
    registry.calls.clear()
    return s["digest"], e["digest"], t["digest"]


def late_push(digest):
    """A push of ``digest`` stamped 10 s before the stored one (a replica with a slow clock)."""
    return pushed(REPOSITORY, digest, tag="v1", actor="alice", pushed_at=at(10))


class TestALatePushOfAnotherDigest:
    def test_the_registry_naming_the_events_digest_moves_the_tag_with_the_later_stamp(self, session, registry, stored):
        s, e, _ = stored
        registry.tags[REPOSITORY]["v1"] = e
        event = late_push(e)

        [(event_type, payload)] = apply_push(session, registry, event)

        # pushed_at stays the stored (later) stamp: the tag does not go back in time.
        assert tag_row(session) == (e, at(20))
        assert event_type == TAG_INDEXED
        assert (payload["digest"], payload["previous_digest"], payload["pushed_at"]) == (e, s, at(20).isoformat())
        assert (payload["actor"], payload["trigger"]) == ("alice", "push")
        assert history(session)[-1] == ("moved", e, s, "alice", str(event["event_id"]))
        assert tag_digest_calls(registry) == [("tag_digest", REPOSITORY, "v1")]

    def test_the_registry_naming_the_stored_digest_ignores_the_push(self, session, registry, stored):
        s, e, _ = stored
        assert apply_push(session, registry, late_push(e)) == []
        assert tag_row(session) == (s, at(20))
        assert len(history(session)) == 1
        # The pushed image is catalogued all the same (as a push by digest is): it is in the registry.
        assert session.scalar(sa.select(sa.func.count()).select_from(Manifest).where(Manifest.digest == e)) == 1
        assert tag_digest_calls(registry) == [("tag_digest", REPOSITORY, "v1")]

    def test_the_registry_naming_a_third_digest_indexes_that_one(self, session, registry, stored):
        s, e, t = stored
        registry.tags[REPOSITORY]["v1"] = t
        event = late_push(e)

        [(_, payload)] = apply_push(session, registry, event)

        assert tag_row(session) == (t, at(20))
        assert (payload["digest"], payload["previous_digest"], payload["actor"], payload["trigger"]) == (
            t,
            s,
            None,
            "referee",
        )
        assert history(session)[-1] == ("moved", t, s, None, str(event["event_id"]))
        assert ("get_manifest", REPOSITORY, t) in registry.calls  # fetched like a push
        third = session.scalar(sa.select(Manifest).where(Manifest.digest == t))
        assert third.image_id == payload["image_id"] is not None

    def test_a_third_digest_already_catalogued_is_not_fetched_again(self, session, registry, stored):
        s, e, t = stored
        apply_push(session, registry, pushed(REPOSITORY, t))  # by digest, no tag
        registry.tags[REPOSITORY]["v1"] = t
        registry.calls.clear()

        [(_, payload)] = apply_push(session, registry, late_push(e))

        assert (payload["digest"], tag_row(session)) == (t, (t, at(20)))
        assert ("get_manifest", REPOSITORY, t) not in registry.calls

    def test_the_registry_without_the_tag_leaves_it_for_the_delete_to_settle(self, session, registry, stored):
        s, e, _ = stored
        registry.untag(REPOSITORY, "v1")
        assert apply_push(session, registry, late_push(e)) == []
        assert tag_row(session) == (s, at(20))
        assert len(history(session)) == 1

    def test_a_third_digest_gone_again_falls_back_on_the_time_rule(self, session, registry, stored):
        """The registry named a digest whose manifest is gone by the time it is fetched: the push
        is not parked as a dead letter for another digest's sake; it is ignored as before."""
        s, e, _ = stored
        registry.tags[REPOSITORY]["v1"] = "sha256:" + "d" * 64
        assert apply_push(session, registry, late_push(e)) == []
        assert tag_row(session) == (s, at(20))
        assert session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent)) == 2

    def test_the_registry_unreachable_is_transient_and_writes_nothing(self, session, registry, stored):
        _, e, _ = stored
        apply_push(session, registry, pushed(REPOSITORY, e))  # catalogued: only tag_digest is asked
        registry.unavailable = True
        with pytest.raises(RegistryUnavailable):
            indexing.record_push(session, registry, late_push(e))
        session.rollback()
        assert session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent)) == 2
        assert tag_digest_calls(registry) == [("tag_digest", REPOSITORY, "v1")]


class TestNoDisagreementAsksNothing:
    @pytest.mark.parametrize(
        "apply, event",
        [
            (apply_push, lambda s, e: pushed(REPOSITORY, e, tag="v1", pushed_at=at(30))),  # a newer push
            (apply_push, lambda s, e: pushed(REPOSITORY, s, tag="v1", pushed_at=at(10))),  # a late re-push of S
            (apply_push, lambda s, e: pushed(REPOSITORY, e, tag="v2", pushed_at=at(10))),  # another tag
            (apply_delete, lambda s, e: deleted(REPOSITORY, tag="v1", occurred_at=at(30))),  # after the push
            (apply_delete, lambda s, e: deleted(REPOSITORY, tag="v1", digest=s, occurred_at=at(30))),
        ],
    )
    def test_the_registry_is_not_asked(self, session, registry, stored, apply, event):
        s, e, _ = stored
        apply(session, registry, event(s, e))
        assert tag_digest_calls(registry) == []


class TestATagDeleteTheCatalogueDisagreesWith:
    def test_a_late_delete_of_a_tag_the_registry_no_longer_has_removes_it(self, session, registry, stored):
        s, _, _ = stored
        registry.untag(REPOSITORY, "v1")
        event = deleted(REPOSITORY, tag="v1", occurred_at=at(10))

        [(event_type, payload)] = apply_delete(session, registry, event)

        assert (event_type, payload["tag"], payload["digest"]) == (TAG_REMOVED, "v1", s)
        assert tag_row(session) is None
        assert history(session)[-1] == ("removed", s, None, None, str(event["event_id"]))

    def test_a_late_delete_of_a_tag_the_registry_still_has_keeps_it(self, session, registry, stored):
        s, _, _ = stored
        assert apply_delete(session, registry, deleted(REPOSITORY, tag="v1", occurred_at=at(10))) == []
        assert tag_row(session) == (s, at(20))
        assert len(history(session)) == 1

    def test_a_delete_naming_another_digest_removes_a_tag_the_registry_no_longer_has(self, session, registry, stored):
        s, e, _ = stored
        registry.untag(REPOSITORY, "v1")
        [(event_type, _)] = apply_delete(session, registry, deleted(REPOSITORY, tag="v1", digest=e, occurred_at=at(30)))
        assert (event_type, tag_row(session)) == (TAG_REMOVED, None)

    def test_the_registry_naming_the_deletes_digest_moves_the_tag_there(self, session, registry, stored):
        """The delete names E, the catalogue has S, the registry has the tag on E (deleted, then
        pushed again, with the push's notification not here yet): the tag follows the registry."""
        s, e, _ = stored
        registry.tags[REPOSITORY]["v1"] = e
        event = deleted(REPOSITORY, tag="v1", digest=e, occurred_at=at(30))

        [(event_type, payload)] = apply_delete(session, registry, event)

        assert (event_type, payload["digest"], payload["previous_digest"], payload["trigger"]) == (
            TAG_INDEXED,
            e,
            s,
            "referee",
        )
        assert tag_row(session) == (e, at(30))  # the later stamp: the delete's
        assert history(session)[-1] == ("moved", e, s, None, str(event["event_id"]))

    def test_the_registry_naming_a_third_digest_moves_the_tag_there(self, session, registry, stored):
        s, _, t = stored
        registry.tags[REPOSITORY]["v1"] = t
        event = deleted(REPOSITORY, tag="v1", occurred_at=at(10))

        [(event_type, payload)] = apply_delete(session, registry, event)

        assert (event_type, payload["digest"], payload["pushed_at"]) == (TAG_INDEXED, t, at(20).isoformat())
        assert tag_row(session) == (t, at(20))
        assert ("get_manifest", REPOSITORY, t) in registry.calls
        assert history(session)[-1] == ("moved", t, s, None, str(event["event_id"]))

    def test_the_registry_unreachable_is_transient_and_writes_nothing(self, session, registry, stored):
        registry.unavailable = True
        with pytest.raises(RegistryUnavailable):
            indexing.record_delete(session, registry, deleted(REPOSITORY, tag="v1", occurred_at=at(10)))
        session.rollback()
        assert session.scalar(sa.select(sa.func.count()).select_from(ProcessedEvent)) == 1
        assert tag_row(session) == (stored[0], at(20))


class TestTheRulingAndTheWrites:
    @pytest.mark.parametrize("action", ["push", "delete"])
    def test_the_registry_is_asked_before_the_first_write(self, session, registry, stored, action):
        """The module's rule (SQLite's write lock): while the registry is asked, or fetched from for
        the digest it names, nothing is written yet: no change pending in the session, and no write
        transaction open on the connection (SQLite's driver begins one at the first write)."""
        s, e, t = stored
        registry.tags[REPOSITORY]["v1"] = t
        pending = []

        def writing():
            connection = session.connection().connection.dbapi_connection
            return bool(session.new or session.dirty or session.deleted) or connection.in_transaction

        registry.on_call = lambda call: pending.append((call[0], writing()))
        event = late_push(e) if action == "push" else deleted(REPOSITORY, tag="v1", occurred_at=at(10))

        (apply_push if action == "push" else apply_delete)(session, registry, event)

        assert ("tag_digest", False) in pending and ("get_manifest", False) in pending
        assert all(not dirty for _, dirty in pending)
        assert tag_row(session)[0] == t

    def test_a_ruling_on_a_tag_that_changed_since_is_not_applied(self, session, registry, stored):
        """Another worker moves the tag while the registry is asked: the ruling was about the tag
        on S, so it does not stand for the tag as it is now, and the late push is ignored."""
        s, e, t = stored
        registry.tags[REPOSITORY]["v1"] = e
        other = Session(session.get_bind())

        def meanwhile(call):
            if call[0] == "tag_digest":
                registry.on_call = None
                apply_push(other, registry, pushed(REPOSITORY, t, tag="v1", pushed_at=at(25)))

        registry.on_call = meanwhile
        try:
            assert apply_push(session, registry, late_push(e)) == []
        finally:
            other.close()
        assert tag_row(session) == (t, at(25))
        assert [h[0] for h in history(session)] == ["pushed", "moved"]

    def test_each_ruling_is_logged_with_both_stamps_and_the_answer(self, session, registry, stored, caplog):
        s, e, _ = stored
        registry.tags[REPOSITORY]["v1"] = e
        event = late_push(e)
        with caplog.at_level(logging.INFO, logger="catalog.referee"):
            apply_push(session, registry, event)
        [record] = [r for r in caplog.records if r.name == "catalog.referee"]
        message = record.getMessage()
        assert record.levelno == logging.INFO
        for part in (str(event["event_id"]), at(10).isoformat(), at(20).isoformat(), s, f"says {e}"):
            assert part in message
        assert message.endswith(f"move the tag to {e}")

    def test_a_move_by_the_referee_keeps_later_comparisons_right(self, session, registry, stored):
        """After the referee moved the tag to E (keeping the stamp at 20 s), a delayed notification
        of a push stamped between the two (15 s) is still late, and asked about, not applied."""
        s, e, t = stored
        registry.tags[REPOSITORY]["v1"] = e
        apply_push(session, registry, late_push(e))
        registry.calls.clear()

        between = pushed(REPOSITORY, t, tag="v1", pushed_at=at(15))
        assert apply_push(session, registry, between) == []
        assert tag_row(session) == (e, at(20))
        assert tag_digest_calls(registry) == [("tag_digest", REPOSITORY, "v1")]
        assert session.scalar(sa.select(sa.func.count()).select_from(Repository)) == 1
