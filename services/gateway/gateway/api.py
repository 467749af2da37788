"""The JSON API under ``/api/v1/``, over the other services' RPC; the gateway keeps no data.

Every route but signing in needs a session (``gateway.sessions``), and every call it makes
carries the developer's signed identity, so the catalog and the deployer apply the developer's
rights. The tenant always comes from the session: a developer reads and changes their own; a
platform admin may also *read* another (``?tenant=``, or the namespace in a repository's path),
and describe the public library's repositories.
A repository of another tenant is answered 404, as one that does not exist.
"""

from typing import Any

from werkzeug.wrappers import Request, Response

from gateway import schemas as s
from gateway import sessions
from gateway.problems import FieldProblems
from gateway.web import GatewayRoutes, RouteDoc, json_answer, load_json, load_query, route
from shared.contracts.catalog import DeletedTagOut, RepositoryOut, TagDetailOut
from shared.contracts.errors import Conflict, Forbidden, NotFound
from shared.contracts.reference import PUBLIC_NAMESPACE
from shared.runtime.clock import iso_from_epoch
from shared.runtime.identity import Identity

V1 = "/api/v1"
REPOSITORY = V1 + "/repositories/<namespace>/<name>"
DEPLOYMENT = V1 + "/deployments/<deployment_id>"
READ_ERRORS = (400, 401, 404, 503)
# A read that takes ``?tenant=``: 403 when a developer who is not a platform admin names another.
TENANT_READ_ERRORS = (400, 401, 403, 503)
CHANGE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 503)


def read_tenant(developer: sessions.Developer, requested: str | None) -> str:
    """The tenant a listing is about: the developer's own, or the one a platform admin names."""
    if requested is not None and requested != developer.tenant:
        if not developer.admin:
            raise Forbidden("only a platform admin reads another tenant (leave tenant out for your own)")
        return requested
    if developer.tenant is None:
        raise FieldProblems(
            "tenant is required: this account belongs to no tenant",
            [{"field": "tenant", "message": "is required: this account belongs to no tenant"}],
        )
    return developer.tenant


def own_tenant(developer: sessions.Developer) -> str:
    """The tenant a change is made in: only ever the developer's own."""
    if developer.tenant is None:
        raise Forbidden(f"account {developer.account!r} belongs to no tenant: it has nothing to change here")
    return developer.tenant


def repository_scope(developer: sessions.Developer, namespace: str, name: str, write: bool = False) -> tuple[Any, str]:
    """``(tenant_id, repository)`` to ask the catalog with, for ``namespace/name``: the public
    library (read by everyone), the developer's own tenant, or (reading) any tenant for an admin.
    Another tenant's is ``NotFound``, as if it did not exist."""
    repository = f"{namespace}/{name}"
    if namespace == developer.tenant:
        return developer.tenant, repository
    if namespace == PUBLIC_NAMESPACE and not write:
        return developer.tenant, repository
    if developer.admin and not write:
        return namespace, repository
    raise NotFound(f"repository {repository!r} not found")


def describing_scope(developer: sessions.Developer, namespace: str, name: str) -> tuple[Any, str]:
    """``(tenant_id, repository)`` to set ``namespace/name``'s description with: a library one
    for a platform admin (``Forbidden`` for anyone else), otherwise as any change."""
    if namespace == PUBLIC_NAMESPACE:
        if not developer.admin:
            raise Forbidden(f"only a platform admin describes the public library's {namespace}/{name}")
        return developer.tenant, f"{namespace}/{name}"
    return repository_scope(developer, namespace, name, write=True)


def deployment_not_found(deployment_id: str) -> NotFound:
    """What another tenant's deployment is answered, word for word what an unknown ID is."""
    return NotFound(f"deployment {deployment_id} does not exist")


class ApiRoutes(GatewayRoutes):
    """The API's routes."""

    def _deployment_call(self, method: str, tenant: str, deployment_id: str, *args: Any, **kwargs: Any) -> Response:
        """``deployer.<method>(tenant, deployment_id, ...)``; another tenant's deployment (the
        deployer's ``Forbidden`` says so in its details) is answered as an unknown ID, so that its
        existence is not told. Other refusals (an image the tenant may not read) stay 403."""
        try:
            return json_answer(getattr(self.deployer, method)(tenant, deployment_id, *args, **kwargs))
        except Forbidden as refused:
            if refused.details.get("of_another_tenant"):
                raise deployment_not_found(deployment_id) from None
            raise

    # -- session -----------------------------------------------------------------------------------

    @route(
        "POST",
        V1 + "/session",
        doc=RouteDoc(
            "Sign in with the account's name and password (those of docker login)",
            "session",
            body=s.SignIn,
            response=s.SignedIn,
            status=201,
            errors=(400, 401, 403, 413, 415, 429, 503),
            public=True,
            description="Sets the session cookie (HttpOnly, SameSite=Lax) and returns the same session as "
            "`token`, for `Authorization: Bearer`. Failures are throttled per name and address (429).",
        ),
    )
    def sign_in(self, request: Request) -> Response:
        given = load_json(request, s.SignIn)
        answer = self.auth.sign_in(given["name"], given["password"], self.web.client_address(request))
        body = self._session_body(self.web.read_identity(answer["identity"]))
        body.update(token=answer["identity"], expires_in=answer["expires_in"])
        response = json_answer(body, 201)
        response.set_cookie(
            **sessions.session_cookie(answer["identity"], answer["expires_in"], self.web.settings.secure_cookie)
        )
        return response

    @route("GET", V1 + "/session", doc=RouteDoc("The signed-in session", "session", response=s.SessionOut))
    def get_session(self, request: Request) -> Response:
        developer = self._developer(request)
        return json_answer(self._session_body(developer.identity))

    @route(
        "DELETE",
        V1 + "/session",
        doc=RouteDoc(
            "Sign out: the session ends for every client holding it", "session", status=204, errors=(401, 403, 503)
        ),
    )
    def sign_out(self, request: Request) -> Response:
        developer = self._developer(request)
        self.auth.sign_out()
        self.web.ended(developer)
        response = Response(status=204)
        response.delete_cookie(sessions.COOKIE, path="/")
        return response

    def _session_body(self, identity: Identity) -> dict[str, Any]:
        return {
            "account": identity.name,
            "tenant_id": identity.tenant,
            "is_admin": identity.admin,
            "expires_at": iso_from_epoch(identity.expires_at),
            "csrf_token": sessions.csrf_token(self.web.settings.csrf_key, identity.session or ""),
            "registry": self.web.settings.registry_host,
        }

    # -- the public library ----------------------------------------------------------------------

    @route(
        "GET",
        V1 + "/library",
        doc=RouteDoc(
            "The public library's images, by name", "library", query=s.LibraryQuery, response=s.RepositoryPage
        ),
    )
    def list_library(self, request: Request) -> Response:
        self._developer(request)
        query = load_query(request, s.LibraryQuery)
        return json_answer(self.catalog.list_public_repositories(**query))

    # -- repositories and versions ---------------------------------------------------------------

    @route(
        "GET",
        V1 + "/repositories",
        doc=RouteDoc(
            "The tenant's repositories, by name",
            "repositories",
            query=s.RepositoryQuery,
            response=s.RepositoryPage,
            errors=TENANT_READ_ERRORS,
        ),
    )
    def list_repositories(self, request: Request) -> Response:
        developer = self._developer(request)
        query = load_query(request, s.RepositoryQuery)
        tenant = read_tenant(developer, query.pop("tenant"))
        return json_answer(self.catalog.list_repositories(tenant, **query))

    @route(
        "GET",
        REPOSITORY,
        doc=RouteDoc(
            "A repository (library or the tenant's): description, overview, tag count, latest tag, pull command",
            "repositories",
            response=RepositoryOut,
            errors=READ_ERRORS,
        ),
    )
    def get_repository(self, request: Request, namespace: str, name: str) -> Response:
        tenant, repository = repository_scope(self._developer(request), namespace, name)
        return json_answer(self.catalog.get_repository(tenant, repository))

    @route(
        "PATCH",
        REPOSITORY,
        doc=RouteDoc(
            "Set a repository's description and overview (the tenant's own, or the library's for a platform admin)",
            "repositories",
            body=s.RepositoryInfo,
            response=RepositoryOut,
            errors=CHANGE_ERRORS,
            description="Only the fields given change. A description is one line of at most 100 characters; "
            "an overview is Markdown of at most 25,000 characters, without raw HTML (show it in a code span "
            "or block) or `javascript:`/`data:` links: 400 names the field and why.",
        ),
    )
    def set_repository_info(self, request: Request, namespace: str, name: str) -> Response:
        tenant, repository = describing_scope(self._developer(request), namespace, name)
        given = load_json(request, s.RepositoryInfo)
        return json_answer(self.catalog.set_repository_info(tenant, repository, **given))

    @route(
        "GET",
        REPOSITORY + "/tags",
        doc=RouteDoc(
            "A repository's versions, most recently pushed first",
            "repositories",
            query=s.PageQuery,
            response=s.TagPage,
            errors=READ_ERRORS,
        ),
    )
    def list_tags(self, request: Request, namespace: str, name: str) -> Response:
        tenant, repository = repository_scope(self._developer(request), namespace, name)
        query = load_query(request, s.PageQuery)
        return json_answer(self.catalog.list_tags(tenant, repository, **query))

    @route(
        "GET",
        REPOSITORY + "/tags/<tag>",
        doc=RouteDoc(
            "One version: image ID, creator, created, pushed, digest, size, platforms, layers, other tags, "
            "pull command",
            "repositories",
            response=TagDetailOut,
            errors=READ_ERRORS,
        ),
    )
    def get_tag(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        tenant, repository = repository_scope(self._developer(request), namespace, name)
        return json_answer(self.catalog.get_tag(tenant, repository, tag))

    @route(
        "DELETE",
        REPOSITORY + "/tags/<tag>",
        doc=RouteDoc(
            "Delete a version from the registry and the catalogue",
            "repositories",
            query=s.DeleteQuery,
            response=DeletedTagOut,
            errors=CHANGE_ERRORS,
            description="The registry deletes by digest: when other tags share it, 409 names them "
            "(`sibling_tags`) and nothing is deleted; `force=true` deletes them all.",
        ),
    )
    def delete_tag(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        tenant, repository = repository_scope(self._developer(request), namespace, name, write=True)
        query = load_query(request, s.DeleteQuery)
        try:
            return json_answer(self.catalog.delete_tag(tenant, repository, tag, force=query["force"]))
        except Conflict as exc:
            siblings = exc.details.get("sibling_tags")
            if not siblings:
                raise
            raise Conflict(  # said the API's way (the catalog's message names its RPC argument)
                f"tag {tag!r} shares its digest with {', '.join(map(repr, siblings))}: the registry deletes by "
                f"digest, so deleting it removes those too; add ?force=true to delete them all",
                exc.details,
            ) from None

    @route(
        "GET",
        REPOSITORY + "/history",
        doc=RouteDoc(
            "Pushes, moves and removals of the repository's tags (or one tag's), newest first",
            "repositories",
            query=s.HistoryQuery,
            response=s.HistoryPage,
            errors=READ_ERRORS,
        ),
    )
    def list_history(self, request: Request, namespace: str, name: str) -> Response:
        tenant, repository = repository_scope(self._developer(request), namespace, name)
        query = load_query(request, s.HistoryQuery)
        return json_answer(self.catalog.list_tag_history(tenant, repository, **query))

    # -- pools and deployments -------------------------------------------------------------------

    @route(
        "GET",
        V1 + "/pools",
        doc=RouteDoc("Resource pools, their hosts and free capacity", "deployments", response=s.PoolPage),
    )
    def list_pools(self, request: Request) -> Response:
        self._developer(request)
        return json_answer(self.deployer.list_pools())

    @route(
        "GET",
        V1 + "/deployments",
        doc=RouteDoc(
            "The tenant's deployments",
            "deployments",
            query=s.TenantPageQuery,
            response=s.DeploymentPage,
            errors=TENANT_READ_ERRORS,
        ),
    )
    def list_deployments(self, request: Request) -> Response:
        developer = self._developer(request)
        query = load_query(request, s.TenantPageQuery)
        tenant = read_tenant(developer, query.pop("tenant"))
        return json_answer(self.deployer.list_deployments(tenant, **query))

    @route(
        "POST",
        V1 + "/deployments",
        doc=RouteDoc(
            "Deploy a version with start-up settings; the rollout starts at once (status pending)",
            "deployments",
            body=s.DeploymentSpec,
            response=s.DeploymentOut,
            status=201,
            errors=CHANGE_ERRORS,
        ),
    )
    def create_deployment(self, request: Request) -> Response:
        tenant = own_tenant(self._developer(request))
        spec = load_json(request, s.DeploymentSpec)
        created = self.deployer.create_deployment(tenant, spec)
        return json_answer(created, 201, {"Location": f"{V1}/deployments/{created['id']}"})

    @route(
        "GET",
        DEPLOYMENT,
        doc=RouteDoc(
            "A deployment: status, instances (host, address, state), its spec",
            "deployments",
            query=s.TenantQuery,
            response=s.DeploymentOut,
            errors=READ_ERRORS + (403,),
        ),
    )
    def get_deployment(self, request: Request, deployment_id: str) -> Response:
        developer = self._developer(request)
        tenant = read_tenant(developer, load_query(request, s.TenantQuery)["tenant"])
        return self._deployment_call("get_deployment", tenant, deployment_id)

    @route(
        "GET",
        DEPLOYMENT + "/revisions",
        doc=RouteDoc(
            "A deployment's revisions with their reason, newest first",
            "deployments",
            query=s.TenantPageQuery,
            response=s.RevisionPage,
            errors=READ_ERRORS + (403,),
        ),
    )
    def list_revisions(self, request: Request, deployment_id: str) -> Response:
        developer = self._developer(request)
        query = load_query(request, s.TenantPageQuery)
        tenant = read_tenant(developer, query.pop("tenant"))
        return self._deployment_call("list_revisions", tenant, deployment_id, **query)

    @route(
        "PATCH",
        DEPLOYMENT,
        doc=RouteDoc(
            "Update to another version or other start-up settings (a new revision, rolled out)",
            "deployments",
            body=s.DeploymentChanges,
            response=s.DeploymentOut,
            errors=CHANGE_ERRORS,
        ),
    )
    def update_deployment(self, request: Request, deployment_id: str) -> Response:
        tenant = own_tenant(self._developer(request))
        changes = load_json(request, s.DeploymentChanges)
        return self._deployment_call("update_deployment", tenant, deployment_id, changes)

    @route(
        "POST",
        DEPLOYMENT + "/scale",
        doc=RouteDoc(
            "Set the number of replicas", "deployments", body=s.Scale, response=s.DeploymentOut, errors=CHANGE_ERRORS
        ),
    )
    def scale_deployment(self, request: Request, deployment_id: str) -> Response:
        tenant = own_tenant(self._developer(request))
        replicas = load_json(request, s.Scale)["replicas"]
        return self._deployment_call("scale_deployment", tenant, deployment_id, replicas)

    @route(
        "POST",
        DEPLOYMENT + "/rollback",
        doc=RouteDoc(
            "Roll back to an earlier revision (the one before the serving one if none is named)",
            "deployments",
            body=s.Rollback,
            response=s.DeploymentOut,
            errors=CHANGE_ERRORS,
        ),
    )
    def rollback_deployment(self, request: Request, deployment_id: str) -> Response:
        tenant = own_tenant(self._developer(request))
        revision = load_json(request, s.Rollback)["revision"]
        return self._deployment_call("rollback_deployment", tenant, deployment_id, revision)

    @route(
        "PUT",
        DEPLOYMENT + "/auto-deploy",
        doc=RouteDoc(
            "Set the auto-deploy policy: which pushed versions roll out by themselves",
            "deployments",
            body=s.AutoDeploy,
            response=s.DeploymentOut,
            errors=CHANGE_ERRORS,
        ),
    )
    def set_auto_deploy(self, request: Request, deployment_id: str) -> Response:
        tenant = own_tenant(self._developer(request))
        policy = load_json(request, s.AutoDeploy)["policy"]
        return self._deployment_call("set_auto_deploy", tenant, deployment_id, policy)

    @route(
        "DELETE",
        DEPLOYMENT,
        doc=RouteDoc(
            "Remove a deployment and its containers", "deployments", response=s.DeploymentOut, errors=CHANGE_ERRORS
        ),
    )
    def delete_deployment(self, request: Request, deployment_id: str) -> Response:
        tenant = own_tenant(self._developer(request))
        return self._deployment_call("delete_deployment", tenant, deployment_id)
