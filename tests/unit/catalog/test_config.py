"""services/catalog/config.yml as `nameko run` reads it, and the timers that take their interval from it."""

import os

import pytest
from nameko.containers import ServiceContainer
from nameko.testing.utils import get_extension

from catalog.migrate import load_config
from catalog.service import CatalogService
from shared.runtime.timers import ConfigTimer, JobStarter, JobTimer

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "../../../services/catalog/config.yml")
RELAY_KEYS = ("OUTBOX_RELAY_INTERVAL", "OUTBOX_RELAY_MIN_AGE")


class TestOutboxRelaySettings:
    def test_two_seconds_each_by_default(self, monkeypatch):
        for key in RELAY_KEYS:
            monkeypatch.delenv(key, raising=False)
        config = load_config(CONFIG_PATH)
        assert [config[key] for key in RELAY_KEYS] == [2, 2]

    def test_the_environment_overrides_them(self, monkeypatch):
        monkeypatch.setenv("OUTBOX_RELAY_INTERVAL", "0.5")
        monkeypatch.setenv("OUTBOX_RELAY_MIN_AGE", "10")
        config = load_config(CONFIG_PATH)
        assert [config[key] for key in RELAY_KEYS] == [0.5, 10]


def timer_of(method_name, config):
    """A timer in a container that is set up, not started: no broker needed."""
    # AMQP_URI is only read (by inspection of the extensions), never connected to.
    container = ServiceContainer(CatalogService, dict(config, AMQP_URI="memory://"))
    timer = get_extension(container, ConfigTimer, method_name=method_name)
    timer.setup()
    return timer


def relay_timer(interval):
    return timer_of("relay_outbox", {"OUTBOX_RELAY_INTERVAL": interval})


class TestRelayTimer:
    def test_fires_relay_outbox_at_the_configured_interval(self):
        timer = relay_timer("0.25")
        assert (timer.method_name, timer.interval) == ("relay_outbox", 0.25)

    @pytest.mark.parametrize("interval", [0, -1])
    def test_a_non_positive_interval_is_refused(self, interval):
        with pytest.raises(ValueError, match="OUTBOX_RELAY_INTERVAL must be a positive number"):
            relay_timer(interval)


class TestResyncSettings:
    def test_every_five_minutes_a_hundred_a_page_by_default(self, monkeypatch):
        for name in ("CATALOG_RESYNC_INTERVAL", "CATALOG_RESYNC_PAGE_SIZE"):
            monkeypatch.delenv(name, raising=False)
        config = load_config(CONFIG_PATH)
        assert (config["RESYNC_INTERVAL"], config["RESYNC_PAGE_SIZE"]) == (300, 100)

    def test_the_environment_overrides_them(self, monkeypatch):
        monkeypatch.setenv("CATALOG_RESYNC_INTERVAL", "0")
        monkeypatch.setenv("CATALOG_RESYNC_PAGE_SIZE", "25")
        config = load_config(CONFIG_PATH)
        assert (config["RESYNC_INTERVAL"], config["RESYNC_PAGE_SIZE"]) == (0, 25)


class TestResyncTimer:
    def test_fires_run_resync_at_the_configured_interval(self):
        timer = timer_of("run_resync", {"RESYNC_INTERVAL": "60"})
        assert (type(timer), timer.interval, timer.enabled) == (JobTimer, 60, True)

    def test_zero_disables_it_and_it_starts_no_loop(self):
        timer = timer_of("run_resync", {"RESYNC_INTERVAL": 0})
        timer.start()
        assert (timer.enabled, timer.gt) == (False, None)
        timer.stop()
        assert timer.is_stopping()

    def test_a_negative_interval_is_refused(self):
        with pytest.raises(ValueError, match="RESYNC_INTERVAL must be a positive number"):
            timer_of("run_resync", {"RESYNC_INTERVAL": -5})

    def test_the_rpc_starts_a_pass_in_a_worker_of_run_resync(self):
        container = ServiceContainer(CatalogService, {"AMQP_URI": "memory://", "RESYNC_INTERVAL": 0})
        # The catalog has two job starters (resync, library sync): the resync's, by its method.
        starter = get_extension(container, JobStarter, method_name="run_resync")
        spawned = []
        container.spawn_worker = lambda entrypoint, args, kwargs: spawned.append((entrypoint.method_name, args))

        starter.start()  # the container's lifecycle call starts nothing
        starter.start_job(7)

        assert spawned == [("run_resync", (7,))]
        assert starter.stopping() is False
