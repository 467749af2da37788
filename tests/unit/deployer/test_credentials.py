"""deployer.credentials: what the engines pull with, per tenant."""

from datetime import UTC, datetime, timedelta

import pytest

from deployer import credentials
from deployer.credentials import CredentialsUnavailable, RobotCredentials, StaticCredentials
from deployer.settings import ConfigurationError, load_settings
from tests.unit.deployer.conftest import CONFIG


class Issuer:
    def __init__(self, now, ttl=600, fail=None):
        self.now, self.ttl, self.fail = now, ttl, fail
        self.calls = []

    def __call__(self, tenant_id, name, ttl):
        self.calls.append((tenant_id, name, ttl))
        if self.fail:
            raise self.fail
        expires = datetime.fromtimestamp(self.now[0], UTC) + timedelta(seconds=self.ttl)
        return {
            "username": f"{tenant_id}+{name}",
            "password": f"pw-{len(self.calls)}",
            "expires_at": expires.isoformat(),
            "tenant_id": tenant_id,
            "actions": ["pull"],
        }


class TestRobotCredentials:
    def test_one_credential_per_tenant_asked_once_while_it_is_fresh(self):
        now = [1_000_000.0]
        issue = Issuer(now)
        robot = RobotCredentials(issue, clock=lambda: now[0])
        assert robot("t1") == {"username": "t1+deployer", "password": "pw-1"}
        now[0] += 500  # under ttl - margin (540)
        assert robot("t1") == {"username": "t1+deployer", "password": "pw-1"}
        assert robot("t2") == {"username": "t2+deployer", "password": "pw-2"}
        assert issue.calls == [
            ("t1", "deployer", credentials.CREDENTIAL_TTL),
            ("t2", "deployer", credentials.CREDENTIAL_TTL),
        ]

    def test_renewed_within_the_margin_before_expiry(self):
        now = [1_000_000.0]
        issue = Issuer(now)
        robot = RobotCredentials(issue, clock=lambda: now[0])
        robot("t1")
        now[0] += 600 - credentials.REFRESH_MARGIN + 1
        assert robot("t1")["password"] == "pw-2"

    def test_a_credential_without_expiry_lives_the_asked_ttl(self):
        now = [1_000_000.0]
        robot = RobotCredentials(lambda t, n, ttl: {"username": "u", "password": "p"}, clock=lambda: now[0])
        robot("t1")
        assert robot._cache["t1"][1] == now[0] + credentials.CREDENTIAL_TTL

    def test_asked_to_last_longer_a_cached_one_too_close_to_expiry_is_replaced(self):
        now = [1_000_000.0]
        issue = Issuer(now)
        robot = RobotCredentials(issue, clock=lambda: now[0])
        robot("t1")
        now[0] += 250  # 350 s left: enough for a pull, not for a service that must hold 400
        assert robot("t1")["password"] == "pw-1"
        assert robot("t1", fresh_for=400)["password"] == "pw-2"
        assert robot("t1", fresh_for=400)["password"] == "pw-2"  # the new one has 600 s

    def test_lasting_says_until_when_a_credential_is_good(self):
        now = [1_000_000.0]
        robot = RobotCredentials(Issuer(now), clock=lambda: now[0])
        auth, until = credentials.lasting(robot, None, "t1", 300, now[0])
        assert (auth["username"], until) == ("t1+deployer", now[0] + 300)
        static = StaticCredentials({"username": "u", "password": "p"})
        assert credentials.lasting(static, None, "t1", 300, now[0]) == ({"username": "u", "password": "p"}, None)
        fallback = {"username": "platform", "password": "p"}
        assert credentials.lasting(None, fallback, "t1", 300, now[0]) == (fallback, None)

    def test_a_failed_call_says_which_tenant_and_why_and_caches_nothing(self):
        now = [1_000_000.0]
        issue = Issuer(now, fail=TimeoutError("auth did not answer within 5 s"))
        robot = RobotCredentials(issue, clock=lambda: now[0])
        with pytest.raises(CredentialsUnavailable, match=r"tenant t1 .*TimeoutError: auth did not answer"):
            robot("t1")
        issue.fail = None
        assert robot("t1")["username"] == "t1+deployer"


class TestSettings:
    def test_static_hands_every_tenant_the_configured_account(self):
        assert StaticCredentials({"username": "u", "password": "p"})("t1") == {"username": "u", "password": "p"}
        assert StaticCredentials(None)("t1") is None

    @pytest.mark.parametrize("mode", ["static", "robot"])
    def test_modes(self, mode):
        assert load_settings(dict(CONFIG, PULL_CREDENTIALS=mode)).pull_credentials == mode

    @pytest.mark.parametrize("bad", ["", "Robot", "token", None])
    def test_an_unknown_mode_is_refused(self, bad):
        with pytest.raises(ConfigurationError, match="PULL_CREDENTIALS must be one of static, robot"):
            load_settings(dict(CONFIG, PULL_CREDENTIALS=bad))

    def test_the_auth_timeout_must_be_positive(self):
        with pytest.raises(ConfigurationError, match="AUTH_RPC_TIMEOUT must be more than 0"):
            load_settings(dict(CONFIG, AUTH_RPC_TIMEOUT=0))
