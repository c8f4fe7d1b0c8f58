"""Events published by the volunteers service. Ids, kinds, dates, counts and
minutes only: never a name, a place or what was done (free text)."""
from marshmallow import Schema, fields, validate

GROUP_CREATED = "group_created"
SESSION_HELD = "session_held"
SERVICE_RECORDED = "service_recorded"

GROUP_KINDS = ("dance", "sport", "art", "music", "other")
SESSION_KINDS = ("rehearsal", "practice", "performance", "match")
SOURCES = ("patrol", "session", "other")


class GroupCreated(Schema):
    group_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(GROUP_KINDS))
    leader_id = fields.String(required=True, allow_none=True)
    helper_ids = fields.List(fields.String(), required=True)


class SessionHeld(Schema):
    session_id = fields.String(required=True)
    group_id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(SESSION_KINDS))
    held_on = fields.String(required=True)  # YYYY-MM-DD, the community's date
    duration_minutes = fields.Integer(required=True)
    participants = fields.Integer(required=True)  # a count of residents, never who
    leader_id = fields.String(required=True)
    helper_ids = fields.List(fields.String(), required=True)


class ServiceRecorded(Schema):
    """A member's service counted, or a patrol's recounted after a correction
    (the same record_id with its new minutes)."""
    record_id = fields.String(required=True)
    member_id = fields.String(required=True)
    source = fields.String(required=True, validate=validate.OneOf(SOURCES))
    served_on = fields.String(required=True)  # YYYY-MM-DD, the community's date
    minutes = fields.Integer(required=True)


SCHEMAS = {
    GROUP_CREATED: GroupCreated,
    SESSION_HELD: SessionHeld,
    SERVICE_RECORDED: ServiceRecorded,
}
