"""Dependency providers: the registry HTTP client and the database, configured from config.yml."""

import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin

import requests
from nameko.extensions import DependencyProvider
from requests.adapters import HTTPAdapter

from catalog.exceptions import NotInRegistry, UnusableManifest
from catalog.manifests import MANIFEST_TYPES
from catalog.settings import Settings, load_settings
from shared.contracts.errors import RegistryUnavailable
from shared.runtime import metrics
from shared.runtime.db import Database
from shared.runtime.registry_auth import RegistryAuthError, RegistryTokenAuth
from shared.runtime.settings import settings_of

log = logging.getLogger(__name__)

ACCEPT_MANIFESTS = ", ".join(MANIFEST_TYPES)
CONNECT_TIMEOUT = 3.0
# Registry requests a resync pass has under way at once (RESYNC_CONCURRENCY); the connection pool
# keeps that many connections alive besides the workers' own.
DEFAULT_RESYNC_CONCURRENCY = 8
# Manifests and image configs kept by digest (content-addressed: what a digest names never
# changes): at most CACHE_BYTES in all, none larger than CACHE_ITEM_BYTES, each entry counted
# with CACHE_ENTRY_OVERHEAD bytes more (its key, tuple and dict slot: a config is ~500 bytes).
# A resync pass needs a chunk's worth (its manifests from observation to indexing, ~1000).
CACHE_BYTES = 4 * 1024 * 1024
CACHE_ITEM_BYTES = 64 * 1024
CACHE_ENTRY_OVERHEAD = 400
CACHE_TTL = 60.0  # seconds an entry answers: how long a delete by someone else may go unseen


class DigestCache:
    """A bounded LRU of content by repository and digest, each entry kept ``ttl`` seconds; only
    content whose sha256 is its digest is kept.

    Content-addressed content never changes, but it can be deleted, and a repository holds only
    what was pushed (or mounted) into it: an entry answers for its own repository only (the
    registry judges access to every other), our own delete of a manifest drops it, and the time
    limit bounds how long a delete by anyone else goes unseen (a push's ``image_deleted`` follows
    within it). What it saves is a burst's repeated fetches: a manifest pushed under several tags,
    the config every tag of an image shares, a resync chunk's manifests from listing to writing.
    """

    def __init__(
        self,
        max_bytes: int = CACHE_BYTES,
        max_item_bytes: int = CACHE_ITEM_BYTES,
        ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes, self.max_item_bytes, self.ttl, self.clock = max_bytes, max_item_bytes, ttl, clock
        self.entries: OrderedDict[tuple[str, str, str], tuple[Any, bytes, float]] = OrderedDict()
        self.size = 0

    def get(self, kind: str, repository: str, digest: str) -> tuple[Any, bytes] | None:
        key = (kind, repository, digest)
        found = self.entries.get(key)
        if found is None:
            return None
        if found[2] <= self.clock():
            self.drop(kind, repository, digest)
            return None
        self.entries.move_to_end(key)
        return found[0], found[1]

    def put(self, kind: str, repository: str, digest: str, meta: Any, body: bytes) -> None:
        key = (kind, repository, digest)
        if (
            len(body) > self.max_item_bytes
            or not digest.startswith("sha256:")
            or "sha256:" + hashlib.sha256(body).hexdigest() != digest
            or key in self.entries
        ):
            return
        self.entries[key] = (meta, body, self.clock() + self.ttl)
        self.size += len(body) + CACHE_ENTRY_OVERHEAD
        while self.size > self.max_bytes:
            _, (_, dropped, _) = self.entries.popitem(last=False)
            self.size -= len(dropped) + CACHE_ENTRY_OVERHEAD

    def drop(self, kind: str, repository: str, digest: str) -> None:
        found = self.entries.pop((kind, repository, digest), None)
        if found is not None:
            self.size -= len(found[1]) + CACHE_ENTRY_OVERHEAD


class RegistryClient:
    """The calls the catalogue makes to a Docker Distribution registry (HTTP API v2).

    Unreachable, 5xx, 429 and refused credentials are ``RegistryUnavailable`` (transient: an
    operator or time fixes them); 404 is ``NotInRegistry``; any other answer is
    ``UnusableManifest``.

    Listings (``repository_pages``, ``tag_pages``) ask for ``n`` entries a page and follow the
    ``Link: <…>; rel="next"`` header until there is none, as the API describes; a registry that
    ignores ``n`` (Distribution 2.8 for tags) answers everything in one page.
    """

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        timeout: float,
        concurrency: int = DEFAULT_RESYNC_CONCURRENCY,
        cache: DigestCache | None = None,
    ) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.timeout = (CONNECT_TIMEOUT, timeout)
        self.concurrency = concurrency  # a resync pass's registry requests at once
        self.cache = cache if cache is not None else DigestCache()

    def _request(self, method: str, path: str, what: str, url: str | None = None, **kwargs: Any) -> requests.Response:
        url = url or f"{self.base_url}/v2/{path}"
        started = time.monotonic()
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except (requests.RequestException, RegistryAuthError) as exc:
            metrics.observe_registry("catalog", method, type(exc).__name__, time.monotonic() - started)
            if isinstance(exc, RegistryAuthError):  # the token service refused or is down: an operator's fix
                raise RegistryUnavailable(f"no registry token ({what}): {exc}") from exc
            raise RegistryUnavailable(f"registry {self.base_url} unreachable ({what}): {exc}") from exc
        metrics.observe_registry("catalog", method, f"{resp.status_code // 100}xx", time.monotonic() - started)
        if resp.status_code >= 500 or resp.status_code in (401, 403, 429):
            raise RegistryUnavailable(
                f"registry {self.base_url} answered {resp.status_code} to {method} {path}: {resp.text[:200]}"
            )
        if resp.status_code == 404:
            raise NotInRegistry(f"{what} is not in the registry (deleted since?)")
        if resp.status_code == 405 and method == "DELETE":
            raise RegistryUnavailable(f"registry {self.base_url} refuses deletes (set storage.delete.enabled: true)")
        if not 200 <= resp.status_code < 300:
            raise UnusableManifest(f"registry answered {resp.status_code} to {method} {path}: {resp.text[:200]}")
        return resp

    def get_manifest(self, repository: str, digest: str) -> tuple[str | None, bytes]:
        """``(content_type, body)`` of a manifest or index, fetched by digest (kept a while: ``DigestCache``)."""
        cached = self.cache.get("manifest", repository, digest)
        if cached is not None:
            return cached
        resp = self._request(
            "GET",
            f"{repository}/manifests/{digest}",
            f"manifest {repository}@{digest}",
            headers={"Accept": ACCEPT_MANIFESTS},
        )
        content_type = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
        self.cache.put("manifest", repository, digest, content_type, resp.content)
        return content_type, resp.content

    def get_blob(self, repository: str, digest: str, max_bytes: int | None = None) -> bytes:
        """The blob's bytes; ``UnusableManifest`` past ``max_bytes`` (read no further than that).
        A small one (an image config) is kept by digest."""
        what = f"blob {repository}@{digest}"
        cached = self.cache.get("blob", repository, digest)
        if cached is not None:
            if max_bytes and len(cached[1]) > max_bytes:
                raise UnusableManifest(f"{what} is larger than {max_bytes} bytes")
            return cached[1]
        resp = self._request("GET", f"{repository}/blobs/{digest}", what, stream=True)
        try:
            body = resp.raw.read(max_bytes + 1, decode_content=True) if max_bytes else resp.content
        except (requests.RequestException, OSError) as exc:
            raise RegistryUnavailable(f"registry {self.base_url} unreachable ({what}): {exc}") from exc
        finally:
            resp.close()
        if max_bytes and len(body) > max_bytes:
            raise UnusableManifest(f"{what} is larger than {max_bytes} bytes")
        self.cache.put("blob", repository, digest, None, body)
        return body

    def tag_digest(self, repository: str, tag: str, manifest: bool = False) -> str | None:
        """The digest ``tag`` points at now (``HEAD`` by tag, ``Docker-Content-Digest``), or None
        if the registry has no such tag (or repository). With ``manifest``, by ``GET`` (the same
        cost to the registry), and the manifest is kept by its digest: indexing it next asks the
        registry for it no more."""
        what, path, accept = f"tag {repository}:{tag}", f"{repository}/manifests/{tag}", {"Accept": ACCEPT_MANIFESTS}
        try:
            resp = self._request("GET" if manifest else "HEAD", path, what, headers=accept)
        except NotInRegistry:
            return None
        if manifest:
            body = resp.content
            named = resp.headers.get("Docker-Content-Digest") or "sha256:" + hashlib.sha256(body).hexdigest()
            content_type = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
            self.cache.put("manifest", repository, named, content_type, body)  # (only if the body is what it names)
            return named
        digest = resp.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        # A registry may leave the header out of HEAD answers; the GET body's hash is the digest.
        body = self._request("GET", path, what, headers=accept).content
        return "sha256:" + hashlib.sha256(body).hexdigest()

    def repository_pages(self, page_size: int) -> Iterator[list[str]]:
        """The registry's repository names (``/v2/_catalog``), a list per page, in its order."""
        return self._pages("_catalog", "repositories", page_size, "the registry's catalog")

    def tag_pages(self, repository: str, page_size: int) -> Iterator[list[str]]:
        """``repository``'s tag names, a list per page; nothing if the registry has no such
        repository (deleted since it was listed)."""
        try:
            yield from self._pages(f"{repository}/tags/list", "tags", page_size, f"tags of {repository}")
        except NotInRegistry:
            return

    def _pages(self, path: str, key: str, page_size: int, what: str) -> Iterator[list[str]]:
        url: str | None = f"{self.base_url}/v2/{path}?n={int(page_size)}"
        while url:
            resp = self._request("GET", path, what, url=url)
            try:
                entries = resp.json().get(key)
            except (ValueError, AttributeError) as exc:
                raise UnusableManifest(f"registry answered GET {path} with no JSON object: {resp.text[:200]}") from exc
            yield list(entries or [])  # Distribution answers "tags": null once every tag is deleted
            following = resp.links.get("next", {}).get("url")
            url = urljoin(f"{self.base_url}/", following) if following else None

    def delete_manifest(self, repository: str, digest: str) -> bool:
        """Delete a manifest (and so every tag on it). False if the registry had it no more."""
        self.cache.drop("manifest", repository, digest)
        try:
            self._request("DELETE", f"{repository}/manifests/{digest}", f"manifest {repository}@{digest}")
        except NotInRegistry:
            return False
        return True


class Registry(DependencyProvider):
    """Hands each worker the one ``RegistryClient`` of this container (a pooled session)."""

    def setup(self) -> None:
        settings = settings_of(self.container, load_settings)
        self.session = requests.Session()
        # The registry's token auth (services/auth): a 401 Bearer challenge is answered with a
        # token for the catalog's robot account, cached per scope and renewed with a refresh
        # token. A registry without auth never challenges, so this is harmless there.
        self.session.auth = RegistryTokenAuth(
            settings.registry_username, settings.registry_password, timeout=settings.registry_timeout
        )
        # The environment's proxy and CA-bundle settings, read once here rather than at every
        # request (requests does that with trust_env: a tenth of a HEAD's cost).
        self.session.trust_env = False
        self.session.proxies.update(requests.utils.get_environ_proxies(settings.registry_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            self.session.verify = ca_bundle
        concurrency = int(self.container.config.get("RESYNC_CONCURRENCY") or DEFAULT_RESYNC_CONCURRENCY)
        if concurrency < 1:
            raise ValueError(f"RESYNC_CONCURRENCY must be a positive whole number, not {concurrency}")
        # Kept alive: one connection for each worker and each of a resync pass's requests.
        adapter = HTTPAdapter(pool_maxsize=max(10, settings.max_workers + concurrency))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.client = RegistryClient(self.session, settings.registry_url, settings.registry_timeout, concurrency)

    def stop(self) -> None:
        self.session.close()

    def kill(self) -> None:
        self.session.close()

    def get_dependency(self, worker_ctx: Any) -> RegistryClient:
        return self.client


# nameko-sqlalchemy's provider on an engine tuned for the database (see ``shared.runtime.db``).
CatalogDatabase = Database


class CatalogSettings(DependencyProvider):
    """The catalog's settings (``catalog.settings``), read once at start: a missing or bad value
    stops the service before it takes any work."""

    def setup(self) -> None:
        self.settings = settings_of(self.container, load_settings)

    def get_dependency(self, worker_ctx: Any) -> Settings:
        return self.settings
