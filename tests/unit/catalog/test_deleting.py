"""delete_tag: who may delete, sibling tags, and registry and catalogue afterwards."""

import pytest
import sqlalchemy as sa

from catalog import deleting, indexing
from catalog.models import Manifest, TagHistory
from shared.contracts.errors import Conflict, Forbidden, NotFound, RegistryUnavailable
from shared.contracts.events import TAG_REMOVED
from tests.unit.catalog.conftest import pushed


@pytest.fixture
def app(session, registry):
    """t1/app: v1 and stable on digest A, v2 on digest B."""
    a, b = registry.add_image("t1/app", "a"), registry.add_image("t1/app", "b")
    for digest, tag in ((a["digest"], "v1"), (a["digest"], "stable"), (b["digest"], "v2")):
        indexing.record_push(session, registry, pushed("t1/app", digest, tag=tag))
    session.commit()
    return a["digest"], b["digest"]


def delete_tag(session, registry, tenant_id, repository, tag, force=False):
    result = deleting.delete_tag(session, registry, tenant_id, repository, tag, force)
    session.commit()
    return result


def catalogued(session):
    return sorted(session.scalars(sa.text("SELECT name FROM tags")))


class TestWhoMayDelete:
    def test_another_tenant_is_forbidden_and_nothing_changes(self, session, registry, app):
        with pytest.raises(Forbidden, match="may not change"):
            delete_tag(session, registry, "t2", "t1/app", "v2")
        assert registry.deleted == []
        assert catalogued(session) == ["stable", "v1", "v2"]

    @pytest.mark.parametrize("tenant_id", [None, "t1"])
    def test_the_public_library_is_read_only(self, session, registry, tenant_id):
        with pytest.raises(Forbidden, match="public library"):
            delete_tag(session, registry, tenant_id, "library/nginx", "latest")

    def test_missing_tag_is_not_found(self, session, registry, app):
        with pytest.raises(NotFound, match="'v9'"):
            delete_tag(session, registry, "t1", "t1/app", "v9")


class TestSiblingTags:
    def test_siblings_are_a_conflict_naming_them(self, session, registry, app):
        with pytest.raises(Conflict, match="'stable'.*force=True"):
            delete_tag(session, registry, "t1", "t1/app", "v1")
        assert registry.deleted == []
        assert catalogued(session) == ["stable", "v1", "v2"]

    def test_force_deletes_the_digest_with_all_its_tags(self, session, registry, app):
        result, outgoing = delete_tag(session, registry, "t1", "t1/app", "v1", force=True)
        assert result == {"repository": "t1/app", "tag": "v1", "digest": app[0], "deleted_tags": ["stable", "v1"]}
        assert registry.deleted == [("t1/app", app[0])]
        assert catalogued(session) == ["v2"]
        assert sorted((event_type, p["tag"]) for event_type, p in outgoing) == [
            (TAG_REMOVED, "stable"),
            (TAG_REMOVED, "v1"),
        ]
        assert session.scalars(sa.select(Manifest.digest)).all() == [app[1]]
        removed = session.scalars(sa.select(TagHistory).where(TagHistory.action == "removed")).all()
        assert {(h.tag, h.actor) for h in removed} == {("v1", "t1"), ("stable", "t1")}

    def test_a_lone_tag_is_deleted_without_force(self, session, registry, app):
        result, _ = delete_tag(session, registry, "t1", "t1/app", "v2")
        assert result["deleted_tags"] == ["v2"]
        assert catalogued(session) == ["stable", "v1"]


class TestRegistryState:
    def test_registry_away_leaves_the_catalogue_unchanged(self, session, registry, app):
        registry.unavailable = True
        with pytest.raises(RegistryUnavailable):
            delete_tag(session, registry, "t1", "t1/app", "v2")
        session.rollback()
        assert catalogued(session) == ["stable", "v1", "v2"]

    def test_manifest_already_gone_from_the_registry_is_cleaned_up(self, session, registry, app):
        registry.manifests.pop(("t1/app", app[1]))
        result, _ = delete_tag(session, registry, "t1", "t1/app", "v2")
        assert result["deleted_tags"] == ["v2"]
        assert catalogued(session) == ["stable", "v1"]
