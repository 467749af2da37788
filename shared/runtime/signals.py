"""Wake eventlet's hub when a signal arrives, so that ``nameko run`` stops at once on SIGTERM.

``nameko run``'s SIGTERM handler only schedules the stop (``eventlet.spawn_n``): the hub runs it
when it next wakes, and a hub with nothing to do sleeps until its next timer — the webhook's
broker probe (10 s), the deployer's reconciler… Python retries the interrupted ``epoll`` wait
with the time left (PEP 475), so a stop waited up to a timer interval before it began: the webhook
took about 8 s to stop, which ``make down``, every e2e teardown and a Kubernetes pod's grace
period paid. ``signal.set_wakeup_fd`` makes the interpreter write a byte to a pipe whose read end
the hub watches: the hub wakes, runs the stop, and a service stops in well under a second.

``install()`` is called on import by each service package (as ``shared.runtime.amqp``'s fix); it does
nothing outside the main thread, and only once.
"""

import os
import signal

import eventlet
from eventlet import hubs

_installed = False


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
    _installed = True


def _drain(read_fd: int) -> None:
    """Wait on the pipe in the hub; what is written is only a wake-up call, thrown away."""
    while True:
        hubs.trampoline(read_fd, read=True)
        try:
            os.read(read_fd, 512)
        except BlockingIOError:
            pass
