"""Run the suite as several pytest processes at once: ``make test`` (scripts/test.sh) calls this.

pytest-xdist cannot run this suite: the root conftest monkey-patches eventlet, and execnet's
worker threads then die with ``greenlet.error: Cannot switch to a different thread``. Plain
pytest processes have no such thread, so the runner starts N of them itself:

* The selection is collected once (``--collect-only``) and split by test file, the unit that
  module-scoped fixtures (a registry, a running stack) are built for. Files are dealt longest first
  to the least loaded shard (LPT), weighed by the durations recorded in ``tests/durations.json``;
  a file not recorded yet weighs the median. ``--record`` rewrites that file from this run's
  shards (not from the exclusive phase, which is not dealt; a subtest's time counts in its parent's).
  ``tests/k8s/test_images.py`` builds the service images first where they are not built yet (a
  fresh machine, as CI's): that run's time is recorded apart, ``<file> (cold)``, and weighs it
  when this machine has no base image yet (``scripts/base-image.sh``).
* Each shard has its own ``--basetemp`` (pytest prunes old numbered temp dirs, which would remove
  a sibling's), its own ``DOCKER_CONFIG`` (``docker login`` state is per user otherwise), its own
  log and JUnit XML. Brokers vhosts, databases, registries and ports are per test already.
* Tests marked ``exclusive`` (they stop the machine's RabbitMQ) run afterwards, alone: only the
  files that hold some (collected while the shards run) are loaded again.
* One summary at the end, counted from the JUnit files: failures by node id, the slowest tests,
  each shard's wall time, and the closing line ``N passed, N failed, N skipped``.

Exit status: 0 only if every test that ran passed; 5 if the selection collected nothing; 1
otherwise (a failure, an error, a shard that died or ran past ``--timeout``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DURATIONS = ROOT / "tests" / "durations.json"
EXCLUSIVE = "exclusive"
DEFAULT_WEIGHT = 5.0
NO_TESTS = 5  # pytest's exit status when it collected nothing
BUILDS_IMAGES = "tests/k8s/test_images.py"  # builds the base and service images where they are missing
COLD = " (cold)"  # the key suffix of a file's time in a run that had to build its images first


@dataclass
class Shard:
    name: str
    files: list[str] = field(default_factory=list)
    weight: float = 0.0
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    wall: float = 0.0
    returncode: int | None = None
    timed_out: bool = False


@dataclass
class Counts:
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)
    times: list[tuple[float, str]] = field(default_factory=list)
    by_file: dict[str, float] = field(default_factory=lambda: defaultdict(float))


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(selection, options): an argument naming an existing path (or ``path::test``) selects tests;
    everything else, with the value of an option that takes one, is passed to every shard."""
    takes_value = {"-k", "-m", "-p", "-o", "-c", "--timeout", "--maxfail", "--deselect", "--ignore", "--rootdir"}
    selection: list[str] = []
    options: list[str] = []
    it = iter(args)
    for arg in it:
        if arg in takes_value:
            options += [arg, next(it, "")]
        elif not arg.startswith("-") and Path(arg.split("::")[0]).exists():
            selection.append(arg)
        else:
            options.append(arg)
    return selection, options


def marker_options(options: list[str], expression: str) -> list[str]:
    """The options with ``-m`` narrowed by ``expression`` (and the user's own ``-m``, if given)."""
    out: list[str] = []
    user = None
    it = iter(options)
    for arg in it:
        if arg == "-m":
            user = next(it, "")
        else:
            out.append(arg)
    return [*out, "-m", f"({user}) and ({expression})" if user else expression]


def pytest_command(python: str) -> list[str]:
    return [python, "-m", "pytest", "-p", "no:cacheprovider", "-o", "junit_family=xunit1"]


def start_collecting(python: str, selection: list[str], options: list[str], expression: str) -> subprocess.Popen[str]:
    """A ``--collect-only`` of the selection's tests that match ``expression``, started."""
    cmd = [*pytest_command(python), "--collect-only", "-q", *marker_options(options, expression), *selection]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collected(proc: subprocess.Popen[str]) -> dict[str, int]:
    """``{file: number of tests}`` of a collection started by ``start_collecting``, in its order."""
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("collection did not end within 600 s") from None
    if proc.returncode not in (0, NO_TESTS):
        sys.stdout.write(out[-5000:] + err[-5000:])
        raise SystemExit(f"collection failed (pytest exit {proc.returncode})")
    return files_of(out)


def files_of(listing: str) -> dict[str, int]:
    """``{file: number of tests}`` of ``pytest --collect-only -q`` output."""
    files: dict[str, int] = {}
    for line in listing.splitlines():
        if "::" in line and not line.startswith(" "):
            path = line.split("::", 1)[0]
            files[path] = files.get(path, 0) + 1
    return files


def deal(files: dict[str, int], weights: dict[str, float], n: int) -> list[Shard]:
    """Longest processing time first: each file to the shard with the least work so far."""
    known = [w for f, w in weights.items() if f in files]
    default = statistics.median(known) if known else DEFAULT_WEIGHT
    shards = [Shard(f"shard{i + 1}") for i in range(max(1, min(n, len(files))))]
    for path in sorted(files, key=lambda f: weights.get(f, default), reverse=True):
        lightest = min(shards, key=lambda s: s.weight)
        lightest.files.append(path)
        lightest.weight += weights.get(path, default)
    return shards


def images_built() -> bool:
    """Whether the service images' base (``scripts/base-image.sh``) is on this machine's engine;
    without it, ``BUILDS_IMAGES`` starts with a debootstrap and a build of every image."""
    try:
        found = subprocess.run(["docker", "images", "-q", "imagehub/base"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return found.returncode == 0 and bool(found.stdout.strip())


def for_this_run(weights: dict[str, float], cold: bool) -> dict[str, float]:
    """The weights to deal by: a file's cold time where this run must build its images and one
    was recorded, its usual time otherwise."""
    key = BUILDS_IMAGES + COLD
    if cold and key in weights:
        return {**weights, BUILDS_IMAGES: weights[key]}
    return weights


def to_record(by_file: dict[str, float], cold: bool) -> dict[str, float]:
    """This run's times per file as ``--record`` writes them: a cold run's ``BUILDS_IMAGES`` under
    its own key, so that a warm machine's deal is not thrown off by it (nor the reverse)."""
    recorded = {f: round(t, 1) for f, t in sorted(by_file.items()) if f != "?"}
    if cold and BUILDS_IMAGES in recorded:
        recorded[BUILDS_IMAGES + COLD] = recorded.pop(BUILDS_IMAGES)
    return recorded


def start(shard: Shard, python: str, options: list[str], workdir: Path, marker: str) -> None:
    home = workdir / shard.name
    (home / "docker-config").mkdir(parents=True)
    env = dict(os.environ, DOCKER_CONFIG=str(home / "docker-config"), IMAGEHUB_TEST_SHARD=shard.name)
    cmd = [
        *pytest_command(python),
        f"--basetemp={home / 'tmp'}",
        f"--junitxml={home / 'junit.xml'}",
        *marker_options(options, marker),
        *shard.files,
    ]
    log = (home / "log").open("wb")
    shard.started = time.monotonic()
    # A session of its own, so that a shard past the deadline is killed with everything it started.
    shard.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()


def wait(shards: list[Shard], deadline: float) -> None:
    while any(s.returncode is None for s in shards):
        for s in shards:
            if s.returncode is not None or s.proc is None:
                continue
            rc = s.proc.poll()
            if rc is None and time.monotonic() > deadline:
                s.timed_out = True
                os.killpg(s.proc.pid, signal.SIGKILL)
                rc = s.proc.wait()
            if rc is not None:
                s.returncode = rc
                s.wall = time.monotonic() - s.started
        time.sleep(0.2)


def test_file(reported: str, classname: str) -> str:
    """The test file a JUnit test case belongs to. A test a plugin generates is reported under the
    plugin's own file (schemathesis' lazy schema: ``.venv/…/schemathesis/pytest/lazy.py``): it is
    counted under the test module its class name names, so the file's weight is its real one."""
    if reported.startswith("tests/") or not classname.startswith("tests."):
        return reported
    parts = classname.split(".")
    for end in range(len(parts), 1, -1):
        candidate = "/".join(parts[:end]) + ".py"
        if (ROOT / candidate).is_file():
            return candidate
    return reported


def read_junit(path: Path, counts: Counts, weigh: bool = True) -> None:
    """Add a shard's JUnit file to ``counts``. ``weigh``: also add its times to ``by_file``, the
    weights the next run deals shards by (not for the exclusive phase: it is not dealt).

    A subtest (pytest-subtests; schemathesis runs each operation of a schema as one) is reported
    as a test case of its own, ``test_x[GET /path]``, beside its parent ``test_x``, whose time
    already includes it: it is counted (passed, failed, slowest) but its time not added again."""
    if not path.exists():
        return
    cases = list(ET.parse(path).getroot().iter("testcase"))
    parents = {(case.get("classname"), case.get("name")) for case in cases}
    for case in cases:
        name = case.get("name") or ""
        subtest = "[" in name and (case.get("classname"), name.split("[", 1)[0]) in parents
        path = test_file(case.get("file") or "?", case.get("classname") or "")
        module = path.removesuffix(".py").replace("/", ".")
        cls = (case.get("classname") or "").removeprefix(module).lstrip(".")
        node = "::".join(part for part in (path, cls, name) if part)
        seconds = float(case.get("time") or 0)
        counts.times.append((seconds, node))
        if weigh and not subtest:
            counts.by_file[path] += seconds
        if case.find("failure") is not None:
            counts.failed += 1
            counts.problems.append(f"FAILED {node}")
        elif case.find("error") is not None:
            counts.errors += 1
            counts.problems.append(f"ERROR {node}")
        elif case.find("skipped") is not None:
            counts.skipped += 1
        else:
            counts.passed += 1


def finished(shard: Shard, failures: int, has_junit: bool, may_be_empty: bool = False) -> bool:
    """Whether a shard's pytest ran to its end: passed (exit 0), or failed and said which tests
    (exit 1 with failures in its JUnit file), or found nothing to run where that is allowed (the
    exclusive phase, exit 5). Anything else — killed, a timeout that ended the process, a crash,
    an internal error, no JUnit file — did not finish, whatever its JUnit file counts."""
    if shard.timed_out:
        return False
    if shard.returncode == NO_TESTS:
        return may_be_empty
    return has_junit and (shard.returncode == 0 or (shard.returncode == 1 and failures > 0))


def show_log(shard: Shard, workdir: Path, lines: int = 400) -> None:
    text = (workdir / shard.name / "log").read_text(errors="replace").splitlines()
    print(f"----- {shard.name}: last {min(lines, len(text))} lines of its output -----")
    print("\n".join(text[-lines:]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("IMAGEHUB_TEST_WORKERS", "4")))
    parser.add_argument("--timeout", type=float, default=float(os.environ.get("IMAGEHUB_TEST_TIMEOUT", "2400")))
    parser.add_argument("--record", action="store_true", help=f"rewrite {DURATIONS.relative_to(ROOT)} from this run")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    pytest_args = [a for a in args.pytest_args if a != "--"]
    selection, options = split_args(pytest_args)
    if any("::" in s for s in selection):
        # Single tests named: one pytest, as asked.
        return subprocess.call([*pytest_command(args.python), *pytest_args], cwd=ROOT)

    began = time.monotonic()
    files = collected(start_collecting(args.python, selection, options, f"not {EXCLUSIVE}"))
    weights = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    cold = BUILDS_IMAGES in files and not images_built()
    shards = deal(files, for_this_run(weights, cold), args.workers) if files else []
    workdir = Path(tempfile.mkdtemp(prefix="imagehub-tests-"))
    builds = f"; {BUILDS_IMAGES} builds the images first" if cold else ""
    print(
        f"{sum(files.values())} tests in {len(files)} files, {len(shards)} shards{builds}; logs in {workdir}",
        flush=True,
    )
    for s in shards:
        start(s, args.python, options, workdir, f"not {EXCLUSIVE}")
    # Which files hold exclusive tests is found out meanwhile: the phase that runs them alone then
    # imports those files only, not the whole selection again (~10 s of its wall).
    exclusive = start_collecting(args.python, selection, options, EXCLUSIVE)
    wait(shards, began + args.timeout)
    alone = Shard("exclusive", files=list(collected(exclusive)))
    if alone.files:
        start(alone, args.python, options, workdir, EXCLUSIVE)
        wait([alone], began + args.timeout)
    else:
        alone.returncode = NO_TESTS

    counts = Counts()
    broken = []
    for s in [*shards, alone]:
        before = counts.failed + counts.errors
        junit = workdir / s.name / "junit.xml"
        read_junit(junit, counts, weigh=s is not alone)
        if not finished(s, counts.failed + counts.errors - before, junit.exists(), may_be_empty=s is alone):
            broken.append(s)
    for s in [*shards, alone]:
        if s.returncode not in (0, NO_TESTS) or s.timed_out:
            show_log(s, workdir)

    print("\n===== slowest tests =====")
    for seconds, node in sorted(counts.times, reverse=True)[:20]:
        print(f"{seconds:8.1f}s  {node}")
    print("\n===== shards =====")
    for s in [*shards, alone]:
        state = "killed at the deadline" if s.timed_out else f"exit {s.returncode}"
        print(f"{s.name:10} {len(s.files):3} files, estimate {s.weight:6.0f}s, took {s.wall:6.0f}s, {state}")
    if counts.problems:
        print("\n===== failures =====")
        print("\n".join(counts.problems))
    if args.record:
        recorded = to_record(counts.by_file, cold)
        DURATIONS.write_text(json.dumps({**weights, **recorded}, indent=1, sort_keys=True) + "\n")
        print(f"durations of {len(recorded)} files written to {DURATIONS.relative_to(ROOT)}")
    total = counts.passed + counts.failed + counts.errors + counts.skipped
    elapsed = time.monotonic() - began
    for s in broken:
        deadline = " (killed at the deadline)" if s.timed_out else ""
        print(f"BROKEN {s.name}: exit {s.returncode}{deadline}, its run did not finish")
    print(f"\n{counts.errors} errors, {len(broken)} shards broken, wall {elapsed:.0f}s")
    print(f"{counts.passed} passed, {counts.failed + counts.errors} failed, {counts.skipped} skipped")
    if not (broken or counts.problems):
        shutil.rmtree(workdir, ignore_errors=True)
    if total == 0 and not broken:
        return NO_TESTS
    return 0 if not (broken or counts.failed or counts.errors) else 1


if __name__ == "__main__":
    sys.exit(main())
