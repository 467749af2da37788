"""shared.runtime.signals: a signal wakes eventlet's hub, so `nameko run`'s scheduled stop runs at once
rather than at the hub's next timer."""

import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent("""
    import eventlet; eventlet.monkey_patch()
    import os, signal, sys, time
    if sys.argv[1] == "on":
        import {package}  # noqa: F401  (a service package installs it, as nameko run imports it)
    timer_due = time.monotonic() + 6
    def stop():
        print("stopped", "before the timer" if time.monotonic() < timer_due else "when the timer woke the hub",
              flush=True)
        os._exit(0)
    def shutdown(signum, frame):  # what nameko run does: schedule the stop, return
        eventlet.spawn_n(stop)
    signal.signal(signal.SIGTERM, shutdown)
    def next_timer():  # the hub's only other business: a timer, 6 s away
        eventlet.sleep(6)
    eventlet.spawn(next_timer)
    print("ready", flush=True)
    eventlet.sleep(60)
""")


def wait_idle(pid, timeout=20.0):
    """Until the process sleeps in the kernel (its hub waiting for the next timer): a signal sent
    while it is still on its way there, as happens on a loaded machine, would be seen before the
    hub sleeps and so prove nothing either way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as stat, open(f"/proc/{pid}/wchan") as wchan:
            if stat.read().rsplit(")", 1)[1].split()[0] == "S" and wchan.read().strip() not in ("", "0"):
                return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never went idle")


def run(package, mode):
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore", "-c", SCRIPT.format(package=package), mode], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "ready"
    wait_idle(proc.pid)
    proc.terminate()
    out, _ = proc.communicate(timeout=45)
    return proc.returncode, out.strip()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("package", ["catalog", "deployer", "webhook", "auth"])
def test_the_stop_runs_before_the_hubs_next_timer(package):
    assert run(package, "on") == (0, "stopped before the timer")


@pytest.mark.timeout(60)
def test_without_it_the_stop_waits_for_the_timer():
    """What the fix is for (and that this test can tell the difference)."""
    assert run("shared", "off") == (0, "stopped when the timer woke the hub")
