"""Events published by the gateway (accounts). No names or phone numbers."""
from marshmallow import Schema, fields

MEMBER_REGISTERED = "member_registered"


class MemberRegistered(Schema):
    member_id = fields.String(required=True)
    roles = fields.List(fields.String(), required=True)
    party_member = fields.Boolean(required=True)
    compound = fields.String(required=True, allow_none=True)


SCHEMAS = {
    MEMBER_REGISTERED: MemberRegistered,
}
