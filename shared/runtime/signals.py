"""Wake eventlet's hub when a signal arrives, so that ``nameko run`` stops at once on SIGTERM.

``nameko run``'s SIGTERM handler only schedules the stop (``eventlet.spawn_n``): the hub runs it
when it next wakes, and a hub with nothing to do sleeps until its next timer — the webhook's
broker probe (10 s), the deployer's reconciler… Python retries the interrupted ``epoll`` wait
with the time left (PEP 475), so a stop waited up to a timer interval before it began: the webhook
took about 8 s to stop, which ``make down``, every e2e teardown and a Kubernetes pod's grace
period paid. ``signal.set_wakeup_fd`` makes the interpreter write a byte to a pipe whose read end
the hub watches: the hub wakes, runs the stop, and a service stops in well under a second.

A SIGTERM that arrives while the container is still starting must not hang it either. nameko
2.14 serves HTTP before its AMQP consumer has connected; a stop in that window kills the
consumer's thread half-way and then waits for consumers that never registered, for ever (seen in
CI: ``/health`` answered, SIGTERM 2 ms later, no exit in 30 s). ``install()`` therefore makes a
container's ``stop`` first wait for its ``start`` to end — at most ``START_GRACE`` seconds, after
which nameko's own stop runs as before (a broker that never answers leaves a start that never
ends).

``install()`` is called on import by each service package (as ``shared.runtime.amqp``'s fix); it does
nothing outside the main thread, and only once.
"""

import os
import signal
from collections.abc import Callable
from functools import wraps
from typing import Any

import eventlet
from eventlet import hubs
from eventlet.event import Event
from nameko.containers import ServiceContainer

_installed = False

# How long a stop waits for a start under way to end (a start takes well under a second here).
START_GRACE = 10.0


def install() -> None:
    global _installed
    if _installed:
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)
    try:
        # (Under eventlet's monkey-patching, threading cannot tell the main thread reliably; the
        # interpreter can: it refuses this anywhere else.)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # not the main thread
        os.close(read_fd)
        os.close(write_fd)
        return
    eventlet.spawn_n(_drain, read_fd)
    _stop_after_start()
    _installed = True


def _stop_after_start() -> None:
    start: Callable[[Any], None] = ServiceContainer.start
    stop: Callable[[Any], None] = ServiceContainer.stop
    if getattr(start, "imagehub_stop_after_start", False):
        return

    @wraps(start)
    def tracked_start(self: Any) -> None:
        self.imagehub_started = Event()
        try:
            start(self)
        finally:
            self.imagehub_started.send(None)

    @wraps(stop)
    def stop_when_started(self: Any) -> None:
        started = getattr(self, "imagehub_started", None)
        if started is not None and not started.ready():
            with eventlet.Timeout(START_GRACE, False):
                started.wait()
        stop(self)

    setattr(tracked_start, "imagehub_stop_after_start", True)  # noqa: B010
    ServiceContainer.start = tracked_start
    ServiceContainer.stop = stop_when_started


def _drain(read_fd: int) -> None:
    """Wait on the pipe in the hub; what is written is only a wake-up call, thrown away."""
    while True:
        hubs.trampoline(read_fd, read=True)
        try:
            os.read(read_fd, 512)
        except BlockingIOError:
            pass
