"""The notifications service's RPC output."""
from marshmallow import Schema, fields

from services.common.schemas import UtcDateTime
from services.contracts.notifications import AlertRef


class AlertSchema(Schema):
    id = fields.String()
    kind = fields.String()
    message = fields.String()
    ref = fields.Nested(AlertRef)
    created_at = UtcDateTime()
    acked_at = UtcDateTime(allow_none=True)


class AlertListSchema(Schema):
    items = fields.List(fields.Nested(AlertSchema))
    next_cursor = fields.String(allow_none=True)
