"""The volunteers service's RPC input and output; the gateway validates HTTP
bodies with these same schemas and documents them in its OpenAPI."""
import re

from marshmallow import Schema, ValidationError, fields, validate

from services.common.pagination import PageSchema, page_of
from services.common.schemas import ID_LENGTH, Month, UtcDateTime
from services.contracts.principal import ROLES
from services.contracts.volunteers import GROUP_KINDS, SESSION_KINDS, SOURCES

_ID = ID_LENGTH
_NAME = validate.Length(min=1, max=100)
_HELPERS = validate.Length(max=50)

class _StartsAt(fields.String):
    """HH:MM on a 24-hour clock."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", text):
            raise ValidationError("A time as HH:MM (19:30).")
        return text


class GroupCreateSchema(Schema):
    name = fields.String(required=True, validate=_NAME)
    kind = fields.String(required=True, validate=validate.OneOf(GROUP_KINDS))
    leader_id = fields.String(load_default=None, allow_none=True, validate=_ID, metadata={
        "description": "An active party member; null: none yet (the group holds no sessions until it has one)"})
    helper_ids = fields.List(fields.String(validate=_ID), load_default=list, validate=_HELPERS)


class GroupUpdateSchema(Schema):
    name = fields.String(validate=_NAME)
    leader_id = fields.String(allow_none=True, validate=_ID, metadata={"description": "null clears it"})
    helper_ids = fields.List(fields.String(validate=_ID), validate=_HELPERS)
    active = fields.Boolean()


class PersonAccountSchema(Schema):
    """What the gateway vouches for about a leader's or helper's account
    (domain.check_group_people): no name, no phone."""
    id = fields.String(required=True, validate=_ID)
    party_member = fields.Boolean(required=True, strict=True)
    active = fields.Boolean(required=True, strict=True)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True)


class GroupSchema(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    leader_id = fields.String(allow_none=True)
    helper_ids = fields.List(fields.String())
    active = fields.Boolean()
    created_at = UtcDateTime()
    leader_name = fields.String(allow_none=True, metadata={"description": "Admins only (the gateway adds it)."})
    helper_names = fields.List(fields.String(allow_none=True), metadata={"description": "Admins only."})


class GroupQuerySchema(PageSchema):
    active = fields.Boolean(load_default=None, allow_none=True)


GroupListSchema = page_of(GroupSchema)


class SessionCreateSchema(Schema):
    held_on = fields.Date(required=True)
    starts_at = _StartsAt(required=True, metadata={"description": "HH:MM, the community's time"})
    duration_minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=720))
    place = fields.String(required=True, validate=validate.Length(min=1, max=200))
    what = fields.String(required=True, validate=validate.Length(min=1, max=500),
                         metadata={"description": "What was done (a new programme rehearsed, the match's result)"})
    kind = fields.String(required=True, validate=validate.OneOf(SESSION_KINDS))
    participants = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=5000),
                                  metadata={"description": "How many residents took part: a count, never names"})
    helper_ids = fields.List(fields.String(validate=_ID), load_default=list, validate=_HELPERS,
                             metadata={"description": "The group's helpers who were there"})


class SessionSchema(SessionCreateSchema):
    id = fields.String()
    group_id = fields.String()
    leader_id = fields.String()
    recorded_by = fields.String()
    created_at = UtcDateTime()


class SessionQuerySchema(PageSchema):
    group_id = fields.String(load_default=None, validate=_ID)
    month = Month(load_default=None)


SessionListSchema = page_of(SessionSchema)


class ServiceCreateSchema(Schema):
    """Service the office records by hand (tutoring, the blackboard bulletin)."""
    member_id = fields.String(required=True, validate=_ID)
    served_on = fields.Date(required=True)
    minutes = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=1440))
    what = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ServiceRecordSchema(Schema):
    id = fields.String()
    member_id = fields.String()
    served_on = fields.Date()
    minutes = fields.Integer()
    source = fields.String(metadata={"description": "patrol, session or other"})
    source_id = fields.String(allow_none=True, metadata={"description": "The patrol's or session's id"})
    role = fields.String(allow_none=True, metadata={"description": "patrol, leader, helper; null for other"})
    what = fields.String(allow_none=True, metadata={
        "description": "other: what was done; session: the group's name; patrol: null"})
    recorded_at = UtcDateTime()
    member_name = fields.String(allow_none=True, metadata={"description": "The office's list only (the gateway)."})


class ServiceQuerySchema(PageSchema):
    member_id = fields.String(load_default=None, validate=_ID)
    month = Month(load_default=None)
    source = fields.String(load_default=None, validate=validate.OneOf(SOURCES))


ServiceListSchema = page_of(ServiceRecordSchema, "ServiceRecordListSchema")


class TotalsQuerySchema(Schema):
    month = Month(load_default=None)


class MemberTotalsSchema(Schema):
    member_id = fields.String()
    member_name = fields.String(allow_none=True)
    minutes = fields.Integer()
    patrol = fields.Integer()
    session = fields.Integer()
    other = fields.Integer()


class ServiceTotalsSchema(Schema):
    month = fields.String()
    members = fields.List(fields.Nested(MemberTotalsSchema))


class MyServiceQuerySchema(Schema):
    year = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=2000, max=2100))


class MonthTotalsSchema(Schema):
    month = fields.String()
    minutes = fields.Integer()
    patrol = fields.Integer()
    session = fields.Integer()
    other = fields.Integer()


class MyServiceSchema(Schema):
    year = fields.Integer()
    total_minutes = fields.Integer()
    months = fields.List(fields.Nested(MonthTotalsSchema))
    records = fields.List(fields.Nested(ServiceRecordSchema))
