"""Event contracts between the services (nameko events over AMQP).

Each event type has a schema; producers build payloads with ``make_event`` (which stamps
``event_id`` and ``occurred_at`` and validates), consumers ``load`` with the same schema. Unknown
fields are ignored so that an additive change never breaks an older consumer; a breaking change
gets a new event type (``<event>_v2``).
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.contracts.errors import InvalidRequest
from shared.contracts.schemas import schema

# (source service, event type) pairs, the names other components subscribe to.
WEBHOOK = "webhook"
CATALOG = "catalog"
DEPLOYER = "deployer"

IMAGE_PUSHED = "image_pushed"
IMAGE_DELETED = "image_deleted"
EVENT_SET_ASIDE = "event_set_aside"
TAG_INDEXED = "tag_indexed"
TAG_REMOVED = "tag_removed"
DEPLOYMENT_STATUS_CHANGED = "deployment_status_changed"
# Internal to the deployer: the work of a rollout, queued in the broker so that it survives a
# restart of the deployer that accepted the request.
ROLLOUT_REQUESTED = "rollout_requested"


def utcnow_iso() -> str:
    return datetime.now(UTC).isoformat()


class EventSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    event_id = fields.UUID(required=True)
    occurred_at = fields.AwareDateTime(required=True, format="iso")


class ImagePushed(EventSchema):
    namespace = fields.String(required=True)
    repository = fields.String(required=True)  # "<namespace>/<name>"
    tag = fields.String(required=True, allow_none=True)
    digest = fields.String(required=True)
    media_type = fields.String(required=True)
    size = fields.Integer(load_default=None, allow_none=True)
    actor = fields.String(load_default=None, allow_none=True)
    request_id = fields.String(load_default=None, allow_none=True)
    source_event_id = fields.String(required=True)
    # Registry-side time of the push, when the notification had one.
    pushed_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")


class ImageDeleted(EventSchema):
    namespace = fields.String(required=True)
    repository = fields.String(required=True)
    digest = fields.String(required=True, allow_none=True)
    tag = fields.String(required=True, allow_none=True)
    actor = fields.String(load_default=None, allow_none=True)
    request_id = fields.String(load_default=None, allow_none=True)
    source_event_id = fields.String(required=True)


class EventSetAside(EventSchema):
    """A notification (or part of one) that could not be used: kept for an operator, not lost."""

    source = fields.String(required=True)  # which service set it aside
    reason = fields.String(required=True)
    source_event_id = fields.String(load_default=None, allow_none=True)
    action = fields.String(load_default=None, allow_none=True)
    repository = fields.String(load_default=None, allow_none=True)
    payload = fields.Raw(required=True)  # the original event, as received


class TagIndexed(EventSchema):
    namespace = fields.String(required=True)
    repository = fields.String(required=True)
    tag = fields.String(required=True)
    digest = fields.String(required=True)
    previous_digest = fields.String(required=True, allow_none=True)
    image_id = fields.String(required=True, allow_none=True)
    pushed_at = fields.AwareDateTime(required=True, format="iso")
    is_ownbase = fields.Boolean(required=True)
    actor = fields.String(load_default=None, allow_none=True)
    # What made the catalogue index it: "push" (a registry notification), "resync" (a
    # reconciliation pass found it) or "referee" (a notification the catalogue disagreed with, and
    # the registry named another digest); absent from events of catalogs older than the field.
    trigger = fields.String(load_default=None, allow_none=True)


class TagRemoved(EventSchema):
    namespace = fields.String(required=True)
    repository = fields.String(required=True)
    tag = fields.String(required=True)
    digest = fields.String(required=True, allow_none=True)


class DeploymentStatusChanged(EventSchema):
    deployment_id = fields.String(required=True)
    tenant_id = fields.String(required=True)
    revision = fields.Integer(required=True)
    status = fields.String(required=True)
    reason = fields.String(load_default=None, allow_none=True)


class RolloutRequested(EventSchema):
    """The deployer asks itself to bring a deployment to a revision (or remove it).

    ``operation_id`` is the deployment's lock at the time of the request: a handler that finds
    another operation holding the lock drops the event as stale.
    """

    deployment_id = fields.String(required=True)
    tenant_id = fields.String(required=True)
    revision = fields.Integer(required=True)
    operation_id = fields.String(required=True)
    action = fields.String(required=True, validate=validate.OneOf(["rollout", "delete"]))
    trigger = fields.String(load_default=None, allow_none=True)


SCHEMAS = {
    (WEBHOOK, IMAGE_PUSHED): ImagePushed,
    (WEBHOOK, IMAGE_DELETED): ImageDeleted,
    (WEBHOOK, EVENT_SET_ASIDE): EventSetAside,
    (CATALOG, TAG_INDEXED): TagIndexed,
    (CATALOG, TAG_REMOVED): TagRemoved,
    (DEPLOYER, DEPLOYMENT_STATUS_CHANGED): DeploymentStatusChanged,
    (DEPLOYER, ROLLOUT_REQUESTED): RolloutRequested,
}


def make_event(schema_cls: type[Schema], **values: Any) -> dict[str, Any]:
    """Stamp ``event_id``/``occurred_at`` (unless given), validate, and return a JSON-safe dict."""
    values.setdefault("event_id", str(uuid.uuid4()))
    values.setdefault("occurred_at", utcnow_iso())
    maker = schema(schema_cls)
    try:
        loaded = maker.load(values)
    except ValidationError as exc:
        raise InvalidRequest(f"{schema_cls.__name__} payload is invalid: {exc.messages}") from None
    return maker.dump(loaded)


def load_event(schema_cls: type[Schema], payload: Any) -> dict[str, Any]:
    """Load a received payload; ``InvalidRequest`` says what is wrong with it."""
    try:
        return schema(schema_cls).load(payload)
    except ValidationError as exc:
        raise InvalidRequest(f"{schema_cls.__name__} payload is invalid: {exc.messages}") from exc
