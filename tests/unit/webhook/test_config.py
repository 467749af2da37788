"""services/webhook/config.yml as `nameko run` reads it, and the settings the service takes from it."""

import os
import warnings

import pytest
import yaml

from webhook.dependencies import ConfirmedEventDispatcher, WebhookSettings
from webhook.exceptions import SettingMissing

CONFIG_PATH = os.path.join(os.path.dirname(__file__), "../../../services/webhook/config.yml")
ENV_VARS = (
    "AMQP_URI",
    "WEBHOOK_ADDRESS",
    "WEBHOOK_TOKEN",
    "WEBHOOK_MAX_BODY_BYTES",
    "WEBHOOK_PUBLISH_TIMEOUT",
    "WEBHOOK_PUBLISH_RETRIES",
    "WEBHOOK_BROKER_PROBE_INTERVAL",
    "WEBHOOK_METRICS_PORT",
    "WEBHOOK_METRICS_ADDRESS",
)


@pytest.fixture
def load_config(monkeypatch):
    """Read config.yml with only the given environment variables set, as `nameko run` does."""
    with warnings.catch_warnings():  # nameko's CLI imports pkg_resources, deprecated: cosmetic
        warnings.simplefilter("ignore", UserWarning)
        from nameko.cli.main import setup_yaml_parser
    setup_yaml_parser()

    def load(**env):
        for name in ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with open(CONFIG_PATH) as f:
            return yaml.safe_load(f)

    return load


@pytest.fixture
def set_up(mock_container):
    """Bind a provider to a container with this config and run its setup (no broker needed)."""

    def set_up(provider, config):
        mock_container.config = config
        mock_container.service_name = "webhook"
        bound = provider.bind(mock_container, "attr")
        bound.setup()
        return bound

    return set_up


class TestDefaults:
    def test_everything_but_the_token_runs_on_this_machine(self, load_config):
        config = load_config(WEBHOOK_TOKEN="t")
        assert {key: config[key] for key in config if key != "LOGGING"} == {
            "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
            "WEB_SERVER_ADDRESS": "127.0.0.1:8000",
            "WEBHOOK_TOKEN": "t",
            "WEBHOOK_MAX_BODY_BYTES": 1048576,
            "WEBHOOK_PUBLISH_TIMEOUT": 0.5,
            "WEBHOOK_PUBLISH_RETRIES": 1,
            "WEB_SOCKET_TIMEOUT": 10,
            "WEBHOOK_BROKER_PROBE_INTERVAL": 10,
            "METRICS_PORT": 9103,
            "METRICS_ADDRESS": "127.0.0.1",
        }

    def test_environment_overrides(self, load_config):
        config = load_config(
            WEBHOOK_TOKEN="t",
            AMQP_URI="amqp://u:p@127.0.0.1:5673/v",
            WEBHOOK_ADDRESS="127.0.0.1:9000",
            WEBHOOK_MAX_BODY_BYTES="2048",
        )
        assert (config["AMQP_URI"], config["WEB_SERVER_ADDRESS"], config["WEBHOOK_MAX_BODY_BYTES"]) == (
            "amqp://u:p@127.0.0.1:5673/v",
            "127.0.0.1:9000",
            2048,
        )


class TestToken:
    def test_unset_token_is_empty_and_the_service_refuses_to_start(self, load_config, set_up):
        config = load_config()
        assert config["WEBHOOK_TOKEN"] == ""
        with pytest.raises(SettingMissing, match="WEBHOOK_TOKEN is empty: set the WEBHOOK_TOKEN"):
            set_up(WebhookSettings(), config)

    @pytest.mark.parametrize("token", ["   ", None])
    def test_blank_or_null_token_is_refused(self, load_config, token, set_up):
        config = dict(load_config(WEBHOOK_TOKEN="x"), WEBHOOK_TOKEN=token)
        with pytest.raises(SettingMissing, match="WEBHOOK_TOKEN is empty"):
            set_up(WebhookSettings(), config)

    @pytest.mark.parametrize("token", ["0123", "yes", "null", "a: b", "{x}"])
    def test_token_is_taken_verbatim_not_as_yaml(self, load_config, token, set_up):
        config = load_config(WEBHOOK_TOKEN=token)
        assert set_up(WebhookSettings(), config).settings.token == token


class TestSettings:
    def test_settings_from_config(self, load_config, set_up):
        settings = set_up(WebhookSettings(), load_config(WEBHOOK_TOKEN=" tok \n")).settings
        assert (settings.token, settings.max_body_bytes) == ("tok", 1048576)

    @pytest.mark.parametrize(
        "value, message", [("0", "must be a positive number of bytes"), ("lots", "'lots' is not valid")]
    )
    def test_bad_body_limit_is_refused(self, load_config, value, message, set_up):
        with pytest.raises(SettingMissing, match=message):
            set_up(WebhookSettings(), load_config(WEBHOOK_TOKEN="t", WEBHOOK_MAX_BODY_BYTES=value))

    def test_missing_key_is_named(self, load_config, set_up):
        config = load_config(WEBHOOK_TOKEN="t")
        del config["WEBHOOK_PUBLISH_TIMEOUT"]
        with pytest.raises(SettingMissing, match="setting WEBHOOK_PUBLISH_TIMEOUT is missing"):
            set_up(ConfirmedEventDispatcher(), config)


class TestDispatcherSettings:
    def test_publishes_persistent_confirmed_with_a_short_bounded_retry(self, load_config, set_up):
        publisher = set_up(ConfirmedEventDispatcher(), load_config(WEBHOOK_TOKEN="t")).publisher
        assert (publisher.use_confirms, publisher.delivery_mode, publisher.retry) == (True, 2, True)
        assert publisher.retry_policy == {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.1,
        }
        assert publisher.publish_kwargs["confirm_timeout"] == 0.5
        assert publisher.transport_options == dict(
            publisher.retry_policy, confirm_publish=True, connect_timeout=0.5, read_timeout=0.5, write_timeout=0.5
        )
