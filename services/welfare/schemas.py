"""The welfare service's RPC input and output. The gateway validates HTTP
bodies with these same schemas, and documents them in its OpenAPI."""
from marshmallow import Schema, fields, validate

from services.common.pagination import PageSchema, page_of
from services.common.schemas import UtcDateTime
from services.contracts.categories import category_code
from services.welfare.domain import MAX_CASE_CATEGORIES, REFERRAL_STAGES


class PersonSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    relation = fields.String(required=True, validate=validate.Length(min=1, max=40))
    birth_year = fields.Integer(required=True, strict=True, validate=validate.Range(min=1900, max=2100))
    conditions = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                             load_default=list, validate=validate.Length(max=20))


class HouseholdCreateSchema(Schema):
    compound = fields.String(required=True, validate=validate.Length(min=1, max=100))
    address = fields.String(required=True, validate=validate.Length(min=1, max=200))
    people = fields.List(fields.Nested(PersonSchema), required=True,
                         validate=validate.Length(min=1, max=30))


class HouseholdSchema(HouseholdCreateSchema):
    id = fields.String(dump_only=True)
    created_at = UtcDateTime(dump_only=True)


class CaseOpenSchema(Schema):
    household_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    categories = fields.List(category_code(), required=True, validate=validate.Length(min=1, max=MAX_CASE_CATEGORIES))
    summary = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    assignee_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class AssistanceSchema(Schema):
    campaign_id = fields.String()
    dispatch_id = fields.String()
    category = fields.String()
    quantity = fields.Integer()
    received_at = UtcDateTime()


class VisitCreateSchema(Schema):
    visited_on = fields.Date(required=True)
    notes = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class VisitSchema(VisitCreateSchema):
    id = fields.String(dump_only=True)
    case_id = fields.String(dump_only=True)
    logged_by = fields.String(dump_only=True)
    logged_at = UtcDateTime(dump_only=True)


class ReferralCreateSchema(Schema):
    agency = fields.String(required=True, validate=validate.Length(min=1, max=200))
    benefit = fields.String(required=True, validate=validate.Length(min=1, max=200))
    deadline = fields.Date(load_default=None, allow_none=True)


class ReferralStageSchema(Schema):
    stage = fields.String(required=True, validate=validate.OneOf(REFERRAL_STAGES))
    on = fields.Date(required=True)


class RecordedStageSchema(Schema):
    """A stage as stored on the referral: {"stage": ..., "on": "2026-05-20"}."""
    stage = fields.String()
    on = fields.String()


class ReferralDecisionSchema(Schema):
    status = fields.String(required=True, validate=validate.OneOf(("approved", "rejected")))


class ReferralSchema(ReferralCreateSchema):
    id = fields.String(dump_only=True)
    case_id = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    submitted_by = fields.String(dump_only=True)
    submitted_at = UtcDateTime(dump_only=True)
    decided_by = fields.String(dump_only=True, allow_none=True)
    decided_at = UtcDateTime(dump_only=True, allow_none=True)
    stages = fields.List(fields.Nested(RecordedStageSchema), dump_only=True)


class CaseAssignSchema(Schema):
    assignee_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class CaseCloseSchema(Schema):
    outcome = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class CaseDismissSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class CaseSchema(CaseOpenSchema):
    id = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    compound = fields.String(dump_only=True)
    source_incident_id = fields.String(dump_only=True, allow_none=True)
    opened_by = fields.String(dump_only=True)
    opened_at = UtcDateTime(dump_only=True)
    assistance = fields.List(fields.Nested(AssistanceSchema), dump_only=True)
    visits = fields.List(fields.Nested(VisitSchema), dump_only=True)
    referrals = fields.List(fields.Nested(ReferralSchema), dump_only=True)
    last_visit_on = fields.Date(dump_only=True, allow_none=True)
    outcome = fields.String(dump_only=True, allow_none=True)
    closed_at = UtcDateTime(dump_only=True, allow_none=True)


CaseListSchema = page_of(CaseSchema)


class AuditQuerySchema(PageSchema):
    case_id = fields.String(load_default=None, validate=validate.Length(min=1, max=64))


class AuditEntrySchema(Schema):
    id = fields.String()
    actor_id = fields.String()
    action = fields.String()
    case_id = fields.String(allow_none=True)
    household_id = fields.String(allow_none=True)
    at = UtcDateTime()


AuditListSchema = page_of(AuditEntrySchema)
