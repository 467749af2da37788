"""JSON log lines that say which call and which event they belong to.

Each service's ``config.yml`` sets its ``LOGGING`` (which ``nameko run`` applies) to
``JsonFormatter``: one JSON object per line, with the time (UTC, ISO 8601), level, logger,
message and exception, and the context of the worker that logged it — its service, nameko's call
ID and call ID stack, and for an event handler the event's ID — bound by ``shared.runtime.metrics``
while the worker runs. Outside a worker (a timer's own thread, start-up) the context is the
process's service only. ``grep <event_id>`` over the services' logs follows one push from the
webhook's request to the deployer's rollout (docs/operations.md).

The context is green-thread local (eventlet's ``corolocal``): nameko runs each worker in a green
thread, and concurrent workers never see each other's context.
"""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from eventlet import corolocal

_context = corolocal.local()
_process: dict[str, str | None] = {"service": None}


def set_process_service(name: str) -> None:
    """The service named in lines logged outside a worker (the first service class set up)."""
    if _process["service"] is None:
        _process["service"] = name


def bind(**values: Any) -> None:
    """Give the current green thread's log lines these fields, until ``unbind``."""
    _context.values = dict(values)


def unbind() -> None:
    _context.values = {}


def current() -> dict[str, Any]:
    return dict(getattr(_context, "values", None) or {})


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module); non-ASCII text kept as it is."""

    def format(self, record: logging.LogRecord) -> str:
        context = current()
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": context.get("service") or _process["service"],
            "call_id": context.get("call_id"),
            "call_id_stack": context.get("call_id_stack"),
            "event_id": context.get("event_id"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
