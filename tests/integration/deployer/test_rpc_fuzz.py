"""Every RPC method of the deployer fuzzed with generated arguments, through a real RPC on a real
RabbitMQ vhost, beside the real catalog, on SQLite and PostgreSQL (issue 6, "bad input").

For each method, hypothesis replaces one argument (or one field of a spec or of the changes)
with junk — None, booleans, integers (negative, zero, past 64 bits and past a float), floats
(NaN, infinities), decimals, bytes, UUIDs, datetimes, unicode and lone surrogates, NUL
characters, overlong strings, lists, dicts — or draws several at once. An oracle written from
docs/deployer-api.md says which are certainly bad:

* a call with a certainly bad argument raises ``InvalidRequest`` naming it;
* any call returns a deployment (or a page) or raises an error of ``shared.contracts.errors`` — never a
  bare ``RemoteError``, never a hang; the service answers afterwards.

The deployments these calls touch have ``replicas: 0``: no container is ever started.
"""

import re
import subprocess
import sys
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nameko.exceptions import RemoteError

from shared.contracts.errors import Conflict, ImagehubError, InvalidRequest
from tests.integration.catalog.test_rpc_fuzz import junk
from tests.integration.deployer.conftest import announce_push
from tests.integration.webhook.test_fuzz import COMPONENT, fuzz_settings, unseeded_vhost_names
from tests.support import push_image, wait_until

assert unseeded_vhost_names  # an autouse fixture of this module too

pytestmark = pytest.mark.docker

BAD, UNKNOWN = False, None
MAX_REPLICAS = 50  # DEPLOYER_MAX_REPLICAS's default
POOL_CPUS, POOL_MEMORY = 2, 4 * 1024**3  # the largest host of the test pool
NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")

# Text Python's re would backtrack on for ever; RE2 runs it in linear time (deployer.policy).
CATASTROPHIC_REGEXPS = ["regexp:(a+)+$", "regexp:(a|a)*b", "regexp:(a*)*b", "regexp:^(\\w+\\s?)*$", "regexp:(.*a){20}"]


def _int(value):
    return type(value) is int


def _number(value):
    return type(value) in (int, float)


def tenant_ok(value):
    if isinstance(value, bytes):
        return UNKNOWN  # marshmallow reads bytes as text
    if isinstance(value, str) and len(value) <= 128 and value != "library" and COMPONENT.fullmatch(value):
        return UNKNOWN
    return BAD


def uuid_ok(value):
    if isinstance(value, (bytes, uuid.UUID)):
        return UNKNOWN  # 16 bytes are a UUID to marshmallow
    if not isinstance(value, str):
        return BAD
    try:
        uuid.UUID(value)
        return UNKNOWN
    except ValueError:
        return BAD


# -- spec fields: certainly bad (False) or not known (None), from docs/deployer-api.md -------------


def spec_field_verdict(field, value):
    if value is None:
        return BAD if field in ("name", "image") else UNKNOWN  # the others have defaults
    if field == "name":
        return UNKNOWN if isinstance(value, str) and NAME.fullmatch(value) else BAD
    if field == "image":
        return UNKNOWN if isinstance(value, str) and value else BAD
    if field == "pool":
        return UNKNOWN if value == "engines" else BAD
    if field == "replicas":
        return UNKNOWN if _int(value) and 0 <= value <= MAX_REPLICAS else BAD
    if field == "env":
        return UNKNOWN if isinstance(value, dict) else BAD
    if field == "command":
        return UNKNOWN if isinstance(value, (str, list)) and value else BAD
    if field == "ports":
        return UNKNOWN if isinstance(value, list) else BAD
    if field == "cpu":
        return UNKNOWN if _number(value) and 0.01 <= value <= POOL_CPUS else BAD
    if field == "memory":
        if isinstance(value, str):
            return UNKNOWN
        return UNKNOWN if _int(value) and 6 * 1024**2 <= value <= POOL_MEMORY else BAD
    if field == "restart_policy":
        return UNKNOWN if value in ("no", "on-failure", "always", "unless-stopped") else BAD
    if field in ("health", "auto_deploy"):
        return UNKNOWN if isinstance(value, dict) else BAD
    if field == "tag":
        return UNKNOWN if isinstance(value, str) else BAD
    if field == "update_strategy":
        return UNKNOWN if value in ("start-first", "stop-first") else BAD
    if field == "placement":
        return BAD  # the target's pool is a list of engines: placement is a swarm pool's
    return BAD  # not a field at all


SPEC_FIELDS = (
    "name",
    "image",
    "pool",
    "replicas",
    "env",
    "command",
    "ports",
    "cpu",
    "memory",
    "restart_policy",
    "health",
    "auto_deploy",
    "update_strategy",
    "placement",
)
CHANGE_FIELDS = tuple(field for field in SPEC_FIELDS if field not in ("name", "pool", "replicas")) + ("tag",)

spec_junk = st.one_of(
    junk,
    st.sampled_from([-1, 0, 51, 2**63, 10**400, float("nan"), float("-inf"), 1e308, 0.001]),
    st.sampled_from(["9" * 400 + "t", "1" * 5000, "1e400", "-1m", "0", "5m", "12q", "1.5.5g", " ", "\x00"]),
    st.sampled_from(
        [
            {"type": "http", "timeout": 10**400},
            {"type": "running", "seconds": 10**400},
            {"type": "running", "seconds": float("nan")},
            {"type": ["http"]},
            {"type": None},
            {"type": "http", "path": "/\x00", "port_index": 2**70},
            {"policy": None},
            {"policy": ["never"]},
            {"policy": "regexp:("},
            {"policy": "regexp:" + "(" * 500},
            {"policy": "semver:huge"},
            {"policy": "glob:"},
            {"policy": "never", "x": 1},
            {"PORT": "1"},
            {"A": 1},
            {"A": "x\x00"},
            {"1A": "x"},
            {"": "x"},
        ]
    ),
    st.sampled_from(
        [
            [{"host_port": 2**70}],
            [{"container_port": -1}],
            [{"x": 1}],
            [1],
            [None],
            [{"host_port": 20000}, {"host_port": 20000}],
            [{}] * 17,
            ["sh", 1],
            [[]],
            "sh -c '",
            "",
        ]
    ),
    st.sampled_from(
        [
            "start-first",
            "stop-first",
            "recreate",
            "START-FIRST",
            {},
            {"constraints": ["node.labels.imagehub.host==local-2"]},
            {"constraints": "node.role==manager"},
            {"constraints": ["node.role~=manager"]},
            {"constraints": ["x"] * 100},
            {"max_per_node": 0},
            {"max_per_node": 2**70},
            {"spread": "node.id"},
        ]
    ),
)


@pytest.fixture(scope="module")
def target(services, rpc, registry, tenant, vhost_config):
    """A deployment of the tenant with ``replicas: 0`` (no container), its image indexed by the
    real catalog from an ``image_pushed`` (pushed over the registry's HTTP API, as a client does)."""
    image = push_image(registry.url, f"{tenant}/web", "fuzz", content=b"fuzz " + tenant.encode())
    announce_push(vhost_config, tenant, "fuzz", image["digest"])
    wait_until(
        lambda: rpc.catalog.get_tag(tenant, f"{tenant}/web", "fuzz")["digest"] == image["digest"],
        timeout=20,
        what="the image in the catalog",
    )
    created = rpc.deployer.create_deployment(
        tenant, {"name": "fuzz-target", "image": f"{tenant}/web:fuzz", "replicas": 0, "cpu": 0.1, "memory": "32m"}
    )
    wait_until(
        lambda: rpc.deployer.get_deployment(tenant, created["id"])["status"] == "stopped",
        timeout=30,
        what="the deployment stopped",
    )
    yield created["id"]
    rpc.deployer.delete_deployment(tenant, created["id"])


def mostly(value):
    """The good value three times in four, junk otherwise: the checks behind the first one get
    their turn."""
    return st.one_of(st.just(value), st.just(value), st.just(value), junk)


def valid_spec(tenant):
    return {
        "name": f"fz-{uuid.uuid4().hex[:8]}",
        "image": f"{tenant}/web:fuzz",
        "replicas": 0,
        "cpu": 0.1,
        "memory": "32m",
    }


@st.composite
def bad_specs(draw, base, fields):
    """``(spec, {field: verdict})``: the base with one or more fields junk (or unknown keys)."""
    spec = dict(base)
    names = draw(st.sampled_from(fields).map(lambda f: {f}) | st.sets(st.sampled_from(fields), min_size=1, max_size=3))
    verdicts = {}
    for name in names:
        spec[name] = draw(spec_junk)
        verdicts[name] = spec_field_verdict(name, spec[name])
    if "image" in spec and "tag" in spec and "name" not in spec:  # changes: both at once is its own error
        verdicts.pop("image", None)
        verdicts["tag"] = BAD
    if draw(st.integers(0, 9)) == 0:
        extra = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in fields))
        spec[extra] = draw(junk)
        verdicts[extra] = BAD
    return spec, verdicts


def named(message, argument):
    return re.search(rf"(^|; ){re.escape(argument)}[ .\[]", message) is not None


def outcome(call):
    try:
        return call(), None
    except Exception as exc:  # judged below
        return None, exc


def judge(what, result, error, certainly_bad):
    """``certainly_bad``: the argument names the oracle is sure about; each must be named."""
    assert not isinstance(error, RemoteError), f"{what} -> bare {error!r}"
    assert error is None or isinstance(error, ImagehubError), f"{what} -> untyped {error!r}"
    if isinstance(error, Conflict) and " is busy " in str(error):
        return  # an earlier generated change that happened to be good is still rolling out: checked first
    if certainly_bad:
        assert isinstance(error, InvalidRequest), f"{what} -> {result or error!r}"
        for argument in certainly_bad:
            assert named(str(error), argument), f"{argument} not named in {error}"
    if error is None:
        assert isinstance(result, dict)


class Seen:
    def __init__(self, name):
        self.name, self.answers = name, {}

    def add(self, error):
        key = type(error).__name__ if error is not None else "result"
        self.answers[key] = self.answers.get(key, 0) + 1

    def report(self):
        print(
            f"\n[fuzz] deployer.{self.name}: {sum(self.answers.values())} calls, answers "
            f"{dict(sorted(self.answers.items()))}"
        )


@pytest.fixture
def seen(request):
    collected = Seen(request.node.name.split("[")[0].removeprefix("test_"))
    yield collected
    collected.report()


def assert_still_answers(rpc, tenant, target):
    assert rpc.deployer.get_deployment(tenant, target)["id"] == target
    assert [pool["name"] for pool in rpc.deployer.list_pools()["items"]] == ["swarm", "engines"]


@pytest.mark.timeout(180)
class TestBadArguments:
    def test_create_deployment(self, rpc, tenant, target, seen):
        @fuzz_settings(300)
        @given(
            tenant_id=mostly(tenant),
            drawn=bad_specs(valid_spec(tenant), SPEC_FIELDS)
            | junk.map(lambda spec: (spec, {"spec": BAD if not isinstance(spec, dict) else UNKNOWN})),
        )
        def run(tenant_id, drawn):
            spec, verdicts = drawn
            result, error = outcome(lambda: rpc.deployer.create_deployment(tenant_id, spec))
            seen.add(error)
            bad = [name for name, ok in verdicts.items() if ok is BAD]
            if tenant_ok(tenant_id) is BAD:  # the arguments are checked before the spec's fields
                bad = ["tenant_id"] + ([] if "spec" not in bad else ["spec"])
            elif tenant_ok(tenant_id) is UNKNOWN and tenant_id != tenant:
                bad = [name for name in bad if name == "spec"]
            judge(f"create_deployment({tenant_id!r}, {spec!r})", result, error, bad)
            if error is None:  # a spec that happens to be good: never left running
                rpc.deployer.delete_deployment(tenant, result["id"])

        run()
        assert seen.answers.get("InvalidRequest")
        assert_still_answers(rpc, tenant, target)

    def test_update_deployment(self, rpc, tenant, target, seen):
        @fuzz_settings(200)
        @given(deployment_id=mostly(target), drawn=bad_specs({}, CHANGE_FIELDS))
        def run(deployment_id, drawn):
            changes, verdicts = drawn
            result, error = outcome(lambda: rpc.deployer.update_deployment(tenant, deployment_id, changes))
            seen.add(error)
            bad = (
                ["deployment_id"]
                if deployment_id != target and uuid_ok(deployment_id) is BAD
                else [name for name, ok in verdicts.items() if ok is BAD and deployment_id == target]
            )
            judge(f"update_deployment({deployment_id!r}, {changes!r})", result, error, bad)

        run()
        assert seen.answers.get("InvalidRequest")
        assert_still_answers(rpc, tenant, target)

    @pytest.mark.parametrize(
        "method, argument, good",
        [
            ("set_auto_deploy", "policy", st.sampled_from(["never", "force", "semver:minor", "glob:v*"])),
            ("scale_deployment", "replicas", st.just(0)),
            ("rollback_deployment", "revision", st.none() | st.just(1)),
        ],
    )
    def test_deployment_changes(self, rpc, tenant, target, seen, method, argument, good):
        checks = {
            "policy": lambda v: UNKNOWN if isinstance(v, str) and v else BAD,
            "replicas": lambda v: UNKNOWN if _int(v) and 0 <= v <= MAX_REPLICAS else BAD,
            "revision": lambda v: UNKNOWN if v is None or (_int(v) and v >= 1) else BAD,
        }

        @fuzz_settings(100)
        @given(
            tenant_id=mostly(tenant),
            deployment_id=mostly(target),
            value=good
            | junk
            | st.sampled_from(
                ["regexp:(", "regexp:" + "a" * 10000, "glob:\x00", "regexp:\ud800", 2**63, 2**64 + 1, 10**30]
            ),
        )
        def run(tenant_id, deployment_id, value):
            result, error = outcome(lambda: getattr(rpc.deployer, method)(tenant_id, deployment_id, value))
            seen.add(error)
            # First the arguments' shapes (all named at once), then, on the target, the value's rules.
            shape_bad = [
                name
                for name, ok in (
                    ("tenant_id", tenant_ok(tenant_id)),
                    ("deployment_id", uuid_ok(deployment_id)),
                    (
                        argument,
                        BAD
                        if value is None and argument != "revision"
                        else checks[argument](value)
                        if argument == "revision"
                        else UNKNOWN,
                    ),
                )
                if ok is BAD
            ]
            on_target = tenant_id == tenant and deployment_id == target
            bad = shape_bad or ([argument] if on_target and checks[argument](value) is BAD else [])
            judge(f"{method}({tenant_id!r}, {deployment_id!r}, {value!r})", result, error, bad)

        run()
        assert seen.answers.get("InvalidRequest")
        assert_still_answers(rpc, tenant, target)

    @pytest.mark.parametrize("method", ["get_deployment", "delete_deployment", "list_revisions", "list_deployments"])
    def test_reads_and_delete(self, rpc, tenant, target, seen, method):
        paged = method in ("list_revisions", "list_deployments")

        @fuzz_settings(50)
        @given(
            tenant_id=st.sampled_from([tenant, "someone-else"]) | junk,
            deployment_id=st.just(str(uuid.uuid4())) | junk,
            page=st.just(1) | junk,
            page_size=st.just(50) | junk,
        )
        def run(tenant_id, deployment_id, page, page_size):
            args = (tenant_id,) if method == "list_deployments" else (tenant_id, deployment_id)
            kwargs = {"page": page, "page_size": page_size} if paged else {}
            result, error = outcome(lambda: getattr(rpc.deployer, method)(*args, **kwargs))
            seen.add(error)
            verdicts = {"tenant_id": tenant_ok(tenant_id)}
            if method != "list_deployments":
                verdicts["deployment_id"] = uuid_ok(deployment_id)
            if paged:
                verdicts["page"] = UNKNOWN if _int(page) and 1 <= page <= 1_000_000 else BAD
                verdicts["page_size"] = UNKNOWN if _int(page_size) and 1 <= page_size <= 200 else BAD
            judge(
                f"{method}({args!r}, {kwargs!r})",
                result,
                error,
                [name for name, ok in verdicts.items() if ok is BAD or ok is False],
            )

        run()
        assert seen.answers.get("InvalidRequest")
        assert_still_answers(rpc, tenant, target)


# A valid tag (letters and a '-') that a backtracking engine takes for ever to refuse.
PROBE_TAG = "a" * 100 + "-"
PROBE_SECONDS = 3  # CPU seconds the decision itself may take
# Wall seconds for the whole process, imports included: generous, since a loaded machine (the
# suite's parallel shards) slows the start-up; a backtracking engine needs ~2**100 steps anyway.
PROCESS_SECONDS = 30
DECIDE = (
    "import sys, time; from deployer.policy import parse_policy; policy = parse_policy(sys.argv[1]); "
    "started = time.process_time(); policy.wants('1.0.0', sys.argv[2]); print(time.process_time() - started)"
)


def decides_quickly(policy):
    """Whether the deployer's own policy code decides on ``PROBE_TAG`` within ``PROBE_SECONDS`` of
    CPU, run in a process of its own: a catastrophic match cannot be interrupted in this one
    (Python's regular expressions ignore signals, and eventlet's single thread would stall every
    service)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", DECIDE, policy, PROBE_TAG],
            timeout=PROCESS_SECONDS,
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.TimeoutExpired:
        return False
    return float(done.stdout.strip().splitlines()[-1]) < PROBE_SECONDS


@pytest.mark.timeout(60)
class TestCatastrophicRegexps:
    """A ``regexp:`` policy runs on every pushed tag in the auto-deploy worker. One with nested
    quantifiers (``(a+)+$``) takes exponential time in a backtracking engine, which no timeout
    interrupts. Such a policy must be refused when it is set, or be harmless: decided quickly.
    (Found by this fuzzing; the deployer now runs regexp policies on RE2, in linear time.)"""

    @pytest.mark.parametrize("policy", CATASTROPHIC_REGEXPS[:2])
    def test_set_auto_deploy_refuses_it_or_it_is_harmless(self, rpc, tenant, target, policy):
        try:
            rpc.deployer.set_auto_deploy(tenant, target, policy)
        except InvalidRequest:
            return  # refused when set
        finally:
            rpc.deployer.set_auto_deploy(tenant, target, "never")
        assert decides_quickly(policy), f"{policy} on {PROBE_TAG!r} did not decide within {PROBE_SECONDS}s"

    def test_create_deployment_refuses_it_or_it_is_harmless(self, rpc, tenant, target):
        policy = CATASTROPHIC_REGEXPS[0]
        spec = dict(valid_spec(tenant), auto_deploy={"policy": policy})
        try:
            created = rpc.deployer.create_deployment(tenant, spec)
        except InvalidRequest as exc:
            assert named(str(exc), "auto_deploy.policy")
            return
        rpc.deployer.delete_deployment(tenant, created["id"])
        assert decides_quickly(policy), f"{policy} on {PROBE_TAG!r} did not decide within {PROBE_SECONDS}s"


# Inputs the fuzzing singled out, each checked on its own: what the deployer must answer.
HUGE = 10**400  # an integer past any float: math.isfinite() cannot take it
EXPLICIT = [
    ("update", {"tag": 5}, "tag"),
    ("update", {"tag": ""}, "tag"),
    ("create", {"pool": ["default"]}, "pool"),
    ("create", {"pool": {"default": 1}}, "pool"),
    ("create", {"cpu": HUGE}, "cpu"),
    ("create", {"memory": "9" * 400 + "t"}, "memory"),
    ("create", {"memory": HUGE}, "memory"),
    ("create", {"health": {"type": "running", "seconds": HUGE}}, "health.seconds"),
    ("create", {"ports": [{}], "health": {"type": "http", "timeout": HUGE}}, "health.timeout"),
    ("create", {"replicas": HUGE}, "replicas"),
    ("update", {"cpu": HUGE}, "cpu"),
    ("update", {"memory": "1" * 400 + "g"}, "memory"),
    ("update", {"health": {"type": "running", "seconds": HUGE}}, "health.seconds"),
    ("scale", HUGE, "replicas"),
    ("rollback", 2**63, "revision"),  # past any database's integer
    ("rollback", 2**63 - 1, None),  # NotFound: no such revision
    ("rollback", 2**31, None),
    ("policy", "glob:\x00", None),  # a policy that can never match: accepted, stored
    ("policy", "regexp:\ud800", "policy"),  # RE2 takes UTF-8: refused, naming the field
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "call, value, named_field",
    EXPLICIT,
    ids=[f"{c}-{f or type(v).__name__}-{i}" for i, (c, v, f) in enumerate(EXPLICIT)],
)
def test_explicit_bad_input(rpc, tenant, target, call, value, named_field):
    deployer = rpc.deployer
    created = None
    # A generated change that happened to be good may still be rolling out on the target: such a
    # call would be a Conflict (busy) before its arguments are looked at.
    wait_until(
        lambda: deployer.get_deployment(tenant, target)["operation"] is None,
        timeout=30,
        what="the target deployment idle",
    )
    try:
        if call == "create":
            created, error = outcome(lambda: deployer.create_deployment(tenant, dict(valid_spec(tenant), **value)))
        elif call == "update":
            _, error = outcome(lambda: deployer.update_deployment(tenant, target, value))
        elif call == "scale":
            _, error = outcome(lambda: deployer.scale_deployment(tenant, target, value))
        elif call == "rollback":
            _, error = outcome(lambda: deployer.rollback_deployment(tenant, target, value))
        else:
            _, error = outcome(lambda: deployer.set_auto_deploy(tenant, target, value))
    finally:
        if created is not None:
            deployer.delete_deployment(tenant, created["id"])
        if call == "policy":
            deployer.set_auto_deploy(tenant, target, "never")
    assert not isinstance(error, RemoteError), f"bare {error!r}"
    if named_field is not None:
        assert isinstance(error, InvalidRequest) and named(str(error), named_field), repr(error)
    elif call == "rollback":
        assert type(error).__name__ == "NotFound", repr(error)
    else:
        assert error is None, repr(error)
    assert_still_answers(rpc, tenant, target)
