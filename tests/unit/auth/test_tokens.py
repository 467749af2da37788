"""Token format: what the registry verifies (header, claims, signature) and our own tokens."""

import base64
import json
from datetime import timedelta

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth.tokens import REFRESH, ROBOT, BadToken, KeyProblem, SigningKey, TokenIssuer, libtrust_key_id, looks_like_jwt
from tests.unit.auth.certificates import certificate, pem
from tests.unit.auth.conftest import ISSUER, SERVICE, T0, at

# The public half of a fixed P-256 key and its libtrust key ID (a regression value: the real
# check that the registry accepts our kid is tests/integration/auth, against docker-registry).
FIXED_PUBLIC_KEY = b"""-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE3Qaa5brMc/Yf2VTckNOKTt+X9l1f
oVOc0cXBAFNUmlyN+GVY5RCMwtAG5Fil+7lLYRZz8EhaRHsoxe4gg+GQrA==
-----END PUBLIC KEY-----
"""
FIXED_KID = "W2KJ:IQ4Y:KY4X:R73K:BF5E:OV5T:M4EE:IR3Z:R54X:GVAC:V4XP:DGDH"


def header_of(token):
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class TestRegistryToken:
    def test_claims_are_what_distribution_checks(self, issuer):
        access = [{"type": "repository", "name": "acme/app", "actions": ["pull", "push"]}]
        token, claims = issuer.access_token("alice", access, T0)
        decoded = jwt.decode(
            token,
            issuer.key.public_key,
            algorithms=["RS256"],
            audience=SERVICE,
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )
        assert decoded == claims
        assert {k: v for k, v in decoded.items() if k != "jti"} == {
            "iss": ISSUER,
            "sub": "alice",
            "aud": SERVICE,
            "exp": int(T0.timestamp()) + 300,
            "nbf": int(T0.timestamp()),
            "iat": int(T0.timestamp()),
            "access": access,
        }
        assert isinstance(decoded["aud"], str)  # 2.8 unmarshals aud into a string: a list is refused
        assert len(decoded["jti"]) == 32

    def test_every_token_has_its_own_id(self, issuer):
        assert issuer.access_token("alice", [], T0)[1]["jti"] != issuer.access_token("alice", [], T0)[1]["jti"]

    def test_anonymous_has_an_empty_subject_and_no_access(self, issuer):
        _, claims = issuer.access_token(None, [], T0)
        assert (claims["sub"], claims["access"]) == ("", [])

    def test_header_carries_the_certificate_chain_and_the_libtrust_key_id(self, issuer, key_pem):
        token, _ = issuer.access_token("alice", [], T0)
        header = header_of(token)
        cert = x509.load_pem_x509_certificate(key_pem[1])
        assert header["alg"] == "RS256"
        assert header["typ"] == "JWT"
        assert header["x5c"] == [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        assert header["kid"] == libtrust_key_id(cert.public_key())

    def test_libtrust_key_id_is_twelve_groups_of_base32(self):
        assert libtrust_key_id(serialization.load_pem_public_key(FIXED_PUBLIC_KEY)) == FIXED_KID

    def test_an_ec_key_signs_es256(self):
        key = ec.generate_private_key(ec.SECP256R1())
        signing_key = SigningKey.from_pem(pem(key), certificate(key), now=T0)
        token, _ = TokenIssuer(signing_key, ISSUER, SERVICE, 300, 0).access_token("alice", [], T0)
        assert header_of(token)["alg"] == "ES256"
        assert (
            jwt.decode(
                token,
                key.public_key(),
                algorithms=["ES256"],
                audience=SERVICE,
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )["sub"]
            == "alice"
        )

    def test_a_chain_is_sent_leaf_first(self):
        ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        chain = certificate(leaf_key, signer=ca_key) + certificate(ca_key)
        signing_key = SigningKey.from_pem(pem(leaf_key), chain, now=T0)
        assert len(signing_key.headers["x5c"]) == 2
        assert signing_key.kid == libtrust_key_id(leaf_key.public_key())


class TestSigningKeyProblems:
    def test_a_certificate_of_another_key_is_refused(self, key_pem):
        other = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(KeyProblem, match="not the signing key's"):
            SigningKey.from_pem(key_pem[0], certificate(other), now=T0)

    def test_an_expired_certificate_is_refused(self):
        key = ec.generate_private_key(ec.SECP256R1())
        with pytest.raises(KeyProblem, match="not now: the registry would refuse every token"):
            SigningKey.from_pem(pem(key), certificate(key, not_after=T0 - timedelta(seconds=1)), now=T0)

    def test_a_short_rsa_key_is_refused(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        with pytest.raises(KeyProblem, match="at least 2048 bits, this one has 1024"):
            SigningKey.from_pem(pem(key), certificate(key), now=T0)

    def test_an_unsupported_curve_is_refused(self):
        key = ec.generate_private_key(ec.SECP256K1())
        with pytest.raises(KeyProblem, match="unsupported signing key type"):
            SigningKey.from_pem(pem(key), certificate(key), now=T0)

    def test_an_encrypted_key_is_refused(self):
        key = ec.generate_private_key(ec.SECP256R1())
        encrypted = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
        with pytest.raises(KeyProblem, match="not an unencrypted PEM private key"):
            SigningKey.from_pem(encrypted, certificate(key), now=T0)

    def test_garbage_is_refused(self, key_pem):
        with pytest.raises(KeyProblem, match="not an unencrypted PEM private key"):
            SigningKey.from_pem(b"nope", key_pem[1], now=T0)
        with pytest.raises(KeyProblem, match="holds no PEM certificate"):
            SigningKey.from_pem(key_pem[0], b"nope", now=T0)

    def test_missing_files_are_refused(self, tmp_path):
        with pytest.raises(KeyProblem, match="cannot read the signing key or certificate"):
            SigningKey.from_files(str(tmp_path / "no.key"), str(tmp_path / "no.crt"))


class TestOwnTokens:
    def test_a_refresh_token_reads_back_until_it_expires(self, issuer):
        token = issuer.refresh_token("alice", 3, T0)
        claims = issuer.read(token, REFRESH, at(3599))
        assert (claims["sub"], claims["gen"], claims["aud"]) == ("alice", 3, f"{ISSUER}#refresh")
        with pytest.raises(BadToken, match="expired"):
            issuer.read(token, REFRESH, at(3600))

    def test_a_robot_credential_reads_back_until_it_expires(self, issuer):
        token, expires_at = issuer.robot_credential("acme+deployer", "acme", ["pull"], 60, T0)
        assert expires_at == at(60)
        claims = issuer.read(token, ROBOT, at(59))
        assert (claims["sub"], claims["tenant"], claims["actions"]) == ("acme+deployer", "acme", ["pull"])
        with pytest.raises(BadToken, match="expired"):
            issuer.read(token, ROBOT, at(60))

    def test_no_kind_of_token_passes_for_another(self, issuer):
        refresh = issuer.refresh_token("alice", 1, T0)
        robot, _ = issuer.robot_credential("acme+deployer", "acme", ["pull"], 60, T0)
        registry, _ = issuer.access_token("alice", [], T0)
        with pytest.raises(BadToken):
            issuer.read(refresh, ROBOT, T0)
        with pytest.raises(BadToken):
            issuer.read(robot, REFRESH, T0)
        for use in (REFRESH, ROBOT):
            with pytest.raises(BadToken):
                issuer.read(registry, use, T0)

    def test_a_token_of_another_key_or_issuer_is_refused(self, issuer, signing_key):
        key = ec.generate_private_key(ec.SECP256R1())
        stranger = TokenIssuer(SigningKey.from_pem(pem(key), certificate(key), now=T0), ISSUER, SERVICE, 300, 3600)
        with pytest.raises(BadToken, match="not a valid refresh token"):
            issuer.read(stranger.refresh_token("alice", 1, T0), REFRESH, T0)
        other_issuer = TokenIssuer(signing_key, "someone-else", SERVICE, 300, 3600)
        with pytest.raises(BadToken, match="not a valid refresh token"):
            issuer.read(other_issuer.refresh_token("alice", 1, T0), REFRESH, T0)

    def test_a_tampered_token_is_refused(self, issuer):
        header, claims, signature = issuer.refresh_token("alice", 1, T0).split(".")
        forged = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        forged["sub"] = "root"
        claims = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
        with pytest.raises(BadToken):
            issuer.read(f"{header}.{claims}.{signature}", REFRESH, T0)

    @pytest.mark.parametrize("text", ["", "password", "a.b.c", "eyJ.only-one-dot"])
    def test_non_tokens_are_refused(self, issuer, text):
        with pytest.raises(BadToken):
            issuer.read(text, REFRESH, T0)

    def test_what_looks_like_a_jwt(self, issuer):
        assert looks_like_jwt(issuer.refresh_token("alice", 1, T0))
        assert not looks_like_jwt("correct horse battery staple")
        assert not looks_like_jwt("eyJ.a")
        assert not looks_like_jwt(None)
