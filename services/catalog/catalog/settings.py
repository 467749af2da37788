"""The catalog's settings, read once from its config.yml (whose defaults are the only ones).

Plain values in, a checked ``Settings`` out (``shared.runtime.settings``), ``SettingError`` naming
the key otherwise: no nameko imports.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from catalog.mirror.settings import MirrorSettings
from shared.runtime.settings import number, positive_int, seconds, text


@dataclass(frozen=True)
class Settings:
    registry_url: str  # the registry's HTTP API v2
    registry_public_host: str  # host[:port] users pull from, as pull commands show it
    registry_username: str | None  # the catalog's robot; None: no auth
    registry_password: str
    registry_timeout: float
    outbox_relay_min_age: float  # seconds an outbox row waits before the relay takes it
    resync_interval: float  # seconds between periodic passes; 0: never
    resync_page_size: int
    resync_max_removal_fraction: float  # 1: the removal guard is off
    max_workers: int
    library: MirrorSettings  # the public library's mirror (catalog.mirror)


def load_settings(config: Mapping[str, Any]) -> Settings:
    return Settings(
        registry_url=text(config, "REGISTRY_URL").rstrip("/"),
        registry_public_host=text(config, "REGISTRY_PUBLIC_HOST"),
        registry_username=text(config, "REGISTRY_USERNAME", required=False) or None,
        registry_password=text(config, "REGISTRY_PASSWORD", required=False),
        registry_timeout=seconds(config, "REGISTRY_TIMEOUT"),
        outbox_relay_min_age=number(config, "OUTBOX_RELAY_MIN_AGE", minimum=0),
        resync_interval=seconds(config, "RESYNC_INTERVAL", allow_zero=True),
        resync_page_size=positive_int(config, "RESYNC_PAGE_SIZE"),
        resync_max_removal_fraction=number(config, "RESYNC_MAX_REMOVAL_FRACTION", minimum=0, maximum=1),
        max_workers=positive_int(config, "max_workers"),
        library=MirrorSettings(
            registry_url=text(config, "REGISTRY_URL").rstrip("/"),
            username=text(config, "LIBRARY_REGISTRY_USERNAME", required=False) or None,
            password=text(config, "LIBRARY_REGISTRY_PASSWORD", required=False),
            credentials_file=text(config, "LIBRARY_CREDENTIALS_FILE", required=False) or None,
            sources_file=text(config, "LIBRARY_SOURCES_FILE", required=False) or DEFAULT_SOURCES_FILE,
            sync_interval=seconds(config, "LIBRARY_SYNC_INTERVAL", allow_zero=True),
            attempts=positive_int(config, "LIBRARY_SYNC_ATTEMPTS"),
            retry_delay=seconds(config, "LIBRARY_SYNC_RETRY_DELAY"),
            concurrency=positive_int(config, "LIBRARY_SYNC_CONCURRENCY"),
            skopeo=text(config, "LIBRARY_SKOPEO"),
            copy_timeout=seconds(config, "LIBRARY_COPY_TIMEOUT"),
        ),
    )


# The sources a new installation starts with (all disabled: nothing goes to the internet unasked).
DEFAULT_SOURCES_FILE = str(resources.files("catalog").joinpath("library-sources.yml"))
