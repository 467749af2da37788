"""The client side of the Docker registry token protocol, for a ``requests`` session.

``session.auth = RegistryTokenAuth(username, password)`` and every request to a registry with
``auth.token`` on works as before: a request the registry answers ``401`` with a ``Bearer``
challenge (``realm``, ``service``, ``scope``) gets a token from the realm (HTTP Basic with the
account, or anonymous) and is sent again with it. Tokens are cached per scope until shortly
before they expire, and a request whose scope is known from its path (``/v2/<name>/manifests/…``
→ ``repository:<name>:pull``, ``PUT`` → ``pull,push``, ``DELETE`` → ``delete``; ``/v2/_catalog``
→ ``registry:catalog:*``) is sent with a cached token straight away, so a session asks the token
service once per repository and action rather than once per request.

A registry without auth never answers 401, so the same session works against both.
"""

import re
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

# A token is renewed this many seconds before it expires (clock skew, a slow request).
EXPIRY_MARGIN = 10
# Who asks, in the token service's logs (docker sends its own name the same way).
CLIENT_ID = "imagehub"
# Distribution's default when the token service says nothing (docs: "expires_in ... 60").
DEFAULT_EXPIRES_IN = 60

_PARAM = re.compile(r'(\w+)="([^"]*)"')
_REPOSITORY_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:manifests|blobs|tags)(?:/|$)")


class RegistryAuthError(Exception):
    """The token service refused the account or could not be reached; the message says which."""


def parse_challenge(header: str | None) -> dict[str, str] | None:
    """``{realm, service, scope}`` of a ``WWW-Authenticate: Bearer …`` header, or None."""
    if not header or not header.strip().lower().startswith("bearer "):
        return None
    params = dict(_PARAM.findall(header))
    return params if params.get("realm") else None


def scope_for(method: str | None, url: str | None) -> str | None:
    """The scope a request needs, as Distribution names it, or None when the path says nothing."""
    path = urlsplit(url or "").path
    if path.rstrip("/") == "/v2/_catalog":
        return "registry:catalog:*"
    match = _REPOSITORY_PATH.match(path)
    if not match:
        return None
    actions = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get((method or "").upper(), "pull,push")
    return f"repository:{match['name']}:{actions}"


class RegistryTokenAuth(AuthBase):
    """Bearer tokens for one account (or anonymous with no username), cached per scope."""

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.username, self.password = username, password
        self.timeout = timeout
        self.clock = clock
        self.refresh_token = None
        self.token_requests = 0  # how often the token service was asked (logs, tests)
        self._tokens: dict[tuple[str, str | None], tuple[str, float]] = {}  # scope -> (token, expires at)
        # registry origin -> {realm, service} of its last challenge
        self._challenge: dict[str, dict[str, str | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        origin = _origin(request.url)
        scope = scope_for(request.method, request.url)
        token = self._cached(origin, scope)
        if token:
            request.headers["Authorization"] = f"Bearer {token}"
        request.register_hook("response", self._on_response)
        return request

    def _cached(self, origin: str, scope: str | None) -> str | None:
        with self._lock:
            if scope is None or origin not in self._challenge:
                return None
            token, expires_at = self._tokens.get((origin, scope), (None, 0))
            return token if self.clock() < expires_at else None

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.status_code != 401 or getattr(response.request, "_imagehub_retried", False):
            return response
        challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
        if challenge is None:
            return response
        origin = _origin(response.request.url)
        scope = challenge.get("scope")
        token = self.fetch_token(challenge["realm"], challenge.get("service"), scope)
        with self._lock:
            self._challenge[origin] = {"realm": challenge["realm"], "service": challenge.get("service")}
            # Cached under the scope the request's path names, so the next such request is
            # sent with it at once (the challenge's scope is the same string for what we send).
            key_scope = scope_for(response.request.method, response.request.url) or scope
            self._tokens[(origin, key_scope)] = token

        # Send the request again with the token, on the connection the 401 came back on.
        _ = response.content  # consume, so the connection can be reused
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {token[0]}"
        setattr(retry, "_imagehub_retried", True)  # noqa: B010  (read back with getattr above)
        sent = response.connection.send(retry, **kwargs)
        sent.history.append(response)
        sent.request = retry
        return sent

    def fetch_token(self, realm: str, service: str | None, scope: str | None) -> tuple[str, float]:
        """``(token, expires at)`` from the token service; ``RegistryAuthError`` if refused.

        The first fetch sends the account's password (HTTP Basic) and asks for a refresh token
        (``offline_token=true``, as ``docker login`` does); later ones present the refresh token
        (OAuth2 ``POST``, ``grant_type=refresh_token``), so the token service checks the password
        (a deliberately slow hash) once per session, not once per repository. A refused refresh
        token (password changed, account disabled) falls back to the password once."""
        self.token_requests += 1
        if self.refresh_token:
            try:
                resp = requests.post(
                    realm,
                    timeout=self.timeout,
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": self.refresh_token,
                        "service": service or "",
                        "scope": scope or "",
                        "client_id": CLIENT_ID,
                    },
                )
            except requests.RequestException as exc:
                raise RegistryAuthError(f"token service {realm} unreachable: {exc}") from exc
            if resp.status_code == 200:
                return self._token_of(realm, resp)
            self.refresh_token = None
        params = {k: v for k, v in (("service", service), ("scope", scope)) if v}
        auth = None
        if self.username:
            auth = (self.username, self.password or "")
            params.update(offline_token="true", client_id=CLIENT_ID)
        try:
            resp = requests.get(realm, params=params, auth=auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryAuthError(f"token service {realm} unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise RegistryAuthError(
                f"token service {realm} refused {self.username or 'anonymous'} "
                f"for {scope or 'login'}: {resp.status_code} {resp.text[:200]}"
            )
        return self._token_of(realm, resp)

    def _token_of(self, realm: str, resp: requests.Response) -> tuple[str, float]:
        try:
            body = resp.json()
        except ValueError:
            raise RegistryAuthError(f"token service {realm} answered something that is not JSON") from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryAuthError(f"token service {realm} answered without a token")
        if body.get("refresh_token"):
            self.refresh_token = body["refresh_token"]
        expires_in = int(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        return token, self.clock() + max(expires_in - EXPIRY_MARGIN, 1)


def _origin(url: str | None) -> str:
    parts = urlsplit(url or "")
    return f"{parts.scheme}://{parts.netloc}"
