"""The console: server-rendered pages over the same RPC as the API (issue 14).

Every page but sign-in needs a session: ``_developer`` first, so each later call carries the
developer's identity; a GET without one is sent to ``/signin?next=…`` (``gateway.web``). A
change (POST) is a form with the session's CSRF token and answers 303 (post/redirect/get); a
refused change re-renders its form with 400 (409 for a conflict) and each message next to its
field. Another tenant's repository or deployment is a 404 that shows nothing of it.

Routes: GET/POST /signin, POST /signout, GET / (public library), GET /library/<name>,
GET /repositories, GET /repositories/<ns>/<name>, GET /repositories/<ns>/<name>/tags/<tag>,
GET/POST /repositories/<ns>/<name>/tags/<tag>/delete, POST /repositories/<ns>/<name>/info,
GET/POST /deploy, GET /deployments,
GET /deployments/<id>, POST /deployments/<id>/{scale,update,rollback,auto-deploy},
GET/POST /deployments/<id>/delete, GET /how-to-push.

Stable ``data-testid`` attributes for browser tests:
    account, tenant, signout-button, flash, form-error, field-error-<field>,
    signin-form, search-form, search-input, library-list, library-item, repository-list,
    repository-item, ownbase-filter, pull-command, copy-button, repository-overview,
    describe-form, describe-submit,
    tag-list, tag-item, deploy-link, delete-link, tag-detail, image-id, digest,
    other-tags, sibling-tags, confirm-delete, deploy-form, deploy-submit,
    deployment-list, deployment-item, status-badge, instance-list, instance-item,
    revision-list, revision-item, scale-form, update-form, rollback-form, auto-deploy-form,
    remove-link, confirm-remove, refresh-link, push-instructions, tenant-id, registry-host,
    pager, pager-prev, pager-next, error-status, error-detail, error-list
"""

import hmac
import re
import secrets
import shlex
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from gateway import sessions, templating
from gateway.api import describing_scope, own_tenant, read_tenant, repository_scope
from gateway.problems import FieldProblems, field_errors
from gateway.schemas import MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH, MAX_QUERY_LENGTH
from gateway.web import PAGE, GatewayRoutes, route
from shared.contracts.errors import (
    Conflict,
    Forbidden,
    InvalidReference,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthorized,
)
from shared.contracts.reference import OWNBASE_SUFFIX, PUBLIC_NAMESPACE
from shared.contracts.schemas import MAX_PAGE

__all__ = ["PAGE", "ConsolePages"]

SIGNIN_COOKIE = "imagehub_signin"  # the sign-in form's double-submit nonce
SIGNIN_FIELD = "signin_nonce"
SIGNIN_NONCE_SECONDS = 600
MAX_NEXT_LENGTH = 2048
PAGE_SIZE = 50
TAGS_PER_PAGE = 25
IN_PROGRESS = ("pending", "pulling", "starting", "deleting")
RESTART_POLICIES = ("unless-stopped", "always", "on-failure", "no")
DEPLOY_FIELDS = (
    "name",
    "image",
    "pool",
    "replicas",
    "env",
    "ports",
    "command",
    "cpu",
    "memory",
    "restart_policy",
    "health",
    "auto_deploy",
)
MAX_FIELD_LENGTH = 8192
INFO_FIELDS = ("description", "overview")
_DNS_LABEL = re.compile(r"[^a-z0-9-]+")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- helpers, each usable without a broker (the unit tests) -----------------------------------------


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, else ``/`` (no open redirect)."""
    if not value or len(value) > MAX_NEXT_LENGTH:
        return "/"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in value) or "\\" in value:
        return "/"
    if not value.startswith("/") or value.startswith("//"):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    if parts.path in ("/signin", "/signout"):
        return "/"
    return value


def errors_by_field(errors: Iterable[Mapping[str, str]], known: Iterable[str]) -> dict[str, list[str]]:
    """``{field: [message]}`` for a form: ``ports[0].host_port`` belongs to ``ports``; a field
    the form does not have is under ``""`` (shown above the form), with its name."""
    fields = set(known)
    found: dict[str, list[str]] = {}
    last: list[str] | None = None
    for error in errors:
        name = error.get("field", "")
        top = re.split(r"[.\[]", name, maxsplit=1)[0]
        if name and top not in fields and last is not None:
            # A message holding "; " was split there: the rest ("got 'x'") belongs to the field before.
            last[-1] = f"{last[-1]}; {name} {error['message']}".rstrip()
            continue
        if top in fields:
            message = error["message"] if name == top else f"{name[len(top) :].lstrip('.')} {error['message']}"
            last = found.setdefault(top, [])
            last.append(message)
        else:
            found.setdefault("", []).append(f"{name} {error['message']}".strip())
    return found


def refusal(exc: InvalidRequest | InvalidReference, known: Iterable[str]) -> dict[str, list[str]]:
    errors = getattr(exc, "field_errors", None) or field_errors(str(exc))
    return errors_by_field(errors, known)


def page_number(request: Request, name: str = "page") -> int:
    """The ``page`` query parameter: 1 if absent; 400 unless a whole number from 1."""
    raw = request.args.get(name, "")
    if raw == "":
        return 1
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not 1 <= int(raw) <= MAX_PAGE:
        raise FieldProblems(f"{name} must be a whole number from 1 to {MAX_PAGE}", [_field(name, "must be 1 or more")])
    return int(raw)


def search_query(request: Request) -> str | None:
    raw = request.args.get("query", "").strip()
    if len(raw) > MAX_QUERY_LENGTH:
        raise FieldProblems(
            f"query must be at most {MAX_QUERY_LENGTH} characters",
            [_field("query", f"must be at most {MAX_QUERY_LENGTH} characters")],
        )
    return raw or None


def _field(name: str, message: str) -> dict[str, str]:
    return {"field": name, "message": message}


def pager(path: str, params: Mapping[str, Any], listing: Mapping[str, Any]) -> dict[str, Any]:
    """Links to the previous and next pages of a listing; ``NotFound`` past its last page."""
    page, size, total = int(listing.get("page", 1)), int(listing.get("page_size", PAGE_SIZE)), int(listing["total"])
    last = max(1, -(-total // size))
    if page > last:
        raise NotFound(f"there is no page {page}: the last is {last}")

    def link(number: int) -> str:
        query = {k: v for k, v in params.items() if v not in (None, "")}
        if number > 1:
            query["page"] = number
        return path + ("?" + urlencode(query) if query else "")

    return {
        "page": page,
        "last": last,
        "total": total,
        "prev": link(page - 1) if page > 1 else None,
        "next": link(page + 1) if page < last else None,
    }


def split_image(image: str) -> tuple[str, str, str]:
    """``(namespace, name, tag)`` of ``ns/name:tag``; ``FieldProblems`` (field ``image``) otherwise."""
    repository, colon, tag = image.rpartition(":")
    namespace, slash, name = repository.partition("/")
    if not colon or not slash or not namespace or not name or not tag or "/" in name or "/" in tag:
        raise FieldProblems(
            f"image must be <namespace>/<name>:<tag>, got {image[:200]!r}",
            [_field("image", "must be <namespace>/<name>:<tag>")],
        )
    return namespace, name, tag


def suggested_name(name: str) -> str:
    """A deployment name from an image's name: a DNS label."""
    label = _DNS_LABEL.sub("-", name.lower().removesuffix(OWNBASE_SUFFIX)).strip("-")[:50]
    return label or "app"


def deploy_form_defaults(image: str, name: str) -> dict[str, str]:
    return {
        "image": image,
        "name": suggested_name(name),
        "pool": "",
        "replicas": "1",
        "env": "",
        "ports": "",
        "command": "",
        "cpu": "",
        "memory": "",
        "restart_policy": "unless-stopped",
        "health_type": "running",
        "health_path": "/",
        "auto_deploy": "never",
    }


def deploy_spec(form: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The deployer's spec from the deploy form, and what the form itself got wrong (by field);
    what only the deployer can judge is passed on as given, for it to refuse by name."""
    errors: dict[str, list[str]] = {}
    value = {k: str(form.get(k, "")).strip() for k in (*DEPLOY_FIELDS, "health_type", "health_path")}
    for key, text in value.items():
        if len(text) > MAX_FIELD_LENGTH:
            errors.setdefault(key if key in DEPLOY_FIELDS else "health", []).append(
                f"is too long (at most {MAX_FIELD_LENGTH} characters)"
            )
    spec: dict[str, Any] = {"name": value["name"], "image": value["image"]}
    if value["pool"]:
        spec["pool"] = value["pool"]
    if value["replicas"]:
        spec["replicas"] = _number(value["replicas"], int)
    env: dict[str, str] = {}
    for number, line in enumerate(str(form.get("env", "")).splitlines(), 1):
        if not line.strip():
            continue
        key, equals, item = line.partition("=")
        if not equals or not _ENV_NAME.match(key.strip()):
            errors.setdefault("env", []).append(f"line {number} must be NAME=value")
        else:
            env[key.strip()] = item
    if env:
        spec["env"] = env
    ports = []
    for number, line in enumerate(value["ports"].splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        host, _, container = line.rpartition(":")
        if not re.fullmatch(r"[0-9]{1,5}", container) or (host and not re.fullmatch(r"[0-9]{1,5}", host)):
            errors.setdefault("ports", []).append(f"line {number} must be CONTAINER or HOST:CONTAINER (numbers)")
        else:
            ports.append({"container_port": int(container), "host_port": int(host) if host else 0})
    if ports:
        spec["ports"] = ports
    if value["command"]:
        spec["command"] = value["command"]
    if value["cpu"]:
        spec["cpu"] = _number(value["cpu"], float)
    if value["memory"]:
        spec["memory"] = value["memory"]
    if value["restart_policy"]:
        spec["restart_policy"] = value["restart_policy"]
    if value["health_type"] == "http":
        spec["health"] = {"type": "http", "path": value["health_path"] or "/"}
    elif value["health_type"] not in ("", "running"):
        errors.setdefault("health", []).append("must be 'running' or 'http'")
    if value["auto_deploy"]:
        spec["auto_deploy"] = {"policy": value["auto_deploy"]}
    return spec, errors


def describable(developer: sessions.Developer, namespace: str) -> bool:
    """Whether the repository page shows the description form: the developer's own tenant's, or
    the library's to a platform admin (``gateway.api.describing_scope``)."""
    return namespace == developer.tenant or (namespace == PUBLIC_NAMESPACE and developer.admin)


def info_form(form: Mapping[str, str]) -> dict[str, str]:
    """The description form's fields as the catalog takes them (one left out is kept): a browser
    sends a textarea's line ends as CRLF, which the catalog refuses (no control character but
    newline and tab)."""
    return {k: str(form[k]).replace("\r\n", "\n").replace("\r", "\n").strip() for k in INFO_FIELDS if k in form}


def _number(text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text  # the deployer names what is wrong with it


def human_size(size: Any) -> str:
    if not isinstance(size, int | float) or isinstance(size, bool):
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop returns


def when(value: Any) -> str:
    """An ISO timestamp as ``2026-01-02 03:04 UTC`` (what it was, if it is not one)."""
    if not value:
        return "—"
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M") + (" UTC" if moment.utcoffset() is not None else "")


def short_digest(value: Any) -> str:
    text = str(value or "")
    algorithm, colon, hexdigits = text.partition(":")
    return f"{algorithm}:{hexdigits[:12]}" if colon and len(hexdigits) > 12 else text or "—"


def status_class(status: Any) -> str:
    """A CSS class for a status (only letters and '-', whatever the deployer says)."""
    return "status-" + re.sub(r"[^a-z]+", "-", str(status or "unknown").lower()).strip("-")


templating.environment.filters.update(size=human_size, when=when, short_digest=short_digest, status_class=status_class)
templating.environment.globals.update(in_progress=IN_PROGRESS)


def page(template: str, status: int = 200, /, **context: Any) -> Response:
    """A console page (the filters above registered); context as the template wants it."""
    context.setdefault("developer", None)
    context.setdefault("csrf_token", getattr(context["developer"], "csrf_token", ""))
    context.setdefault("flash", None)
    return templating.render(template, status, **context)


def redirect(location: str) -> Response:
    return Response(status=303, headers={"Location": location})


# -- the pages ----------------------------------------------------------------------------------------


class ConsolePages(GatewayRoutes):
    """The console's routes."""

    def _page(self, developer: sessions.Developer, template: str, status: int = 200, /, **context: Any) -> Response:
        return page(template, status, developer=developer, registry_host=self.web.settings.registry_host, **context)

    # -- signing in and out ---------------------------------------------------------------------

    @route("GET", "/signin", kind=PAGE)
    def signin_form(self, request: Request) -> Response:
        return self._signin_page(safe_next(request.args.get("next")), "", status=200)

    @route("POST", "/signin", kind=PAGE)
    def signin(self, request: Request) -> Response:
        form = request.form
        target = safe_next(form.get("next"))
        name = form.get("name", "").strip()
        nonce = request.cookies.get(SIGNIN_COOKIE, "")
        given = form.get(SIGNIN_FIELD, "")
        if not nonce or not given or not hmac.compare_digest(nonce.encode(), given.encode()):
            return self._signin_page(target, name, 403, error="The sign-in form expired: please sign in again.")
        password = form.get("password", "")
        errors: dict[str, list[str]] = {}
        if not 1 <= len(name) <= MAX_NAME_LENGTH:
            errors["name"] = [f"is required (at most {MAX_NAME_LENGTH} characters)"]
        if not 1 <= len(password) <= MAX_PASSWORD_LENGTH:
            errors["password"] = [f"is required (at most {MAX_PASSWORD_LENGTH} characters)"]
        if errors:
            return self._signin_page(target, name[:MAX_NAME_LENGTH], 400, errors=errors)
        try:
            answer = self.auth.sign_in(name, password, self.web.client_address(request))
        except Unauthorized:
            return self._signin_page(target, name, 401, error="Wrong account name or password.")
        except RateLimited as exc:
            response = self._signin_page(
                target, name, 429, error=f"Too many failed attempts: try again in {exc.retry_after} seconds."
            )
            response.headers["Retry-After"] = str(exc.retry_after)
            return response
        response = redirect(target)
        settings = self.web.settings
        response.set_cookie(**sessions.session_cookie(answer["identity"], answer["expires_in"], settings.secure_cookie))
        response.delete_cookie(SIGNIN_COOKIE, path="/signin")
        return response

    def _signin_page(self, target: str, name: str, status: int, **context: Any) -> Response:
        nonce = secrets.token_urlsafe(32)
        response = page("signin.html", status, next=target, name=name, nonce=nonce, **context)
        response.set_cookie(
            SIGNIN_COOKIE,
            nonce,
            max_age=SIGNIN_NONCE_SECONDS,
            path="/signin",
            httponly=True,
            samesite="Strict",
            secure=self.web.settings.secure_cookie,
        )
        return response

    @route("POST", "/signout", kind=PAGE)
    def signout(self, request: Request) -> Response:
        developer = self._developer(request)
        self.auth.sign_out()
        self.web.ended(developer)
        response = redirect("/signin")
        response.delete_cookie(sessions.COOKIE, path="/")
        return response

    # -- the public library -------------------------------------------------------------------------

    @route("GET", "/", kind=PAGE)
    def library(self, request: Request) -> Response:
        developer = self._developer(request)
        query, number = search_query(request), page_number(request)
        listing = self.catalog.list_public_repositories(query=query, page=number, page_size=PAGE_SIZE)
        pages = pager("/", {"query": query}, listing)
        return self._page(developer, "library.html", repositories=listing["items"], query=query or "", pages=pages)

    @route("GET", "/library/<name>", kind=PAGE)
    def library_image(self, request: Request, name: str) -> Response:
        developer = self._developer(request)
        tenant, repository = repository_scope(developer, PUBLIC_NAMESPACE, name)
        return self._repository_page(request, developer, tenant, repository, "library_image.html", f"/library/{name}")

    # -- the tenant's repositories --------------------------------------------------------------

    @route("GET", "/repositories", kind=PAGE)
    def repositories(self, request: Request) -> Response:
        developer = self._developer(request)
        tenant = read_tenant(developer, None)
        query, number = search_query(request), page_number(request)
        ownbase_text = request.args.get("ownbase", "")
        if ownbase_text not in ("", "true", "false"):
            raise FieldProblems("ownbase must be true or false", [_field("ownbase", "must be true or false")])
        ownbase = None if ownbase_text == "" else ownbase_text == "true"
        listing = self.catalog.list_repositories(tenant, query=query, page=number, page_size=PAGE_SIZE, ownbase=ownbase)
        pages = pager("/repositories", {"query": query, "ownbase": ownbase_text}, listing)
        return self._page(
            developer,
            "repositories.html",
            repositories=listing["items"],
            query=query or "",
            ownbase=ownbase_text,
            pages=pages,
        )

    @route("GET", "/repositories/<namespace>/<name>", kind=PAGE)
    def repository(self, request: Request, namespace: str, name: str) -> Response:
        developer = self._developer(request)
        tenant, repository = repository_scope(developer, namespace, name)
        path = f"/repositories/{quote(namespace)}/{quote(name)}"
        return self._repository_page(request, developer, tenant, repository, "repository.html", path)

    def _repository_page(
        self,
        request: Request,
        developer: sessions.Developer,
        tenant: Any,
        repository: str,
        template: str,
        path: str,
        status: int = 200,
        info_form: Mapping[str, str] | None = None,
        info_errors: Mapping[str, list[str]] | None = None,
    ) -> Response:
        number = page_number(request)
        found = self.catalog.get_repository(tenant, repository)
        tags = self.catalog.list_tags(tenant, repository, page=number, page_size=TAGS_PER_PAGE)
        deleted = request.args.get("deleted", "")[:200]
        flash = f"Deleted {deleted}." if deleted else "Saved." if request.args.get("saved") else None
        return self._page(
            developer,
            template,
            status,
            repository=found,
            tags=tags["items"],
            pages=pager(path, {}, tags),
            writable=found.get("namespace") == developer.tenant,
            describable=describable(developer, str(found.get("namespace"))),
            info_form=info_form or {k: found.get(k) or "" for k in INFO_FIELDS},
            info_errors=info_errors or {},
            flash=flash,
        )

    @route("POST", "/repositories/<namespace>/<name>/info", kind=PAGE)
    def repository_info(self, request: Request, namespace: str, name: str) -> Response:
        """The description and overview form (``_describe.html``); back to the repository's page."""
        developer = self._developer(request)
        tenant, repository = describing_scope(developer, namespace, name)
        form = info_form(request.form)
        if namespace == PUBLIC_NAMESPACE:
            template, path = "library_image.html", f"/library/{quote(name)}"
        else:
            template, path = "repository.html", f"/repositories/{quote(namespace)}/{quote(name)}"
        try:
            self.catalog.set_repository_info(tenant, repository, **form)
        except InvalidRequest as exc:
            errors = refusal(exc, INFO_FIELDS)
            return self._repository_page(request, developer, tenant, repository, template, path, 400, form, errors)
        return redirect(f"{path}?saved=1")

    @route("GET", "/repositories/<namespace>/<name>/tags/<tag>", kind=PAGE)
    def tag(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        developer = self._developer(request)
        tenant, repository = repository_scope(developer, namespace, name)
        found = self.catalog.get_tag(tenant, repository, tag)
        return self._page(
            developer,
            "tag.html",
            namespace=namespace,
            name=name,
            tag=found,
            writable=namespace == developer.tenant,
        )

    @route("GET", "/repositories/<namespace>/<name>/tags/<tag>/delete", kind=PAGE)
    def tag_delete_form(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        developer = self._developer(request)
        tenant, repository = repository_scope(developer, namespace, name, write=True)
        found = self.catalog.get_tag(tenant, repository, tag)
        siblings = [t for t in found.get("other_tags") or [] if t != tag]
        return self._page(developer, "tag_delete.html", namespace=namespace, name=name, tag=tag, siblings=siblings)

    @route("POST", "/repositories/<namespace>/<name>/tags/<tag>/delete", kind=PAGE)
    def tag_delete(self, request: Request, namespace: str, name: str, tag: str) -> Response:
        developer = self._developer(request)
        tenant, repository = repository_scope(developer, namespace, name, write=True)
        force = request.form.get("force") == "true"
        try:
            deleted = self.catalog.delete_tag(tenant, repository, tag, force=force)
        except Conflict as exc:
            siblings = [str(t) for t in exc.details.get("sibling_tags", [])]
            return self._page(
                developer,
                "tag_delete.html",
                409,
                namespace=namespace,
                name=name,
                tag=tag,
                siblings=siblings,
                error=f"Other tags now share this version: {', '.join(siblings) or str(exc)}. Confirm again.",
            )
        gone = ", ".join(deleted.get("deleted_tags") or [tag])
        return redirect(f"/repositories/{quote(namespace)}/{quote(name)}?{urlencode({'deleted': gone})}")

    # -- deploying ----------------------------------------------------------------------------------

    @route("GET", "/deploy", kind=PAGE)
    def deploy_form(self, request: Request) -> Response:
        developer = self._developer(request)
        own_tenant(developer)
        image = request.args.get("image", "")
        namespace, name, tag = split_image(image)
        tenant, repository = repository_scope(developer, namespace, name)
        self.catalog.get_tag(tenant, repository, tag)  # NotFound for a version that is not there
        return self._deploy_page(developer, deploy_form_defaults(image, name), {}, 200)

    @route("POST", "/deploy", kind=PAGE)
    def deploy(self, request: Request) -> Response:
        developer = self._developer(request)
        tenant = own_tenant(developer)
        form = {k: request.form.get(k, "") for k in (*DEPLOY_FIELDS, "health_type", "health_path")}
        spec, errors = deploy_spec(form)
        if errors:
            return self._deploy_page(developer, form, errors, 400)
        try:
            created = self.deployer.create_deployment(tenant, spec)
        except (InvalidRequest, InvalidReference) as exc:
            return self._deploy_page(developer, form, refusal(exc, DEPLOY_FIELDS), 400)
        except (NotFound, Forbidden):
            return self._deploy_page(developer, form, {"image": ["is not a version you can deploy"]}, 404)
        except Conflict as exc:
            return self._deploy_page(developer, form, {"": [str(exc)]}, 409)
        return redirect(f"/deployments/{quote(str(created['id']))}")

    def _deploy_page(
        self, developer: sessions.Developer, form: Mapping[str, str], errors: Mapping[str, list[str]], status: int
    ) -> Response:
        try:
            pools = [p["name"] for p in self.deployer.list_pools().get("items", [])]
        except (InvalidRequest, NotFound, Forbidden):
            pools = []
        return self._page(
            developer,
            "deploy.html",
            status,
            form=form,
            errors=errors,
            pools=pools,
            restart_policies=RESTART_POLICIES,
        )

    # -- deployments --------------------------------------------------------------------------------

    @route("GET", "/deployments", kind=PAGE)
    def deployments(self, request: Request) -> Response:
        developer = self._developer(request)
        tenant = own_tenant(developer)
        listing = self.deployer.list_deployments(tenant, page=page_number(request), page_size=PAGE_SIZE)
        removed = request.args.get("removed", "")[:200]
        return self._page(
            developer,
            "deployments.html",
            deployments=listing["items"],
            pages=pager("/deployments", {}, listing),
            flash=f"Removed {removed}." if removed else None,
        )

    def _deployment(self, tenant: str, deployment_id: str) -> dict[str, Any]:
        try:
            found: dict[str, Any] = self.deployer.get_deployment(tenant, deployment_id)
        except (Forbidden, InvalidRequest):
            raise NotFound(f"deployment {deployment_id[:100]!r} not found") from None
        return found

    @route("GET", "/deployments/<deployment_id>", kind=PAGE)
    def deployment(self, request: Request, deployment_id: str) -> Response:
        developer = self._developer(request)
        tenant = own_tenant(developer)
        done = request.args.get("done", "")
        flash = {"scale": "Scaling.", "update": "Updating.", "rollback": "Rolling back.", "auto-deploy": None}
        return self._deployment_page(developer, tenant, deployment_id, 200, {}, flash=flash.get(done))

    def _deployment_page(
        self,
        developer: sessions.Developer,
        tenant: str,
        deployment_id: str,
        status: int,
        errors: Mapping[str, Mapping[str, list[str]]],
        **context: Any,
    ) -> Response:
        found = self._deployment(tenant, deployment_id)
        revisions = self.deployer.list_revisions(tenant, deployment_id, page=1, page_size=PAGE_SIZE)["items"]
        try:
            tags = [t["tag"] for t in self.catalog.list_tags(tenant, found["repository"], 1, 100)["items"]]
        except (NotFound, Forbidden, InvalidRequest, InvalidReference):
            tags = []
        return self._page(
            developer,
            "deployment.html",
            status,
            deployment=found,
            revisions=revisions,
            tags=tags,
            errors=errors,
            **context,
        )

    def _change(
        self, request: Request, deployment_id: str, form_name: str, field: str, change: Any, *args: Any
    ) -> Response:
        developer = self._developer(request)
        tenant = own_tenant(developer)
        self._deployment(tenant, deployment_id)
        try:
            change(tenant, deployment_id, *args)
        except (InvalidRequest, InvalidReference) as exc:
            errors = {form_name: refusal(exc, (field,))}
            return self._deployment_page(developer, tenant, deployment_id, 400, errors)
        except NotFound as exc:  # the deployment is there (above): what is not is the version asked for
            return self._deployment_page(developer, tenant, deployment_id, 404, {form_name: {field: [str(exc)]}})
        except Conflict as exc:
            return self._deployment_page(developer, tenant, deployment_id, 409, {form_name: {"": [str(exc)]}})
        return redirect(f"/deployments/{quote(deployment_id)}?done={form_name}")

    @route("POST", "/deployments/<deployment_id>/scale", kind=PAGE)
    def deployment_scale(self, request: Request, deployment_id: str) -> Response:
        replicas = _number(request.form.get("replicas", "").strip(), int)
        return self._change(request, deployment_id, "scale", "replicas", self.deployer.scale_deployment, replicas)

    @route("POST", "/deployments/<deployment_id>/update", kind=PAGE)
    def deployment_update(self, request: Request, deployment_id: str) -> Response:
        tag = request.form.get("tag", "").strip()[:MAX_FIELD_LENGTH]
        return self._change(request, deployment_id, "update", "tag", self.deployer.update_deployment, {"tag": tag})

    @route("POST", "/deployments/<deployment_id>/rollback", kind=PAGE)
    def deployment_rollback(self, request: Request, deployment_id: str) -> Response:
        text = request.form.get("revision", "").strip()
        revision = None if text == "" else _number(text, int)
        return self._change(request, deployment_id, "rollback", "revision", self.deployer.rollback_deployment, revision)

    @route("POST", "/deployments/<deployment_id>/auto-deploy", kind=PAGE)
    def deployment_auto_deploy(self, request: Request, deployment_id: str) -> Response:
        policy = request.form.get("policy", "").strip()[:MAX_FIELD_LENGTH]
        return self._change(
            request, deployment_id, "auto-deploy", "policy", self.deployer.set_auto_deploy, policy or "never"
        )

    @route("GET", "/deployments/<deployment_id>/delete", kind=PAGE)
    def deployment_delete_form(self, request: Request, deployment_id: str) -> Response:
        developer = self._developer(request)
        found = self._deployment(own_tenant(developer), deployment_id)
        return self._page(developer, "deployment_delete.html", deployment=found)

    @route("POST", "/deployments/<deployment_id>/delete", kind=PAGE)
    def deployment_delete(self, request: Request, deployment_id: str) -> Response:
        developer = self._developer(request)
        tenant = own_tenant(developer)
        found = self._deployment(tenant, deployment_id)
        self.deployer.delete_deployment(tenant, deployment_id)
        return redirect("/deployments?" + urlencode({"removed": found.get("name") or deployment_id}))

    # -- how to push --------------------------------------------------------------------------------

    @route("GET", "/how-to-push", kind=PAGE)
    def how_to_push(self, request: Request) -> Response:
        developer = self._developer(request)
        return self._page(developer, "how_to_push.html", ownbase_suffix=OWNBASE_SUFFIX, quoted=shlex.quote)
