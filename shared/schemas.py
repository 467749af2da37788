"""RPC argument pieces that more than one service's ``schemas`` uses (event contracts are in
``shared.events``): a strict integer field and the paging arguments of every listing."""
from marshmallow import Schema, fields, validate

MAX_PAGE_SIZE = 200


class StrictInteger(fields.Integer):
    """An int and nothing else: not "5", not 5.0 (marshmallow already refuses True)."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)


class Paging(Schema):
    """``page`` (from 1) and ``page_size`` (1 to ``MAX_PAGE_SIZE``), 1 and 50 when left out."""
    page = StrictInteger(load_default=1, error_messages={"invalid": "must be an integer"},
                         validate=validate.Range(min=1, error="must be 1 or more, got {input}"))
    page_size = StrictInteger(
        load_default=50, error_messages={"invalid": "must be an integer"},
        validate=validate.Range(min=1, max=MAX_PAGE_SIZE, error="must be from {min} to {max}, got {input}"))
