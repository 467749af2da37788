"""Password and robot-secret hashing: Argon2id, verify, rehash, the dummy hash."""

from auth.passwords import Hasher, new_robot_secret


class TestHasher:
    def test_hashes_with_argon2id_and_verifies(self, hasher):
        stored = hasher.hash("correct horse")
        assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
        assert "correct horse" not in stored
        assert hasher.verify(stored, "correct horse")
        assert not hasher.verify(stored, "correct hors")
        assert not hasher.verify(stored, "")

    def test_the_same_password_hashes_differently_each_time(self, hasher):
        assert hasher.hash("same") != hasher.hash("same")

    def test_a_broken_hash_verifies_nothing(self, hasher):
        assert not hasher.verify("not-a-hash", "anything")
        assert not hasher.verify("$argon2id$v=19$m=8192,t=1,p=1$broken", "anything")

    def test_no_hash_is_checked_against_the_dummy_and_fails(self, hasher):
        assert not hasher.verify(None, "")
        assert not hasher.verify(None, "any password")

    def test_a_hash_made_with_other_parameters_verifies_and_needs_a_rehash(self, hasher):
        stronger = Hasher(time_cost=2, memory_cost=8192, parallelism=1)
        old = hasher.hash("pw-123456")
        assert stronger.verify(old, "pw-123456")
        assert stronger.needs_rehash(old)
        assert not stronger.needs_rehash(stronger.hash("pw-123456"))
        assert stronger.needs_rehash("garbage")

    def test_hashing_runs_through_the_given_runner(self):
        ran = []

        def runner(function, *args):
            ran.append(function.__name__)
            return function(*args)

        hasher = Hasher(time_cost=1, memory_cost=8192, parallelism=1, run=runner)
        assert hasher.verify(hasher.hash("pw-123456"), "pw-123456")
        assert ran == ["hash", "verify"]


class TestRobotSecrets:
    def test_are_long_random_and_url_safe(self):
        secrets = {new_robot_secret() for _ in range(20)}
        assert len(secrets) == 20
        for secret in secrets:
            assert len(secret) == 43
            assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
