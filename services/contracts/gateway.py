"""Events published by the gateway (accounts). No names or phone numbers."""
from marshmallow import Schema, fields

MEMBER_REGISTERED = "member_registered"
MEMBER_UPDATED = "member_updated"


class MemberRegistered(Schema):
    member_id = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    party_member = fields.Boolean(required=True)
    compound = fields.String(required=True, allow_none=True)


class MemberUpdated(MemberRegistered):
    """The account as it is now, after the office changed it; `active` false: disabled."""
    active = fields.Boolean(required=True)


SCHEMAS = {
    MEMBER_REGISTERED: MemberRegistered,
    MEMBER_UPDATED: MemberUpdated,
}
