"""The token service's HTTP edge against what anyone on the network may send: bodies over the
limit (413, before they are read), clients that trickle (cut off), and a fuzz of /token (never a 5xx)."""

import socket
import string
import time
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.entrypoints import DEFAULT_MAX_BODY_BYTES
from tests.integration.auth.conftest import SERVICE, SOCKET_TIMEOUT


def connect(url):
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=SOCKET_TIMEOUT * 5)


def test_a_body_over_the_limit_is_413_before_it_is_read(auth_service):
    big = "a" * (DEFAULT_MAX_BODY_BYTES + 1)
    resp = requests.post(
        f"{auth_service}/token",
        data={"grant_type": "password", "service": SERVICE, "username": "alice", "password": big},
        timeout=10,
    )
    assert resp.status_code == 413, resp.text
    assert f"limit of {DEFAULT_MAX_BODY_BYTES} bytes" in resp.json()["details"]


def test_a_declared_length_over_the_limit_is_refused_without_the_body(auth_service):
    """Content-Length says 1 GiB and nothing follows: the answer comes at once, nothing waits for it."""
    with connect(auth_service) as sock:
        sock.sendall(
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 1073741824\r\n\r\ngrant_type=password"
        )
        head = sock.recv(4096).decode("latin-1")
    assert head.startswith("HTTP/1.1 413"), head


def test_a_chunked_body_past_the_limit_is_413(auth_service):
    def chunks():
        for _ in range(DEFAULT_MAX_BODY_BYTES // 1024 + 2):
            yield b"username=" + b"x" * 1024 + b"&"

    resp = requests.post(
        f"{auth_service}/token",
        data=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert resp.status_code == 413, resp.text


def test_a_chunked_form_within_the_limit_is_read(auth_service, accounts):
    """How Go clients (skopeo's refresh-token grant) post: no Content-Length, one chunk."""
    form = f"grant_type=password&service={SERVICE}&username=alice&password=alice-password".encode()
    resp = requests.post(
        f"{auth_service}/token",
        data=iter([form]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["token"]


def test_a_body_within_the_limit_is_answered(auth_service, accounts):
    resp = requests.post(
        f"{auth_service}/token",
        data={"grant_type": "password", "service": SERVICE, "username": "alice", "password": "alice-password"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text


def test_a_client_that_stops_mid_request_is_cut_off(auth_service):
    with connect(auth_service) as sock:
        sock.sendall(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\ngrant_")
        started = time.monotonic()
        closed_after = None
        while time.monotonic() - started < SOCKET_TIMEOUT * 5:
            if sock.recv(4096) == b"":
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None, "the server kept a silent client's connection open"
    # A healthy client is still served meanwhile and after.
    assert requests.get(f"{auth_service}/health", timeout=5).status_code == 200


FIELDS = ["grant_type", "service", "username", "password", "scope", "refresh_token", "access_type", "client_id"]
text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
junk = st.one_of(text, st.sampled_from(["password", "refresh_token", SERVICE, "alice", "offline", "eyJ.a.b"]))
forms = st.dictionaries(st.sampled_from(FIELDS), st.one_of(junk, st.lists(junk, max_size=3)), max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(form=forms, method=st.sampled_from(["GET", "POST"]), raw=st.one_of(st.none(), st.binary(max_size=200)))
def test_fuzzed_token_requests_never_get_a_5xx(auth_service, form, method, raw):
    kwargs = {"params": form} if method == "GET" else {"data": raw if raw is not None else form}
    if method == "POST" and raw is not None:
        kwargs["headers"] = {"Content-Type": "application/x-www-form-urlencoded"}
    resp = requests.request(method, f"{auth_service}/token", timeout=10, **kwargs)
    assert resp.status_code < 500, (form, raw, resp.status_code, resp.text)
    assert resp.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("path", ["/token?" + "scope=" + string.ascii_letters * 100, "/nope", "/token/../health"])
def test_odd_paths_and_long_queries_are_answered_below_500(auth_service, path):
    assert requests.get(f"{auth_service}{path}", timeout=10).status_code < 500
