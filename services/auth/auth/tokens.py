"""Signed tokens: the registry's bearer tokens, refresh tokens, robot credentials. No framework imports.

**Registry tokens** follow Docker Distribution's token spec (docs/spec/auth/jwt.md): a JWS
signed with the service's key (RS256 for RSA, ES256/384/512 for EC), claims ``iss``
(AUTH_ISSUER), ``sub`` (the account: it becomes the notification's ``actor.name``), ``aud``
(AUTH_SERVICE, the registry's ``auth.token.service``; a string, not a list: 2.8 rejects a list),
``exp``/``nbf``/``iat``/``jti`` and ``access``. The registry trusts the certificates of its
``auth.token.rootcertbundle``; it finds the signing key through the JWT header, which carries
both

* ``x5c``: the certificate chain of the key (leaf first), verified up to that bundle. It is what
  Distribution 2.8 tries first and what 3.x requires when no ``jwks`` is configured (3.x no
  longer derives key IDs from the bundle);
* ``kid``: the key's libtrust fingerprint, the form 2.8 uses to look a key up in the bundle.

Both were checked against the real ``docker-registry`` 2.8.2 (tests/integration/auth).

**Refresh tokens** (``docker login`` asks for one and stores it instead of the password) and
**robot credentials** (short-lived passwords for a tenant's robot, ``issue_robot_credential``)
are JWTs of the same key for this service alone: their audience is ``<issuer>#refresh`` /
``<issuer>#robot``, never the registry's, and ``token_use`` says which they are, so none of the
three is accepted in place of another.
"""

import base64
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

REFRESH, ROBOT = "refresh", "robot"
MIN_RSA_BITS = 2048
EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class KeyProblem(Exception):
    """The signing key or its certificate cannot be used; the message says why."""


class BadToken(Exception):
    """A refresh token or robot credential that is not one of ours, or no longer valid."""


def libtrust_key_id(public_key: PublicKeyTypes) -> str:
    """The key ID Distribution 2.8 computes for a trusted key: SHA-256 of the DER public key,
    first 240 bits, base32 without padding, in 12 groups of 4 joined by ':'."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _public_der(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificates: tuple[x509.Certificate, ...]  # x509.Certificate, leaf first
    algorithm: str
    kid: str

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, now: datetime | None = None) -> Self:
        """A private key (PEM, unencrypted) and its certificate chain (PEM, leaf first)."""
        try:
            private_key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyProblem(f"the signing key is not an unencrypted PEM private key: {exc}") from None
        try:
            certificates = tuple(x509.load_pem_x509_certificates(cert_pem))
        except ValueError as exc:
            raise KeyProblem(f"the certificate file holds no PEM certificate: {exc}") from None
        leaf = certificates[0]
        if _public_der(leaf.public_key()) != _public_der(private_key.public_key()):
            raise KeyProblem("the certificate (the first in the file) is not the signing key's")
        now = now or datetime.now(UTC)
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise KeyProblem(
                f"the certificate is valid from {leaf.not_valid_before_utc.isoformat()} to "
                f"{leaf.not_valid_after_utc.isoformat()}, not now: the registry would refuse every token"
            )
        if isinstance(private_key, rsa.RSAPrivateKey):
            if private_key.key_size < MIN_RSA_BITS:
                raise KeyProblem(
                    f"an RSA signing key needs at least {MIN_RSA_BITS} bits, this one has {private_key.key_size}"
                )
            algorithm = "RS256"
        elif isinstance(private_key, ec.EllipticCurvePrivateKey) and private_key.curve.name in EC_ALGORITHMS:
            algorithm = EC_ALGORITHMS[private_key.curve.name]
        else:
            raise KeyProblem(
                f"unsupported signing key type {type(private_key).__name__}: use RSA "
                f"(>= {MIN_RSA_BITS} bits) or EC P-256/P-384/P-521"
            )
        return cls(private_key, certificates, algorithm, libtrust_key_id(private_key.public_key()))

    @classmethod
    def from_files(cls, key_path: str, cert_path: str, now: datetime | None = None) -> Self:
        try:
            with open(key_path, "rb") as f:
                key_pem = f.read()
            with open(cert_path, "rb") as f:
                cert_pem = f.read()
        except OSError as exc:
            raise KeyProblem(f"cannot read the signing key or certificate: {exc}") from None
        return cls.from_pem(key_pem, cert_pem, now)

    @property
    def public_key(self) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    @property
    def headers(self) -> dict[str, Any]:
        chain = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode() for cert in self.certificates]
        return {"kid": self.kid, "x5c": chain}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


class TokenIssuer:
    """Signs and reads this service's tokens with one ``SigningKey``."""

    def __init__(self, key: SigningKey, issuer: str, service: str, ttl: int, refresh_ttl: int) -> None:
        self.key = key
        self.issuer = issuer
        self.service = service
        self.ttl = int(ttl)
        self.refresh_ttl = int(refresh_ttl)

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key.private_key, algorithm=self.key.algorithm, headers=self.key.headers)

    def access_token(
        self, subject: str | None, access: Iterable[Mapping[str, Any]], now: datetime
    ) -> tuple[str, dict[str, Any]]:
        """``(token, claims)``: a registry bearer token for ``subject`` (None: anonymous)
        granting ``access``, valid AUTH_TOKEN_TTL seconds."""
        claims = {
            "iss": self.issuer,
            "sub": subject or "",
            "aud": self.service,
            "exp": _epoch(now) + self.ttl,
            "nbf": _epoch(now),
            "iat": _epoch(now),
            "jti": uuid.uuid4().hex,
            "access": list(access),
        }
        return self.sign(claims), claims

    def refresh_token(self, subject: str | None, generation: int | None, now: datetime) -> str:
        """A long-lived token that stands for ``subject``'s password until the password changes
        (``generation``), the account is disabled, or AUTH_REFRESH_TOKEN_TTL passes."""
        return self.sign(
            {
                "iss": self.issuer,
                "sub": subject,
                "aud": f"{self.issuer}#{REFRESH}",
                "token_use": REFRESH,
                "gen": generation,
                "iat": _epoch(now),
                "exp": _epoch(now) + self.refresh_ttl,
                "jti": uuid.uuid4().hex,
            }
        )

    def robot_credential(
        self, username: str, tenant_id: str | None, actions: Iterable[str], ttl: int, now: datetime
    ) -> tuple[str, datetime]:
        """``(password, expires_at)``: a password for ``username`` alone, good for ``ttl``
        seconds, letting a robot of ``tenant_id`` do ``actions`` in its namespace."""
        expires_at = now + timedelta(seconds=int(ttl))
        token = self.sign(
            {
                "iss": self.issuer,
                "sub": username,
                "aud": f"{self.issuer}#{ROBOT}",
                "token_use": ROBOT,
                "tenant": tenant_id,
                "actions": list(actions),
                "iat": _epoch(now),
                "exp": _epoch(expires_at),
                "jti": uuid.uuid4().hex,
            }
        )
        return token, expires_at

    def read(self, token: str, use: str, now: datetime) -> dict[str, Any]:
        """The claims of one of our own ``use`` tokens (REFRESH or ROBOT); ``BadToken`` if it is
        not ours, not that kind, or expired at ``now``."""
        try:
            claims = jwt.decode(
                token,
                self.key.public_key,
                algorithms=[self.key.algorithm],
                audience=f"{self.issuer}#{use}",
                issuer=self.issuer,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "sub", "aud", "iss"],
                },
            )
        except jwt.PyJWTError as exc:
            raise BadToken(f"not a valid {use} token: {exc}") from None
        if claims.get("token_use") != use:
            raise BadToken(f"not a {use} token")
        if not isinstance(claims["exp"], int) or claims["exp"] <= _epoch(now):
            raise BadToken(f"the {use} token has expired")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise BadToken(f"the {use} token names no account")
        return claims


def looks_like_jwt(text: object) -> bool:
    """A robot credential is a JWT; a password or robot secret made here never has two dots
    and the ``eyJ`` of a JSON header."""
    return isinstance(text, str) and text.startswith("eyJ") and text.count(".") == 2
