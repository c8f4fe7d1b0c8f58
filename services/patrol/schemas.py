"""The patrol service's RPC input and output; the gateway validates HTTP
bodies with these same schemas and documents them in its OpenAPI."""
from marshmallow import Schema, fields, validate

from services.common.pagination import PageSchema, page_of
from services.common.schemas import ID_LENGTH, Moment, UtcDateTime
from services.contracts.categories import category_code
from services.contracts.patrol import SEVERITIES

_ID = ID_LENGTH
_NAME = validate.Length(min=1, max=100)


class ZoneCreateSchema(Schema):
    name = fields.String(required=True, validate=_NAME)
    compounds = fields.List(fields.String(validate=_NAME), required=True, validate=validate.Length(min=1, max=50))


class TeamSchema(Schema):
    leader_id = fields.String(required=True, validate=_ID)
    member_ids = fields.List(fields.String(validate=_ID), load_default=list, validate=validate.Length(max=100))


class ZoneTeamSchema(Schema):
    """A zone's team as shown: a new zone has no leader yet (null)."""
    leader_id = fields.String(allow_none=True)
    member_ids = fields.List(fields.String())


class ZoneSchema(ZoneCreateSchema):
    id = fields.String(dump_only=True)
    team = fields.Nested(ZoneTeamSchema, dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    last_patrol_at = UtcDateTime(dump_only=True, allow_none=True)


ZoneListSchema = page_of(ZoneSchema)


class CoverageQuerySchema(Schema):
    days = fields.Float(load_default=None, allow_none=True,
                        validate=validate.Range(min=0, min_inclusive=False, max=3650))


class ZoneCoverageSchema(Schema):
    zone_id = fields.String()
    name = fields.String()
    leader_id = fields.String(allow_none=True)
    last_patrol_at = fields.String(allow_none=True)
    covered = fields.Boolean()


class CoverageSchema(Schema):
    days = fields.Float()
    zones = fields.List(fields.Nested(ZoneCoverageSchema))


class PatrolStartSchema(Schema):
    zone_id = fields.String(required=True, validate=_ID)


class PatrolFinishSchema(Schema):
    notes = fields.String(load_default="", validate=validate.Length(max=4000))


_HIDDEN = ("True when the free text ({}) is withheld from this caller (null here): only the zone's team, {} "
           "and the office read it.")


class PatrolSchema(Schema):
    id = fields.String()
    zone_id = fields.String()
    member_id = fields.String()
    started_at = UtcDateTime()
    finished_at = UtcDateTime(allow_none=True)
    notes = fields.String(allow_none=True, metadata={"description": "Null while on patrol, or when withheld."})
    free_text_hidden = fields.Boolean(metadata={
        "description": _HIDDEN.format("notes, correction_reason", "the member on patrol")})
    duration_minutes = fields.Integer(allow_none=True, metadata={
        "description": "What the patrol counts as service, in whole minutes: at most the cap (PATROL_CAP_HOURS, "
                       "4 h by default) unless the office corrected its times. Null while on patrol."})
    closed_automatically = fields.Boolean(metadata={
        "description": "Never finished by its member: closed by the service at started_at + the cap."})
    corrected_at = UtcDateTime(allow_none=True, metadata={"description": "When the office last set its times right."})
    corrected_by = fields.String(allow_none=True)
    correction_reason = fields.String(allow_none=True, metadata={"description": "Why, as the office wrote it."})


class PatrolCorrectSchema(Schema):
    """The office sets a finished patrol's times right (a forgotten patrol, a wrong tap)."""
    started_at = Moment(required=True)
    finished_at = Moment(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class PatrolQuerySchema(PageSchema):
    zone_id = fields.String(load_default=None, validate=_ID)
    member_id = fields.String(load_default=None, validate=_ID)
    active = fields.Boolean(load_default=None, allow_none=True)
    closed_automatically = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "true: only patrols the service closed (never finished by their member), for the office "
                       "to check and correct."})


PatrolListSchema = page_of(PatrolSchema)


class IncidentReportSchema(Schema):
    zone_id = fields.String(required=True, validate=_ID)
    compound = fields.String(required=True, validate=_NAME)
    category = category_code(required=True)
    description = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))


class IncidentResolveSchema(Schema):
    resolution = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class IncidentSchema(IncidentReportSchema):
    description = fields.String(dump_only=True, allow_none=True, metadata={"description": "Null when withheld."})
    free_text_hidden = fields.Boolean(dump_only=True, metadata={
        "description": _HIDDEN.format("description, resolution", "the reporter")})
    id = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    reported_by = fields.String(dump_only=True)
    patrol_id = fields.String(dump_only=True, allow_none=True)
    reported_at = UtcDateTime(dump_only=True)
    acked_at = UtcDateTime(dump_only=True, allow_none=True)
    acked_by = fields.String(dump_only=True, allow_none=True)
    escalated_at = UtcDateTime(dump_only=True, allow_none=True)
    resolved_at = UtcDateTime(dump_only=True, allow_none=True)
    resolved_by = fields.String(dump_only=True, allow_none=True)
    resolution = fields.String(dump_only=True, allow_none=True)


class IncidentQuerySchema(PageSchema):
    zone_id = fields.String(load_default=None, validate=_ID)
    status = fields.String(load_default=None, validate=validate.OneOf(("open", "resolved")))
    reported_by = fields.String(load_default=None, validate=_ID, metadata={
        "description": "A member's id: the incidents they reported (a volunteer's own reports)."})
    since = Moment(load_default=None)
    until = Moment(load_default=None)


IncidentListSchema = page_of(IncidentSchema)


class AuditQuerySchema(PageSchema):
    incident_id = fields.String(load_default=None, validate=_ID)
    patrol_id = fields.String(load_default=None, validate=_ID)


class AuditEntrySchema(Schema):
    """One full read of an incident's description or a patrol's notes."""
    id = fields.String()
    actor_id = fields.String()
    action = fields.String()
    incident_id = fields.String(allow_none=True)
    patrol_id = fields.String(allow_none=True)
    at = UtcDateTime()


AuditListSchema = page_of(AuditEntrySchema)
