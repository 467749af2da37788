"""Providers of the auth service: its database, and the keys and hasher it signs and checks with."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventlet import tpool
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider

from auth.exceptions import SettingMissing
from auth.passwords import Hasher
from auth.settings import Settings, load_settings
from auth.tokens import KeyProblem, SigningKey, TokenIssuer
from shared.runtime.db import Database
from shared.runtime.settings import settings_of

AuthDatabase = Database

# Argon2 hashes at once: each takes AUTH_HASH_MEMORY_KIB of memory (64 MiB by default) and a
# core for 0.1-0.2 s; more at once only queue on two cores and multiply the memory.
HASH_CONCURRENCY = 4


@dataclass(frozen=True)
class Credentials:
    """What a worker needs to check credentials and sign tokens."""

    settings: Settings
    issuer: TokenIssuer
    hasher: Hasher


class CredentialTools(DependencyProvider):
    """Settings, signing key and password hasher, loaded once at start: the service refuses to
    start without a usable key and certificate (AUTH_KEY_FILE, AUTH_CERT_FILE)."""

    def setup(self) -> None:
        settings = settings_of(self.container, load_settings)
        try:
            key = SigningKey.from_files(settings.key_file, settings.cert_file)
        except KeyProblem as exc:
            raise SettingMissing(
                f"AUTH_KEY_FILE={settings.key_file!r} / AUTH_CERT_FILE={settings.cert_file!r}: {exc} "
                f"(scripts/auth-keys.sh makes a development pair)"
            ) from None
        issuer = TokenIssuer(key, settings.issuer, settings.service, settings.token_ttl, settings.refresh_token_ttl)
        semaphore = Semaphore(HASH_CONCURRENCY)

        def in_thread(function: Callable[..., Any], *args: Any) -> Any:
            # A hash is pure CPU in C: in a real thread it leaves the eventlet hub (every other
            # request of the service) running meanwhile.
            with semaphore:
                return tpool.execute(function, *args)

        hasher = Hasher(
            time_cost=settings.hash_time_cost,
            memory_cost=settings.hash_memory_kib,
            parallelism=settings.hash_parallelism,
            run=in_thread,
        )
        self.tools = Credentials(settings, issuer, hasher)

    def get_dependency(self, worker_ctx: Any) -> Credentials:
        return self.tools
