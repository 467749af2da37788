"""shared.runtime.identity: who a call is from, as the callee decides it from the context data."""

import types
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from shared.contracts.errors import Forbidden, Unauthorized
from shared.runtime.identity import (
    BROKER_USER_KEY,
    IDENTITY_KEY,
    CallerContext,
    IdentityRpc,
    IdentityVerifier,
    broker_user,
    identify,
    identity_audience,
    rpc_options,
)

ISSUER = "imagehub-auth"
KEY = ec.generate_private_key(ec.SECP256R1())
VERIFIER = IdentityVerifier(KEY.public_key(), ISSUER)


def token(key=KEY, ttl=300, **claims):
    """Signed now (not at collection: the suite may run this test minutes after importing it)."""
    now = datetime.now(UTC)
    body = {
        "iss": ISSUER,
        "aud": identity_audience(ISSUER),
        "token_use": "identity",
        "sub": "dev-acme",
        "tenant": "acme",
        "admin": False,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl)).timestamp()),
    }
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not ...}, key, algorithm="ES256")


def caller(user="imagehub-gateway", identity=None):
    data = {BROKER_USER_KEY: user} if user else {}
    if identity is not None:
        data[IDENTITY_KEY] = identity
    return CallerContext(data, VERIFIER)


def test_a_service_or_platform_user_is_a_platform_identity_for_any_tenant():
    for user in ("imagehub-deployer", "nameko_test_1-catalog", "imagehub-platform", "imagehub-operator"):
        identity = caller(user).for_tenant("anyone")
        assert (identity.kind, identity.broker_user) == ("platform", user)


def test_a_developer_acts_in_its_own_tenant_only():
    assert caller(identity=token()).for_tenant("acme").name == "dev-acme"
    with pytest.raises(Forbidden, match="dev-acme@acme may not act in tenant 'other'"):
        caller(identity=token()).for_tenant("other")
    with pytest.raises(Forbidden):
        caller(identity=token()).for_tenant(None)


def test_a_platform_admin_acts_anywhere_and_passes_the_admin_check():
    admin = caller(identity=token(sub="root", tenant=None, admin=True))
    assert admin.for_tenant("other").admin
    assert admin.admin().name == "root"
    with pytest.raises(Forbidden, match="not a platform admin"):
        caller(identity=token()).admin()
    with pytest.raises(Forbidden, match="not a platform admin"):
        caller("imagehub-deployer").admin()  # a service is no person


def test_a_developer_identity_overrides_the_platform_rights_of_the_forwarding_service():
    """The deployer acting on a developer's request reads the catalogue with the developer's rights."""
    with pytest.raises(Forbidden):
        caller("imagehub-deployer", token()).for_tenant("other")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: token(ttl=-1), "expired"),
        (lambda: token(key=ec.generate_private_key(ec.SECP256R1())), "not one the auth service signed"),
        (lambda: token(aud=f"{ISSUER}#refresh"), "not one the auth service signed"),
        (lambda: token(iss="someone-else"), "not one the auth service signed"),
        (lambda: token(token_use="refresh"), "not an identity"),
        (lambda: token(sub=""), "names no account"),
        (lambda: token(exp=...), "not one the auth service signed"),
        (lambda: "not-a-jwt", "not one the auth service signed"),
        (lambda: 42, "not a token"),
        (lambda: "", "not a token"),
    ],
    ids=[
        "expired",
        "another key",
        "another audience",
        "another issuer",
        "not an identity",
        "no account",
        "no expiry",
        "not a JWT",
        "a number",
        "empty",
    ],
)
def test_a_forged_expired_or_malformed_identity_is_unauthorized(make, message):
    with pytest.raises(Unauthorized, match=message):
        caller(identity=make()).for_tenant("acme")


def test_unsigned_identity_is_refused():
    unsigned = jwt.encode({"sub": "root", "admin": True, "token_use": "identity"}, key=None, algorithm="none")
    with pytest.raises(Unauthorized):
        _ = caller(identity=unsigned).identity


def test_a_person_acting_role_needs_an_identity_and_an_unknown_user_is_refused():
    for user in ("imagehub-gateway", "imagehub-admin"):
        with pytest.raises(Unauthorized, match="needs the identity of the person"):
            _ = caller(user).identity
    with pytest.raises(Unauthorized, match="no caller this service knows"):
        _ = caller("guest").identity
    with pytest.raises(Unauthorized, match="carries no broker user"):
        _ = caller(None).identity


def test_without_a_certificate_no_developer_identity_is_accepted():
    with pytest.raises(Unauthorized, match="AUTH_CERT_FILE"):
        identify({BROKER_USER_KEY: "imagehub-gateway", IDENTITY_KEY: token()}, None)
    assert identify({BROKER_USER_KEY: "imagehub-platform"}, None).is_platform


def test_the_entrypoint_takes_the_broker_user_from_the_message_not_from_headers():
    entrypoint = IdentityRpc()
    forged = {"nameko.imagehub_broker_user": "imagehub-platform", "imagehub_broker_user": "imagehub-auth"}
    message = types.SimpleNamespace(headers=forged, properties={"user_id": "imagehub-gateway"})
    assert entrypoint.unpack_message_headers(message)[BROKER_USER_KEY] == "imagehub-gateway"
    message = types.SimpleNamespace(headers=forged, properties={})
    assert BROKER_USER_KEY not in entrypoint.unpack_message_headers(message)


def test_rpc_options_name_the_uris_user():
    assert broker_user("amqp://imagehub-admin:p%40ss@127.0.0.1:5672/imagehub") == "imagehub-admin"
    assert rpc_options("amqp://a%2Db:x@h/") == {"user_id": "a-b"}


def test_a_token_naming_another_algorithm_than_the_keys_is_refused_not_misread():
    """The auth key is EC here; a token signed with an RSA key names RS256, and HS256 with the
    public key as a shared secret is the classic forgery: both are Unauthorized, never a crash."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs256 = jwt.encode({"sub": "x", "iss": ISSUER, "aud": identity_audience(ISSUER)}, rsa_key, algorithm="RS256")
    with pytest.raises(Unauthorized):
        _ = caller(identity=rs256).identity
    rsa_verifier = IdentityVerifier(rsa_key.public_key(), ISSUER)
    with pytest.raises(Unauthorized):
        rsa_verifier.read(token())  # an ES256 token against an RSA key


def test_events_do_not_carry_the_callers_identity_on():
    from shared.runtime.identity import EventDispatcherWithoutIdentity

    worker_ctx = types.SimpleNamespace(
        context_data={IDENTITY_KEY: "eyJ.a.b", BROKER_USER_KEY: "imagehub-gateway", "call_id_stack": ["catalog.x.1"]}
    )
    headers = EventDispatcherWithoutIdentity().get_message_headers(worker_ctx)
    assert headers == {"nameko.call_id_stack": ["catalog.x.1"]}


def test_a_signature_is_checked_once_per_token_and_the_expiry_at_every_read(monkeypatch):
    verifier = IdentityVerifier(KEY.public_key(), ISSUER)
    decoded = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **kw: decoded.append(a[0]) or real_decode(*a, **kw))
    signed = token(ttl=60)
    first, second = verifier.read(signed), verifier.read(signed)
    assert (first["sub"], second["sub"], decoded) == ("dev-acme", "dev-acme", [signed])
    # The cached claims still expire: the time checks run at every read.
    with pytest.raises(Unauthorized, match="expired"):
        verifier.read(signed, now=datetime.now(UTC) + timedelta(seconds=120))
    assert decoded == [signed]
    # A forged token is never cached as verified.
    forged = token(key=ec.generate_private_key(ec.SECP256R1()))
    for _ in range(2):
        with pytest.raises(Unauthorized, match="not one the auth service signed"):
            verifier.read(forged)
    assert decoded == [signed, forged, forged]


def test_the_cache_of_verified_signatures_is_bounded(monkeypatch):
    verifier = IdentityVerifier(KEY.public_key(), ISSUER)
    monkeypatch.setattr(IdentityVerifier, "VERIFIED_CACHE", 3)
    tokens = [token(sub=f"dev-{i}") for i in range(5)]
    assert [verifier.read(t)["sub"] for t in tokens] == [f"dev-{i}" for i in range(5)]
    assert list(verifier.verified) == tokens[2:]
