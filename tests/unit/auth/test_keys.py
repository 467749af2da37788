"""The development key pair: made when missing or unusable, kept otherwise."""

import os
from datetime import timedelta

from cryptography import x509

from auth import keys
from auth.tokens import SigningKey
from tests.unit.auth.conftest import T0


class TestDevelopmentPair:
    def test_a_new_pair_is_an_rsa_key_and_its_self_signed_certificate(self):
        key_pem, cert_pem = keys.generate(days=10, now=T0)
        signing_key = SigningKey.from_pem(key_pem, cert_pem, now=T0)
        cert = x509.load_pem_x509_certificate(cert_pem)
        assert signing_key.algorithm == "RS256"
        assert cert.issuer == cert.subject
        assert cert.not_valid_after_utc == T0 + timedelta(days=10)

    def test_is_made_once_and_kept(self, tmp_path, capsys):
        key, cert = str(tmp_path / "s" / "auth.key"), str(tmp_path / "s" / "auth.crt")
        assert keys.main(["--key", key, "--cert", cert]) == 0
        assert "no key pair yet" in capsys.readouterr().err
        assert oct(os.stat(key).st_mode & 0o777) == "0o600"
        first = open(key, "rb").read(), open(cert, "rb").read()
        assert keys.main(["--key", key, "--cert", cert]) == 0
        assert (open(key, "rb").read(), open(cert, "rb").read()) == first
        assert capsys.readouterr().err == ""

    def test_is_remade_when_the_certificate_is_about_to_expire(self, tmp_path):
        key, cert = str(tmp_path / "auth.key"), str(tmp_path / "auth.crt")
        keys.main(["--key", key, "--cert", cert, "--days", "20"])
        assert keys.needs_new_pair(key, cert, renew_days=30).startswith("the certificate expires")
        old = open(key, "rb").read()
        keys.main(["--key", key, "--cert", cert])
        assert open(key, "rb").read() != old
        assert keys.needs_new_pair(key, cert, renew_days=30) is None

    def test_is_remade_when_the_files_do_not_match(self, tmp_path):
        key, cert = str(tmp_path / "auth.key"), str(tmp_path / "auth.crt")
        keys.main(["--key", key, "--cert", cert])
        other_key, _ = keys.generate(days=10)
        open(key, "wb").write(other_key)
        assert "not the signing key's" in keys.needs_new_pair(key, cert, renew_days=30)
        keys.main(["--key", key, "--cert", cert])
        assert keys.needs_new_pair(key, cert, renew_days=30) is None
