"""The gateway's settings, read once from its config (``shared.runtime.settings``)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.runtime import settings as s

MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int
    rpc_timeout: float
    session_recheck: float
    secure_cookie: bool
    csrf_key: bytes
    trusted_proxies: frozenset[str]
    registry_host: str
    auth_issuer: str
    auth_cert_file: str


def read_secret(path: str, key: str) -> bytes:
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as exc:
        raise s.SettingError(f"setting {key}: cannot read {path!r} ({exc.strerror})") from None
    if len(secret) < MIN_SECRET_BYTES:
        raise s.SettingError(f"setting {key}: {path!r} holds {len(secret)} bytes, at least {MIN_SECRET_BYTES} needed")
    return secret


def load_settings(config: Mapping[str, Any]) -> Settings:
    proxies = s.text(config, "GATEWAY_TRUSTED_PROXIES", required=False)
    return Settings(
        max_body_bytes=s.positive_int(config, "GATEWAY_MAX_BODY_BYTES"),
        rpc_timeout=s.seconds(config, "GATEWAY_RPC_TIMEOUT"),
        session_recheck=s.seconds(config, "GATEWAY_SESSION_RECHECK", allow_zero=True),
        secure_cookie=s.boolean(config, "GATEWAY_SECURE_COOKIE"),
        csrf_key=read_secret(s.text(config, "GATEWAY_SECRET_FILE"), "GATEWAY_SECRET_FILE"),
        trusted_proxies=frozenset(p.strip() for p in proxies.split(",") if p.strip()),
        registry_host=s.text(config, "REGISTRY_PUBLIC_HOST"),
        auth_issuer=s.text(config, "AUTH_ISSUER"),
        auth_cert_file=s.text(config, "AUTH_CERT_FILE"),
    )
