"""What the engines pull with: nothing, one static account, or a robot credential of the tenant.

``PULL_CREDENTIALS`` (``DEPLOYER_PULL_CREDENTIALS``):

* ``static`` (default): ``REGISTRY_USERNAME``/``REGISTRY_PASSWORD`` for every pull, or none when
  they are empty — a registry without auth, or one account for the whole platform.
* ``robot``: with the registry's token auth on (services/auth), each deployment's images are pulled
  with a short-lived robot credential *of its tenant*, from ``auth.issue_robot_credential``: the
  registry itself then refuses to hand a tenant's deployment another tenant's private image, on
  top of the deployer's own checks. A credential is kept until ``REFRESH_MARGIN`` seconds before
  it expires, so a rollout over many hosts (or many rollouts) asks the auth service once.

A swarm pool hands the credential to Swarm, which keeps it with the service for every later pull
(a task rescheduled onto a node without the image): ``lasting`` gives one good for a stated time,
and the swarm reconciler replaces it before that time is out (``deployer.swarm``).

The auth service is asked with a standalone RPC client (its own connection and reply queue), not
a nameko ``RpcProxy``: the rollout worker's container must not wait on replies read by its own
consumer, which stops reading when its pool is full (see deployer.service).
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.runtime.identity import IdentifiedClusterRpcProxy

log = logging.getLogger(__name__)

STATIC, ROBOT = "static", "robot"
MODES = (STATIC, ROBOT)
ROBOT_NAME = "deployer"
CREDENTIAL_TTL = 600  # seconds asked for
REFRESH_MARGIN = 60  # seconds before expiry when a cached credential is no longer handed out


class CredentialsUnavailable(Exception):
    """The auth service did not give a credential; the message says why."""


class StaticCredentials:
    expires = False

    def __init__(self, auth: dict[str, str] | None) -> None:
        self.auth = auth

    def __call__(self, tenant_id: str, fresh_for: float = REFRESH_MARGIN) -> dict[str, str] | None:
        return self.auth


class RobotCredentials:
    """``credentials(tenant_id)`` -> ``{"username", "password"}`` for docker's ``auth_config``,
    good for at least ``fresh_for`` seconds more."""

    expires = True

    def __init__(self, issue: Callable[[str, str, int], Any], clock: Callable[[], float] = time.time) -> None:
        self.issue = issue  # (tenant_id, name, ttl) -> the auth RPC's answer
        self.clock = clock
        self._cache: dict[str, tuple[dict[str, str], float]] = {}
        self._lock = threading.Lock()

    def __call__(self, tenant_id: str, fresh_for: float = REFRESH_MARGIN) -> dict[str, str]:
        with self._lock:
            cached = self._cache.get(tenant_id)
            if cached and self.clock() < cached[1] - fresh_for:
                return cached[0]
        try:
            issued = self.issue(tenant_id, ROBOT_NAME, CREDENTIAL_TTL)
        except Exception as exc:  # any failure of the call: the pull cannot be authorised
            raise CredentialsUnavailable(
                f"no registry credential for tenant {tenant_id} from the auth service: {type(exc).__name__}: {exc}"
            ) from exc
        auth = {"username": issued["username"], "password": issued["password"]}
        expires = _timestamp(issued.get("expires_at")) or (self.clock() + CREDENTIAL_TTL)
        with self._lock:
            self._cache[tenant_id] = (auth, expires)
        return auth


def expire(source: Callable[..., dict[str, str] | None] | None) -> bool:
    """Whether the credentials ``source`` hands out run out (robot credentials do)."""
    return bool(getattr(source, "expires", False))


def lasting(
    source: Callable[..., dict[str, str] | None] | None,
    fallback: dict[str, str] | None,
    tenant_id: str,
    seconds: float,
    now: float,
) -> tuple[dict[str, str] | None, float | None]:
    """A credential of ``tenant_id`` good for at least ``seconds`` from ``now``, and the time until
    which it is known good (None: it does not expire). ``source``: ``rt.pull_auth`` (None: the
    ``fallback``, the static account, for every pull)."""
    if source is None:
        return fallback, None
    if not expire(source):
        return source(tenant_id), None
    return source(tenant_id, fresh_for=seconds), now + seconds


def _timestamp(value: Any) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def standalone_issuer(amqp_uri: str, timeout: float) -> Callable[[str, str, int], Any]:
    """``issue(tenant_id, name, ttl)`` through a short-lived standalone RPC client."""

    def issue(tenant_id: str, name: str, ttl: int) -> Any:

        with IdentifiedClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=timeout) as proxy:
            return proxy.auth.issue_robot_credential(tenant_id, name=name, ttl=ttl)

    return issue
