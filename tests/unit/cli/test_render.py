"""Value formatting shared by the tables and panels."""

import io

import pytest

from imagehub import render
from imagehub.commands import deployment_views


@pytest.mark.parametrize(
    "size, shown",
    [
        (None, "-"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (5 * 1024**2, "5.0 MiB"),
        (3 * 1024**3, "3.0 GiB"),
        (2048 * 1024**4, "2048.0 TiB"),
    ],
)
def test_human_size(size, shown):
    assert render.human_size(size) == shown


def test_size_detail_keeps_the_bytes():
    assert render.size_detail(2412345) == "2.3 MiB (2,412,345 bytes)"
    assert render.size_detail(429) == "429 B"
    assert render.size_detail(None) == "-"


@pytest.mark.parametrize(
    "digest, shown",
    [
        ("sha256:" + "0123456789abcdef" * 4, "sha256:0123456789ab"),
        (None, "-"),
        ("", "-"),
    ],
)
def test_short_digest(digest, shown):
    assert render.short_digest(digest) == shown


@pytest.mark.parametrize(
    "image_id, shown",
    [
        ("sha256:" + "0123456789abcdef" * 4, "0123456789ab"),
        ("0123456789abcdef", "0123456789ab"),
        (None, "-"),
    ],
)
def test_short_id(image_id, shown):
    assert render.short_id(image_id) == shown


@pytest.mark.parametrize(
    "value, short, long",
    [
        ("2024-05-01T12:34:56.789+00:00", "2024-05-01 12:34", "2024-05-01 12:34:56 UTC"),
        ("2024-05-01T12:34:56Z", "2024-05-01 12:34", "2024-05-01 12:34:56 UTC"),
        ("2024-05-01T14:34:56+02:00", "2024-05-01 12:34", "2024-05-01 12:34:56 UTC"),
        ("2024-05-01T12:34:56", "2024-05-01 12:34", "2024-05-01 12:34:56 UTC"),  # naive = UTC
        ("yesterday", "yesterday", "yesterday"),
        (None, "-", "-"),
    ],
)
def test_times_in_utc(value, short, long):
    assert (render.time_short(value), render.time_long(value)) == (short, long)


@pytest.mark.parametrize(
    "result, footer",
    [
        ({"items": [1, 2], "total": 2, "page": 1, "page_size": 50}, "2 of 2 things, page 1 of 1"),
        ({"items": [1], "total": 101, "page": 2, "page_size": 50}, "1 of 101 things, page 2 of 3 (--page 3 for more)"),
        ({"items": [], "total": 0, "page": 1, "page_size": 50}, None),
    ],
)
def test_page_footer(result, footer):
    assert render.page_footer(result, "things") == footer


def test_piped_width_is_100_unless_columns_says_otherwise(monkeypatch):
    monkeypatch.setattr("sys.stdout", io.StringIO())
    monkeypatch.delenv("COLUMNS", raising=False)
    assert render.make_console().width == 100
    monkeypatch.setenv("COLUMNS", "132")
    assert render.make_console().width == 132


@pytest.mark.parametrize("value, shown", [(30.0, "30"), (0.25, "0.25"), (2, "2"), (None, "-")])
def test_numbers_without_a_needless_decimal(value, shown):
    assert deployment_views.number(value) == shown


@pytest.mark.parametrize(
    "port, shown",
    [
        ({"container_port": 8080, "host_port": 0}, "8080 -> host port allocated"),
        ({"container_port": 8080, "host_port": 20001}, "8080 -> host 20001"),
        ({"container_port": None, "host_port": 20001}, "host 20001"),
    ],
)
def test_port_text(port, shown):
    assert deployment_views.port_text(port) == shown


@pytest.mark.parametrize(
    "elapsed, deployment, line",
    [
        (0.04, {"status": "pending", "reason": None}, "   0.0s  pending"),
        (123.45, {"status": "failed", "reason": "pull denied"}, " 123.5s  failed: pull denied"),
    ],
)
def test_progress_line(elapsed, deployment, line):
    assert deployment_views.progress_line(elapsed, deployment) == line
