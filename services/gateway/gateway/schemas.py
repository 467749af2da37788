"""What the gateway's API takes and gives, as marshmallow schemas: requests are validated with them
(``gateway.web.load_query``/``load_json``) and the OpenAPI document is generated from them
(``gateway.openapi``). The catalog's answers are its contract's own schemas
(``shared.contracts.catalog``); the deployer's are described here."""

from marshmallow import Schema, fields, validate

from shared.contracts.catalog import HistoryOut, RepositoryOut, TagOut
from shared.contracts.schemas import MAX_PAGE, MAX_PAGE_SIZE, StrictInteger

MAX_QUERY_LENGTH = 255
MAX_NAME_LENGTH = 255
MAX_PASSWORD_LENGTH = 1024


def _page_fields() -> dict[str, fields.Field]:
    return {
        "page": fields.Integer(
            load_default=1,
            validate=validate.Range(min=1, max=MAX_PAGE),
            metadata={"description": "page number, from 1"},
        ),
        "page_size": fields.Integer(
            load_default=50,
            validate=validate.Range(min=1, max=MAX_PAGE_SIZE),
            metadata={"description": f"items per page, 1 to {MAX_PAGE_SIZE}"},
        ),
    }


class PageQuery(Schema):
    page = _page_fields()["page"]
    page_size = _page_fields()["page_size"]


class TenantQuery(Schema):
    tenant = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=128),
        metadata={"description": "a platform admin's choice of tenant to read (developers read their own)"},
    )


class TenantPageQuery(PageQuery, TenantQuery):
    pass


class LibraryQuery(PageQuery):
    query = fields.String(
        load_default=None,
        validate=validate.Length(max=MAX_QUERY_LENGTH),
        metadata={"description": "only names containing this"},
    )


class RepositoryQuery(LibraryQuery, TenantQuery):
    ownbase = fields.Boolean(
        load_default=None,
        metadata={"description": "true: only custom base images (`_ownbase`); false: none of them"},
    )


class HistoryQuery(PageQuery):
    tag = fields.String(load_default=None, validate=validate.Length(min=1, max=128))


class DeleteQuery(Schema):
    force = fields.Boolean(
        load_default=False,
        metadata={"description": "also delete the other tags on the same digest (409 names them otherwise)"},
    )


class RepositoryInfo(Schema):
    """What ``PATCH`` changes of a repository; the catalog judges the text and names what it refuses."""

    description = fields.String(
        allow_none=True,
        metadata={"description": "one line, at most 100 characters; left out or null: kept"},
    )
    overview = fields.String(
        allow_none=True,
        metadata={
            "description": "Markdown, at most 25,000 characters, without raw HTML or javascript:/data: links; "
            "left out or null: kept"
        },
    )


class SignIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=MAX_NAME_LENGTH))
    password = fields.String(required=True, validate=validate.Length(min=1, max=MAX_PASSWORD_LENGTH))


class SessionOut(Schema):
    account = fields.String()
    tenant_id = fields.String(allow_none=True)
    is_admin = fields.Boolean()
    expires_at = fields.String(allow_none=True)
    csrf_token = fields.String(metadata={"description": "send as X-CSRF-Token with a change made by cookie"})
    registry = fields.String(metadata={"description": "the registry host to docker login, push and pull"})


class SignedIn(SessionOut):
    token = fields.String(metadata={"description": "the session, for Authorization: Bearer"})
    expires_in = fields.Integer()


# -- deployments ------------------------------------------------------------------------------------


class PortSpec(Schema):
    container_port = fields.Raw(metadata={"description": "the container's port (bridge networking)"})
    host_port = fields.Raw(metadata={"description": "the host's port; 0 or none: one is handed out"})
    protocol = fields.Raw()


class HealthSpec(Schema):
    type = fields.Raw(metadata={"description": '"running" or "http"'})
    seconds = fields.Raw()
    path = fields.Raw()
    timeout = fields.Raw()
    port = fields.Raw()


def _runtime_fields() -> dict[str, fields.Field]:
    return {
        "env": fields.Dict(keys=fields.String(), values=fields.Raw(), metadata={"description": "NAME: value"}),
        "command": fields.Raw(metadata={"description": "a list of words, or one string split as a shell would"}),
        "ports": fields.List(fields.Raw(), metadata={"description": 'list of {"container_port", "host_port"}'}),
        "cpu": fields.Raw(metadata={"description": "CPUs, e.g. 0.5"}),
        "memory": fields.Raw(metadata={"description": 'bytes, or "256m", "1g"'}),
        "restart_policy": fields.Raw(metadata={"description": "no, on-failure, always, unless-stopped"}),
        "health": fields.Raw(metadata={"description": '{"type": "running", "seconds": N} or {"type": "http", ...}'}),
        "auto_deploy": fields.Raw(metadata={"description": '{"policy": "never" | "tag:v1" | "semver:^1" | ...}'}),
    }


DeploymentSpec = Schema.from_dict(
    {
        "name": fields.Raw(required=True, metadata={"description": "a DNS label, unique in the tenant"}),
        "image": fields.Raw(required=True, metadata={"description": "<namespace>/<name>:<tag>"}),
        "pool": fields.Raw(metadata={"description": "a resource pool's name (GET /pools); the default if left out"}),
        "replicas": fields.Raw(),
        **_runtime_fields(),
    },
    name="DeploymentSpec",
)

DeploymentChanges = Schema.from_dict(
    {
        "image": fields.Raw(metadata={"description": "another version: <namespace>/<name>:<tag>"}),
        "tag": fields.Raw(metadata={"description": "another tag of the same repository"}),
        **_runtime_fields(),
    },
    name="DeploymentChanges",
)


class Scale(Schema):
    replicas = StrictInteger(required=True, validate=validate.Range(min=0))


class Rollback(Schema):
    revision = StrictInteger(load_default=None, validate=validate.Range(min=1))


class AutoDeploy(Schema):
    policy = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class InstanceOut(Schema):
    id = fields.String()
    host = fields.String()
    container_id = fields.String(allow_none=True)
    container_name = fields.String(allow_none=True)
    state = fields.String()
    reason = fields.String(allow_none=True)
    revision = fields.Integer()
    address = fields.String(allow_none=True)
    ports = fields.List(fields.Dict())
    started_at = fields.String(allow_none=True)


class RevisionOut(Schema):
    revision = fields.Integer()
    image = fields.String()
    repository = fields.String()
    tag = fields.String()
    digest = fields.String()
    pull_ref = fields.String()
    spec = fields.Dict()
    status = fields.String()
    reason = fields.String(allow_none=True)
    trigger = fields.String(allow_none=True)
    rollback_to = fields.Integer(allow_none=True)
    push = fields.Dict(allow_none=True)
    created_at = fields.String(allow_none=True)
    finished_at = fields.String(allow_none=True)


class DeploymentOut(Schema):
    id = fields.String()
    tenant_id = fields.String()
    name = fields.String()
    pool = fields.String()
    image = fields.String()
    repository = fields.String()
    tag = fields.String()
    digest = fields.String()
    revision = fields.Integer()
    serving_revision = fields.Integer(allow_none=True)
    serving_image = fields.String(allow_none=True)
    serving_digest = fields.String(allow_none=True)
    replicas = fields.Integer()
    status = fields.String()
    reason = fields.String(allow_none=True)
    operation = fields.String(allow_none=True)
    spec = fields.Dict()
    auto_deploy = fields.Dict()
    pending_push = fields.Dict(allow_none=True)
    instances = fields.List(fields.Nested(InstanceOut))
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    deleted_at = fields.String(allow_none=True)


class PoolOut(Schema):
    name = fields.String()
    kind = fields.String(metadata={"description": "swarm (a Docker Swarm) or engines (a list of Docker engines)"})
    network_mode = fields.String()
    shared_network_namespace = fields.Boolean()
    default = fields.Boolean()
    hosts = fields.List(fields.Dict(), metadata={"description": "an engines pool's hosts (empty for a swarm)"})
    managers = fields.List(fields.Dict(), metadata={"description": "a swarm pool's managers"})
    nodes = fields.List(
        fields.Dict(),
        metadata={"description": "a swarm pool's nodes: state, availability, address, capacity, reserved, free"},
    )
    reachable = fields.Boolean(metadata={"description": "a swarm pool: whether a manager answered"})
    error = fields.String(allow_none=True)


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """``{"items": [item], "total", "page", "page_size"}``: every listing's shape."""
    return Schema.from_dict(
        {
            "items": fields.List(fields.Nested(item)),
            "total": fields.Integer(),
            "page": fields.Integer(),
            "page_size": fields.Integer(),
        },
        name=name,
    )


RepositoryPage = page_of(RepositoryOut, "RepositoryPage")
TagPage = page_of(TagOut, "TagPage")
HistoryPage = page_of(HistoryOut, "HistoryPage")
DeploymentPage = page_of(DeploymentOut, "DeploymentPage")
RevisionPage = page_of(RevisionOut, "RevisionPage")
PoolPage = page_of(PoolOut, "PoolPage")


class Problem(Schema):
    """RFC 9457 problem details, as every error is answered."""

    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    instance = fields.String()
    request_id = fields.String()
    errors = fields.List(
        fields.Dict(keys=fields.String(), values=fields.String()),
        metadata={"description": "400: each field at fault and why"},
    )
    sibling_tags = fields.List(fields.String(), metadata={"description": "409 on delete: the tags that would go too"})
    retry_after = fields.Integer(metadata={"description": "429 and 503: seconds to wait (also Retry-After)"})
