"""Unit-test fixtures: a migrated SQLite database per test, a cheap hasher, a signing key."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from auth import accounts
from auth.keys import generate
from auth.migrate import upgrade
from auth.passwords import Hasher
from auth.settings import LoginPolicy
from auth.tokens import SigningKey, TokenIssuer
from shared.runtime import db
from tests.support import migrated_sqlite_template, sqlite_copy

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ISSUER, SERVICE = "test-issuer", "test-registry"


def at(seconds):
    """A point in time ``seconds`` after T0."""
    return T0 + timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    return migrated_sqlite_template(tmp_path_factory, "auth", upgrade)


@pytest.fixture
def session(migrated_template, tmp_path):
    engine = db.create_engine(sqlite_copy(migrated_template, tmp_path))
    with Session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture(scope="session")
def hasher():
    """Argon2id at its cheapest, so that unit tests stay fast (the service uses config.yml's)."""
    return Hasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture(scope="session")
def key_pem():
    """``(key_pem, cert_pem)`` of a development pair made as scripts/auth-keys.sh makes one."""
    return generate(days=3650, now=T0 - timedelta(days=1))


@pytest.fixture(scope="session")
def signing_key(key_pem):
    return SigningKey.from_pem(*key_pem, now=T0)


@pytest.fixture(scope="session")
def issuer(signing_key):
    return TokenIssuer(signing_key, ISSUER, SERVICE, ttl=300, refresh_ttl=3600)


@pytest.fixture
def policy():
    return LoginPolicy(free_failures=3, max_delay=8, window=900)


@pytest.fixture
def acme(session):
    """Tenant ``acme`` with developer ``alice`` (password ``alice-secret``)."""
    accounts.create_tenant(session, "acme", "ACME", T0)
    session.commit()
    return "acme"
