"""Who may read and change which repository.

A tenant owns the namespace named by its tenant ID. The public library (``library``) is
readable by every tenant and by anonymous callers (``tenant_id=None``) and is read-only over
RPC: it is curated by operators, who push to and delete from the registry directly. Only its
description and overview are set over RPC, by platform admins (``describable_repository``).

A repository outside the caller's reach is ``Forbidden`` whether it exists or not, so that
probing another tenant's names tells nothing.
"""

from shared.contracts.errors import Forbidden
from shared.contracts.reference import PUBLIC_NAMESPACE, parse_repository


def _caller(tenant_id: str | None) -> str:
    return f"tenant {tenant_id!r}" if tenant_id is not None else "an anonymous caller"


def readable_repository(tenant_id: str | None, repository: str) -> tuple[str, str]:
    """Parse ``repository`` and check the caller may read it; returns ``(namespace, name)``."""
    namespace, name = parse_repository(repository)
    if namespace != PUBLIC_NAMESPACE and namespace != tenant_id:
        raise Forbidden(f"{_caller(tenant_id)} may not read {repository!r}: it belongs to tenant {namespace!r}")
    return namespace, name


def writable_repository(tenant_id: str | None, repository: str) -> tuple[str, str]:
    """Parse ``repository`` and check the caller may change it; returns ``(namespace, name)``."""
    namespace, name = parse_repository(repository)
    if namespace == PUBLIC_NAMESPACE:
        raise Forbidden(f"{repository!r} is in the public library, which is read-only over RPC")
    if namespace != tenant_id:
        raise Forbidden(f"{_caller(tenant_id)} may not change {repository!r}: it belongs to tenant {namespace!r}")
    return namespace, name


def describable_repository(tenant_id: str | None, repository: str, admin: bool) -> tuple[str, str]:
    """Parse ``repository`` and check the caller may set its description and overview: a platform
    admin (``admin``) a library repository, the tenant its own; returns ``(namespace, name)``."""
    namespace, name = parse_repository(repository)
    if namespace == PUBLIC_NAMESPACE:
        if not admin:
            raise Forbidden(f"only a platform admin describes {repository!r}: it is in the public library")
        return namespace, name
    return writable_repository(tenant_id, repository)
