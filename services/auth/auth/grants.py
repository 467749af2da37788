"""Who may do what in the registry: the grant rules. No framework imports.

A token request names resources (``auth.scopes``); each is granted the actions the principal
may take on it, and nothing else:

* a developer account pulls and pushes in its own tenant's namespace (and deletes there if the
  account was given delete rights);
* a tenant's robot does what it was created for (pull only by default) in that namespace;
* every authenticated principal pulls ``library/*``; an anonymous request does only when the
  operator turned ``AUTH_ANONYMOUS_PULL`` on;
* a platform admin pulls, pushes and deletes everywhere and lists the registry's ``_catalog``;
* a platform robot (no tenant: the catalogue's own) does its actions in every namespace, or
  only in those it was held to and nothing elsewhere, not even the pull of ``library`` everyone
  else has (the library robot: ``library``); it lists ``_catalog`` if it was created with
  catalog access. Admins and the library robot are the ones who push to ``library``;
* nothing else: no tenant reaches another tenant's namespace; names that are not
  ``<namespace>/<name>`` (the platform's rule) and unknown resource types get nothing.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from auth.scopes import Scope
from shared.contracts.errors import InvalidReference
from shared.contracts.reference import PUBLIC_NAMESPACE, parse_repository

PULL, PUSH, DELETE, ALL = "pull", "push", "delete", "*"
REPOSITORY_ACTIONS = (PULL, PUSH, DELETE)  # canonical order of granted actions
USER_ACTIONS = (PULL, PUSH)
ROBOT_DEFAULT_ACTIONS = (PULL,)

REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"

USER, ROBOT, ANONYMOUS = "user", "robot", "anonymous"


@dataclass(frozen=True)
class Principal:
    """Who is asking: an account (user or robot), or nobody.

    ``tenant_id`` None with ``kind == ROBOT`` is a platform robot (every namespace, or only
    ``namespaces`` when that is not None).
    ``actions`` are what it may do in its own namespace(s); admins may do everything.
    """

    kind: str
    name: str | None = None
    tenant_id: str | None = None
    is_admin: bool = False
    actions: frozenset[str] = field(default_factory=frozenset)
    catalog: bool = False
    # A platform robot held to these namespaces (None: every one).
    namespaces: frozenset[str] | None = None
    # The stored account's credential generation (what a refresh token is bound to); None for
    # anonymous and for short-lived robot credentials, which get no refresh token.
    generation: int | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.kind == ANONYMOUS

    @property
    def is_platform_robot(self) -> bool:
        return self.kind == ROBOT and self.tenant_id is None


ANONYMOUS_PRINCIPAL = Principal(ANONYMOUS)


def user_actions(can_delete: bool) -> tuple[str, ...]:
    return USER_ACTIONS + ((DELETE,) if can_delete else ())


def namespace_actions(principal: Principal, namespace: str, anonymous_pull: bool = False) -> frozenset[str]:
    """The repository actions ``principal`` may take in ``namespace``."""
    if principal.is_admin:
        return frozenset(REPOSITORY_ACTIONS)
    if principal.is_anonymous:
        return frozenset({PULL}) if namespace == PUBLIC_NAMESPACE and anonymous_pull else frozenset()
    if principal.is_platform_robot:
        held = principal.namespaces is not None and namespace not in principal.namespaces
        return frozenset() if held else frozenset(principal.actions)
    allowed: set[str] = set()
    if namespace == principal.tenant_id:
        allowed |= principal.actions
    if namespace == PUBLIC_NAMESPACE:
        allowed.add(PULL)
    return frozenset(allowed)


def grant(principal: Principal, scope: Scope, anonymous_pull: bool = False) -> dict[str, Any] | None:
    """The ``access`` entry the token carries for ``scope`` (an ``auth.scopes.Scope``), or None
    when nothing of it is granted. ``*`` asked for a repository means every action, and gets
    those of them the principal has."""
    if scope.type == REPOSITORY:
        try:
            namespace, _ = parse_repository(scope.name)
        except InvalidReference:
            return None
        asked = set(REPOSITORY_ACTIONS) if ALL in scope.actions else set(scope.actions)
        allowed = namespace_actions(principal, namespace, anonymous_pull)
        actions = [action for action in REPOSITORY_ACTIONS if action in asked & allowed]
    elif scope.type == REGISTRY and scope.name == CATALOG and scope.resource_class is None:
        may_list = principal.is_admin or (principal.is_platform_robot and principal.catalog)
        actions = [ALL] if may_list and ALL in scope.actions else []
    else:
        return None
    if not actions:
        return None
    entry: dict[str, Any] = {"type": scope.type, "name": scope.name, "actions": actions}
    if scope.resource_class:
        entry["class"] = scope.resource_class
    return entry


def grant_all(principal: Principal, scopes: Iterable[Scope], anonymous_pull: bool = False) -> list[dict[str, Any]]:
    """The token's ``access`` claim for every requested scope: only what was granted."""
    return [entry for entry in (grant(principal, scope, anonymous_pull) for scope in scopes) if entry]
