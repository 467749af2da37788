"""Who the CLI calls as: the identity ``imagehub login`` got from ``auth.sign_in``, kept per broker.

Every call the CLI makes carries it (``shared.runtime.identity``): the services answer a call from
the ``admin`` broker user only with the identity of the person behind it. It is kept in
``$IMAGEHUB_SESSION_FILE``, else ``$XDG_CONFIG_HOME/imagehub/sessions.json`` (``~/.config/...``),
mode 0600, one entry per broker user, host and vhost (never the broker password); an expired one
is dropped when read. ``imagehub logout`` forgets it.
"""

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def path() -> Path:
    explicit = os.environ.get("IMAGEHUB_SESSION_FILE")
    if explicit:
        return Path(explicit)
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "imagehub" / "sessions.json"


def key_for(amqp_uri: str) -> str:
    """``user@host:port/vhost``: which broker (and as whom) an identity was got for."""
    parts = urlsplit(amqp_uri.split(";")[0].strip())
    return f"{parts.username or ''}@{parts.hostname or ''}:{parts.port or 5672}{parts.path or '/'}"


def _read() -> dict[str, Any]:
    try:
        with open(path()) as f:
            data = json.load(f)
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(data: dict[str, Any]) -> None:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(temporary, target)


def load(amqp_uri: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The stored sign-in for this broker, unless it has expired."""
    entry = _read().get(key_for(amqp_uri))
    if not isinstance(entry, dict) or not isinstance(entry.get("identity"), str):
        return None
    try:
        expires_at = datetime.fromisoformat(str(entry.get("expires_at")))
    except ValueError:
        return None
    if expires_at <= (now or datetime.now(UTC)):
        return None
    return entry


def save(amqp_uri: str, answer: dict[str, Any]) -> None:
    data = _read()
    data[key_for(amqp_uri)] = {k: answer.get(k) for k in ("identity", "account", "tenant_id", "is_admin", "expires_at")}
    _write(data)


def forget(amqp_uri: str) -> bool:
    data = _read()
    if data.pop(key_for(amqp_uri), None) is None:
        return False
    _write(data)
    return True
