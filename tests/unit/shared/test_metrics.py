"""``shared.runtime.metrics``: what a scrape shows, and what a worker's end counts (no server)."""

import prometheus_client
import pytest
from nameko.rpc import Rpc

from shared.contracts.errors import NotFound
from shared.runtime import metrics


def sample(name, **labels):
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_gauge_is_read_at_scrape_time_and_a_failing_read_is_left_out():
    values = {"n": 3.0}
    metrics.gauge_callback("imagehub_test_items", "items", ["kind"], lambda: [(("a",), values["n"])])
    assert sample("imagehub_test_items", kind="a") == 3.0
    values["n"] = 5.0
    assert sample("imagehub_test_items", kind="a") == 5.0

    def broken():
        raise RuntimeError("database away")

    metrics.gauge_callback("imagehub_test_broken", "broken", [], broken)
    assert sample("imagehub_test_broken") == 0.0  # absent
    assert sample("imagehub_test_items", kind="a") == 5.0  # the rest of the scrape still works


def test_registering_again_replaces_what_it_reads():
    metrics.gauge_callback("imagehub_test_again", "again", [], lambda: [((), 1.0)])
    metrics.gauge_callback("imagehub_test_again", "again", [], lambda: [((), 2.0)])
    assert sample("imagehub_test_again") == 2.0


class Container:
    service_name = "catalog"
    config = {}


class WorkerCtx:
    def __init__(self, entrypoint, args=()):
        self.entrypoint = entrypoint
        self.call_id = "catalog.get_tag.1"
        self.call_id_stack = ["gateway.x.0", "catalog.get_tag.1"]
        self.args = args


@pytest.fixture
def provider():
    built = metrics.Metrics()
    built.container = Container()
    built.setup()
    return built


def rpc_entrypoint(name):
    entrypoint = Rpc()
    entrypoint.method_name = name
    return entrypoint


def test_an_rpc_call_is_counted_by_method_and_outcome(provider):
    before_ok = sample("imagehub_rpc_calls_total", service="catalog", method="get_tag", outcome="ok")
    before_nf = sample("imagehub_rpc_calls_total", service="catalog", method="get_tag", outcome="NotFound")
    timed = sample("imagehub_rpc_seconds_count", service="catalog", method="get_tag")
    for exc_info in (None, (NotFound, NotFound("no tag"), None)):
        ctx = WorkerCtx(rpc_entrypoint("get_tag"))
        provider.worker_setup(ctx)
        provider.worker_result(ctx, {"tag": "v1"}, exc_info)
        provider.worker_teardown(ctx)
    assert sample("imagehub_rpc_calls_total", service="catalog", method="get_tag", outcome="ok") == before_ok + 1
    assert sample("imagehub_rpc_calls_total", service="catalog", method="get_tag", outcome="NotFound") == before_nf + 1
    assert sample("imagehub_rpc_seconds_count", service="catalog", method="get_tag") == timed + 2


def test_an_event_handlers_worker_binds_its_event_id_for_the_logs(provider):
    from shared.runtime import logs

    ctx = WorkerCtx(object(), args=({"event_id": "e-42"},))
    provider.worker_setup(ctx)
    assert logs.current()["event_id"] == "e-42" and logs.current()["call_id_stack"] == ctx.call_id_stack
    provider.worker_teardown(ctx)
    assert logs.current() == {}
