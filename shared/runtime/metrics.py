"""Every service's Prometheus metrics, and the context its log lines carry.

``metrics = Metrics()`` on a service class:

* serves ``/metrics`` (prometheus_client's text format) on ``METRICS_ADDRESS:METRICS_PORT`` of its
  config (127.0.0.1 unless told otherwise; no port, or 0: no server), once per process — the
  deployer's process runs two service classes and serves one page for both;
* counts every RPC call by service, method and outcome (``ok`` or the error's type) with its
  latency, and every HTTP request by service, entrypoint and status class;
* while a worker runs, gives its log lines (``shared.runtime.logs``) the worker's service, nameko's
  call ID and call ID stack (one push can be followed from the webhook's request to the
  deployer's rollout) and, for an event, the event's ID.

The rest of the suite records through the functions here: ``observe_event`` (the consumer kit:
handled, retried, dead-lettered), ``observe_registry`` (registry clients), and ``gauge_callback``
for values read when Prometheus scrapes (outbox backlog, deployments by status, dead letters
waiting). docs/operations.md lists every metric with the alert it deserves.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import prometheus_client
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from nameko.web.handlers import HttpRequestHandler
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from shared.runtime import logs

log = logging.getLogger(__name__)

# No ``*_created`` series beside every counter and histogram: a process's start is in
# ``process_start_time_seconds`` already, and they double what a scrape carries.
prometheus_client.disable_created_metrics()

PORT_KEY = "METRICS_PORT"
ADDRESS_KEY = "METRICS_ADDRESS"

# Latency buckets (seconds) for calls and events: a read RPC takes milliseconds, a registry fetch
# tens of them, a rollout event minutes.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

EVENTS = prometheus_client.Counter(
    "imagehub_events_total",
    "Events taken from a queue, by how their handling ended: handled, retried (back to the queue), "
    "dead_lettered (parked with its reason).",
    ["service", "event", "outcome"],
)
EVENT_SECONDS = prometheus_client.Histogram(
    "imagehub_event_seconds", "Time from taking an event to settling it.", ["service", "event"], buckets=BUCKETS
)
RPC_CALLS = prometheus_client.Counter(
    "imagehub_rpc_calls_total",
    "RPC calls served, by outcome: ok or the error's type.",
    ["service", "method", "outcome"],
)
RPC_SECONDS = prometheus_client.Histogram(
    "imagehub_rpc_seconds", "Time to serve an RPC call.", ["service", "method"], buckets=BUCKETS
)
HTTP_REQUESTS = prometheus_client.Counter(
    "imagehub_http_requests_total", "HTTP requests served, by status class.", ["service", "entrypoint", "status"]
)
HTTP_SECONDS = prometheus_client.Histogram(
    "imagehub_http_request_seconds", "Time to answer an HTTP request.", ["service", "entrypoint"], buckets=BUCKETS
)
REGISTRY_REQUESTS = prometheus_client.Counter(
    "imagehub_registry_requests_total",
    "Round trips to the registry's HTTP API, by outcome: the status class, or the error's type.",
    ["service", "method", "outcome"],
)
REGISTRY_SECONDS = prometheus_client.Histogram(
    "imagehub_registry_request_seconds", "Time of a round trip to the registry.", ["service", "method"], buckets=BUCKETS
)

_servers: dict[tuple[str, int], Any] = {}
_gauges: dict[str, "_CallbackCollector"] = {}
_lock = threading.Lock()


def observe_event(service: str, event_type: str, outcome: str, seconds: float) -> None:
    """An event settled by ``service``'s handler: ``handled``, ``retried`` or ``dead_lettered``."""
    EVENTS.labels(service, event_type, outcome).inc()
    EVENT_SECONDS.labels(service, event_type).observe(seconds)


def observe_registry(service: str, method: str, outcome: str, seconds: float) -> None:
    """A round trip to the registry: ``method`` is the HTTP verb, ``outcome`` the status class
    (``2xx``…) or the error's type when there was no answer."""
    REGISTRY_REQUESTS.labels(service, method, outcome).inc()
    REGISTRY_SECONDS.labels(service, method).observe(seconds)


class _CallbackCollector(Collector):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        read: Callable[[], Iterable[tuple[Sequence[str], float]]],
    ) -> None:
        self.name, self.documentation, self.labelnames, self.read = name, documentation, list(labelnames), read

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        try:
            for labels, value in self.read():
                family.add_metric(list(labels), value)
        except Exception:
            log.exception("metric %s could not be read", self.name)
            return
        yield family


def gauge_callback(
    name: str,
    documentation: str,
    labelnames: Sequence[str],
    read: Callable[[], Iterable[tuple[Sequence[str], float]]],
) -> None:
    """A gauge whose values ``read()`` gives at each scrape, as ``[(label values, value)]``.
    Registered once per name and process; registering it again (a second container, a restarted
    one) replaces what it reads. A ``read`` that raises leaves the gauge out of that scrape."""
    with _lock:
        known = _gauges.get(name)
        if known is not None:
            known.read = read
            return
        collector = _CallbackCollector(name, documentation, labelnames, read)
        prometheus_client.REGISTRY.register(collector)
        _gauges[name] = collector


def serve(address: str, port: int) -> int:
    """Serve ``/metrics`` on ``address:port`` unless this process already does; the port."""
    with _lock:
        if (address, port) not in _servers:
            try:
                server, _thread = prometheus_client.start_http_server(port, addr=address)
            except OSError as exc:
                # The service's work matters more than its metrics: it runs on, and the scrape
                # target shows down. The reason is in the log.
                log.error("metrics not served on %s:%d: %s", address, port, exc)
                return port
            _servers[(address, port)] = server
            log.info("metrics on http://%s:%d/metrics", address, port)
        return port


def _entrypoint_kind(entrypoint: Any) -> str | None:
    if isinstance(entrypoint, Rpc):
        return "rpc"
    if isinstance(entrypoint, HttpRequestHandler):
        return "http"
    return None


def _event_id(worker_ctx: Any) -> str | None:
    args = getattr(worker_ctx, "args", ())
    payload = args[0] if args else None
    value = payload.get("event_id") if isinstance(payload, dict) else None
    return str(value) if value is not None else None


class Metrics(DependencyProvider):
    """See the module."""

    def setup(self) -> None:
        config = self.container.config
        logs.set_process_service(self.container.service_name)
        port = int(config.get(PORT_KEY) or 0)
        if port:
            serve(str(config.get(ADDRESS_KEY) or "127.0.0.1"), port)
        self.started: dict[int, float] = {}

    def worker_setup(self, worker_ctx: Any) -> None:
        self.started[id(worker_ctx)] = time.monotonic()
        logs.bind(
            service=self.container.service_name,
            call_id=worker_ctx.call_id,
            call_id_stack=list(worker_ctx.call_id_stack or []),
            event_id=_event_id(worker_ctx),
        )

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self.started.pop(id(worker_ctx), None)
        kind = _entrypoint_kind(worker_ctx.entrypoint)
        if started is None or kind is None:
            return
        elapsed = time.monotonic() - started
        service, method = self.container.service_name, worker_ctx.entrypoint.method_name
        if kind == "rpc":
            outcome = "ok" if exc_info is None else type(exc_info[1]).__name__
            RPC_CALLS.labels(service, method, outcome).inc()
            RPC_SECONDS.labels(service, method).observe(elapsed)
            return
        status = getattr(result, "status_code", None)
        outcome = f"{status // 100}xx" if isinstance(status, int) else ("5xx" if exc_info else "2xx")
        HTTP_REQUESTS.labels(service, method, outcome).inc()
        HTTP_SECONDS.labels(service, method).observe(elapsed)

    def worker_teardown(self, worker_ctx: Any) -> None:
        self.started.pop(id(worker_ctx), None)
        logs.unbind()


Register = Callable[[str, Any], None]


class DatabaseGauges(DependencyProvider):
    """``gauges = DatabaseGauges("db", register)``: once the service's database provider (the
    attribute ``database_attr``) has its engine, ``register(service_name, engine)`` registers the
    gauges read from it at scrape time (with ``gauge_callback``)."""

    def __init__(self, database_attr: str, register: Register) -> None:
        self.database_attr, self.register = database_attr, register

    def start(self) -> None:  # after every provider's setup: the engine exists
        [database] = [d for d in self.container.dependencies if getattr(d, "attr_name", None) == self.database_attr]
        self.register(self.container.service_name, database.engine)
