"""The library mirror's settings: plain values, read by ``catalog.settings`` from config.yml."""

from dataclasses import dataclass


@dataclass(frozen=True)
class MirrorSettings:
    """Where the library is and how it is synced (the catalog's ``LIBRARY_*`` settings)."""

    registry_url: str  # our registry's HTTP API (REGISTRY_URL)
    username: str | None  # the library robot: pushes to library/ only
    password: str
    credentials_file: str | None  # upstream logins, by name
    sources_file: str | None = None  # seeds the library's sources once
    sync_interval: float = 0.0  # seconds between timer syncs; 0: never
    attempts: int = 3
    retry_delay: float = 1.0
    concurrency: int = 4
    skopeo: str = "skopeo"
    timeout: float = 60.0
    copy_timeout: float = 1800.0

    @property
    def registry_host(self) -> str:
        """Our registry as skopeo names it: ``host:port``."""
        return self.registry_url.split("://", 1)[-1].rstrip("/")

    @property
    def registry_insecure(self) -> bool:
        return self.registry_url.startswith("http://")
