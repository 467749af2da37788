"""RPC arguments in (checked, each error naming its argument) and results out (JSON-safe).

Repository names, tags and tenant access are domain rules checked in ``catalog.access`` and
``shared.contracts.reference``; these schemas check only the shape of the arguments.
"""

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from catalog import curation
from shared.contracts.catalog import (  # noqa: F401 (the catalog's answers: service.py dumps with them)
    DeletedTagOut,
    HistoryOut,
    PlatformOut,
    RepositoryOut,
    TagDetailOut,
    TagOut,
)
from shared.contracts.errors import InvalidReference
from shared.contracts.reference import validate_path_component
from shared.contracts.schemas import Paging, StrictInteger, load_args, schema, validate_tenant_id, validate_text  # noqa: F401 (load_args: service.py)

# Past any row id either database hands out (PostgreSQL's INTEGER); SQLite cannot even compare a
# Python int past 64 bits with a column.
MAX_ID = 2**31 - 1
# A namespace is a path component of a repository name, which has at most 255 characters.
MAX_NAMESPACE_LENGTH = 255


class StrictBoolean(fields.Boolean):
    """A JSON boolean, so that ``force="no"`` is refused rather than read as a truthy string.

    Checked by type: marshmallow's truthy/falsy sets would take 1, 0, 0.0 and Decimal(0) too,
    since they are equal to True and False."""

    default_error_messages = {  # noqa: RUF012  marshmallow merges this class attribute
        "invalid": "must be true or false",
        "null": "must be true or false",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _tenant_field(required: bool) -> fields.String:
    messages: dict[str, Any] = {"null": "is required", "required": "is required", "invalid": "must be a string"}
    if required:
        return fields.String(required=True, validate=validate_tenant_id, error_messages=messages)
    return fields.String(load_default=None, allow_none=True, validate=validate_tenant_id, error_messages=messages)


class PublicRepositoryQuery(Paging):
    query = fields.String(
        load_default=None,
        allow_none=True,
        validate=[validate.Length(max=255, error="must be at most {max} characters"), validate_text],
        error_messages={"invalid": "must be a string"},
    )


class TenantRepositoryQuery(PublicRepositoryQuery):
    tenant_id = _tenant_field(required=True)
    ownbase = StrictBoolean(
        load_default=None, allow_none=True, error_messages={"invalid": "must be true, false or null"}
    )


class RepositoryRef(Schema):
    tenant_id = _tenant_field(required=False)
    repository = fields.Raw(required=True, allow_none=True)  # checked by shared.contracts.reference (InvalidReference)


def _checked_by(problem_of: Callable[[str], str | None]) -> Callable[[str], None]:
    """A marshmallow validator from a ``catalog.curation`` rule (the reason, or None)."""

    def validate_value(value: str) -> None:
        validate_text(value)
        problem = problem_of(value)
        if problem:
            raise ValidationError(problem)

    return validate_value


def _curated_text(problem_of: Callable[[str], str | None]) -> fields.String:
    """A text to set, or None (left out: the stored one is kept)."""
    return fields.String(
        load_default=None,
        allow_none=True,
        validate=_checked_by(problem_of),
        error_messages={"invalid": "must be a string or null"},
    )


class RepositoryInfo(RepositoryRef):
    """``set_repository_info``'s arguments: what ``catalog.curation`` allows a repository to show."""

    description = _curated_text(curation.description_problem)
    overview = _curated_text(curation.overview_problem)


class TagRef(RepositoryRef):
    tag = fields.Raw(required=True, allow_none=True)


class TagPage(RepositoryRef, Paging):
    pass


class HistoryQuery(TagPage):
    tag = fields.Raw(load_default=None)


class DeleteTag(TagRef):
    tenant_id = _tenant_field(required=True)
    force = StrictBoolean(load_default=False, error_messages={"invalid": "must be true or false"})


def validate_namespace(value: str) -> None:
    """A namespace argument: a tenant ID or ``library``."""
    if len(value) > MAX_NAMESPACE_LENGTH:
        raise ValidationError(f"must be at most {MAX_NAMESPACE_LENGTH} characters, got {len(value)}")
    try:
        validate_path_component(value, "namespace")
    except InvalidReference as exc:
        raise ValidationError(str(exc)) from exc


class ResyncArgs(Schema):
    namespace = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate_namespace,
        error_messages={"invalid": "must be a string or null"},
    )
    wait = StrictBoolean(load_default=False, error_messages={"invalid": "must be true or false"})


def _row_id(required: bool = False, **kwargs: Any) -> StrictInteger:
    """A row's ID argument: an integer from 1 to ``MAX_ID``."""
    return StrictInteger(
        required=required,
        error_messages={"invalid": "must be an integer", "required": "is required", "null": "is required"},
        validate=[
            validate.Range(min=1, error="must be 1 or more, got {input}"),
            validate.Range(max=MAX_ID, error="must be at most {max}, got {input}"),
        ],
        **kwargs,
    )


class ResyncQuery(Schema):
    pass_id = _row_id(load_default=None, allow_none=True)
    items = StrictBoolean(load_default=True, error_messages={"invalid": "must be true or false"})


# -- results (those another service shows too are the contract's: shared.contracts.catalog) ------


class DeadLetterQuery(Paging):
    status = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(("parked", "replayed"), error="must be one of {choices}"),
    )


class DeadLetterId(Schema):
    dead_letter_id = _row_id(required=True)


class DeadLetterOut(Schema):
    id = fields.Integer()
    queue = fields.String()
    source = fields.String(allow_none=True)
    event_type = fields.String(allow_none=True)
    event_id = fields.String()
    reason = fields.String()
    error = fields.String(allow_none=True)
    deliveries = fields.Integer(allow_none=True)
    deaths = fields.Integer()
    status = fields.String()
    first_dead_at = fields.DateTime(format="iso")
    last_dead_at = fields.DateTime(format="iso")
    replays = fields.Integer()
    replayed_at = fields.DateTime(format="iso", allow_none=True)
    replayed_by = fields.String(allow_none=True)


class DeadLetterDetailOut(DeadLetterOut):
    body = fields.String()
    content_type = fields.String(allow_none=True)
    headers = fields.Dict()


class SetAsideOut(Schema):
    id = fields.Integer()
    source = fields.String()
    reason = fields.String()
    source_event_id = fields.String(allow_none=True)
    action = fields.String(allow_none=True)
    repository = fields.String(allow_none=True)
    payload = fields.Raw(allow_none=True)
    at = fields.DateTime(format="iso")
    event_id = fields.String(allow_none=True)


class ResyncPassOut(Schema):
    pass_id = fields.Integer()
    namespace = fields.String(allow_none=True)
    trigger = fields.String()
    status = fields.String()
    started_at = fields.DateTime(format="iso")
    finished_at = fields.DateTime(format="iso", allow_none=True)
    repositories_total = fields.Integer(allow_none=True)
    repositories_scanned = fields.Integer()
    tags_scanned = fields.Integer()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    # Lists of JSON-safe dicts as catalog.resync builds them; null when asked without items.
    added = fields.List(fields.Dict(), allow_none=True)
    moved = fields.List(fields.Dict(), allow_none=True)
    removed = fields.List(fields.Dict(), allow_none=True)
    pending_removal = fields.List(fields.Dict(), allow_none=True)
    skipped = fields.List(fields.Dict(), allow_none=True)
    error = fields.String(allow_none=True)


def dump_page(item_schema_cls: type[Schema], listing: dict[str, Any]) -> dict[str, Any]:
    return dict(listing, items=schema(item_schema_cls, many=True).dump(listing["items"]))
