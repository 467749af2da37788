"""Caller identity on the real suite: every tenant-scoped RPC method of the catalog and the deployer,
called through the ``gateway`` broker user (which acts for people), refuses a call with no identity,
an expired one, one signed by another key, and a developer's naming another tenant; the developer's
own tenant and the platform's any tenant pass the check (what they get then is the method's answer)."""

import inspect
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from catalog.service import CatalogService
from deployer.service import DeployerService
from shared.contracts.errors import Forbidden, ImagehubError, Unauthorized
from shared.runtime.identity import identity_audience
from tests.e2e.stack import ISSUER

SERVICES = {"catalog": CatalogService, "deployer": DeployerService}


def tenant_methods():
    for service, cls in SERVICES.items():
        for name, fn in sorted(inspect.getmembers(cls, inspect.isfunction)):
            if not getattr(fn, "nameko_entrypoints", None):
                continue
            params = list(inspect.signature(fn).parameters)[1:]
            if params and params[0] == "tenant_id":
                required = [
                    p for p in params[1:] if inspect.signature(fn).parameters[p].default is inspect.Parameter.empty
                ]
                yield pytest.param(service, name, required, id=f"{service}.{name}")


def arguments(tenant, required):
    """Well-formed enough to pass the identity check; the method may then answer NotFound."""
    values = {
        "repository": f"{tenant}/app",
        "tag": "v1",
        "deployment_id": str(uuid.uuid4()),
        "spec": {},
        "changes": {},
        "policy": "never",
        "replicas": 1,
    }
    return [tenant, *(values[name] for name in required)]


def call(stack, role, service, method, args, identity=None):
    with stack.proxy(role, identity) as proxy:
        return getattr(proxy[service], method)(*args)


def outcome(stack, *args, **kwargs):
    """``"answered"``, or the class of the typed error the call ended in."""
    try:
        call(stack, *args, **kwargs)
    except ImagehubError as exc:
        return type(exc)
    return "answered"


def forged(stack, key, **claims):
    now = datetime.now(UTC)
    body = {
        "iss": ISSUER,
        "aud": identity_audience(ISSUER),
        "token_use": "identity",
        "sub": "nobody",
        "tenant": "nowhere",
        "admin": False,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    return jwt.encode(
        dict(body, **claims), key, algorithm="ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
    )


@pytest.fixture(scope="module")
def people(developers):
    """``{tenant: identity}`` of the two signed-in developers (conftest's ``developers``)."""
    return {tenant: identity for tenant, (_, identity) in developers.items()}


@pytest.fixture(scope="module")
def stack_key(stack):
    with open(f"{stack.var}/secrets/auth-token.key", "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


@pytest.mark.parametrize("service, method, required", list(tenant_methods()))
def test_every_tenant_method_checks_the_identity(stack, people, stack_key, service, method, required):
    (mine, my_identity), (theirs, _) = people.items()
    other_key = ec.generate_private_key(ec.SECP256R1())
    expired = forged(stack, stack_key, sub="dev", tenant=mine, exp=int(datetime.now(UTC).timestamp()) - 5)
    refused = {
        "none": outcome(stack, "gateway", service, method, arguments(mine, required)),
        "another tenant": outcome(stack, "gateway", service, method, arguments(theirs, required), my_identity),
        "expired": outcome(stack, "gateway", service, method, arguments(mine, required), expired),
        "another key": outcome(
            stack, "gateway", service, method, arguments(mine, required), forged(stack, other_key, tenant=mine)
        ),
        "forged admin": outcome(
            stack, "gateway", service, method, arguments(theirs, required), forged(stack, other_key, admin=True)
        ),
    }
    assert refused == {
        "none": Unauthorized,
        "another tenant": Forbidden,
        "expired": Unauthorized,
        "another key": Unauthorized,
        "forged admin": Unauthorized,
    }
    passed = {
        "own tenant": outcome(stack, "gateway", service, method, arguments(mine, required), my_identity),
        "platform": outcome(stack, "platform", service, method, arguments(theirs, required)),
    }
    assert not set(passed.values()) & {Unauthorized, Forbidden}, passed


def test_a_developer_is_no_admin_and_the_platform_user_is_no_person(stack, people):
    (tenant, identity), _ = people.items()
    assert outcome(stack, "admin", "auth", "create_tenant", ["t" + uuid.uuid4().hex[:8]], identity) is Forbidden
    assert outcome(stack, "admin", "catalog", "get_resync", [], identity) is Forbidden
    assert outcome(stack, "admin", "deployer", "list_pools", []) is Unauthorized  # no identity at all
    assert outcome(stack, "admin", "deployer", "list_pools", [], identity) == "answered"


def test_sign_in_refuses_robots_and_wrong_passwords_with_one_answer(stack, people):
    tenant = next(iter(people))
    account = stack.accounts[tenant]
    assert outcome(stack, "gateway", "auth", "sign_in", [account.name, "wrong"]) is Unauthorized
    assert outcome(stack, "gateway", "auth", "sign_in", ["nobody-at-all", "wrong"]) is Unauthorized
    robot = stack.rpc("auth", "issue_robot_credential", tenant)
    assert outcome(stack, "gateway", "auth", "sign_in", [robot["username"], robot["password"]]) is Forbidden


def test_a_session_ends_at_sign_out_and_at_a_password_change(stack, tenant):
    account = stack.accounts[tenant]

    def sign_in():
        with stack.proxy("gateway") as rpc:
            return rpc.auth.sign_in(account.name, account.password)["identity"]

    first, second = sign_in(), sign_in()
    with stack.proxy("gateway", first) as rpc:
        opened = rpc.auth.get_session()
    assert (opened["account"], opened["tenant_id"], opened["is_admin"]) == (account.name, tenant, False)
    with stack.proxy("gateway", first) as rpc:
        assert rpc.auth.sign_out()["ended"] is True
        assert rpc.auth.sign_out()["ended"] is True  # again: still ended, no error
    assert outcome(stack, "gateway", "auth", "get_session", [], first) is Unauthorized
    # The other session of the same account is still open...
    assert outcome(stack, "gateway", "auth", "get_session", [], second) == "answered"
    # ...until the password changes: every session begun before ends.
    stack.rpc("auth", "set_password", account.name, account.password + "-new")
    stack.accounts[tenant] = account = account._replace(password=account.password + "-new")
    assert outcome(stack, "gateway", "auth", "get_session", [], second) is Unauthorized
    assert outcome(stack, "gateway", "auth", "get_session", [], sign_in()) == "answered"
    # Through a broker user that acts for people, no identity is no session.
    assert outcome(stack, "gateway", "auth", "get_session", []) is Unauthorized
