"""The library mirror's RPC arguments in (each error naming its argument) and answers out."""

import re
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from catalog.mirror.selection import RangeError, parse_range
from catalog.schemas import StrictBoolean, _row_id
from shared.contracts.errors import InvalidReference
from shared.contracts.reference import PATH_COMPONENT, validate_path_component, validate_tag
from shared.contracts.schemas import StrictInteger

# host or IPv4 address, with an optional port: where skopeo goes (no scheme, no path).
REGISTRY_HOST = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*(?::[0-9]{1,5})?"
)
CREDENTIAL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_TAGS = 1000
MAX_NEWEST = 1000


def _registry(value: str) -> None:
    if not REGISTRY_HOST.fullmatch(value) or len(value) > 255:
        raise ValidationError(
            "must be a registry's host[:port] such as 'docker.io' or '127.0.0.1:5001' (no scheme, no path)"
        )
    port = value.rpartition(":")[2] if ":" in value else None
    if port is not None and not 0 < int(port) < 65536:
        raise ValidationError(f"has port {port}, outside 1-65535")


def _upstream_repository(value: str) -> None:
    parts = value.split("/")
    if len(value) > 255 or not all(PATH_COMPONENT.fullmatch(part) for part in parts):
        raise ValidationError("must be the upstream's repository path, such as 'library/nginx' (lowercase components)")


def _library_name(value: str) -> None:
    """The name under ``library/``: one path component."""
    if len(value) > 128:
        raise ValidationError(f"must be at most 128 characters, got {len(value)}")
    try:
        validate_path_component(value, "name")
    except InvalidReference as exc:
        raise ValidationError(str(exc)) from exc


def _tag(value: str) -> None:
    try:
        validate_tag(value)
    except InvalidReference as exc:
        raise ValidationError(str(exc)) from exc


def _credential(value: str) -> None:
    if not CREDENTIAL_NAME.fullmatch(value):
        raise ValidationError("must be a name in the credentials file (letters, digits, . _ -; at most 64)")


def _range(value: str) -> None:
    try:
        parse_range(value)
    except RangeError as exc:
        raise ValidationError(str(exc)) from exc


def _glob(value: str) -> None:
    if not re.fullmatch(r"[\w.*?\[\]!-]{1,128}", value, re.ASCII):
        raise ValidationError("must be a glob of tag characters with * ? [ ] (at most 128), such as '1.*-alpine'")


def _text_field(validator: Any, required: bool = False) -> fields.String:
    messages: dict[str, Any] = {"invalid": "must be a string", "required": "is required", "null": "is required"}
    if required:
        return fields.String(required=True, validate=validator, error_messages=messages)
    return fields.String(
        load_default=None, allow_none=True, validate=validator, error_messages={"invalid": "must be a string or null"}
    )


class SourceName(Schema):
    name = _text_field(_library_name, required=True)


class SourceIn(SourceName):
    """``set_library_source``'s arguments. The source takes the union of ``tags`` and of what its
    rule (``pattern``, ``versions``, ``newest``) selects (``catalog.mirror.selection``); at least
    one of them, so that a source never means "every tag the upstream has"."""

    registry = _text_field(_registry, required=True)
    repository = _text_field(_upstream_repository, required=True)
    tags = fields.List(
        fields.String(validate=_tag, error_messages={"invalid": "must be a string"}),
        load_default=list,
        validate=validate.Length(max=MAX_TAGS, error="must list at most {max} tags"),
        error_messages={"invalid": "must be a list of tags"},
    )
    pattern = _text_field(_glob)
    versions = _text_field(_range)
    newest = StrictInteger(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1, max=MAX_NEWEST, error="must be from {min} to {max}, got {input}"),
        error_messages={"invalid": "must be an integer or null"},
    )
    follow_removals = StrictBoolean(load_default=False)
    enabled = StrictBoolean(load_default=True)
    insecure = StrictBoolean(load_default=False)
    credential = _text_field(_credential)

    @validates_schema
    def _selects_something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("tags") and all(data.get(key) is None for key in ("pattern", "versions", "newest")):
            raise ValidationError("give tags, or a pattern, versions or newest: a source never takes every tag", "tags")


class SyncArgs(Schema):
    source = _text_field(_library_name)
    wait = StrictBoolean(load_default=False)


class SyncQuery(Schema):
    sync_id = _row_id(load_default=None, allow_none=True)
    items = StrictBoolean(load_default=True)


class SourceOut(Schema):
    name = fields.String()
    library_repository = fields.String()
    registry = fields.String()
    repository = fields.String()
    tags = fields.List(fields.String())
    pattern = fields.String(allow_none=True)
    versions = fields.String(allow_none=True)
    newest = fields.Integer(allow_none=True)
    follow_removals = fields.Boolean()
    enabled = fields.Boolean()
    insecure = fields.Boolean()
    credential = fields.String(allow_none=True)
    created_at = fields.DateTime(format="iso")
    updated_at = fields.DateTime(format="iso")
    updated_by = fields.String(allow_none=True)


class SyncItemOut(Schema):
    source = fields.String()
    tag = fields.String()
    digest = fields.String(allow_none=True)
    status = fields.String()
    attempts = fields.Integer()
    error = fields.String(allow_none=True)
    seconds = fields.Float(allow_none=True)
    finished_at = fields.DateTime(format="iso", allow_none=True)


class SyncOut(Schema):
    sync_id = fields.Integer()
    source = fields.String(allow_none=True)
    trigger = fields.String()
    status = fields.String()
    started_at = fields.DateTime(format="iso")
    finished_at = fields.DateTime(format="iso", allow_none=True)
    sources = fields.Dict()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    items = fields.List(fields.Nested(SyncItemOut), allow_none=True)
    error = fields.String(allow_none=True)
