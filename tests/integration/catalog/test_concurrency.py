"""Several workers on one new repository and one tag at once, on both databases."""

import itertools
from datetime import UTC, datetime, timedelta

from nameko.testing.services import entrypoint_waiter

from shared.contracts.events import IMAGE_PUSHED, TAG_INDEXED, WEBHOOK
from tests.support import push_image


def dispatch_together(catalog, webhook, payloads):
    """Dispatch all at once; wait until every one has been handled.

    A worker that failed fails the test: a race the catalog's unit of work did not absorb, a
    deadlock, any database error. Its queue would deliver the event again and a later attempt
    might succeed, but these tests cause no error on purpose, so none is tolerated."""
    pending = {p["event_id"] for p in payloads}
    failed = []

    def all_done(worker_ctx, result, exc_info):
        for i, payload in enumerate(worker_ctx.args[0]):  # the batch, one outcome each
            outcome = exc_info[1] if exc_info else result[i]
            if outcome is not None:
                failed.append(f"{payload['event_id']}: {outcome!r}")
            pending.discard(payload["event_id"])
        return not pending or bool(failed)

    with entrypoint_waiter(catalog, "handle_image_pushed", callback=all_done, timeout=30):
        for payload in payloads:
            webhook.dispatch(WEBHOOK, IMAGE_PUSHED, payload)
    assert failed == []
    assert pending == set()


class TestConcurrentPushes:
    def test_pushes_to_one_new_repository_make_one_repository_with_every_tag(
        self, registry, catalog, webhook, observed, rpc, tenant
    ):
        repository = f"{tenant}/fresh"
        images = [push_image(registry.url, repository, f"v{i}", content=f"{tenant}-{i}".encode()) for i in range(8)]
        dispatch_together(catalog, webhook, [webhook.pushed(image) for image in images])

        assert [r["repository"] for r in rpc.list_repositories(tenant)["items"]] == [repository]
        listed = {t["tag"]: t["digest"] for t in rpc.list_tags(tenant, repository)["items"]}
        assert listed == {image["tag"]: image["digest"] for image in images}
        assert len(observed.wait_for(TAG_INDEXED, 8)) == 8

    def test_pushes_to_one_tag_leave_it_on_the_newest_with_a_consistent_history(
        self, registry, catalog, webhook, rpc, tenant
    ):
        repository = f"{tenant}/busy"
        images = [push_image(registry.url, repository, None, content=f"{tenant}-{i}".encode()) for i in range(6)]
        start = datetime.now(UTC)
        payloads = [
            webhook.pushed(image, tag="latest", pushed_at=(start + timedelta(seconds=i)).isoformat())
            for i, image in enumerate(images)
        ]
        dispatch_together(catalog, webhook, payloads)

        assert rpc.get_tag(tenant, repository, "latest")["digest"] == images[-1]["digest"]
        history = list(reversed(rpc.list_tag_history(tenant, repository, "latest")["items"]))
        assert history[0]["previous_digest"] is None
        for before, after in itertools.pairwise(history):
            assert after["previous_digest"] == before["digest"]
        assert history[-1]["digest"] == images[-1]["digest"]


class TestTagRowLock:
    def test_a_tag_read_for_update_after_a_concurrent_move_comes_with_the_new_manifest(self, pg_url, registry, tenant):
        """PostgreSQL re-reads a row it waited for, but a join in the same statement stays in the
        snapshot from before the wait: the winner's new manifest must be loaded afterwards."""
        import eventlet
        from sqlalchemy.orm import Session

        from catalog import indexing, store
        from catalog.migrate import upgrade
        from shared.runtime import db
        from tests.unit.catalog.conftest import FakeRegistry, pushed

        upgrade(pg_url)
        engine = db.create_engine(pg_url)
        fake = FakeRegistry()
        old, new = fake.add_image(f"{tenant}/app", content="old"), fake.add_image(f"{tenant}/app", content="new")
        mover, reader = Session(engine), Session(engine)
        try:
            indexing.record_push(mover, fake, pushed(f"{tenant}/app", old["digest"], tag="v1"))
            mover.commit()
            indexing.record_push(
                mover, fake, pushed(f"{tenant}/app", new["digest"], tag="v1", pushed_at=datetime.now(UTC))
            )
            mover.flush()  # holds the tag row, moved to a manifest only this transaction sees yet
            repository = store.find_repository(reader, tenant, "app")
            waiting = eventlet.spawn(lambda: store.find_tag(reader, repository.id, "v1", for_update=True))
            eventlet.sleep(0.3)  # the reader is blocked on the row lock
            mover.commit()
            tag = waiting.wait()
            assert tag.manifest is not None and tag.manifest.digest == new["digest"]
        finally:
            for session in (mover, reader):
                session.rollback()
                session.close()
            engine.dispose()


class TestDeleteTagLockOrder:
    def test_delete_tag_waits_for_the_repository_before_it_touches_the_tags(self, pg_url, tenant):
        """delete_tag against its own registry notification: the handler (record_delete) locks
        the repository row, then the tags. delete_tag used to delete the tag rows first and then
        wait for the repository row: a deadlock on PostgreSQL. It must wait on the repository
        first, holding no tag lock meanwhile."""
        import eventlet
        import sqlalchemy as sa
        from sqlalchemy.orm import Session

        from catalog import deleting, indexing, store
        from catalog.migrate import upgrade
        from catalog.models import Repository, Tag
        from shared.runtime import db
        from tests.unit.catalog.conftest import FakeRegistry, pushed

        upgrade(pg_url)
        engine = db.create_engine(pg_url)
        fake = FakeRegistry()
        image = fake.add_image(f"{tenant}/app", content="v1")
        fake.tags[f"{tenant}/app"] = {"v1": image["digest"]}
        setup, holder, deleter, probe = (Session(engine) for _ in range(4))
        try:
            indexing.record_push(setup, fake, pushed(f"{tenant}/app", image["digest"], tag="v1"))
            setup.commit()
            tag_id = setup.scalar(
                sa.select(Tag.id)
                .join(Repository, Repository.id == Tag.repository_id)
                .where(Repository.namespace == tenant, Tag.name == "v1")
            )
            # The notification's handler has the repository row (as record_delete takes it).
            store.find_repository(holder, tenant, "app", for_update=True)
            running = eventlet.spawn(deleting.delete_tag, deleter, fake, tenant, f"{tenant}/app", "v1", False)
            eventlet.sleep(0.5)
            assert not running.dead, "delete_tag did not wait for the repository row"
            # ...and meanwhile it holds no lock on the tag row, which the handler is about to take.
            probe.execute(sa.select(Tag.id).where(Tag.id == tag_id).with_for_update(nowait=True)).all()
            probe.rollback()
            holder.commit()
            result, outgoing = running.wait()
            deleter.commit()
            assert (result["deleted_tags"], [e["tag"] for _, e in outgoing]) == (["v1"], ["v1"])
            assert fake.deleted == [(f"{tenant}/app", image["digest"])]
        finally:
            for session in (setup, holder, deleter, probe):
                session.rollback()
                session.close()
            engine.dispose()
