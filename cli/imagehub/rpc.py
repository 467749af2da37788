"""Every RPC call the CLI makes, and the one place that turns transport failures into messages.

``Catalog`` and ``Deployer`` name the services' methods with the contract's exact signatures.
``NamekoTransport`` talks to the broker through nameko's standalone ``ClusterRpcProxy``; tests
hand the commands a fake with the same ``call``.

Typed errors from ``shared.contracts.errors`` (``NotFound``, ``Conflict``, ...) arrive as themselves because
importing that module registers them with nameko; they pass through untouched. Everything else
that can go wrong on the way becomes ``Unavailable`` (nobody answered) or ``RpcFailure`` (the
service answered with something that is not a user error), each with a message a person can act on.
"""

import re
import warnings
from collections.abc import Mapping
from typing import Any, Protocol

from amqp.exceptions import AccessRefused, AMQPError, PreconditionFailed
from kombu.exceptions import OperationalError
from nameko.exceptions import IncorrectSignature, MethodNotFound, RemoteError, RpcTimeout, UnknownService

import shared.contracts.errors  # noqa: F401  registers the typed errors so they arrive as themselves

# `make up`'s vhost; the user and password are the admin broker user's (var/secrets/amqp/admin.uri).
DEFAULT_AMQP_URI = "amqp://127.0.0.1:5672/imagehub"
DEFAULT_TIMEOUT = 10.0


class Unavailable(Exception):
    """The broker or the service could not be reached in time; the message says what to do."""


class RpcFailure(Exception):
    """The service failed in a way that is not the caller's mistake (a bug or version mismatch)."""


class Refused(Exception):
    """The broker refused this broker user the connection or the call (deploy/broker/access.yml)."""


class Transport(Protocol):
    """What the commands call the services through: ``NamekoTransport``, or a test's fake."""

    def call(self, service: str | None, method: str, *args: Any, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


class Connect(Protocol):
    """Makes the invocation's transport from the broker URI, the timeout and the signed-in
    person's identity, if any (``NamekoTransport`` itself)."""

    def __call__(self, amqp_uri: str, timeout: float, identity: str | None = None) -> Transport: ...


def mask_password(amqp_uri: str) -> str:
    """``amqp://guest:***@host/``: URIs end up in error messages and terminal scroll-back."""
    return re.sub(r"(//[^:/@]*:)[^@/]*@", r"\1***@", amqp_uri)


class NamekoTransport:
    """One ``ClusterRpcProxy`` per CLI invocation, opened on the first call, closed by ``close()``."""

    def __init__(self, amqp_uri: str, timeout: float, identity: str | None = None) -> None:
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self.identity = identity  # the signed-in person's, sent with every call
        self._cluster: Any = None  # nameko's ClusterRpcProxy, once connected
        self._proxy: Any = None

    def call(self, service: str | None, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            proxy = self._connect()
            return getattr(proxy[service], method)(*args, **kwargs)
        except RpcTimeout:
            raise Unavailable(
                f"{service} service did not answer within {self.timeout:g} s; is it running? (make up)"
            ) from None
        except UnknownService:
            # The broker knows no queue for the service: it has never been started on this broker.
            raise Unavailable(
                f"{service} service is not running (no RPC queue on the broker at "
                f"{mask_password(self.amqp_uri)}); start it with `make up`"
            ) from None
        except (MethodNotFound, IncorrectSignature) as exc:
            raise RpcFailure(
                f"{service} service does not accept {method}() as called ({exc}); "
                f"is the CLI newer than the running service?"
            ) from None
        except RemoteError as exc:
            raise RpcFailure(f"{service}.{method} failed: {exc.exc_type}: {exc.value}") from None
        except (AccessRefused, PreconditionFailed) as exc:
            from shared.runtime.identity import broker_user

            user = broker_user(self.amqp_uri) or "(no user)"
            raise Refused(
                f"the broker refused broker user {user!r} {service}.{method} at {mask_password(self.amqp_uri)}: "
                f"{getattr(exc, 'reply_text', None) or exc}"
            ) from None
        except (OSError, AMQPError, OperationalError) as exc:
            raise Unavailable(
                f"cannot reach the message broker at {mask_password(self.amqp_uri)} ({exc}); "
                f"is RabbitMQ running? (make up)"
            ) from None

    def _connect(self) -> Any:
        if self._proxy is None:
            # Imported here: `imagehub --help` and usage errors should not pay for eventlet, and
            # eventlet's deprecation banner on import is noise in a CLI's output.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
                from shared.runtime.identity import IDENTITY_KEY, IdentifiedClusterRpcProxy

            context = {IDENTITY_KEY: self.identity} if self.identity else None
            cluster = IdentifiedClusterRpcProxy({"AMQP_URI": self.amqp_uri}, context_data=context, timeout=self.timeout)
            self._proxy = cluster.start()
            self._cluster = cluster
        return self._proxy

    def close(self) -> None:
        if self._cluster is not None:
            try:
                self._cluster.stop()
            except Exception:  # noqa: BLE001, S110  the answer is already in hand; a broken close changes nothing
                pass
            self._cluster = self._proxy = None


class _Service:
    """The methods of one service, called through the invocation's transport."""

    service: str | None = None

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._transport.call(self.service, method, *args, **kwargs)


class Auth(_Service):
    """The auth service's methods the CLI uses."""

    service = "auth"

    def sign_in(self, name: str, password: str) -> dict[str, Any]:
        return self._call("sign_in", name, password)

    def sign_out(self) -> dict[str, Any]:
        return self._call("sign_out")


class Catalog(_Service):
    """The catalog service's RPC methods, with the contract's signatures (see docs/cli.md)."""

    service = "catalog"

    def list_public_repositories(self, query: str | None = None, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        return self._call("list_public_repositories", query=query, page=page, page_size=page_size)

    def list_repositories(
        self,
        tenant_id: str,
        query: str | None = None,
        page: int = 1,
        page_size: int = 50,
        ownbase: bool | None = None,
    ) -> dict[str, Any]:
        return self._call("list_repositories", tenant_id, query=query, page=page, page_size=page_size, ownbase=ownbase)

    def get_repository(self, tenant_id: str | None, repository: str) -> dict[str, Any]:
        return self._call("get_repository", tenant_id, repository)

    def list_tags(self, tenant_id: str | None, repository: str, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        return self._call("list_tags", tenant_id, repository, page=page, page_size=page_size)

    def get_tag(self, tenant_id: str | None, repository: str, tag: str) -> dict[str, Any]:
        return self._call("get_tag", tenant_id, repository, tag)

    def delete_tag(self, tenant_id: str, repository: str, tag: str, force: bool = False) -> dict[str, Any]:
        return self._call("delete_tag", tenant_id, repository, tag, force=force)

    def set_repository_info(
        self, tenant_id: str | None, repository: str, description: str | None = None, overview: str | None = None
    ) -> dict[str, Any]:
        return self._call("set_repository_info", tenant_id, repository, description=description, overview=overview)

    def parse_reference(self, reference: str) -> dict[str, Any]:
        return self._call("parse_reference", reference)

    def list_set_aside_events(self, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        return self._call("list_set_aside_events", page=page, page_size=page_size)

    def list_dead_letters(self, status: str | None = None, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        return self._call("list_dead_letters", status=status, page=page, page_size=page_size)

    def get_dead_letter(self, dead_letter_id: int) -> dict[str, Any]:
        return self._call("get_dead_letter", dead_letter_id)

    def replay_dead_letter(self, dead_letter_id: int) -> dict[str, Any]:
        return self._call("replay_dead_letter", dead_letter_id)

    def resync(self, namespace: str | None = None, wait: bool = False) -> dict[str, Any]:
        return self._call("resync", namespace=namespace, wait=wait)

    def get_resync(self, pass_id: int | None = None, items: bool = True) -> dict[str, Any]:
        return self._call("get_resync", pass_id=pass_id, items=items)

    def list_library_sources(self) -> dict[str, Any]:
        return self._call("list_library_sources")

    def set_library_source(self, name: str, registry: str, repository: str, **selectors: Any) -> dict[str, Any]:
        return self._call("set_library_source", name, registry, repository, **selectors)

    def remove_library_source(self, name: str) -> dict[str, Any]:
        return self._call("remove_library_source", name)

    def sync_library(self, source: str | None = None, wait: bool = False) -> dict[str, Any]:
        return self._call("sync_library", source=source, wait=wait)

    def get_library_sync(self, sync_id: int | None = None, items: bool = True) -> dict[str, Any]:
        return self._call("get_library_sync", sync_id=sync_id, items=items)


class Deployer(_Service):
    """The deployer service's RPC methods, with the contract's signatures (see docs/cli.md)."""

    service = "deployer"

    def list_pools(self) -> dict[str, Any]:
        return self._call("list_pools")

    def create_deployment(self, tenant_id: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("create_deployment", tenant_id, spec)

    def get_deployment(self, tenant_id: str, deployment_id: str) -> dict[str, Any]:
        return self._call("get_deployment", tenant_id, deployment_id)

    def list_deployments(self, tenant_id: str, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        return self._call("list_deployments", tenant_id, page=page, page_size=page_size)

    def update_deployment(self, tenant_id: str, deployment_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("update_deployment", tenant_id, deployment_id, changes)

    def set_auto_deploy(self, tenant_id: str, deployment_id: str, policy: str) -> dict[str, Any]:
        return self._call("set_auto_deploy", tenant_id, deployment_id, policy)

    def scale_deployment(self, tenant_id: str, deployment_id: str, replicas: int) -> dict[str, Any]:
        return self._call("scale_deployment", tenant_id, deployment_id, replicas)

    def rollback_deployment(self, tenant_id: str, deployment_id: str, revision: int | None = None) -> dict[str, Any]:
        return self._call("rollback_deployment", tenant_id, deployment_id, revision=revision)

    def list_revisions(self, tenant_id: str, deployment_id: str, page: int = 1, page_size: int = 50) -> dict[str, Any]:
        return self._call("list_revisions", tenant_id, deployment_id, page=page, page_size=page_size)

    def delete_deployment(self, tenant_id: str, deployment_id: str) -> dict[str, Any]:
        return self._call("delete_deployment", tenant_id, deployment_id)
