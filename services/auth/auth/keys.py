"""A development token-signing key and certificate: ``python -m auth.keys --key K --cert C``.

Makes an RSA key (PEM, mode 0600) and a self-signed certificate for it (PEM), which is both what
the service signs with and the registry's ``auth.token.rootcertbundle``. Leaves a pair alone
while its certificate stays valid for ``--renew-days`` more days; otherwise makes a new one.
scripts/auth-keys.sh runs it for ``make up``; production keys come from the operator.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from auth.tokens import KeyProblem, SigningKey

COMMON_NAME = "imagehub token signer (development)"


def generate(days: int, now: datetime | None = None) -> tuple[bytes, bytes]:
    """``(key_pem, cert_pem)``: a new RSA-2048 key and a self-signed certificate valid ``days``."""
    now = now or datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, COMMON_NAME)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def needs_new_pair(key_path: str, cert_path: str, renew_days: int, now: datetime | None = None) -> str | None:
    """Why a new pair is needed (a sentence), or None if the files hold a usable one."""
    if not (os.path.exists(key_path) and os.path.exists(cert_path)):
        return "no key pair yet"
    now = now or datetime.now(UTC)
    try:
        key = SigningKey.from_files(key_path, cert_path, now)
    except KeyProblem as exc:
        return f"the existing pair cannot be used ({exc})"
    expires = key.certificates[0].not_valid_after_utc
    if expires - now < timedelta(days=renew_days):
        return f"the certificate expires {expires.isoformat()}"
    return None


def _write(path: str, data: bytes, mode: int) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make a development token-signing key pair if none is usable.")
    parser.add_argument("--key", required=True, help="private key file (PEM)")
    parser.add_argument("--cert", required=True, help="certificate file (PEM)")
    parser.add_argument("--days", type=int, default=3650, help="validity of a new certificate (default %(default)s)")
    parser.add_argument(
        "--renew-days",
        type=int,
        default=30,
        help="make a new pair when the certificate has fewer days left (default %(default)s)",
    )
    args = parser.parse_args(argv)
    reason = needs_new_pair(args.key, args.cert, args.renew_days)
    if reason is None:
        return 0
    key_pem, cert_pem = generate(args.days)
    _write(args.key, key_pem, 0o600)
    _write(args.cert, cert_pem, 0o644)
    print(f"made a development token-signing key pair ({reason}): {args.key}, {args.cert}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
