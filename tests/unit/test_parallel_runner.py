"""tests/support/parallel.py, the runner behind make test: how it splits a selection, deals files,
counts JUnit results, and when a shard's run counts as finished."""

import pytest

from tests.support.parallel import (
    BUILDS_IMAGES,
    COLD,
    NO_TESTS,
    Counts,
    Shard,
    deal,
    files_of,
    finished,
    for_this_run,
    marker_options,
    read_junit,
    split_args,
    to_record,
)


class TestSplitArgs:
    def test_paths_select_and_options_keep_their_values(self):
        args = ["-k", "tests", "tests/unit", "-x", "--timeout", "5", "tests/unit/cli/test_render.py::TestX", "-q"]
        assert split_args(args) == (
            ["tests/unit", "tests/unit/cli/test_render.py::TestX"],
            ["-k", "tests", "-x", "--timeout", "5", "-q"],
        )


class TestMarkerOptions:
    def test_the_phase_marker_joins_the_callers_own(self):
        assert marker_options(["-x"], "not exclusive") == ["-x", "-m", "not exclusive"]
        assert marker_options(["-m", "docker", "-x"], "exclusive") == ["-x", "-m", "(docker) and (exclusive)"]


class TestFilesOf:
    def test_tests_counted_per_file_in_collection_order(self):
        listing = """tests/e2e/test_faults.py::TestBrokerStopped::test_a
tests/e2e/test_broker_outage.py::TestBrokerOutage::test_b
tests/e2e/test_faults.py::TestDuplicatedReorderedLate::test_c[1]

3/3045 tests collected (3042 deselected) in 6.84s
"""
        assert list(files_of(listing).items()) == [
            ("tests/e2e/test_faults.py", 2),
            ("tests/e2e/test_broker_outage.py", 1),
        ]

    def test_nothing_collected_is_no_file(self):
        assert files_of("no tests collected (12 deselected) in 0.5s\n") == {}


class TestDeal:
    def test_longest_first_to_the_least_loaded_shard(self):
        files = {"a.py": 1, "b.py": 1, "c.py": 1, "d.py": 1, "e.py": 1}
        weights = {"a.py": 10.0, "b.py": 7.0, "c.py": 6.0, "d.py": 5.0, "e.py": 4.0}
        shards = deal(files, weights, 2)
        assert [s.files for s in shards] == [["a.py", "d.py"], ["b.py", "c.py", "e.py"]]
        assert [s.weight for s in shards] == [15.0, 17.0]

    def test_a_run_that_builds_the_images_weighs_their_test_by_its_cold_time(self):
        weights = {BUILDS_IMAGES: 20.0, BUILDS_IMAGES + COLD: 300.0, "a.py": 100.0, "b.py": 100.0, "c.py": 100.0}
        files = {BUILDS_IMAGES: 6, "a.py": 1, "b.py": 1, "c.py": 1}
        warm = deal(files, for_this_run(weights, cold=False), 2)
        cold = deal(files, for_this_run(weights, cold=True), 2)
        assert sorted(len(s.files) for s in warm) == [2, 2]  # 20 s beside a 100 s file
        assert sorted(sorted(s.files) for s in cold) == [["a.py", "b.py", "c.py"], [BUILDS_IMAGES]]  # 300 s alone
        assert for_this_run({"a.py": 1.0}, cold=True) == {"a.py": 1.0}  # nothing cold recorded yet

    def test_a_cold_runs_time_of_the_image_test_is_recorded_apart(self):
        by_file = {BUILDS_IMAGES: 301.04, "a.py": 9.96, "?": 1.0}
        assert to_record(by_file, cold=True) == {BUILDS_IMAGES + COLD: 301.0, "a.py": 10.0}
        assert to_record(by_file, cold=False) == {BUILDS_IMAGES: 301.0, "a.py": 10.0}

    def test_an_unrecorded_file_weighs_the_median_and_no_shard_is_empty(self):
        shards = deal({"a.py": 1, "new.py": 1}, {"a.py": 8.0, "b.py": 2.0, "c.py": 4.0}, 5)
        assert sorted((s.files[0], s.weight) for s in shards) == [("a.py", 8.0), ("new.py", 8.0)]


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.unit.test_a.TestA" name="test_ok" file="tests/unit/test_a.py" time="1.5"/>
<testcase classname="tests.unit.test_a" name="test_bad" file="tests/unit/test_a.py" time="0.5">
<failure message="x"/></testcase>
<testcase classname="tests.unit.test_b" name="test_broken" file="tests/unit/test_b.py" time="0.25">
<error message="y"/></testcase>
<testcase classname="tests.unit.test_b" name="test_later" file="tests/unit/test_b.py" time="0">
<skipped message="z"/></testcase>
</testsuite></testsuites>
"""


class TestReadJunit:
    def test_counts_outcomes_names_problems_and_sums_time_per_file(self, tmp_path):
        (tmp_path / "junit.xml").write_text(JUNIT)
        counts = Counts()
        read_junit(tmp_path / "junit.xml", counts)
        assert (counts.passed, counts.failed, counts.errors, counts.skipped) == (1, 1, 1, 1)
        assert counts.problems == [
            "FAILED tests/unit/test_a.py::test_bad",
            "ERROR tests/unit/test_b.py::test_broken",
        ]
        assert dict(counts.by_file) == {"tests/unit/test_a.py": 2.0, "tests/unit/test_b.py": 0.25}
        assert max(counts.times) == (1.5, "tests/unit/test_a.py::TestA::test_ok")

    def test_a_test_a_plugin_generates_counts_under_the_module_that_asked_for_it(self, tmp_path):
        plugin = ".venv/lib/python3.11/site-packages/schemathesis/pytest/lazy.py"
        (tmp_path / "junit.xml").write_text(
            f"""<testsuites><testsuite>
<testcase classname="tests.unit.test_parallel_runner" name="test_fuzzed[GET /x]" file="{plugin}" time="2.5"/>
<testcase classname="tests.unit.test_parallel_runner.TestReadJunit" name="test_y" file="{plugin}" time="0.5"/>
<testcase classname="elsewhere.module" name="test_z" file="{plugin}" time="1"/>
</testsuite></testsuites>"""
        )
        counts = Counts()
        read_junit(tmp_path / "junit.xml", counts)
        assert dict(counts.by_file) == {"tests/unit/test_parallel_runner.py": 3.0, plugin: 1.0}

    def test_a_subtest_is_counted_but_its_time_is_its_parents(self, tmp_path):
        """schemathesis' operations are subtests: the parent's time includes theirs, so the
        file weighs the parent's alone (a parametrized test, with no parent, weighs its own)."""
        (tmp_path / "junit.xml").write_text(
            """<testsuites><testsuite>
<testcase classname="tests.e2e.test_f" name="test_fuzzed" file="tests/e2e/test_f.py" time="10"/>
<testcase classname="tests.e2e.test_f" name="test_fuzzed[GET /x]" file="tests/e2e/test_f.py" time="4"/>
<testcase classname="tests.e2e.test_f" name="test_fuzzed[POST /x]" file="tests/e2e/test_f.py" time="5">
<failure message="500"/></testcase>
<testcase classname="tests.e2e.test_f" name="test_each[1]" file="tests/e2e/test_f.py" time="2"/>
</testsuite></testsuites>"""
        )
        counts = Counts()
        read_junit(tmp_path / "junit.xml", counts)
        assert dict(counts.by_file) == {"tests/e2e/test_f.py": 12.0}
        assert (counts.passed, counts.failed) == (3, 1)
        assert counts.problems == ["FAILED tests/e2e/test_f.py::test_fuzzed[POST /x]"]
        assert max(counts.times) == (10.0, "tests/e2e/test_f.py::test_fuzzed")

    def test_the_exclusive_phase_counts_but_weighs_nothing(self, tmp_path):
        """Its tests run after the shards, alone: their time is no part of a file's shard weight."""
        (tmp_path / "junit.xml").write_text(JUNIT)
        counts = Counts()
        read_junit(tmp_path / "junit.xml", counts, weigh=False)
        assert (counts.passed, counts.failed, counts.errors, counts.skipped) == (1, 1, 1, 1)
        assert dict(counts.by_file) == {}

    def test_a_missing_file_counts_nothing(self, tmp_path):
        counts = Counts()
        read_junit(tmp_path / "none.xml", counts)
        assert counts.passed + counts.failed + counts.errors + counts.skipped == 0


def shard(returncode, timed_out=False):
    return Shard("s", returncode=returncode, timed_out=timed_out)


class TestFinished:
    @pytest.mark.parametrize(
        "returncode, failures, has_junit, may_be_empty, done",
        [
            (0, 0, True, False, True),
            (1, 2, True, False, True),
            (1, 0, True, False, False),  # exit 1 and no failure counted: the process died mid-run
            (0, 0, False, False, False),  # no JUnit file: nothing proves what ran
            (2, 0, True, False, False),  # interrupted
            (3, 0, True, False, False),  # internal error
            (-9, 0, False, False, False),  # killed
            (NO_TESTS, 0, False, True, True),  # the exclusive phase found nothing to run
            (NO_TESTS, 0, False, False, False),  # a shard that should have had tests
        ],
    )
    def test_only_a_run_that_reached_its_end_counts(self, returncode, failures, has_junit, may_be_empty, done):
        assert finished(shard(returncode), failures, has_junit, may_be_empty) is done

    def test_a_shard_killed_at_the_deadline_never_counts(self):
        assert finished(shard(0, timed_out=True), 0, True) is False
