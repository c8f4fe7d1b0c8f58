"""The notifications service's RPC output."""
from urllib.parse import urlsplit

from marshmallow import Schema, ValidationError, fields, validate

from services.common.pagination import page_of
from services.common.schemas import UtcDateTime
from services.contracts.notifications import AlertRef
from services.notifications.domain import KINDS


class AlertSchema(Schema):
    id = fields.String()
    kind = fields.String()
    message = fields.String(metadata={
        "description": "What happened and where, in words, Chinese first then English: an incident's compound, "
                       "category and severity; a case's compound and categories; a referral's agency, benefit "
                       "and deadline; a follow-up's compound and days since the last visit."})
    compound = fields.String(allow_none=True, metadata={"description": "Where, when the event names a compound."})
    ref = fields.Nested(AlertRef)
    created_at = UtcDateTime()
    acked_at = UtcDateTime(allow_none=True)


AlertListSchema = page_of(AlertSchema)


class QuietHoursSchema(Schema):
    start = fields.String(required=True, validate=validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z",
                                                                  error="A local time, HH:MM."))
    end = fields.String(required=True, validate=validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z",
                                                                error="A local time, HH:MM."))


def no_credentials(url: str):
    # They would be sent to the receiver as Basic auth, and stored here in clear.
    try:
        netloc = urlsplit(url).netloc
    except ValueError:  # not a URL: the field's own check says so
        return
    if "@" in netloc:
        raise ValidationError("A webhook URL may not carry credentials (user:password@).")


class WebhookSetSchema(Schema):
    # Where it leads (public addresses only, https unless the operator allows http) is checked by
    # services/notifications/outbound.py when the webhook is set, and at each delivery.
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     validate=[validate.Length(max=500), no_credentials])
    # Per alert kind, whether it goes to the webhook too (unlisted kinds: yes).
    kinds = fields.Dict(keys=fields.String(validate=validate.OneOf(KINDS)), values=fields.Boolean(),
                        load_default=dict)
    quiet_hours = fields.Nested(QuietHoursSchema, load_default=None, allow_none=True)
    rotate_secret = fields.Boolean(load_default=False, load_only=True)


class WebhookSchema(Schema):
    url = fields.String()
    kinds = fields.Dict(keys=fields.String(), values=fields.Boolean())
    quiet_hours = fields.Nested(QuietHoursSchema, allow_none=True)
    # Shown when the webhook is first set, or the secret rotated: keep it, it signs every body.
    secret = fields.String(allow_none=True, metadata={
        "description": "A Standard Webhooks secret (whsec_ and base64), shown once: verify each delivery's "
                       "webhook-signature with it (e.g. the standardwebhooks library)."})
