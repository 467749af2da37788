"""auth.manage: bootstrap accounts whose secrets live in files, idempotently."""

import pytest

from auth import accounts, manage
from shared.contracts.errors import InvalidRequest
from tests.unit.auth.conftest import T0


class TestEnsureUser:
    def test_makes_the_admin_and_its_password_file_once(self, session, hasher, tmp_path):
        password_file = str(tmp_path / "admin_password")
        manage.ensure_user(session, hasher, "admin", None, True, password_file, T0)
        password = manage.read_secret(password_file)
        account = accounts.get_account(session, "admin")
        assert account.is_admin and hasher.verify(account.password_hash, password) and len(password) >= 16
        manage.ensure_user(session, hasher, "admin", None, True, password_file, T0)
        assert manage.read_secret(password_file) == password
        assert account.credential_generation == 1  # nothing changed

    def test_the_file_is_the_source_of_truth(self, session, hasher, tmp_path):
        password_file = tmp_path / "pw"
        manage.ensure_user(session, hasher, "alice", "acme", False, str(password_file), T0)
        assert accounts.get_tenant(session, "acme").id == "acme"  # made on the way
        password_file.write_text("a-password-set-by-hand\n")
        manage.ensure_user(session, hasher, "alice", "acme", False, str(password_file), T0)
        account = accounts.get_account(session, "alice")
        assert hasher.verify(account.password_hash, "a-password-set-by-hand")
        assert account.credential_generation == 2

    def test_bad_names_are_refused(self, session, hasher, tmp_path):
        with pytest.raises(InvalidRequest, match="name 'Alice' must be"):
            manage.ensure_user(session, hasher, "Alice", "acme", False, str(tmp_path / "pw"), T0)


class TestEnsureRobot:
    def test_makes_the_robot_once_and_keeps_a_working_secret(self, session, hasher, tmp_path):
        secret_file = str(tmp_path / "catalog_robot")
        account = manage.ensure_robot(session, hasher, "catalog", None, ["pull", "delete"], True, secret_file, T0)
        secret = manage.read_secret(secret_file)
        assert (account.name, account.actions, account.catalog) == ("_platform+catalog", ["pull", "delete"], True)
        assert hasher.verify(account.password_hash, secret)
        manage.ensure_robot(session, hasher, "catalog", None, ["pull", "delete"], True, secret_file, T0)
        assert manage.read_secret(secret_file) == secret and account.credential_generation == 1

    def test_a_lost_secret_file_gets_a_new_secret(self, session, hasher, tmp_path):
        secret_file = tmp_path / "robot"
        manage.ensure_robot(session, hasher, "deployer", "acme", ["pull"], False, str(secret_file), T0)
        old = manage.read_secret(str(secret_file))
        secret_file.unlink()
        account = manage.ensure_robot(session, hasher, "deployer", "acme", ["pull"], False, str(secret_file), T0)
        new = manage.read_secret(str(secret_file))
        assert new != old and hasher.verify(account.password_hash, new)
        assert oct(secret_file.stat().st_mode & 0o777) == "0o600"
