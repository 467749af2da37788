"""The service's settings: config.yml's defaults, and clear refusals of unusable values."""

import os
import warnings

import pytest
import yaml

from auth.exceptions import SettingMissing
from auth.settings import LoginPolicy, load_settings

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "../../../services/auth/config.yml")


@pytest.fixture
def config(monkeypatch):
    """config.yml as `nameko run` reads it, with nothing but the key pair set."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()
    for name in list(os.environ):
        if name.startswith("AUTH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AUTH_KEY_FILE", "/keys/token.key")
    monkeypatch.setenv("AUTH_CERT_FILE", "/keys/token.crt")

    def load(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with open(CONFIG_PATH) as f:
            return yaml.safe_load(f)

    return load


class TestDefaults:
    def test_run_on_this_machine(self, config):
        loaded = config()
        settings = load_settings(loaded)
        assert loaded["WEB_SERVER_ADDRESS"] == "127.0.0.1:5001"
        assert loaded["DB_URIS"] == {"auth:Base": "sqlite:///var/auth.db"}
        assert (settings.issuer, settings.service, settings.key_file, settings.cert_file) == (
            "imagehub-auth",
            "imagehub-registry",
            "/keys/token.key",
            "/keys/token.crt",
        )
        assert (settings.token_ttl, settings.refresh_token_ttl, settings.robot_credential_max_ttl) == (
            300,
            2592000,
            3600,
        )
        assert settings.anonymous_pull is False
        assert settings.login == LoginPolicy(free_failures=5, max_delay=60.0, window=900.0, first_delay=1.0)
        assert (settings.hash_time_cost, settings.hash_memory_kib, settings.hash_parallelism) == (3, 65536, 4)

    def test_every_value_is_only_a_default(self, config):
        settings = load_settings(
            config(
                AUTH_ISSUER="iss",
                AUTH_SERVICE="svc",
                AUTH_TOKEN_TTL="60",
                AUTH_REFRESH_TOKEN_TTL="0",
                AUTH_LOGIN_FREE_FAILURES="0",
            )
        )
        assert (
            settings.issuer,
            settings.service,
            settings.token_ttl,
            settings.refresh_token_ttl,
            settings.login.free_failures,
        ) == ("iss", "svc", 60, 0, 0)


class TestRefusals:
    @pytest.mark.parametrize("missing", ["AUTH_KEY_FILE", "AUTH_CERT_FILE"])
    def test_no_key_pair_no_service(self, config, monkeypatch, missing):
        loaded = config()
        loaded[missing] = ""
        with pytest.raises(SettingMissing, match=f"setting {missing} is empty"):
            load_settings(loaded)

    @pytest.mark.parametrize(
        "key, value, message",
        [
            ("AUTH_TOKEN_TTL", "0", "must be at least 1, got 0"),
            ("AUTH_TOKEN_TTL", "soon", "is not a number"),
            ("AUTH_REFRESH_TOKEN_TTL", "-1", "must be at least 0"),
            ("AUTH_HASH_MEMORY_KIB", "1024", "must be at least 8192"),
            ("AUTH_ANONYMOUS_PULL", "maybe", "must be true or false"),
        ],
    )
    def test_an_unusable_value_is_named(self, config, key, value, message):
        with pytest.raises(SettingMissing, match=f"{key}.*{message}"):
            load_settings(config(**{key: value}))

    def test_a_missing_key_is_named(self, config):
        loaded = config()
        del loaded["AUTH_TOKEN_TTL"]
        with pytest.raises(SettingMissing, match="setting AUTH_TOKEN_TTL is missing"):
            load_settings(loaded)

    @pytest.mark.parametrize(
        "value, expected",
        [
            ("true", True),
            ("yes", True),
            ("on", True),
            ("1", True),
            ("TRUE", True),
            ("false", False),
            ("no", False),
            ("off", False),
            ("0", False),
            ("", False),
        ],
    )
    def test_anonymous_pull_reads_the_usual_words(self, config, value, expected):
        assert load_settings(config(AUTH_ANONYMOUS_PULL=value)).anonymous_pull is expected
