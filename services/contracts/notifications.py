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
    # A fixed sentence chosen by kind: it never quotes personal data.
    message = fields.String(required=True)
    ref = fields.Nested(AlertRef, required=True)
    created_at = fields.String(required=True)


SCHEMAS = {
    ALERT_CREATED: AlertCreated,
}
