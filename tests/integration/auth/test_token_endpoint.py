"""The token endpoint over plain HTTP, and what the real registry makes of its tokens: the token
format it accepts, one repository's token not opening another, _catalog and deletes, the OAuth2
form, failed logins and their slow-down, disabled accounts and tenants."""

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from auth.keys import generate
from auth.tokens import SigningKey, TokenIssuer, libtrust_key_id
from tests.integration.auth.conftest import FIRST_DELAY, FREE_FAILURES, ISSUER, PASSWORDS, SERVICE
from tests.integration.auth.helpers import TokenAuthRegistry
from tests.support import push_image
from tests.unit.auth.certificates import certificate, pem

ALICE = ("alice", PASSWORDS["alice"])
ROOT_ADMIN = ("root", PASSWORDS["root"])


def claims_of(token):
    return jwt.decode(token, options={"verify_signature": False})


def header_of(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def bearer_session(token):
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


@pytest.fixture
def pushed(tokens, accounts, name):
    """``acme/<name>-a`` and ``acme/<name>-b``, pushed over HTTP with alice's tokens."""
    digests = {}
    for suffix in ("a", "b"):
        repository = f"acme/{name}-{suffix}"
        token = tokens.token(f"repository:{repository}:pull,push", auth=ALICE)
        digests[repository] = push_image(
            tokens.registry_url, repository, "v1", content=suffix.encode(), session=bearer_session(token)
        )["digest"]
    return digests


class TestTokenFormat:
    """What Distribution 2.8 accepts: the signing key found through ``x5c`` or ``kid``."""

    def resign(self, token, key_file, keep_headers):
        claims = claims_of(token)
        headers = {k: v for k, v in header_of(token).items() if k in keep_headers}
        with open(key_file, "rb") as f:
            return jwt.encode(claims, f.read(), algorithm="RS256", headers=headers)

    def test_our_tokens_are_accepted(self, tokens, pushed):
        repository = next(iter(pushed))
        token = tokens.token(f"repository:{repository}:pull", auth=ALICE)
        assert set(header_of(token)) == {"alg", "typ", "kid", "x5c"}
        assert tokens.registry("GET", f"{repository}/tags/list", token).json() == {"name": repository, "tags": ["v1"]}

    @pytest.mark.parametrize("keep", [{"x5c"}, {"kid"}], ids=["x5c-only", "kid-only"])
    def test_either_header_alone_finds_the_key(self, tokens, pushed, key_files, keep):
        repository = next(iter(pushed))
        token = self.resign(tokens.token(f"repository:{repository}:pull", auth=ALICE), key_files["AUTH_KEY_FILE"], keep)
        assert tokens.registry("GET", f"{repository}/tags/list", token).status_code == 200

    def test_without_either_the_token_is_refused(self, tokens, pushed, key_files):
        repository = next(iter(pushed))
        token = self.resign(
            tokens.token(f"repository:{repository}:pull", auth=ALICE), key_files["AUTH_KEY_FILE"], set()
        )
        assert tokens.registry("GET", f"{repository}/tags/list", token).status_code == 401

    def test_a_token_signed_by_another_key_is_refused_whatever_its_header_says(self, tokens, pushed):
        repository = next(iter(pushed))
        genuine = tokens.token(f"repository:{repository}:pull", auth=ALICE)
        other_key, _ = generate(days=1)
        forged = jwt.encode(
            claims_of(genuine),
            other_key,
            algorithm="RS256",
            headers={k: v for k, v in header_of(genuine).items() if k in ("kid", "x5c")},
        )
        assert tokens.registry("GET", f"{repository}/tags/list", forged).status_code == 401

    @pytest.mark.parametrize(
        "change", [{"aud": "another-registry"}, {"iss": "someone-else"}, {"exp": int(time.time()) - 3600}]
    )
    def test_a_token_for_another_audience_issuer_or_time_is_refused(self, tokens, pushed, key_files, change):
        repository = next(iter(pushed))
        genuine = tokens.token(f"repository:{repository}:pull", auth=ALICE)
        with open(key_files["AUTH_KEY_FILE"], "rb") as f:
            token = jwt.encode(
                dict(claims_of(genuine), **change),
                f.read(),
                algorithm="RS256",
                headers={k: v for k, v in header_of(genuine).items() if k in ("kid", "x5c")},
            )
        assert tokens.registry("GET", f"{repository}/tags/list", token).status_code == 401

    def test_an_ec_key_signs_es256_tokens_a_registry_trusting_it_accepts(self, tokens, sink, tmp_path):
        now = datetime.now(UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        (tmp_path / "ec.key").write_bytes(pem(key))
        (tmp_path / "ec.crt").write_bytes(certificate(key, now - timedelta(minutes=1), now + timedelta(days=1)))
        issuer = TokenIssuer(
            SigningKey.from_files(str(tmp_path / "ec.key"), str(tmp_path / "ec.crt")), ISSUER, SERVICE, 300, 0
        )
        registry = TokenAuthRegistry(
            sink.url,
            sink.token,
            realm=tokens.realm,
            service=SERVICE,
            issuer=ISSUER,
            cert_file=str(tmp_path / "ec.crt"),
            workdir=str(tmp_path / "registry"),
        )
        try:
            registry.start()
            token, _ = issuer.access_token("alice", [], now)
            assert header_of(token)["alg"] == "ES256"
            assert (
                requests.get(
                    f"{registry.url}/v2/", headers={"Authorization": f"Bearer {token}"}, timeout=10
                ).status_code
                == 200
            )
            # ...and a token of the RSA key it does not trust is refused there.
            rsa_token = tokens.token(auth=ALICE)
            assert (
                requests.get(
                    f"{registry.url}/v2/", headers={"Authorization": f"Bearer {rsa_token}"}, timeout=10
                ).status_code
                == 401
            )
        finally:
            registry.cleanup()


class TestScopes:
    def test_a_token_for_one_repository_does_not_open_another(self, tokens, pushed):
        first, second = pushed
        token = tokens.token(f"repository:{first}:pull", auth=ALICE)
        assert tokens.registry("GET", f"{first}/manifests/v1", token).status_code == 200
        refused = tokens.registry("GET", f"{second}/manifests/v1", token)
        assert refused.status_code == 401
        assert f'scope="repository:{second}:pull"' in refused.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]

    def test_a_pull_token_does_not_push(self, tokens, pushed):
        repository = next(iter(pushed))
        token = tokens.token(f"repository:{repository}:pull", auth=ALICE)
        with pytest.raises(requests.HTTPError, match="401"):
            push_image(tokens.registry_url, repository, "v2", content=b"other", session=bearer_session(token))

    def test_the_token_grants_only_the_allowed_part_of_what_was_asked(self, tokens, accounts):
        resp = tokens.get(
            "repository:acme/x:pull,push,delete",
            "repository:globex/x:pull",
            "repository:library/x:pull,push",
            "registry:catalog:*",
            auth=ALICE,
        )
        assert claims_of(resp.json()["token"])["access"] == [
            {"type": "repository", "name": "acme/x", "actions": ["pull", "push"]},
            {"type": "repository", "name": "library/x", "actions": ["pull"]},
        ]


class TestCatalogAndDeletes:
    def catalog(self, tokens, auth):
        token = tokens.token("registry:catalog:*", auth=auth)
        return tokens.registry("GET", "_catalog", token)

    def test_catalog_listing_is_for_admins_and_the_catalogue_robot(self, tokens, pushed, accounts):
        for auth in (ROOT_ADMIN, ("_platform+catalog", accounts["_platform+catalog"])):
            resp = self.catalog(tokens, auth)
            assert resp.status_code == 200
            assert set(pushed) <= set(resp.json()["repositories"])
        for auth in (ALICE, ("acme+deployer", accounts["acme+deployer"])):
            assert self.catalog(tokens, auth).status_code == 401

    def test_deleting_needs_delete_rights_in_the_namespace(self, tokens, pushed, accounts):
        (first, first_digest), (second, second_digest) = pushed.items()
        alice = tokens.token(f"repository:{first}:delete", auth=ALICE)
        assert tokens.registry("DELETE", f"{first}/manifests/{first_digest}", alice).status_code == 401
        dora = tokens.token(f"repository:{first}:delete", auth=("dora", PASSWORDS["dora"]))
        assert tokens.registry("DELETE", f"{first}/manifests/{first_digest}", dora).status_code == 202
        robot = tokens.token(f"repository:{second}:delete", auth=("_platform+catalog", accounts["_platform+catalog"]))
        assert tokens.registry("DELETE", f"{second}/manifests/{second_digest}", robot).status_code == 202
        admin = tokens.token(f"repository:{first}:pull repository:{second}:pull", auth=ROOT_ADMIN)
        for repository in pushed:
            assert tokens.registry("GET", f"{repository}/tags/list", admin).json()["tags"] is None


class TestRestrictedPlatformRobot:
    """The library robot: a platform robot that pushes to ``library`` and does nothing else."""

    @pytest.fixture
    def library_robot(self, rpc, accounts):
        made = rpc.auth.create_robot(
            None, f"library-{uuid.uuid4().hex[:8]}", actions=["pull", "push"], namespaces=["library"]
        )
        return made["username"], made["secret"]

    def test_its_token_grants_its_actions_in_library_alone(self, tokens, library_robot):
        resp = tokens.get(
            "repository:library/x:pull,push,delete",
            "repository:acme/x:pull,push",
            "repository:globex/x:pull",
            "registry:catalog:*",
            auth=library_robot,
        )
        assert resp.status_code == 200
        claims = claims_of(resp.json()["token"])
        assert claims["sub"] == library_robot[0]
        assert claims["access"] == [{"type": "repository", "name": "library/x", "actions": ["pull", "push"]}]

    def test_it_pushes_to_library_and_the_registry_refuses_it_a_tenants_namespace(
        self, tokens, library_robot, pushed, name
    ):
        repository = f"library/{name}"
        token = tokens.token(f"repository:{repository}:pull,push", auth=library_robot)
        push_image(tokens.registry_url, repository, "v1", content=b"mirrored", session=bearer_session(token))
        admin = tokens.token(f"repository:{repository}:pull", auth=ROOT_ADMIN)
        assert tokens.registry("GET", f"{repository}/tags/list", admin).json()["tags"] == ["v1"]
        tenant_repository = next(iter(pushed))
        token = tokens.token(f"repository:{tenant_repository}:pull,push", auth=library_robot)
        assert tokens.registry("GET", f"{tenant_repository}/manifests/v1", token).status_code == 401
        with pytest.raises(requests.HTTPError, match="401"):
            push_image(tokens.registry_url, tenant_repository, "v2", content=b"intruder", session=bearer_session(token))
        assert (
            tokens.registry("GET", "_catalog", tokens.token("registry:catalog:*", auth=library_robot)).status_code
            == 401
        )

    def test_a_refreshed_token_is_restricted_the_same(self, tokens, library_robot):
        username, secret = library_robot
        first = tokens.post(
            grant_type="password",
            username=username,
            password=secret,
            access_type="offline",
            scope="repository:library/x:push repository:acme/x:pull",
        )
        assert first.status_code == 200, first.text
        again = tokens.post(
            grant_type="refresh_token",
            refresh_token=first.json()["refresh_token"],
            scope="repository:library/x:push repository:acme/x:pull",
        )
        assert again.status_code == 200, again.text
        for resp in (first, again):
            assert claims_of(resp.json()["access_token"])["access"] == [
                {"type": "repository", "name": "library/x", "actions": ["push"]}
            ]


class TestTokenRequests:
    def test_anonymous_gets_a_token_that_grants_nothing(self, tokens, accounts):
        resp = tokens.get("repository:library/busybox:pull", "repository:acme/x:pull")
        assert resp.status_code == 200
        claims = claims_of(resp.json()["token"])
        assert (claims["sub"], claims["access"], claims["aud"], claims["iss"]) == ("", [], SERVICE, ISSUER)

    def test_a_malformed_scope_is_400_saying_why(self, tokens, accounts):
        resp = tokens.get("repository:acme/x:pull", "repository:acme//x:pull", auth=ALICE)
        assert resp.status_code == 400
        assert resp.json()["errors"][0]["code"] == "INVALID_REQUEST"
        assert "resource name 'acme//x' must be" in resp.json()["details"]

    def test_another_service_is_400(self, tokens, accounts):
        resp = tokens.get("repository:acme/x:pull", auth=ALICE, service="someone-elses-registry")
        assert (resp.status_code, resp.json()["error"]) == (400, "invalid_request")

    def test_only_basic_credentials_are_taken(self, tokens, accounts):
        resp = requests.get(tokens.realm, headers={"Authorization": "Bearer whatever"}, timeout=10)
        assert resp.status_code == 401

    def test_a_wrong_password_is_401_with_a_basic_challenge(self, tokens, accounts):
        resp = tokens.get("repository:acme/x:pull", auth=("alice", "wrong-password"))
        assert resp.status_code == 401
        assert resp.headers["WWW-Authenticate"] == 'Basic realm="imagehub"'
        assert resp.json()["details"] == "incorrect username or password"

    def test_offline_token_adds_a_refresh_token(self, tokens, accounts):
        plain = tokens.get(auth=ALICE).json()
        offline = tokens.get(auth=ALICE, offline_token="true", client_id="docker").json()
        assert "refresh_token" not in plain
        assert claims_of(offline["refresh_token"])["aud"] == f"{ISSUER}#refresh"

    def test_health(self, auth_service, key_files):
        body = requests.get(f"{auth_service}/health", timeout=5).json()
        assert (body["status"], body["database"]["reachable"], body["algorithm"]) == ("ok", True, "RS256")
        with open(key_files["AUTH_CERT_FILE"], "rb") as f:
            assert body["kid"] == libtrust_key_id(x509.load_pem_x509_certificate(f.read()).public_key())


class TestOAuthForm:
    def test_password_then_refresh_token(self, tokens, accounts):
        first = tokens.post(
            grant_type="password",
            username="alice",
            password=PASSWORDS["alice"],
            access_type="offline",
            scope="repository:acme/x:pull,push repository:globex/x:pull",
        )
        assert first.status_code == 200, first.text
        assert first.json()["scope"] == "repository:acme/x:pull,push"
        again = tokens.post(
            grant_type="refresh_token", refresh_token=first.json()["refresh_token"], scope="repository:acme/y:pull"
        )
        assert again.status_code == 200, again.text
        assert "refresh_token" not in again.json()
        assert claims_of(again.json()["access_token"])["sub"] == "alice"
        assert again.json()["scope"] == "repository:acme/y:pull"

    def test_a_refresh_token_dies_with_a_password_change(self, tokens, rpc, accounts):
        rpc.auth.create_account("frank", "frank-password", tenant_id="acme")
        refresh = tokens.post(
            grant_type="password", username="frank", password="frank-password", access_type="offline"
        ).json()["refresh_token"]
        assert tokens.post(grant_type="refresh_token", refresh_token=refresh).status_code == 200
        rpc.auth.set_password("frank", "frank-new-password")
        resp = tokens.post(grant_type="refresh_token", refresh_token=refresh)
        assert (resp.status_code, resp.json()["error"]) == (401, "invalid_grant")
        assert "log in again" in resp.json()["details"]

    @pytest.mark.parametrize(
        "form, status, error",
        [
            ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
            ({}, 400, "invalid_request"),
            ({"grant_type": "password", "username": "alice"}, 400, "invalid_request"),
            ({"grant_type": "password", "username": "alice", "password": "nope"}, 401, "invalid_grant"),
            ({"grant_type": "refresh_token", "refresh_token": "nope"}, 401, "invalid_grant"),
        ],
    )
    def test_refusals_carry_oauth_error_codes(self, tokens, accounts, form, status, error):
        resp = tokens.post(**form)
        assert (resp.status_code, resp.json()["error"]) == (status, error)


class TestFailedLogins:
    @pytest.mark.parametrize("real", [True, False], ids=["existing-account", "unknown-account"])
    def test_are_slowed_down_per_name_alike_for_real_and_unknown_accounts(self, tokens, rpc, accounts, real):
        username = f"gina-{uuid.uuid4().hex[:6]}"
        if real:
            rpc.auth.create_account(username, "gina-password", tenant_id="acme")
        for _ in range(FREE_FAILURES + 1):
            last_failure_sent = time.monotonic()
            resp = tokens.get(auth=(username, "wrong-password"))
            assert (resp.status_code, resp.json()["details"]) == (401, "incorrect username or password")
        blocked = tokens.get(auth=(username, "gina-password"))
        since_last_failure = time.monotonic() - last_failure_sent
        assert blocked.status_code == 429
        retry_after = int(blocked.headers["Retry-After"])
        # The block is FIRST_DELAY seconds from the last failure and Retry-After rounds up what is
        # left of it: exactly FIRST_DELAY when the blocked attempt came within a second, and never
        # less than what the time since that failure leaves (a loaded machine may take longer).
        assert FIRST_DELAY - since_last_failure <= retry_after <= FIRST_DELAY
        assert f"try again in {retry_after} s" in blocked.json()["details"]
        assert tokens.get(auth=ALICE).status_code == 200  # other names are not slowed down
        time.sleep(retry_after + 0.2)
        assert tokens.get(auth=(username, "gina-password")).status_code == (200 if real else 401)


class TestDisabling:
    def test_a_disabled_tenant_locks_out_its_accounts_robots_and_refresh_tokens(self, tokens, rpc, accounts):
        rpc.auth.create_tenant("initech")
        rpc.auth.create_account("ivan", "ivan-password", tenant_id="initech")
        robot = rpc.auth.create_robot("initech", "ci", actions=["pull", "push"])
        refresh = tokens.get(auth=("ivan", "ivan-password"), offline_token="true").json()["refresh_token"]
        rpc.auth.disable_tenant("initech")
        assert tokens.get(auth=("ivan", "ivan-password")).status_code == 401
        assert tokens.get(auth=(robot["username"], robot["secret"])).status_code == 401
        assert tokens.post(grant_type="refresh_token", refresh_token=refresh).status_code == 401
        rpc.auth.enable_tenant("initech")
        assert tokens.get(auth=("ivan", "ivan-password")).status_code == 200
        assert tokens.post(grant_type="refresh_token", refresh_token=refresh).status_code == 200
