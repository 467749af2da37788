"""What the catalog's browsing RPC returns, as marshmallow schemas: the catalog dumps its answers
with them, and the gateway documents (OpenAPI) and checks its API with the same classes."""

from marshmallow import Schema, fields


class RepositoryOut(Schema):
    repository = fields.String()
    namespace = fields.String()
    name = fields.String()
    is_public = fields.Boolean()
    is_ownbase = fields.Boolean()
    description = fields.String()
    overview = fields.String()
    tag_count = fields.Integer()
    latest_tag = fields.String(allow_none=True)
    pull_command = fields.String(allow_none=True)
    created_at = fields.DateTime(format="iso")
    updated_at = fields.DateTime(format="iso")


class PlatformOut(Schema):
    digest = fields.String()
    architecture = fields.String(allow_none=True)
    os = fields.String(allow_none=True)
    variant = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True)


class TagOut(Schema):
    repository = fields.String()
    tag = fields.String()
    digest = fields.String()
    image_id = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True)
    created = fields.DateTime(format="iso", allow_none=True)
    creator = fields.String(allow_none=True)
    pushed_at = fields.DateTime(format="iso")
    updated_at = fields.DateTime(format="iso")
    media_type = fields.String()
    architecture = fields.String(allow_none=True)
    os = fields.String(allow_none=True)
    variant = fields.String(allow_none=True)
    pull_command = fields.String()


class TagDetailOut(TagOut):
    layers = fields.List(fields.String())
    manifest_size = fields.Integer()
    platforms = fields.List(fields.Nested(PlatformOut), allow_none=True)
    other_tags = fields.List(fields.String())


class DeletedTagOut(Schema):
    repository = fields.String()
    tag = fields.String()
    digest = fields.String()
    deleted_tags = fields.List(fields.String())


class HistoryOut(Schema):
    repository = fields.String()
    tag = fields.String()
    action = fields.String()
    digest = fields.String(allow_none=True)
    previous_digest = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)
    at = fields.DateTime(format="iso")
    event_id = fields.String(allow_none=True)
