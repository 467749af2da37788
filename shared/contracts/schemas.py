"""RPC argument pieces that more than one service's ``schemas`` uses (event contracts are in
``shared.contracts.events``): ``load_args`` and the checks and fields the argument schemas share."""

from functools import cache
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from shared.contracts.errors import InvalidReference, InvalidRequest
from shared.contracts.reference import PUBLIC_NAMESPACE, validate_path_component

MAX_PAGE_SIZE = 200
# Far past any real listing, and small enough that (page - 1) * page_size fits every database's
# OFFSET (SQLite and PostgreSQL take a 64-bit integer).
MAX_PAGE = 1_000_000
# A tenant ID is a namespace: a path component of a repository name (at most 255 characters in
# all); kept well inside every column that stores one.
MAX_TENANT_ID_LENGTH = 128


@cache
def schema(schema_cls: type[Schema], many: bool = False) -> Schema:
    """One instance per schema class (and ``many``): the suite's schemas keep no state between
    loads and dumps, and building one (its fields, its hooks) costs more than a load or dump with
    it (an ImagePushed: 165 -> 93 µs made, 136 -> 101 µs loaded, once the instance is kept)."""
    return schema_cls(many=many)


def load_args(schema_cls: type[Schema], **arguments: Any) -> dict[str, Any]:
    """Load RPC arguments; ``InvalidRequest`` names each bad argument and why."""
    try:
        return schema(schema_cls).load(arguments)
    except ValidationError as exc:
        problems = [
            _problem(name, message)
            for name, messages in sorted(exc.normalized_messages().items())
            for message in (messages if isinstance(messages, list) else [messages])
        ]
        raise InvalidRequest("; ".join(problems)) from exc


def _problem(argument: str, message: str) -> str:
    message = str(message)
    return message if message.startswith(argument) else f"{argument} {message}"


def validate_text(value: str) -> None:
    """Text every database stores and compares: no NUL character (PostgreSQL refuses one) and no
    lone UTF-16 surrogate (which JSON can carry, and no UTF-8 encoder takes)."""
    if "\x00" in value:
        raise ValidationError("must be text without NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("must be text without unpaired surrogates (not valid Unicode)") from None


def validate_namespace(value: str, what: str = "namespace") -> None:
    """A registry namespace (a tenant ID or the public library): a path component of a
    repository name, no longer than a tenant ID may be."""
    if isinstance(value, str) and len(value) > MAX_TENANT_ID_LENGTH:
        raise ValidationError(f"must be at most {MAX_TENANT_ID_LENGTH} characters, got {len(value)}")
    try:
        validate_path_component(value, what)
    except InvalidReference as exc:  # reported as this argument's error
        raise ValidationError(str(exc)) from exc


def validate_tenant_id(value: str) -> None:
    """A ``tenant_id`` argument's check: a valid namespace, and not the public library."""
    validate_namespace(value, "tenant_id")
    if value == PUBLIC_NAMESPACE:
        raise ValidationError(f"{PUBLIC_NAMESPACE!r} is the public library, not a tenant")


class StrictInteger(fields.Integer):
    """An int and nothing else: not "5", not 5.0 (marshmallow already refuses True)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)


class Paging(Schema):
    """``page`` (from 1) and ``page_size`` (1 to ``MAX_PAGE_SIZE``), 1 and 50 when left out."""

    page = StrictInteger(
        load_default=1,
        error_messages={"invalid": "must be an integer"},
        validate=[
            validate.Range(min=1, error="must be 1 or more, got {input}"),
            validate.Range(max=MAX_PAGE, error="must be at most {max}, got {input}"),
        ],
    )
    page_size = StrictInteger(
        load_default=50,
        error_messages={"invalid": "must be an integer"},
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE, error="must be from {min} to {max}, got {input}"),
    )
