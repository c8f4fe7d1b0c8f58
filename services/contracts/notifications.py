"""Events published by the notifications service."""
from marshmallow import Schema, fields

ALERT_CREATED = "alert_created"


class AlertRef(Schema):
    type = fields.String(required=True)
    id = fields.String(required=True)


class AlertCreated(Schema):
    alert_id = fields.String(required=True)
    member_id = fields.String(required=True)
    kind = fields.String(required=True)
    # What happened and where, in words (services/notifications/domain.py): for the member's own
    # inbox and stream only, so never on the live feed (not in FEED_FIELDS) nor in a log.
    message = fields.String(required=True)
    compound = fields.String(load_default=None, allow_none=True)
    ref = fields.Nested(AlertRef, required=True)
    created_at = fields.String(required=True)


SCHEMAS = {
    ALERT_CREATED: AlertCreated,
}
