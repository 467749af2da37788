"""Password and robot-secret hashes: Argon2id (memory-hard), via argon2-cffi. No framework imports.

Parameters default to RFC 9106's "low memory" profile (t=3, 64 MiB, p=4), argon2-cffi's own
default. A stored hash made with other parameters still verifies, and ``needs_rehash`` says when
to store a fresh one (after a successful login) so that raising them takes effect by itself.

``verify`` on an account that does not exist is run against ``dummy_hash`` so that a login for an
unknown name costs the same time as one with a wrong password.
"""

import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # far past any real password; bounds the hashing work per request
ROBOT_SECRET_BYTES = 32

T = TypeVar("T")


def call(function: Callable[..., T], *args: Any) -> T:
    return function(*args)


class Hasher:
    """Hash and verify secrets. ``run(function, *args)`` runs the hashing itself: the service
    hands it eventlet's thread pool, so a 0.1-0.2 s hash does not stall every other request."""

    def __init__(
        self,
        time_cost: int = 3,
        memory_cost: int = 65536,
        parallelism: int = 4,
        run: Callable[..., Any] = call,
    ) -> None:
        self.argon2 = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        self.run = run
        self.dummy_hash = self.argon2.hash(secrets.token_urlsafe(16))

    def hash(self, secret: str) -> str:
        return self.run(self.argon2.hash, secret)

    def verify(self, stored_hash: str | None, secret: str) -> bool:
        """True if ``secret`` matches ``stored_hash``; False for a mismatch or a broken hash."""
        if stored_hash is None:
            stored_hash = self.dummy_hash
        try:
            return bool(self.run(self.argon2.verify, stored_hash, secret))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        try:
            return self.argon2.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True


def new_robot_secret() -> str:
    """A robot's secret: 256 random bits, URL-safe (usable as a docker password as it is)."""
    return secrets.token_urlsafe(ROBOT_SECRET_BYTES)
