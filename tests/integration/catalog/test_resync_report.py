"""get_resync without items reads the counts a pass saves beside its report, on both databases."""

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import resync
from catalog.models import ResyncPass
from catalog.resync.report import saved_report


def test_counts_without_items_match_the_report_a_pass_saved(catalog_db_url):
    engine = sa.create_engine(catalog_db_url)
    try:
        with Session(engine) as session:
            pass_id = resync.start_pass(session, None, resync.RPC)
            session.commit()
            report = resync.report.empty_report()
            report["added"] = [
                {"repository": f"t1/a{i}", "tag": "v1", "digest": "sha256:" + "a" * 64} for i in range(3)
            ]
            report["skipped"] = [{"repository": "t1/b", "tag": None, "reason": "not indexed"}]
            session.execute(sa.update(ResyncPass).where(ResyncPass.id == pass_id).values(report=saved_report(report)))
            session.commit()

        with Session(engine) as session:
            brief = resync.get_pass(session, pass_id, items=False)
            latest = resync.get_pass(session, None, items=False)
            full = resync.get_pass(session, pass_id)

        assert brief["counts"] == {"added": 3, "moved": 0, "removed": 0, "pending_removal": 0, "skipped": 1}
        assert latest["counts"] == brief["counts"] == full["counts"]
        assert brief["added"] is None and latest["skipped"] is None
        assert full["added"] == report["added"] and full["skipped"] == report["skipped"]
    finally:
        engine.dispose()


def test_a_report_saved_without_counts_is_counted_from_its_entries(catalog_db_url):
    engine = sa.create_engine(catalog_db_url)
    try:
        with Session(engine) as session:
            pass_id = resync.start_pass(session, None, resync.RPC)  # an empty report, no counts
            session.commit()
            report = resync.report.empty_report()
            report["removed"] = [{"repository": "t1/a", "tag": "v1", "digest": "sha256:" + "b" * 64}]
            session.execute(sa.update(ResyncPass).where(ResyncPass.id == pass_id).values(report=report))
            session.commit()

        with Session(engine) as session:
            assert resync.get_pass(session, pass_id, items=False)["counts"]["removed"] == 1
    finally:
        engine.dispose()
