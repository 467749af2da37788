"""Lists over RPC, written once: ``{"items": [...], "total": n, "page": p, "page_size": s}``.

The contract (``../shared/design.md``) pages by number: ``page`` from 1, ``page_size`` rows a
page, ``total`` the rows the whole query has. Arguments are checked by each service's schemas
(``shared.contracts.schemas.Paging``) before they get here.
"""

from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

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
