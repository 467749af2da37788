"""The catalog proxy's timeout: read from the config, checked at start-up, listed in the RPCs'
expected errors. The waiting itself is tested on the real broker
(tests/integration/deployer/test_catalog_unavailable.py)."""

from types import SimpleNamespace

import pytest

from deployer.migrate import load_config
from deployer.service import DeployerService
from shared.contracts.errors import ServiceUnavailable
from shared.runtime.bounded_rpc import BoundedRpcProxy
from shared.runtime.settings import SettingError


def set_up(value):
    proxy = BoundedRpcProxy("catalog", timeout_key="CATALOG_RPC_TIMEOUT")
    proxy.container = SimpleNamespace(config={} if value is None else {"CATALOG_RPC_TIMEOUT": value})
    proxy.setup()
    return proxy


def test_the_shipped_default_is_ten_seconds(monkeypatch):
    monkeypatch.delenv("CATALOG_RPC_TIMEOUT", raising=False)
    assert set_up(load_config()["CATALOG_RPC_TIMEOUT"]).timeout == 10


def test_the_timeout_is_also_the_requests_expiry_in_the_broker():
    proxy = set_up("2.5")
    assert (proxy.timeout, proxy.options["expiration"]) == (2.5, 2.5)


@pytest.mark.parametrize("value", [None, "soon", 0, -1])
def test_a_bad_timeout_stops_the_service_naming_the_key(value):
    with pytest.raises(SettingError, match="CATALOG_RPC_TIMEOUT must be"):
        set_up(value)


@pytest.mark.parametrize("method", ["create_deployment", "update_deployment"])
def test_the_rpcs_that_ask_the_catalog_expect_service_unavailable(method):
    [entrypoint] = getattr(DeployerService, method).nameko_entrypoints
    assert ServiceUnavailable in entrypoint.expected_exceptions
