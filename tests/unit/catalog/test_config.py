"""services/catalog/config.yml as `nameko run` reads it, and the relay timer that takes its interval from it."""
import os

import pytest
from nameko.containers import ServiceContainer
from nameko.testing.utils import get_extension

from catalog.entrypoints import ConfigTimer
from catalog.migrate import load_config
from catalog.service import CatalogService

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


def relay_timer(interval):
    """The relay's timer in a container that is set up, not started: no broker needed."""
    # AMQP_URI is only read (by inspection of the extensions), never connected to.
    container = ServiceContainer(CatalogService, {"AMQP_URI": "memory://", "OUTBOX_RELAY_INTERVAL": interval})
    timer = get_extension(container, ConfigTimer)
    timer.setup()
    return timer


class TestRelayTimer:
    def test_fires_relay_outbox_at_the_configured_interval(self):
        timer = relay_timer("0.25")
        assert (timer.method_name, timer.interval) == ("relay_outbox", 0.25)

    @pytest.mark.parametrize("interval", [0, -1])
    def test_a_non_positive_interval_is_refused(self, interval):
        with pytest.raises(ValueError, match="OUTBOX_RELAY_INTERVAL must be a positive number"):
            relay_timer(interval)
