"""Reading manifests, indexes and image configs as the registry returns them.

Pure functions over bytes: no HTTP, no database. Anything the catalogue cannot read is an
``UnusableManifest`` whose message says what is wrong.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from catalog.exceptions import UnusableManifest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

IMAGE_MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES + INDEX_TYPES

# Config blobs that are image configs (architecture, os, created, author); an OCI artifact's
# config (a Helm chart's, a signature's) is something else and is not fetched.
IMAGE_CONFIG_TYPES = ("application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json")

# buildx stores attestations in the index as pseudo-platforms: not something one can run.
ATTESTATION_ANNOTATION = "vnd.docker.reference.type"


@dataclass
class Descriptor:
    digest: str
    media_type: str | None
    size: int


@dataclass
class ParsedManifest:
    media_type: str
    manifest_size: int
    config: Descriptor | None = None  # image manifests only
    layers: list = field(default_factory=list)  # [Descriptor]
    platforms: list | None = None  # indexes only: [{"digest", "architecture", "os", "variant"}]

    @property
    def is_index(self) -> bool:
        return self.platforms is not None

    @property
    def size(self) -> int | None:
        """What a pull downloads: config and compressed layers (None for an index)."""
        if self.is_index:
            return None
        return (self.config.size if self.config else 0) + sum(layer.size for layer in self.layers)

    @property
    def wants_config(self) -> bool:
        return self.config is not None and self.config.media_type in IMAGE_CONFIG_TYPES


@dataclass
class ImageConfig:
    architecture: str | None = None
    os: str | None = None
    variant: str | None = None
    created: datetime | None = None
    author: str | None = None


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UnusableManifest(f"{what} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UnusableManifest(f"{what} is not a JSON object")
    return data


def _descriptor(data: Any, what: str) -> Descriptor:
    if not isinstance(data, dict) or not isinstance(data.get("digest"), str):
        raise UnusableManifest(f"{what} has no digest")
    size = data.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise UnusableManifest(f"{what} has an invalid size {size!r}")
    return Descriptor(digest=data["digest"], media_type=data.get("mediaType"), size=size)


def parse_manifest(media_type: str | None, body: bytes) -> ParsedManifest:
    """Parse a manifest or index served with ``media_type`` (the registry's Content-Type)."""
    data = _json_object(body, "manifest")
    media_type = media_type or data.get("mediaType")
    if media_type not in MANIFEST_TYPES:
        raise UnusableManifest(
            f"media type {media_type!r} is not an image manifest or index (supported: {', '.join(MANIFEST_TYPES)})"
        )
    if data.get("schemaVersion") != 2:
        raise UnusableManifest(f"schemaVersion {data.get('schemaVersion')!r} is not supported")
    if media_type in INDEX_TYPES:
        children = data.get("manifests")
        if not isinstance(children, list):
            raise UnusableManifest("index has no 'manifests' list")
        platforms = []
        for i, child in enumerate(children):
            descriptor = _descriptor(child, f"index entry {i}")
            if ATTESTATION_ANNOTATION in (child.get("annotations") or {}):
                continue
            platform = child.get("platform") or {}
            platforms.append(
                {
                    "digest": descriptor.digest,
                    "architecture": platform.get("architecture"),
                    "os": platform.get("os"),
                    "variant": platform.get("variant"),
                }
            )
        return ParsedManifest(media_type=media_type, manifest_size=len(body), platforms=platforms)
    layers = data.get("layers")
    if not isinstance(layers, list):
        raise UnusableManifest("manifest has no 'layers' list")
    return ParsedManifest(
        media_type=media_type,
        manifest_size=len(body),
        config=_descriptor(data.get("config"), "manifest config"),
        layers=[_descriptor(layer, f"layer {i}") for i, layer in enumerate(layers)],
    )


def parse_time(value: Any) -> datetime | None:
    """An image config's ``created`` (RFC 3339, up to nanoseconds) as aware UTC, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # 0001-01-01T00:00:00+05:00 is a valid time whose UTC is outside the calendar.
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_image_config(body: bytes) -> ImageConfig:
    data = _json_object(body, "image config")
    return ImageConfig(
        architecture=_text(data.get("architecture")),
        os=_text(data.get("os")),
        variant=_text(data.get("variant")),
        created=parse_time(data.get("created")),
        author=_text(data.get("author")),
    )
