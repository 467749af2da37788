"""Lists over RPC, written once: ``{"items": [...], "total": n, "page": p, "page_size": s}``.

The contract (``../shared/design.md``) pages by number: ``page`` from 1, ``page_size`` rows a
page, ``total`` the rows the whole query has. Arguments are checked by each service's schemas
(``shared.contracts.schemas.Paging``) before they get here.
"""

import base64
import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.contracts.errors import InvalidRequest

T = TypeVar("T")


def listing(items: Sequence[Any], total: int, page: int, page_size: int) -> dict[str, Any]:
    """The list answer every RPC method that lists gives."""
    return {"items": list(items), "total": total, "page": page, "page_size": page_size}


def page_of(session: Session, stmt: sa.Select[tuple[T]], page: int, page_size: int) -> tuple[list[T], int]:
    """``(rows, total)``: one page of ``stmt`` (which must be ordered, or pages overlap) and the
    number of rows the whole statement has.

    Rows are made unique, so that a statement eager-loading a collection (``joinedload``) gives
    each entity once.
    """
    total = session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = list(session.scalars(stmt.limit(page_size).offset((page - 1) * page_size)).unique())
    return rows, total


# -- cursors ---------------------------------------------------------------------------------------
# Pages by number skip ``(page - 1) * page_size`` rows: the deeper the page, the slower, and a row
# added meanwhile shifts every later page. A list that only grows at one end (an audit trail) is
# paged by a cursor instead: the position after the last row seen, opaque to the caller.


def encode_cursor(position: Mapping[str, Any]) -> str:
    """An opaque cursor for ``position`` (JSON-safe values)."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: object, keys: Mapping[str, type]) -> dict[str, Any]:
    """The position a cursor from ``encode_cursor`` holds, each of ``keys`` of its type;
    ``InvalidRequest`` naming ``cursor`` for anything else."""
    try:
        if not isinstance(cursor, str) or len(cursor) > 512:
            raise ValueError("not a cursor this service gave")
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(position, dict) or set(position) != set(keys):
            raise ValueError("not a cursor this service gave")
        for key, kind in keys.items():
            if type(position[key]) is not kind:
                raise ValueError("not a cursor this service gave")
    except ValueError as exc:  # binascii.Error and JSONDecodeError are ValueErrors
        raise InvalidRequest(f"cursor is not one this service gave: {exc}") from None
    return position


def after_id(
    session: Session, stmt: sa.Select[tuple[T]], id_column: Any, cursor: str | None, limit: int
) -> tuple[list[T], str | None]:
    """``(rows, next_cursor)``: up to ``limit`` rows of ``stmt`` by ``id_column`` descending (newest
    first), after the cursor's position; ``next_cursor`` None at the end."""
    if cursor is not None:
        stmt = stmt.where(id_column < decode_cursor(cursor, {"id": int})["id"])
    rows = list(session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, encode_cursor({"id": getattr(rows[-1], id_column.key)}) if more and rows else None
