"""Signing in: what ``imagehub login`` asks and stores, that later calls carry the identity, the
tenant it defaults to, and what a refused or expired identity prints."""

import json
import os
import stat
from datetime import UTC, datetime, timedelta

from imagehub import sessions
from imagehub.rpc import Refused
from shared.contracts.errors import RateLimited, Unauthorized
from tests.unit.cli.conftest import page

URI = "amqp://imagehub-admin:s3cret@127.0.0.1:5672/imagehub"


def answer(tenant="t1", admin=False, expires_in=3600):
    expires_at = (datetime.now(UTC) + timedelta(seconds=expires_in)).isoformat()
    return {
        "identity": "eyJ.identity.sig",
        "account": "dev-t1",
        "tenant_id": tenant,
        "is_admin": admin,
        "expires_in": expires_in,
        "expires_at": expires_at,
    }


def test_login_signs_in_without_an_identity_and_stores_the_answer(run, rpc, session_file):
    rpc.answer("sign_in", answer())
    result = run("login", "--user", "dev-t1", "--password-stdin", "--amqp-uri", URI, input="pa ss\n")
    assert result.exit_code == 0, result.output
    assert rpc.calls == [("auth", "sign_in", ("dev-t1", "pa ss"), {})]
    assert rpc.identity is None  # sign-in itself carries no identity
    assert result.output.startswith("signed in as dev-t1 (tenant t1), until ")
    stored = json.loads(session_file.read_text())
    assert list(stored) == ["imagehub-admin@127.0.0.1:5672/imagehub"]
    assert stored["imagehub-admin@127.0.0.1:5672/imagehub"]["identity"] == "eyJ.identity.sig"
    assert "s3cret" not in session_file.read_text()  # never the broker password
    assert stat.S_IMODE(os.stat(session_file).st_mode) == 0o600


def test_later_calls_carry_the_identity_and_act_in_the_developers_tenant(run, rpc):
    sessions.save(URI, answer())
    rpc.answer("list_repositories", page([]))
    result = run("repos", "--amqp-uri", URI)
    assert result.exit_code == 0, result.output
    assert rpc.identity == "eyJ.identity.sig"
    assert rpc.calls[0][:3] == ("catalog", "list_repositories", ("t1",))


def test_an_admin_names_the_tenant_and_another_broker_gets_no_identity(run, rpc):
    sessions.save(URI, answer(tenant=None, admin=True))
    rpc.answer("list_repositories", page([]))
    assert run("repos", "--amqp-uri", URI, "--tenant", "t9").exit_code == 0
    assert rpc.calls[0][:3] == ("catalog", "list_repositories", ("t9",))
    other = run("repos", "--amqp-uri", "amqp://imagehub-admin:x@127.0.0.1:5672/other", "--tenant", "t9")
    assert other.exit_code == 0 and rpc.identity is None


def test_an_expired_identity_is_not_sent(run, rpc):
    sessions.save(URI, answer(expires_in=-5))
    rpc.answer("list_pools", {"items": [], "total": 0, "page": 1, "page_size": 50})
    assert run("pools", "--amqp-uri", URI).exit_code == 0
    assert rpc.identity is None
    assert run("whoami", "--amqp-uri", URI).exit_code == 1


def test_whoami_and_logout(run, rpc):
    sessions.save(URI, answer(tenant=None, admin=True))
    rpc.answer("sign_out", {"account": "dev-t1", "session": "s1", "ended": True})
    result = run("whoami", "--amqp-uri", URI)
    assert result.exit_code == 0 and result.output.startswith("dev-t1 (platform admin), until ")
    assert run("logout", "--amqp-uri", URI).output == "signed out\n"
    assert rpc.calls == [("auth", "sign_out", (), {})] and rpc.identity == "eyJ.identity.sig"
    assert run("logout", "--amqp-uri", URI).output == "not signed in\n"
    assert len(rpc.calls) == 1  # nothing to end the second time
    assert sessions.load(URI) is None


def test_logout_forgets_the_identity_even_when_the_platform_does_not_answer(run, rpc):
    sessions.save(URI, answer())
    rpc.answer("sign_out", Unauthorized("this session has been signed out"))
    result = run("logout", "--amqp-uri", URI)
    assert result.exit_code == 0
    assert "signed out" in result.output and "did not end the session" in result.output
    assert sessions.load(URI) is None


def test_a_refused_sign_in_stores_nothing(run, rpc, session_file):
    rpc.answer("sign_in", Unauthorized("incorrect username or password"))
    result = run("login", "--user", "dev-t1", "--password-stdin", "--amqp-uri", URI, input="wrong\n")
    assert result.exit_code == 1
    assert result.stderr == "error: incorrect username or password\nhint: sign in with `imagehub login`\n"
    assert not session_file.exists()
    rpc.answer("sign_in", RateLimited("too many failed logins for this account: try again in 4 s", 4))
    result = run("login", "--user", "dev-t1", "--password-stdin", "--amqp-uri", URI, input="wrong\n")
    assert result.stderr == "error: too many failed logins for this account: try again in 4 s\n"


def test_an_unauthorized_call_says_to_sign_in_and_a_refused_one_names_the_matrix(run, rpc):
    rpc.answer(
        "list_pools", Unauthorized("a call by admin needs the identity of the person it acts for: sign in first")
    )
    result = run("pools", "--amqp-uri", URI)
    assert result.exit_code == 1
    assert result.stderr.endswith("hint: sign in with `imagehub login`\n")
    rpc.answer("list_pools", Refused("the broker refused broker user 'imagehub-platform' deployer.list_pools"))
    result = run("pools", "--amqp-uri", URI)
    assert result.stderr.endswith("hint: each broker user may call only what deploy/broker/access.yml gives it\n")


def test_an_empty_password_is_refused_before_any_call(run, rpc):
    result = run("login", "--user", "dev-t1", "--password-stdin", "--amqp-uri", URI, input="\n")
    assert (result.exit_code, result.stderr, rpc.calls) == (1, "error: no password given\n", [])


def test_audit_lists_the_developers_tenant_of_the_chosen_service(run, rpc):
    sessions.save(URI, answer())
    record = {
        "id": 7,
        "at": "2026-12-04T05:00:00+00:00",
        "action": "deployer.scale_deployment",
        "actor": "dev-t1@t1",
        "broker_user": "imagehub-admin",
        "on_behalf_of": "dev-t1",
        "tenant_id": "t1",
        "target": "3f2a:2",
        "outcome": "ok",
        "detail": None,
    }
    rpc.answer("list_audit", page([record]))
    result = run("audit", "--amqp-uri", URI)
    assert result.exit_code == 0, result.output
    assert rpc.calls == [
        ("deployer", "list_audit", ("t1",), {"action": None, "actor": None, "page": 1, "page_size": 50})
    ]
    assert "deployer.scale_deployment" in result.output and "dev-t1@t1" in result.output
    run("audit", "--amqp-uri", URI, "--service", "auth", "--all-tenants", "--action", "auth.sign_in")
    assert rpc.calls[-1] == (
        "auth",
        "list_audit",
        (None,),
        {"action": "auth.sign_in", "actor": None, "page": 1, "page_size": 50},
    )
