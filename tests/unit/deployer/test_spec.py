"""Deployment specs: each bad field is refused with an InvalidRequest naming it."""

import pytest

from deployer import spec as specs
from deployer.settings import load_settings
from shared.contracts.errors import InvalidRequest
from tests.unit.deployer.conftest import CONFIG, web_spec

SWARM = {"kind": "swarm", "network_mode": "host", "managers": [{"name": "m-1", "base_url": "unix:///run/m.sock"}]}


@pytest.fixture
def with_swarm():
    return load_settings(dict(CONFIG, POOLS=dict(CONFIG["POOLS"], swarm=SWARM)))


def check(settings, **overrides):
    return specs.check_create(web_spec(**overrides), settings)


class TestDefaults:
    def test_a_minimal_spec_gets_the_configured_defaults(self, settings):
        request = specs.check_create({"name": "web", "image": "library/nginx"}, settings)
        assert (request.name, request.pool, request.replicas) == ("web", "default", 1)
        assert (request.image.repository, request.image.tag) == ("library/nginx", "latest")
        assert request.runtime == {
            "env": {},
            "command": None,
            "ports": [],
            "cpu": 0.25,
            "memory": 256 * 1024**2,
            "restart_policy": "unless-stopped",
            "health": {"type": "running", "seconds": 3},
            "update_strategy": "start-first",
            "placement": None,
        }
        assert request.auto_deploy == {"policy": "never"}

    def test_values_are_normalised(self, settings):
        request = check(
            settings,
            memory="1g",
            command="sh -c 'echo hi'",
            ports=[{"container_port": 80}, {"host_port": 0}],
            env={"A": "1"},
            restart_policy="always",
            auto_deploy={"policy": "semver:minor"},
            image="127.0.0.1:5000/t1/web:v1",
        )
        assert request.runtime["memory"] == 1024**3
        assert request.runtime["command"] == ["sh", "-c", "echo hi"]
        assert request.runtime["ports"] == [
            {"container_port": 80, "host_port": 0},
            {"container_port": None, "host_port": 0},
        ]
        assert request.image.registry == "127.0.0.1:5000"
        assert request.auto_deploy == {"policy": "semver:minor"}

    def test_http_health_defaults(self, settings):
        assert check(settings, health={"type": "http"}).runtime["health"] == {
            "type": "http",
            "path": "/",
            "port_index": 0,
            "timeout": 30,
        }


BAD_FIELDS = [
    # (override, field named in the message, words of the message)
    ({"name": "Web"}, "name", "DNS label"),
    ({"name": "-web"}, "name", "DNS label"),
    ({"name": "a" * 64}, "name", "DNS label"),
    ({"name": 5}, "name", "DNS label"),
    ({"image": "web"}, "image", "must be '<namespace>/<name>'"),
    ({"image": "t1/Web:v1"}, "image", "lower-case"),
    ({"image": "t1/web@sha256:" + "a" * 64}, "image", "give a tag, not a digest"),
    ({"image": "docker.io/library/nginx:1"}, "image", "not this platform's registry"),
    ({"image": None}, "image", "must be an image reference"),
    ({"pool": "mars"}, "pool", "'mars' is unknown; pools: default, prod"),
    ({"replicas": -1}, "replicas", "from 0 to 50"),
    ({"replicas": 51}, "replicas", "from 0 to 50"),
    ({"replicas": 1.5}, "replicas", "whole number"),
    ({"replicas": "2"}, "replicas", "whole number"),
    ({"replicas": True}, "replicas", "whole number"),
    ({"env": ["A=1"]}, "env", "must be a mapping"),
    ({"env": {"A": 1}}, "env.A", "must be a string"),
    ({"env": {"1A": "x"}}, "env", "name '1A'"),
    ({"env": {"PORT": "80"}}, "env.PORT", "set by the deployer"),
    ({"command": []}, "command", "is empty"),
    ({"command": ["sh", 1]}, "command", "list of strings or a string"),
    ({"command": "sh -c 'unclosed"}, "command", "cannot be split"),
    ({"ports": {"container_port": 80}}, "ports", "must be a list"),
    ({"ports": [{"container_port": 0}]}, "ports[0].container_port", "from 1 to 65535"),
    ({"ports": [{"container_port": 70000}]}, "ports[0].container_port", "from 1 to 65535"),
    ({"ports": [{"host_port": 65536}]}, "ports[0].host_port", "from 0 to 65535"),
    ({"ports": [{"host_port": -1}]}, "ports[0].host_port", "from 0 to 65535"),
    ({"ports": [{"host_port": "80"}]}, "ports[0].host_port", "whole number"),
    ({"ports": [{"port": 80}]}, "ports[0]", "unknown keys ['port']"),
    (
        {"ports": [{"host_port": 9000}, {"host_port": 9000}], "replicas": 1},
        "ports[1].host_port",
        "also ports[0].host_port",
    ),
    ({"ports": [{"host_port": 9000}]}, "ports[0].host_port", "2 replicas cannot all have it"),
    ({"cpu": 0}, "cpu", "at least 0.01"),
    ({"cpu": -1}, "cpu", "at least 0.01"),
    ({"cpu": "1"}, "cpu", "number of CPUs"),
    ({"cpu": float("nan")}, "cpu", "number of CPUs"),
    ({"cpu": 3}, "cpu", "more than any host of pool 'default' has (2 CPUs at most)"),
    ({"memory": "12q"}, "memory", "must be a size"),
    ({"memory": "1m"}, "memory", "at least 6m"),
    ({"memory": "5g"}, "memory", "more than any host of pool 'default' has (4g at most)"),
    ({"restart_policy": "sometimes"}, "restart_policy", "no, on-failure, always, unless-stopped"),
    ({"health": {"type": "tcp"}}, "health", "must be"),
    ({"health": {"type": "running", "seconds": -1}}, "health.seconds", "from 0 to 600"),
    ({"health": {"type": "running", "path": "/"}}, "health", "unknown keys ['path']"),
    ({"health": {"type": "http", "path": "health"}}, "health.path", "starting with '/'"),
    ({"health": {"type": "http", "port_index": 1}}, "health.port_index", "names no port: the spec has 1"),
    ({"health": {"type": "http", "timeout": 0}}, "health.timeout", "from 0 to 600"),
    ({"auto_deploy": "force"}, "auto_deploy", 'must be {"policy"'),
    ({"auto_deploy": {"policy": "sometimes"}}, "auto_deploy.policy", "must be one of never, force"),
    ({"auto_deploy": {"policy": "semver:huge"}}, "auto_deploy.policy", "a semver policy is semver:major"),
    ({"auto_deploy": {"policy": "semver:minor+rc"}}, "auto_deploy.policy", "optionally followed by +prerelease"),
    ({"auto_deploy": {"policy": "glob:"}}, "auto_deploy.policy", "give a pattern after 'glob:'"),
    ({"auto_deploy": {"policy": "regexp:v(1"}}, "auto_deploy.policy", "not a valid regular expression"),
    ({"colour": "blue"}, "colour", "is not a spec field"),
]


class TestBadFields:
    @pytest.mark.parametrize(
        "override, field, words", BAD_FIELDS, ids=[f"{f}-{i}" for i, (_, f, _) in enumerate(BAD_FIELDS)]
    )
    def test_is_refused_naming_the_field(self, settings, override, field, words):
        with pytest.raises(InvalidRequest) as raised:
            check(settings, **override)
        message = str(raised.value)
        assert message.startswith(f"{field} "), message
        assert words in message

    def test_every_problem_is_reported_at_once(self, settings):
        with pytest.raises(InvalidRequest) as raised:
            check(settings, name="X", replicas=-1, memory="12q")
        assert [line.split(" ")[0] for line in str(raised.value).split("; ")] == ["name", "replicas", "memory"]

    @pytest.mark.parametrize("missing", ["name", "image"])
    def test_name_and_image_are_required(self, settings, missing):
        spec = web_spec()
        del spec[missing]
        with pytest.raises(InvalidRequest, match=f"{missing} is required"):
            specs.check_create(spec, settings)

    def test_a_spec_must_be_a_mapping(self, settings):
        with pytest.raises(InvalidRequest, match="spec must be a mapping"):
            specs.check_create(["web"], settings)


class TestPoolRules:
    def test_a_fixed_host_port_is_fine_for_one_replica(self, settings):
        assert check(settings, replicas=1, ports=[{"host_port": 9000}]).runtime["ports"] == [
            {"container_port": None, "host_port": 9000}
        ]

    def test_bridge_pools_need_a_container_port(self, settings):
        with pytest.raises(InvalidRequest, match=r"ports\[0\].container_port is required: pool 'prod' publishes"):
            check(settings, pool="prod", ports=[{"host_port": 0}])

    def test_bridge_pool_with_a_fixed_port_and_one_host_cannot_run_two(self, settings):
        with pytest.raises(InvalidRequest, match="2 replicas cannot all have it"):
            check(settings, pool="prod", ports=[{"container_port": 80, "host_port": 8080}])

    def test_capacity_is_the_largest_host_of_the_chosen_pool(self, settings):
        assert check(settings, pool="prod", cpu=6, memory="12g").runtime["cpu"] == 6.0


class TestChanges:
    def current(self, settings):
        return specs.check_create(web_spec(), settings)

    def test_fields_left_out_keep_their_values(self, settings):
        current = self.current(settings)
        changed = specs.check_changes(
            {"env": {"A": "1"}}, "t1/web", current.runtime, settings.pools["default"], 2, settings
        )
        assert changed.runtime == dict(current.runtime, env={"A": "1"})
        assert (changed.image, changed.needs_rollout, changed.auto_deploy) == (None, True, None)

    def test_tag_moves_the_current_image(self, settings):
        changed = specs.check_changes(
            {"tag": "v2"}, "t1/web", self.current(settings).runtime, settings.pools["default"], 2, settings
        )
        assert (changed.image.repository, changed.image.tag, changed.needs_rollout) == ("t1/web", "v2", True)

    def test_auto_deploy_alone_needs_no_rollout(self, settings):
        changed = specs.check_changes(
            {"auto_deploy": {"policy": "glob:v*"}},
            "t1/web",
            self.current(settings).runtime,
            settings.pools["default"],
            2,
            settings,
        )
        assert (changed.needs_rollout, changed.auto_deploy) == (False, {"policy": "glob:v*"})

    @pytest.mark.parametrize(
        "changes, message",
        [
            ({}, "changes is empty"),
            ({"replicas": 3}, "replicas is not a changes field"),
            ({"name": "other"}, "name is not a changes field"),
            ({"image": "t1/web:v2", "tag": "v2"}, "tag cannot be given with image"),
            ({"tag": "bad tag"}, "image 't1/web:bad tag'"),
            ({"memory": "lots"}, "memory must be a size"),
            ({"tag": 5}, "tag must be a tag of the deployment's repository, such as 'v1.2', got 5"),
            ({"tag": ""}, "tag must be a tag of the deployment's repository"),
            ({"cpu": 10**400}, "cpu must be"),
            ({"memory": "1" * 400 + "g"}, "memory is far larger than any host's memory"),
        ],
    )
    def test_bad_changes_are_refused(self, settings, changes, message):
        with pytest.raises(InvalidRequest, match=message.replace("[", r"\[")):
            specs.check_changes(
                changes, "t1/web", self.current(settings).runtime, settings.pools["default"], 2, settings
            )

    def test_a_fixed_port_in_both_revisions_cannot_roll_start_first(self):
        old = {"ports": [{"container_port": None, "host_port": 9000}]}
        specs.check_rolling(old, old, 1)  # the default with a fixed port: stop-first
        legacy = dict(old, update_strategy="start-first")
        with pytest.raises(InvalidRequest, match="host_port 9000 is fixed in the running revision and in the new one"):
            specs.check_rolling(old, legacy, 1)
        specs.check_rolling(old, legacy, 0)  # nothing runs: nothing to roll
        specs.check_rolling(old, {"ports": [{"container_port": None, "host_port": 0}]}, 1)

    @pytest.mark.parametrize(
        "ports, given, expected",
        [
            ([], None, "start-first"),
            ([{"host_port": 0}], None, "start-first"),
            ([{"host_port": 9000}], None, "stop-first"),
            ([{}], "stop-first", "stop-first"),
        ],
    )
    def test_the_update_strategy_defaults_by_the_ports(self, settings, ports, given, expected):
        spec = {"name": "web", "image": "t1/web:v1", "ports": ports}
        if given:
            spec["update_strategy"] = given
        assert specs.check_create(spec, settings).runtime["update_strategy"] == expected

    @pytest.mark.parametrize(
        "value, message",
        [
            ("blue-green", "update_strategy must be one of start-first, stop-first, got 'blue-green'"),
            ("start-first", "update_strategy start-first cannot update an instance on fixed host port 9000"),
        ],
    )
    def test_a_bad_update_strategy_is_refused_naming_the_field(self, settings, value, message):
        spec = {"name": "web", "image": "t1/web:v1", "ports": [{"host_port": 9000}], "update_strategy": value}
        with pytest.raises(InvalidRequest, match=message):
            specs.check_create(spec, settings)

    def test_a_changed_port_carries_a_default_strategy_along_but_keeps_a_chosen_one(self, settings):
        pool = settings.pools["default"]
        current = specs.check_create({"name": "w", "image": "t1/w:v1", "ports": [{}]}, settings).runtime
        fixed = specs.check_changes({"ports": [{"host_port": 9000}]}, "t1/w", current, pool, 1, settings)
        assert fixed.runtime["update_strategy"] == "stop-first"
        chosen = dict(current, update_strategy="stop-first")
        back = specs.check_changes({"ports": [{}]}, "t1/w", chosen, pool, 1, settings)
        assert back.runtime["update_strategy"] == "stop-first"
        default = specs.check_changes({"ports": [{}]}, "t1/w", fixed.runtime, pool, 1, settings)
        assert default.runtime["update_strategy"] == "start-first"

    def test_placement_constraints_and_tasks_per_node_for_a_swarm_pool(self, with_swarm):
        settings = with_swarm
        swarm = settings.pools["swarm"]
        placement = {"constraints": ["node.labels.imagehub.host == local-2", "node.role!=manager"], "max_per_node": 2}
        changes = specs.check_changes({"placement": placement}, "t1/w", {}, swarm, 1, settings)
        assert changes.runtime["placement"] == {
            "constraints": ["node.labels.imagehub.host==local-2", "node.role!=manager"],
            "max_per_node": 2,
        }

    @pytest.mark.parametrize(
        "placement, message",
        [
            ({"constraints": ["node.labels.zone ~= eu"]}, r"placement\.constraints\[0\] must be"),
            ({"constraints": ["container.name==x"]}, r"placement\.constraints\[0\] must be"),
            ({"constraints": "node.role==worker"}, "placement.constraints must be a list"),
            ({"max_per_node": 0}, "placement.max_per_node must be a whole number from 1"),
            ({"spread": "zone"}, "placement must be"),
        ],
    )
    def test_a_bad_placement_is_refused_naming_the_field(self, with_swarm, placement, message):
        settings = with_swarm
        with pytest.raises(InvalidRequest, match=message):
            specs.check_changes({"placement": placement}, "t1/w", {}, settings.pools["swarm"], 1, settings)

    def test_an_engines_pool_refuses_placement(self, settings):
        with pytest.raises(InvalidRequest, match="placement is a swarm pool's"):
            specs.check_create(
                {"name": "w", "image": "t1/w:v1", "placement": {"max_per_node": 1}, "pool": "default"}, settings
            )

    def test_a_revision_recorded_before_the_field_reads_as_its_default(self):
        assert specs.update_strategy({"ports": [{"host_port": 9000}]}) == "stop-first"
        assert specs.update_strategy({"ports": []}) == "start-first"


class TestValuesPastAnyMachine:
    """Found by fuzzing over RPC: each was a bare RemoteError (TypeError, OverflowError)."""

    @pytest.mark.parametrize(
        "overrides, message",
        [
            ({"pool": ["default"]}, "pool ['default'] is unknown"),
            ({"pool": {"default": 1}}, "pool {'default': 1} is unknown"),
            ({"cpu": 10**400}, "cpu must be"),
            ({"memory": "9" * 400 + "t"}, "memory is far larger than any host's memory"),
            ({"health": {"type": "running", "seconds": 10**400}}, "health.seconds"),
        ],
    )
    def test_refused_naming_the_field(self, settings, overrides, message):
        with pytest.raises(InvalidRequest, match=message.replace("[", r"\[").replace("{", r"\{")):
            check(settings, **overrides)
