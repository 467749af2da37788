"""Logins: passwords, robot secrets and credentials, refresh tokens, and slowing down failures.

Every refusal is the same ``Unauthorized`` whatever its reason; repeated failures for one name
are answered ``TooManyAttempts`` until their delay is over, for made-up names exactly as for
real ones.
"""

import pytest
import sqlalchemy as sa

from auth import accounts, logins
from auth.exceptions import LOGIN_FAILED, TooManyAttempts, Unauthorized
from auth.grants import ROBOT, USER, Principal
from auth.models import LoginFailure
from auth.settings import LoginPolicy
from tests.unit.auth.conftest import T0, at

PASSWORD = "alice-secret"


@pytest.fixture
def alice(session, hasher, acme):
    accounts.create_account(session, hasher, "alice", PASSWORD, "acme", False, False, "", T0)
    session.commit()
    return "alice"


def login(session, hasher, issuer, policy, username, password, now=T0, address=""):
    outcome = logins.authenticate(session, hasher, issuer, policy, username, password, now, address)
    session.commit()
    return outcome


def failures(session, name, address=""):
    return session.execute(
        sa.select(LoginFailure.failures, LoginFailure.blocked_until).where(
            LoginFailure.name == logins.failure_keys(address, name)[0]
        )
    ).one_or_none()


class TestPasswords:
    def test_the_right_password_gives_the_accounts_principal(self, session, hasher, issuer, policy, alice):
        outcome = login(session, hasher, issuer, policy, "alice", PASSWORD)
        assert outcome.error is None
        assert outcome.principal_or_raise() == Principal(
            USER, "alice", "acme", actions=frozenset({"pull", "push"}), generation=1
        )

    @pytest.mark.parametrize(
        "username, password",
        [
            ("alice", "wrong-password"),  # wrong password
            ("alice", ""),  # none
            ("nobody", PASSWORD),  # no such account
            ("", ""),  # nothing at all
            ("Alice", PASSWORD),  # names are exact
            ("alice", PASSWORD + "x" * 2000),  # past the longest password: not even hashed
        ],
    )
    def test_every_refusal_is_the_same_answer(self, session, hasher, issuer, policy, alice, username, password):
        outcome = login(session, hasher, issuer, policy, username, password)
        assert outcome.principal is None
        assert type(outcome.error) is Unauthorized
        assert str(outcome.error) == LOGIN_FAILED
        with pytest.raises(Unauthorized):
            outcome.principal_or_raise()

    def test_a_disabled_account_is_refused_with_the_same_answer(self, session, hasher, issuer, policy, alice):
        accounts.set_account_disabled(session, "alice", True, T0)
        session.commit()
        assert str(login(session, hasher, issuer, policy, "alice", PASSWORD).error) == LOGIN_FAILED
        accounts.set_account_disabled(session, "alice", False, T0)
        session.commit()
        assert login(session, hasher, issuer, policy, "alice", PASSWORD).error is None

    def test_an_account_of_a_disabled_tenant_is_refused(self, session, hasher, issuer, policy, alice):
        accounts.set_tenant_disabled(session, "acme", True, T0)
        session.commit()
        assert str(login(session, hasher, issuer, policy, "alice", PASSWORD).error) == LOGIN_FAILED

    def test_an_unknown_name_costs_a_hash_like_a_known_one(self, session, issuer, policy, alice):
        from auth.passwords import Hasher

        verified = []

        def runner(function, *args):
            verified.append((function.__name__, args[0]))
            return function(*args)

        counting = Hasher(time_cost=1, memory_cost=8192, parallelism=1, run=runner)
        login(session, counting, issuer, policy, "nobody", "whatever")
        assert verified == [("verify", counting.dummy_hash)]

    def test_a_hash_with_old_parameters_is_redone_at_login(self, session, issuer, policy, alice):
        from auth.passwords import Hasher

        stronger = Hasher(time_cost=2, memory_cost=8192, parallelism=1)
        assert login(session, stronger, issuer, policy, "alice", PASSWORD).error is None
        stored = accounts.get_account(session, "alice").password_hash
        assert "t=2" in stored and not stronger.needs_rehash(stored)


class TestRobots:
    def test_a_robot_logs_in_with_its_secret(self, session, hasher, issuer, policy, acme):
        account, secret = accounts.create_robot(session, hasher, "acme", "deployer", None, False, "", T0)
        session.commit()
        principal = login(session, hasher, issuer, policy, "acme+deployer", secret).principal_or_raise()
        assert principal == Principal(ROBOT, "acme+deployer", "acme", actions=frozenset({"pull"}), generation=1)

    def test_a_rotated_secret_replaces_the_old_one(self, session, hasher, issuer, policy, acme):
        _, old = accounts.create_robot(session, hasher, "acme", "deployer", None, False, "", T0)
        _, new = accounts.rotate_robot_secret(session, hasher, "acme+deployer", T0)
        session.commit()
        assert str(login(session, hasher, issuer, policy, "acme+deployer", old).error) == LOGIN_FAILED
        assert login(session, hasher, issuer, policy, "acme+deployer", new).error is None

    def test_a_robot_credential_logs_in_as_its_robot_until_it_expires(self, session, hasher, issuer, policy, acme):
        password, _ = issuer.robot_credential("acme+deployer", "acme", ["pull"], 60, T0)
        principal = login(session, hasher, issuer, policy, "acme+deployer", password, at(59)).principal_or_raise()
        assert principal == Principal(ROBOT, "acme+deployer", "acme", actions=frozenset({"pull"}))
        assert principal.generation is None  # nothing stored: no refresh token for it
        assert str(login(session, hasher, issuer, policy, "acme+deployer", password, at(60)).error) == LOGIN_FAILED

    def test_a_robot_credential_is_for_its_own_name_only(self, session, hasher, issuer, policy, acme):
        password, _ = issuer.robot_credential("acme+deployer", "acme", ["pull"], 60, T0)
        assert login(session, hasher, issuer, policy, "acme+other", password).error is not None

    def test_a_robot_credential_of_a_disabled_or_unknown_tenant_is_refused(self, session, hasher, issuer, policy, acme):
        unknown, _ = issuer.robot_credential("globex+deployer", "globex", ["pull"], 60, T0)
        assert login(session, hasher, issuer, policy, "globex+deployer", unknown).error is not None
        password, _ = issuer.robot_credential("acme+deployer", "acme", ["pull"], 60, T0)
        accounts.set_tenant_disabled(session, "acme", True, T0)
        session.commit()
        assert login(session, hasher, issuer, policy, "acme+deployer", password).error is not None

    def test_a_disabled_stored_robot_of_the_same_name_keeps_its_credentials_shut(
        self, session, hasher, issuer, policy, acme
    ):
        accounts.create_robot(session, hasher, "acme", "deployer", None, False, "", T0)
        accounts.set_account_disabled(session, "acme+deployer", True, T0)
        session.commit()
        password, _ = issuer.robot_credential("acme+deployer", "acme", ["pull"], 60, T0)
        assert login(session, hasher, issuer, policy, "acme+deployer", password).error is not None

    def test_a_credential_longer_than_any_real_one_is_refused_unread(self, session, hasher, issuer, policy, acme):
        password, _ = issuer.robot_credential("acme+x", "acme", ["pull"], 60, T0)
        padded = password.replace(".", "." + "A" * logins.MAX_CREDENTIAL_LENGTH, 1)
        assert login(session, hasher, issuer, policy, "acme+x", padded).error is not None

    def test_unknown_actions_in_a_credential_are_dropped(self, session, hasher, issuer, policy, acme):
        password, _ = issuer.robot_credential("acme+x", "acme", ["pull", "fly"], 60, T0)
        principal = login(session, hasher, issuer, policy, "acme+x", password).principal_or_raise()
        assert principal.actions == frozenset({"pull"})


class TestRefreshTokens:
    def test_stand_for_the_account(self, session, hasher, issuer, alice):
        token = issuer.refresh_token("alice", 1, T0)
        assert logins.refresh(session, issuer, token, at(10)).name == "alice"

    def test_are_void_after_a_password_change(self, session, hasher, issuer, alice):
        token = issuer.refresh_token("alice", 1, T0)
        accounts.set_password(session, hasher, "alice", "another-secret", T0)
        session.commit()
        with pytest.raises(Unauthorized, match="log in again"):
            logins.refresh(session, issuer, token, at(10))

    def test_are_refused_once_the_account_or_tenant_is_disabled(self, session, hasher, issuer, alice):
        token = issuer.refresh_token("alice", 1, T0)
        accounts.set_account_disabled(session, "alice", True, T0)
        with pytest.raises(Unauthorized):
            logins.refresh(session, issuer, token, T0)
        accounts.set_account_disabled(session, "alice", False, T0)
        accounts.set_tenant_disabled(session, "acme", True, T0)
        with pytest.raises(Unauthorized):
            logins.refresh(session, issuer, token, T0)

    @pytest.mark.parametrize("token", [None, "", "garbage"])
    def test_anything_else_is_refused(self, session, issuer, alice, token):
        with pytest.raises(Unauthorized, match="invalid or expired refresh token"):
            logins.refresh(session, issuer, token, T0)

    def test_of_a_deleted_name_are_refused(self, session, issuer, alice):
        with pytest.raises(Unauthorized):
            logins.refresh(session, issuer, issuer.refresh_token("nobody", 1, T0), T0)


class TestPerAddress:
    """Failures count per name *from an address*, and per address over all names (policy: 3 free
    per name, ``address_free_failures`` per address)."""

    def test_guesses_from_one_address_never_lock_the_account_out_elsewhere(
        self, session, hasher, issuer, policy, alice
    ):
        for second in range(4):  # 3 free, the 4th costs a second
            login(session, hasher, issuer, policy, "alice", "guess", at(second), address="127.0.0.66")
        blocked = login(session, hasher, issuer, policy, "alice", PASSWORD, at(3.5), address="127.0.0.66").error
        assert type(blocked) is TooManyAttempts
        elsewhere = login(session, hasher, issuer, policy, "alice", PASSWORD, at(3.5), address="127.0.0.7")
        assert elsewhere.error is None and elsewhere.principal.name == "alice"
        assert failures(session, "alice", "127.0.0.7") is None

    def test_an_address_guessing_many_names_is_slowed_down_as_a_whole(self, session, hasher, issuer, alice):
        policy = LoginPolicy(free_failures=3, first_delay=1, max_delay=8, window=900, address_free_failures=5)
        for n in range(5):  # five names, one failure each: within every per-name allowance
            outcome = login(session, hasher, issuer, policy, f"name-{n}", "x", at(n), "127.0.0.66")
            assert type(outcome.error) is Unauthorized
        assert type(login(session, hasher, issuer, policy, "name-5", "x", at(6), "127.0.0.66").error) is Unauthorized
        # the address's 6th failure is past its 5 free ones: it waits, whatever name it tries next
        blocked = login(session, hasher, issuer, policy, "alice", PASSWORD, at(6.5), "127.0.0.66").error
        assert type(blocked) is TooManyAttempts and blocked.retry_after == 1
        assert login(session, hasher, issuer, policy, "alice", PASSWORD, at(6.5), "127.0.0.7").error is None

    def test_a_success_clears_the_names_count_at_that_address_only(self, session, hasher, issuer, policy, alice):
        login(session, hasher, issuer, policy, "alice", "guess", at(0), address="127.0.0.1")
        login(session, hasher, issuer, policy, "alice", "guess", at(0), address="127.0.0.2")
        assert login(session, hasher, issuer, policy, "alice", PASSWORD, at(1), address="127.0.0.1").error is None
        assert failures(session, "alice", "127.0.0.1") is None
        assert failures(session, "alice", "127.0.0.2") == (1, None)

    def test_a_name_cannot_pose_as_an_address_key(self):
        name_key, address_key = logins.failure_keys("127.0.0.1", "")
        assert name_key != address_key
        assert logins.failure_keys("127.0.0.1", "\x1e")[0] != address_key


class TestSlowingDown:
    """policy: 3 free failures, then 1, 2, 4, 8, 8 ... seconds; counts forgotten after 900 s."""

    def fail(self, session, hasher, issuer, policy, name, now):
        return login(session, hasher, issuer, policy, name, "wrong-password", now).error

    @pytest.mark.parametrize("name", ["alice", "nobody"])
    def test_free_failures_then_growing_delays_for_real_and_unknown_names_alike(
        self, session, hasher, issuer, policy, alice, name
    ):
        for second in range(3):
            assert type(self.fail(session, hasher, issuer, policy, name, at(second))) is Unauthorized
        assert failures(session, name) == (3, None)
        # the 4th failure costs 1 s: an attempt within it is refused unchecked
        assert type(self.fail(session, hasher, issuer, policy, name, at(10))) is Unauthorized
        assert failures(session, name) == (4, at(11))
        blocked = login(session, hasher, issuer, policy, name, PASSWORD, at(10.5)).error
        assert type(blocked) is TooManyAttempts and blocked.retry_after == 1
        assert failures(session, name) == (4, at(11))  # a refused attempt is not another failure
        # then 2, 4, 8, and no more than max_delay (8)
        for failure, delay, now in ((5, 2, 11), (6, 4, 20), (7, 8, 30), (8, 8, 40)):
            assert type(self.fail(session, hasher, issuer, policy, name, at(now))) is Unauthorized
            assert failures(session, name) == (failure, at(now + delay))

    def test_the_right_password_waits_too_then_clears_the_count(self, session, hasher, issuer, policy, alice):
        for second in range(5):
            self.fail(session, hasher, issuer, policy, "alice", at(second * 10))
        assert failures(session, "alice") == (5, at(42))
        error = login(session, hasher, issuer, policy, "alice", PASSWORD, at(41)).error
        assert type(error) is TooManyAttempts and error.retry_after == 1
        assert error.headers == {"Retry-After": "1"}
        assert login(session, hasher, issuer, policy, "alice", PASSWORD, at(42)).error is None
        assert failures(session, "alice") is None

    def test_the_count_restarts_after_a_quiet_window(self, session, hasher, issuer, policy, alice):
        for second in range(4):
            self.fail(session, hasher, issuer, policy, "alice", at(second * 2))
        assert failures(session, "alice")[0] == 4
        self.fail(session, hasher, issuer, policy, "alice", at(6 + 901))
        assert failures(session, "alice") == (1, None)

    def test_one_names_failures_do_not_slow_another_down(self, session, hasher, issuer, policy, alice):
        for second in range(6):
            self.fail(session, hasher, issuer, policy, "mallory", at(second * 10))
        assert login(session, hasher, issuer, policy, "alice", PASSWORD, at(51)).error is None

    def test_names_quiet_for_a_window_are_forgotten(self, session, hasher, issuer, policy, alice):
        self.fail(session, hasher, issuer, policy, "made-up-1", at(0))
        self.fail(session, hasher, issuer, policy, "made-up-2", at(901))
        assert failures(session, "made-up-1") is None
        assert failures(session, "made-up-2") == (1, None)

    def test_a_very_long_name_is_counted_by_its_first_characters(self, session, hasher, issuer, policy):
        name = "x" * 300
        self.fail(session, hasher, issuer, policy, name, T0)
        assert failures(session, name) == failures(session, "x" * 280) == (1, None)
        assert len(logins.failure_keys("", name)[0]) == 255

    def test_the_delay_schedule(self, policy):
        assert [policy.delay_after(n) for n in range(9)] == [0, 0, 0, 0, 1, 2, 4, 8, 8]
        assert policy.delay_after(10**6) == 8
        slower = LoginPolicy(free_failures=0, max_delay=20, window=900, first_delay=3)
        assert [slower.delay_after(n) for n in range(5)] == [0, 3, 6, 12, 20]
