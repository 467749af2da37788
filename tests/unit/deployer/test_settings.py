"""Pool configuration: the service refuses to start on a mistake, naming the key."""

import copy

import pytest
import yaml

from deployer.migrate import load_config
from deployer.settings import ConfigurationError, load_settings
from tests.unit.deployer.conftest import CONFIG


def config(**changes):
    value = copy.deepcopy(CONFIG)
    value.update(changes)
    return value


class TestShippedConfig:
    def test_default_pool_is_the_swarm_of_the_two_local_engines_beside_the_engines_pool(self, monkeypatch):
        for name in (
            "DEPLOYER_HOST1_URL",
            "DEPLOYER_HOST2_URL",
            "DEPLOYER_POOL_NETWORK_MODE",
            "DEPLOYER_POOLS_FILE",
            "DEPLOYER_DEFAULT_POOL",
            "DEPLOYER_POOL_SHARED_NETWORK",
            "DEPLOYER_SWARM_MANAGER_URL",
        ):
            monkeypatch.delenv(name, raising=False)
        settings = load_settings(load_config())
        swarm = settings.pools["swarm"]
        assert (settings.default_pool, swarm.kind, swarm.network_mode, swarm.hosts) == ("swarm", "swarm", "host", ())
        assert [(m.name, m.base_url) for m in swarm.managers] == [("manager-1", "unix:///var/run/docker.sock")]
        pool = settings.pools["engines"]
        assert (pool.kind, pool.network_mode, pool.shared_network_namespace) == ("engines", "host", True)
        assert [(h.name, h.base_url, h.address) for h in pool.hosts] == [
            ("local-1", "unix:///var/run/docker.sock", "127.0.0.1"),
            ("local-2", "unix:///var/run/imagehub-docker2.sock", "127.0.0.1"),
        ]

    def test_each_host_is_overridable_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("DEPLOYER_HOST2_URL", "tcp://127.0.0.1:2376")
        monkeypatch.setenv("DEPLOYER_HOST2_MEMORY", "8g")
        monkeypatch.delenv("DEPLOYER_POOLS_FILE", raising=False)
        host = load_settings(load_config()).host("local-2")
        assert (host.base_url, host.memory) == ("tcp://127.0.0.1:2376", 8 * 1024**3)


class TestPools:
    def test_a_swarm_pool_lists_managers_and_uses_host_networking(self):
        swarm = {
            "kind": "swarm",
            "network_mode": "host",
            "managers": [{"name": "m-1", "base_url": "tcp://manager-1.swarm.example:2377"}],
        }
        pool = load_settings(config(POOLS={"s": swarm}, DEFAULT_POOL="s")).pools["s"]
        assert (pool.is_swarm, pool.hosts, pool.max_cpus, [m.base_url for m in pool.managers]) == (
            True,
            (),
            None,
            ["tcp://manager-1.swarm.example:2377"],
        )

    @pytest.mark.parametrize(
        "pool, message",
        [
            ({"kind": "k8s", "network_mode": "host", "hosts": []}, "POOLS.s.kind must be one of"),
            (
                {"kind": "swarm", "network_mode": "bridge", "managers": [{"name": "m", "base_url": "unix:///x"}]},
                "must be host for a swarm pool",
            ),
            (
                {"kind": "swarm", "network_mode": "host", "hosts": [{"name": "m", "base_url": "unix:///x"}]},
                "unknown keys ['hosts'] (a swarm pool lists managers)",
            ),
            (
                {"kind": "swarm", "network_mode": "host", "managers": []},
                "POOLS.s.managers must list at least one manager",
            ),
            (
                {
                    "kind": "swarm",
                    "network_mode": "host",
                    "managers": [{"name": "m", "base_url": "unix:///x", "cpus": 2}],
                },
                "POOLS.s.managers[0] has unknown keys ['cpus']",
            ),
        ],
    )
    def test_pool_kinds_are_checked(self, pool, message):
        with pytest.raises(ConfigurationError) as caught:
            load_settings(config(POOLS={"s": pool}, DEFAULT_POOL="s"))
        assert message in str(caught.value)

    def test_hosts_carry_capacity_and_tls(self, settings):
        host = settings.host("prod-1")
        assert (host.pool, host.cpus, host.memory, host.is_loopback) == ("prod", 8.0, 16 * 1024**3, False)
        assert (host.tls.ca_cert, host.tls.client_cert, host.tls.client_key, host.tls.verify) == (
            "/ca.pem",
            "/cert.pem",
            "/key.pem",
            True,
        )

    def test_port_domain_is_the_pool_when_hosts_share_a_namespace(self, settings):
        assert settings.pools["default"].port_domain("local-1") == settings.pools["default"].port_domain("local-2")
        assert settings.pools["prod"].port_domain("prod-1") == "prod/prod-1"

    def test_a_pools_file_replaces_the_inline_pools(self, tmp_path):
        path = tmp_path / "pools.yml"
        path.write_text(
            yaml.safe_dump(
                {
                    "edge": {
                        "network_mode": "bridge",
                        "hosts": [
                            {
                                "name": "edge-1",
                                "base_url": "tcp://edge-1.docker.example:2376",
                                "cpus": 4,
                                "memory": "8g",
                            }
                        ],
                    }
                }
            )
        )
        settings = load_settings(config(POOLS_FILE=str(path), DEFAULT_POOL="edge"))
        assert list(settings.pools) == ["edge"]

    @pytest.mark.parametrize(
        "pools, message",
        [
            ({}, "POOLS must map at least one pool"),
            ({"Bad_Name": {"network_mode": "host", "hosts": []}}, "pool name 'Bad_Name'"),
            ({"p": {"network_mode": "overlay", "hosts": []}}, r"POOLS.p.network_mode must be one of"),
            ({"p": {"network_mode": "host", "hosts": []}}, "POOLS.p.hosts must list at least one host"),
            (
                {
                    "p": {
                        "network_mode": "host",
                        "hosts": [{"name": "h", "base_url": "ftp://x", "cpus": 1, "memory": "1g"}],
                    }
                },
                r"POOLS.p.hosts\[0\].base_url",
            ),
            (
                {
                    "p": {
                        "network_mode": "host",
                        "hosts": [{"name": "h", "base_url": "unix:///s", "cpus": 0, "memory": "1g"}],
                    }
                },
                r"hosts\[0\].cpus must be more than 0",
            ),
            (
                {
                    "p": {
                        "network_mode": "host",
                        "hosts": [{"name": "h", "base_url": "unix:///s", "cpus": 1, "memory": "lots"}],
                    }
                },
                r"hosts\[0\].memory must be a size",
            ),
            (
                {
                    "p": {
                        "network_mode": "host",
                        "hosts": [
                            {
                                "name": "h",
                                "base_url": "unix:///s",
                                "cpus": 1,
                                "memory": "1g",
                                "tls": {"client_cert": "/c"},
                            }
                        ],
                    }
                },
                "needs client_cert and client_key together",
            ),
            (
                {
                    "p": {
                        "network_mode": "host",
                        "hosts": [
                            {"name": "h", "base_url": "unix:///a", "cpus": 1, "memory": "1g"},
                            {"name": "h", "base_url": "unix:///b", "cpus": 1, "memory": "1g"},
                        ],
                    }
                },
                "'h' is used twice",
            ),
            ({"p": {"network_mode": "host", "speed": 3, "hosts": []}}, r"unknown keys \['speed'\]"),
        ],
    )
    def test_mistakes_name_the_key(self, pools, message):
        with pytest.raises(ConfigurationError, match=message):
            load_settings(config(POOLS=pools, DEFAULT_POOL="p"))

    def test_default_pool_must_exist(self):
        with pytest.raises(ConfigurationError, match="DEFAULT_POOL 'nope' is not one of the pools"):
            load_settings(config(DEFAULT_POOL="nope"))

    def test_a_missing_key_is_an_error_not_a_second_default(self):
        broken = config()
        del broken["STOP_TIMEOUT"]
        with pytest.raises(ConfigurationError, match="STOP_TIMEOUT is missing"):
            load_settings(broken)

    @pytest.mark.parametrize("value", ["30000-20000", "0-10", "abc", "1-70000"])
    def test_port_range_is_checked(self, value):
        with pytest.raises(ConfigurationError, match="PORT_RANGE"):
            load_settings(config(PORT_RANGE=value))

    def test_registry_credentials_are_optional(self, settings):
        assert settings.registry_auth is None
        assert load_settings(config(REGISTRY_USERNAME="bot", REGISTRY_PASSWORD="s3")).registry_auth == {
            "username": "bot",
            "password": "s3",
        }
        assert settings.registry_hosts == ("127.0.0.1:5000", "registry.example.com")


class TestPoolsProvider:
    def test_a_host_no_longer_configured_reads_as_unreachable(self, settings):
        from deployer.dependencies import Pools
        from deployer.engine import EngineUnavailable

        with pytest.raises(EngineUnavailable, match="host gone-1 is not in the configuration any more"):
            Pools(settings, {}, {}).engine("gone-1")
