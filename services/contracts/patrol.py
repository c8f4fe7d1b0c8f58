"""Events published by the patrol service. Ids, zones, compounds, categories
and status only: never an incident's description, resolution or a patrol's notes."""
from marshmallow import Schema, fields, validate

from services.contracts.categories import SCHEMAS as CATEGORY_SCHEMAS, category_code

ZONE_CREATED = "zone_created"
TEAM_ASSIGNED = "team_assigned"
PATROL_STARTED = "patrol_started"
PATROL_FINISHED = "patrol_finished"
PATROL_CORRECTED = "patrol_corrected"
INCIDENT_REPORTED = "incident_reported"
INCIDENT_ACKNOWLEDGED = "incident_acknowledged"
INCIDENT_ESCALATED = "incident_escalated"
INCIDENT_RESOLVED = "incident_resolved"
ZONE_UNCOVERED = "zone_uncovered"

SEVERITIES = ("low", "medium", "high")


class ZoneCreated(Schema):
    zone_id = fields.String(required=True)
    name = fields.String(required=True)
    compounds = fields.List(fields.String(), required=True)


class TeamAssigned(Schema):
    zone_id = fields.String(required=True)
    leader_id = fields.String(required=True)
    member_ids = fields.List(fields.String(), required=True)


class PatrolStarted(Schema):
    patrol_id = fields.String(required=True)
    zone_id = fields.String(required=True)
    member_id = fields.String(required=True)
    started_at = fields.String(required=True)


class PatrolFinished(PatrolStarted):
    finished_at = fields.String(required=True)
    # What the patrol counts as service: its length, at most the cap (PATROL_CAP_HOURS). None from
    # a producer older than the cap: a consumer then counts finished_at - started_at.
    duration_minutes = fields.Integer(load_default=None, allow_none=True)
    # Closed by the patrol service because it was never finished within the cap.
    closed_automatically = fields.Boolean(load_default=False)


class PatrolCorrected(PatrolStarted):
    """The office set a finished patrol's times right (a forgotten patrol, a wrong tap)."""
    finished_at = fields.String(required=True)
    duration_minutes = fields.Integer(required=True)


class Incident(Schema):
    incident_id = fields.String(required=True)
    zone_id = fields.String(required=True)
    compound = fields.String(required=True)
    category = category_code(required=True)
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    status = fields.String(required=True)
    # The zone's leader when it happened (None if the zone has no team yet): who is alerted.
    leader_id = fields.String(required=True, allow_none=True)


class IncidentReported(Incident):
    reported_by = fields.String(required=True)
    # The category in words for alerts ("违章建筑 Illegal structure"); not on the feed (not in FEED_FIELDS).
    category_label = fields.String(load_default=None, allow_none=True)


class IncidentAcknowledged(Incident):
    acknowledged_by = fields.String(required=True)


class IncidentEscalated(Incident):
    minutes_unacknowledged = fields.Float(required=True)
    category_label = fields.String(load_default=None, allow_none=True)


class IncidentResolved(Incident):
    resolved_by = fields.String(required=True)


class ZoneUncovered(Schema):
    zone_id = fields.String(required=True)
    leader_id = fields.String(required=True, allow_none=True)
    last_patrol_at = fields.String(required=True, allow_none=True)
    days = fields.Float(required=True)


SCHEMAS = {
    ZONE_CREATED: ZoneCreated,
    TEAM_ASSIGNED: TeamAssigned,
    PATROL_STARTED: PatrolStarted,
    PATROL_FINISHED: PatrolFinished,
    PATROL_CORRECTED: PatrolCorrected,
    INCIDENT_REPORTED: IncidentReported,
    INCIDENT_ACKNOWLEDGED: IncidentAcknowledged,
    INCIDENT_ESCALATED: IncidentEscalated,
    INCIDENT_RESOLVED: IncidentResolved,
    ZONE_UNCOVERED: ZoneUncovered,
    **CATEGORY_SCHEMAS,
}
