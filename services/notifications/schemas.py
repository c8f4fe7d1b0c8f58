"""The notifications service's RPC output."""
from marshmallow import Schema, fields, validate

from services.common.pagination import page_of
from services.common.schemas import UtcDateTime
from services.contracts.notifications import AlertRef
from services.notifications.domain import MESSAGES


class AlertSchema(Schema):
    id = fields.String()
    kind = fields.String()
    message = fields.String()
    ref = fields.Nested(AlertRef)
    created_at = UtcDateTime()
    acked_at = UtcDateTime(allow_none=True)


AlertListSchema = page_of(AlertSchema)


class QuietHoursSchema(Schema):
    start = fields.String(required=True, validate=validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z",
                                                                  error="A local time, HH:MM."))
    end = fields.String(required=True, validate=validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z",
                                                                error="A local time, HH:MM."))


class WebhookSetSchema(Schema):
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     validate=validate.Length(max=500))
    # Per alert kind, whether it goes to the webhook too (unlisted kinds: yes).
    kinds = fields.Dict(keys=fields.String(validate=validate.OneOf(sorted(MESSAGES))), values=fields.Boolean(),
                        load_default=dict)
    quiet_hours = fields.Nested(QuietHoursSchema, load_default=None, allow_none=True)
    rotate_secret = fields.Boolean(load_default=False, load_only=True)


class WebhookSchema(Schema):
    url = fields.String()
    kinds = fields.Dict(keys=fields.String(), values=fields.Boolean())
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)
    # Shown when the webhook is first set, or the secret rotated: keep it, it signs every body.
    secret = fields.String(allow_none=True)
