"""RPC arguments in, checked for shape; each error names its argument.

The spec of a deployment is checked field by field in ``deployer.spec``; results are plain dicts
built in ``deployer.views``.
"""

from typing import Any

from marshmallow import Schema, fields, validate

from shared.contracts import schemas as shared_schemas
from shared.contracts.schemas import Paging, StrictInteger, validate_tenant_id

REQUIRED: dict[str, Any] = {"null": "is required", "required": "is required"}


class Tenant(Schema):
    tenant_id = fields.String(
        required=True, validate=validate_tenant_id, error_messages=dict(REQUIRED, invalid="must be a string")
    )


class DeploymentRef(Tenant):
    # marshmallow's UUID field reports a value that is not a UUID as "invalid_uuid".
    deployment_id = fields.UUID(
        required=True,
        error_messages=dict(
            REQUIRED, invalid="must be a deployment ID (a UUID)", invalid_uuid="must be a deployment ID (a UUID)"
        ),
    )


class CreateArgs(Tenant):
    spec = fields.Dict(required=True, error_messages=dict(REQUIRED, invalid="must be a mapping of spec fields"))


class UpdateArgs(DeploymentRef):
    changes = fields.Dict(required=True, error_messages=dict(REQUIRED, invalid="must be a mapping of spec fields"))


class AutoDeployArgs(DeploymentRef):
    policy = fields.Raw(required=True, allow_none=False, error_messages=REQUIRED)  # syntax: deployer.policy


class ScaleArgs(DeploymentRef):
    replicas = fields.Raw(required=True, allow_none=False, error_messages=REQUIRED)  # range: deployer.spec


class RollbackArgs(DeploymentRef):
    # At most a 64-bit integer, what a database compares (SQLite overflowed in the query on more).
    revision = StrictInteger(
        load_default=None,
        allow_none=True,
        error_messages={"invalid": "must be an integer"},
        validate=validate.Range(min=1, max=2**63 - 1, error="must be between 1 and 2**63 - 1, got {input}"),
    )


class TenantPage(Tenant, Paging):
    pass


class RevisionPage(DeploymentRef, Paging):
    pass


def load_args(schema_cls: type[Schema], **arguments: Any) -> dict[str, Any]:
    """Load RPC arguments; ``InvalidRequest`` names each bad argument and why (``shared.contracts.schemas``)."""
    loaded = shared_schemas.load_args(schema_cls, **arguments)
    if "deployment_id" in loaded:
        loaded["deployment_id"] = str(loaded["deployment_id"])
    return loaded
