"""catalog.settings: the catalog's config.yml, as shipped, read into checked settings."""

import os

import pytest

from catalog.settings import load_settings
from shared.runtime.db import load_config
from shared.runtime.settings import SettingError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ENV = (
    "REGISTRY_URL",
    "REGISTRY_PUBLIC_HOST",
    "REGISTRY_USERNAME",
    "REGISTRY_PASSWORD",
    "REGISTRY_TIMEOUT",
    "OUTBOX_RELAY_MIN_AGE",
    "CATALOG_RESYNC_INTERVAL",
    "CATALOG_RESYNC_PAGE_SIZE",
    "CATALOG_RESYNC_MAX_REMOVAL_FRACTION",
    "CATALOG_MAX_WORKERS",
)


@pytest.fixture
def shipped(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return load_config(os.path.join(ROOT, "services", "catalog", "config.yml"))


class TestTheShippedDefaults:
    def test_run_on_this_machine_with_nothing_set(self, shipped):
        settings = load_settings(shipped)
        assert (settings.registry_url, settings.registry_public_host) == ("http://127.0.0.1:5000", "127.0.0.1:5000")
        assert (settings.registry_username, settings.registry_password) == (None, "")
        assert (settings.registry_timeout, settings.outbox_relay_min_age) == (10, 2)
        assert (settings.resync_interval, settings.resync_page_size, settings.resync_max_removal_fraction) == (
            300,
            100,
            0.5,
        )
        assert settings.max_workers == 4

    def test_the_environment_sets_them(self, shipped, monkeypatch):
        monkeypatch.setenv("REGISTRY_USERNAME", "_platform+catalog")
        monkeypatch.setenv("CATALOG_RESYNC_INTERVAL", "0")
        settings = load_settings(load_config(os.path.join(ROOT, "services", "catalog", "config.yml")))
        assert (settings.registry_username, settings.resync_interval) == ("_platform+catalog", 0)


class TestRefused:
    @pytest.mark.parametrize(
        "key, value, message",
        [
            ("REGISTRY_URL", "", "setting REGISTRY_URL is empty"),
            ("REGISTRY_TIMEOUT", 0, "setting REGISTRY_TIMEOUT must be a positive number of seconds"),
            ("RESYNC_PAGE_SIZE", 0, "setting RESYNC_PAGE_SIZE must be a whole number of at least 1"),
            (
                "RESYNC_MAX_REMOVAL_FRACTION",
                1.5,
                "setting RESYNC_MAX_REMOVAL_FRACTION must be at least 0 and at most 1",
            ),
            ("RESYNC_INTERVAL", -1, "setting RESYNC_INTERVAL must be at least 0"),
        ],
    )
    def test_a_bad_value_names_its_key(self, shipped, key, value, message):
        with pytest.raises(SettingError, match=message):
            load_settings(dict(shipped, **{key: value}))

    def test_a_missing_key_names_itself(self, shipped):
        del shipped["RESYNC_PAGE_SIZE"]
        with pytest.raises(SettingError, match="RESYNC_PAGE_SIZE"):
            load_settings(shipped)
