"""Regressions found by feeding the catalog fuzzed pushes (tests/integration/webhook/
test_fuzz_catalog.py): a real image whose push or config carried odd text was set aside, not
indexed, on PostgreSQL (value too long, NUL character)."""

import pytest
import sqlalchemy as sa

from catalog import indexing
from catalog.manifests import parse_time
from catalog.models import Manifest, TagHistory
from shared.contracts.events import TAG_INDEXED
from tests.unit.catalog.conftest import pushed


def push(session, registry, *args, **kwargs):
    outgoing = indexing.record_push(session, registry, pushed(*args, **kwargs))
    session.commit()
    return outgoing


class TestOddActors:
    @pytest.mark.parametrize(
        "actor, stored",
        [
            ("a" * 300, "a" * 255),
            ("al\x00ice", "al\\x00ice"),
            ("bob\ud800", "bob\\ud800"),
            ("\u00e9ve", "\u00e9ve"),
        ],
    )
    def test_the_image_is_indexed_with_the_actor_clipped_to_what_every_database_stores(
        self, session, registry, actor, stored
    ):
        image = registry.add_image("t1/app")
        [(kind, payload)] = push(session, registry, "t1/app", image["digest"], tag="v1", actor=actor)
        assert (kind, payload["actor"]) == (TAG_INDEXED, stored)
        assert session.scalar(sa.select(Manifest.creator)) == stored
        assert session.scalar(sa.select(TagHistory.actor)) == stored


class TestOddImageConfigs:
    def test_overlong_config_text_is_clipped_not_refused(self, session, registry):
        image = registry.add_image("t1/app", author="x" * 1000, architecture="arm\x00" * 30)
        push(session, registry, "t1/app", image["digest"], tag="v1")
        manifest = session.scalar(sa.select(Manifest))
        assert manifest.creator == "x" * 255
        assert manifest.architecture == ("arm\\x00" * 30)[:64]

    @pytest.mark.parametrize("created", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"])
    def test_a_creation_time_outside_the_calendar_in_utc_is_unknown(self, session, registry, created):
        assert parse_time(created) is None
        image = registry.add_image("t1/app", created=created)
        push(session, registry, "t1/app", image["digest"], tag="v1")
        assert session.scalar(sa.select(Manifest.created)) is None
