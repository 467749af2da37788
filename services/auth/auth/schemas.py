"""RPC arguments in (checked, each error naming its argument) and results out (JSON-safe).

Existence, conflicts and disabled tenants are domain rules (``auth.accounts``); these schemas
check only the shape of the arguments. No secret is ever dumped: accounts come out without
their hash, and a robot's secret is returned once, by the method that made it.
"""

import re
from collections.abc import Mapping
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from auth.grants import REPOSITORY_ACTIONS, ROBOT, USER
from auth.models import Account
from auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

# load_args: for service.py and auth.manage
from shared.contracts.schemas import (  # noqa: F401
    Paging,
    StrictInteger,
    load_args,
    validate_namespace,
    validate_tenant_id,
)

# A developer account: lower-case letters and digits, inner '.', '_', '@', '-' (an e-mail
# address fits). Never '+': that marks a robot.
USER_NAME = re.compile(r"[a-z0-9](?:[a-z0-9._@-]{0,62}[a-z0-9])?")
# A robot's own part of its name (``<tenant>+<name>``).
ROBOT_NAME = re.compile(r"[a-z0-9]+(?:[_-][a-z0-9]+)*")
MAX_ROBOT_NAME_LENGTH = 64
ACCOUNT_NAME_MAX = 200


class StrictBoolean(fields.Boolean):
    """A JSON boolean, so that ``is_admin="no"`` is refused rather than read as a truthy string."""

    truthy = {True}  # noqa: RUF012  marshmallow's Boolean reads these class attributes
    falsy = {False}  # noqa: RUF012


def _validate_user_name(value: str) -> None:
    if not USER_NAME.fullmatch(value):
        raise ValidationError(
            f"{value!r} must be 1-64 lower-case letters, digits, '.', '_', '@' or '-', starting and "
            f"ending with a letter or digit"
        )


def _validate_robot_name(value: str) -> None:
    if len(value) > MAX_ROBOT_NAME_LENGTH or not ROBOT_NAME.fullmatch(value):
        raise ValidationError(
            f"{value!r} must be 1-{MAX_ROBOT_NAME_LENGTH} lower-case letters and digits, separated by single '_' or '-'"
        )


def _string(required: bool = True, **kwargs: Any) -> fields.String:
    messages: dict[str, Any] = {"null": "is required", "required": "is required", "invalid": "must be a string"}
    if required:
        return fields.String(required=True, error_messages=messages, **kwargs)
    return fields.String(load_default=None, allow_none=True, error_messages=messages, **kwargs)


def _flag() -> StrictBoolean:
    return StrictBoolean(load_default=False, error_messages={"invalid": "must be true or false"})


def _password() -> fields.String:
    return _string(
        validate=validate.Length(
            min=MIN_PASSWORD_LENGTH,
            max=MAX_PASSWORD_LENGTH,
            error=f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
        )
    )


def _description() -> fields.String:
    return _string(required=False, validate=validate.Length(max=255, error="must be at most {max} characters"))


def _optional_list(item: fields.String, singular: str, hint: str = "") -> fields.List[str]:
    """A list argument that may be left out (None), and names at least one item if given."""
    return fields.List(
        item,
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, error=f"must name at least one {singular}{hint}"),
        error_messages={"invalid": f"must be a list of {singular}s"},
    )


def _actions() -> fields.List[str]:
    action = fields.String(
        validate=validate.OneOf(REPOSITORY_ACTIONS, error="{input!r} is not one of pull, push, delete"),
        error_messages={"invalid": "must be a string"},
    )
    return _optional_list(action, "action")


def _namespaces() -> fields.List[str]:
    namespace = fields.String(validate=validate_namespace, error_messages={"invalid": "must be a string"})
    return _optional_list(namespace, "namespace", " (or be null: every namespace)")


class TenantRef(Schema):
    tenant_id = _string(validate=validate_tenant_id)


class NewTenant(TenantRef):
    display_name = _description()


class TenantPage(Paging):
    pass


class AccountRef(Schema):
    # Any existing account's name (user or robot); NotFound tells the rest.
    name = _string(validate=validate.Length(min=1, max=ACCOUNT_NAME_MAX, error="must be 1 to {max} characters"))


class NewAccount(Schema):
    name = _string(validate=_validate_user_name)
    password = _password()
    tenant_id = _string(required=False, validate=validate_tenant_id)
    is_admin = _flag()
    can_delete = _flag()
    description = _description()


class NewPassword(AccountRef):
    password = _password()


class NewRobot(Schema):
    tenant_id = _string(required=False, validate=validate_tenant_id)
    name = _string(validate=_validate_robot_name)
    actions = _actions()
    catalog = _flag()
    namespaces = _namespaces()
    description = _description()


class AccountQuery(Paging):
    tenant_id = _string(required=False, validate=validate_tenant_id)
    kind = _string(required=False, validate=validate.OneOf((USER, ROBOT), error="must be 'user' or 'robot'"))


class RobotCredentialRequest(Schema):
    tenant_id = _string(validate=validate_tenant_id)
    name = _string(validate=_validate_robot_name)
    actions = _actions()
    ttl = StrictInteger(
        load_default=None,
        allow_none=True,
        error_messages={"invalid": "must be an integer"},
        validate=validate.Range(min=1, error="must be 1 or more seconds, got {input}"),
    )


# -- results -----------------------------------------------------------------------------------


class TenantOut(Schema):
    tenant_id = fields.String(attribute="id")
    display_name = fields.String()
    disabled = fields.Function(lambda tenant: tenant.disabled_at is not None)
    created_at = fields.AwareDateTime(format="iso")
    updated_at = fields.AwareDateTime(format="iso")
    disabled_at = fields.AwareDateTime(format="iso", allow_none=True)


class AccountOut(Schema):
    name = fields.String()
    kind = fields.String()
    tenant_id = fields.String(allow_none=True)
    is_admin = fields.Boolean()
    actions = fields.List(fields.String())
    catalog = fields.Boolean()
    namespaces = fields.List(fields.String(), allow_none=True)
    description = fields.String()
    disabled = fields.Function(lambda account: account.disabled_at is not None)
    created_at = fields.AwareDateTime(format="iso")
    updated_at = fields.AwareDateTime(format="iso")
    disabled_at = fields.AwareDateTime(format="iso", allow_none=True)


def dump_page(item_schema_cls: type[Schema], listing: Mapping[str, Any]) -> dict[str, Any]:
    return dict(listing, items=item_schema_cls(many=True).dump(listing["items"]))


def dump_robot(account: Account, secret: str) -> dict[str, Any]:
    """A robot and its secret: the only time the secret is shown."""
    return {"account": AccountOut().dump(account), "username": account.name, "secret": secret}
