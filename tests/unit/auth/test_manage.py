"""auth.manage: bootstrap accounts whose secrets live in files, idempotently."""

import os

import pytest
from sqlalchemy.orm import Session

from auth import accounts, manage
from shared.contracts.errors import InvalidRequest
from shared.runtime import db
from tests.support import sqlite_copy
from tests.unit.auth.conftest import T0

CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "..", "services", "auth", "config.yml")


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

    def test_a_platform_robot_restricted_to_the_library(self, session, hasher, tmp_path):
        secret_file = str(tmp_path / "library_robot")
        account = manage.ensure_robot(
            session, hasher, "library", None, ["pull", "push"], False, secret_file, T0, namespaces=["library"]
        )
        assert (account.name, account.actions, account.catalog, account.namespaces) == (
            "_platform+library",
            ["pull", "push"],
            False,
            ["library"],
        )
        assert hasher.verify(account.password_hash, manage.read_secret(secret_file))

    def test_the_command_line_sets_the_rights_of_a_robot_that_exists(self, session, hasher, tmp_path):
        secret_file = str(tmp_path / "library_robot")
        manage.ensure_robot(session, hasher, "library", None, ["pull", "push"], False, secret_file, T0)
        secret = manage.read_secret(secret_file)
        account = manage.ensure_robot(
            session, hasher, "library", None, ["pull", "push"], False, secret_file, T0, namespaces=["library"]
        )
        assert account.namespaces == ["library"]
        assert manage.read_secret(secret_file) == secret and account.credential_generation == 1
        account = manage.ensure_robot(session, hasher, "library", None, ["pull"], False, secret_file, T0)
        assert (account.actions, account.namespaces) == (["pull"], None)

    @pytest.mark.parametrize(
        "tenant_id, namespaces, message",
        [
            (None, ["Library"], "namespaces .*namespace 'Library' must be lower-case"),
            (None, ["acme/app"], "namespaces .*namespace 'acme/app' must be"),
            (None, [], "namespaces must name at least one namespace"),
            ("acme", ["acme"], "namespaces is for platform robots only"),
        ],
    )
    def test_bad_namespaces_are_refused(self, session, hasher, tmp_path, tenant_id, namespaces, message):
        secret_file = tmp_path / "robot"
        with pytest.raises(InvalidRequest, match=message):
            manage.ensure_robot(
                session, hasher, "library", tenant_id, ["pull"], False, str(secret_file), T0, namespaces=namespaces
            )
        assert not secret_file.exists()


class TestCommandLine:
    @pytest.fixture
    def db_url(self, migrated_template, tmp_path, monkeypatch):
        url = sqlite_copy(migrated_template, tmp_path)
        for name, value in (("AUTH_DB_URL", url), ("AUTH_HASH_TIME_COST", "1"), ("AUTH_HASH_MEMORY_KIB", "8192")):
            monkeypatch.setenv(name, value)
        return url

    def stored(self, url, name):
        engine = db.create_engine(url)
        try:
            with Session(engine) as session:
                account = accounts.get_account(session, name)
                return account.actions, account.catalog, account.namespaces
        finally:
            engine.dispose()

    def test_namespace_is_repeatable_and_the_name_is_printed(self, db_url, tmp_path, capsys):
        argv = ["--config", CONFIG, "ensure-robot", "library", "--platform", "--actions", "pull,push"]
        argv += ["--namespace", "library", "--namespace", "acme", "--secret-file", str(tmp_path / "library-robot")]
        assert manage.main(argv) == 0
        assert capsys.readouterr().out == "_platform+library\n"
        assert self.stored(db_url, "_platform+library") == (["pull", "push"], False, ["acme", "library"])

    def test_without_namespace_a_platform_robot_acts_everywhere(self, db_url, tmp_path):
        argv = ["--config", CONFIG, "ensure-robot", "catalog", "--platform", "--actions", "pull,delete", "--catalog"]
        assert manage.main([*argv, "--secret-file", str(tmp_path / "catalog-robot")]) == 0
        assert self.stored(db_url, "_platform+catalog") == (["pull", "delete"], True, None)

    def test_a_bad_namespace_is_refused_naming_the_option(self, db_url, tmp_path):
        argv = ["--config", CONFIG, "ensure-robot", "library", "--platform", "--namespace", "Library"]
        with pytest.raises(SystemExit, match="InvalidRequest: namespaces .*'Library' must be lower-case"):
            manage.main([*argv, "--secret-file", str(tmp_path / "library-robot")])
