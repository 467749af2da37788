"""``shared.runtime.logs``: one JSON object per line, with the worker's context."""

import json
import logging
import sys

import eventlet

from shared.runtime import logs


def record(message="indexed %s", args=("t1/app:v1",), exc_info=None):
    return logging.LogRecord("catalog.indexing", logging.INFO, __file__, 1, message, args, exc_info)


def test_a_line_carries_the_bound_call_and_event():
    logs.bind(service="catalog", call_id="catalog.handle_image_pushed.7", call_id_stack=["webhook.x.1"], event_id="e1")
    try:
        line = json.loads(logs.JsonFormatter().format(record()))
    finally:
        logs.unbind()
    assert {k: line[k] for k in ("level", "logger", "message", "service", "call_id", "call_id_stack", "event_id")} == {
        "level": "INFO",
        "logger": "catalog.indexing",
        "message": "indexed t1/app:v1",
        "service": "catalog",
        "call_id": "catalog.handle_image_pushed.7",
        "call_id_stack": ["webhook.x.1"],
        "event_id": "e1",
    }
    assert line["time"].endswith("+00:00")


def test_outside_a_worker_only_the_process_service_and_an_exception_as_text():
    logs.set_process_service("deployer")
    try:
        raise KeyError("boom")
    except KeyError:
        exc_info = sys.exc_info()
    line = json.loads(logs.JsonFormatter().format(record("failed", (), exc_info)))
    assert (line["call_id"], line["event_id"]) == (None, None)
    assert line["service"] in ("deployer", logs._process["service"])  # the first service set up names the process
    assert "KeyError: 'boom'" in line["exception"]


def test_non_ascii_stays_readable():
    line = logs.JsonFormatter().format(record("pushed by %s", ("éve",)))
    assert "éve" in line and json.loads(line)["message"] == "pushed by éve"


def test_each_green_thread_sees_only_its_own_context():
    seen = {}

    def worker(name):
        logs.bind(call_id=name)
        eventlet.sleep(0)  # let the other run in between
        seen[name] = logs.current()["call_id"]

    pool = eventlet.GreenPool()
    for name in ("a", "b", "c"):
        pool.spawn(worker, name)
    pool.waitall()
    assert seen == {"a": "a", "b": "b", "c": "c"}
