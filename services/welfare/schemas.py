"""The welfare service's RPC input and output. The gateway validates HTTP
bodies with these same schemas, and documents them in its OpenAPI."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.pagination import PageSchema, page_of
from services.common.schemas import ID_LENGTH, UtcDateTime, phone_number
from services.contracts.categories import category_code
from services.welfare.domain import (
    CASE_STATUSES, CONSENT_PURPOSES, MAX_CASE_CATEGORIES, OUTCOME_KINDS, REFERRAL_STAGES,
)


class PersonSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    relation = fields.String(required=True, validate=validate.Length(min=1, max=40))
    birth_year = fields.Integer(required=True, strict=True, validate=validate.Range(min=1900, max=2100))
    conditions = fields.List(fields.String(validate=validate.Length(min=1, max=100)),
                             load_default=list, validate=validate.Length(max=20))


def _compound(**kwargs):
    return fields.String(validate=validate.Length(min=1, max=100), **kwargs)


def _address(**kwargs):
    return fields.String(validate=validate.Length(min=1, max=200), **kwargs)


def _people(**kwargs):
    return fields.List(fields.Nested(PersonSchema), validate=validate.Length(min=1, max=30), **kwargs)


class HouseholdCreateSchema(Schema):
    compound = _compound(required=True)
    address = _address(required=True)
    phone = phone_number(load_default=None, metadata={"description": "a contact phone, optional"})
    people = _people(required=True)


class HouseholdUpdateSchema(Schema):
    """What the office may change of a household; only the fields sent change.
    `people` replaces the whole list (the same rules as when created)."""
    compound = _compound()
    address = _address()
    phone = phone_number()
    people = _people()


class HouseholdSchema(HouseholdCreateSchema):
    id = fields.String(dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    erased_at = UtcDateTime(dump_only=True, allow_none=True, metadata={
        "description": "set once its last case was erased: address, phone, names and conditions are gone"})


class ConsentCreateSchema(Schema):
    """A person of the household (by place in its people list, from 0, or by
    name as the household holds it: one of the two) consented to a purpose,
    or withdrew it, on a day (today if not sent; not in the future)."""
    person_position = fields.Integer(strict=True, validate=validate.Range(min=0, max=29))
    person_name = fields.String(validate=validate.Length(min=1, max=100))
    purpose = fields.String(required=True, validate=validate.OneOf(tuple(CONSENT_PURPOSES)))
    given = fields.Boolean(required=True, metadata={"description": "true: consented; false: withdrawn"})
    given_on = fields.Date(load_default=None, allow_none=True)

    @validates_schema
    def one_person(self, data, **kwargs):
        if ("person_position" in data) == ("person_name" in data):
            message = "Name the person by person_position or by person_name (one of the two)."
            raise ValidationError({"person_position": [message], "person_name": [message]})


class ConsentSchema(Schema):
    id = fields.String()
    household_id = fields.String()
    person_position = fields.Integer()
    person_name = fields.String()
    purpose = fields.String()
    label_zh = fields.String()
    label_en = fields.String()
    given = fields.Boolean()
    given_on = fields.Date()
    recorded_by = fields.String()
    recorded_at = UtcDateTime()


class HouseholdDetailSchema(HouseholdSchema):
    """A household as the office opens it: with each person's current answer per purpose."""
    consents = fields.List(fields.Nested(ConsentSchema), dump_only=True, metadata={
        "description": "the latest answer of each person per purpose (the history is in the export)"})


HouseholdListSchema = page_of(HouseholdDetailSchema)



class HouseholdQuerySchema(PageSchema):
    compound = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=100), metadata={
        "description": "part of the address or of any person's name, in any case"})


class CaseOpenSchema(Schema):
    household_id = fields.String(required=True, validate=ID_LENGTH)
    categories = fields.List(category_code(), required=True, validate=validate.Length(min=1, max=MAX_CASE_CATEGORIES))
    summary = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    assignee_id = fields.String(required=True, validate=ID_LENGTH)


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
    """The next stage in order (none skipped), on a day not before the previous
    stage's and not in the future (the community's calendar)."""
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
    assignee_id = fields.String(required=True, validate=ID_LENGTH)


class AssigneeAccountSchema(Schema):
    """What the gateway vouches for about an assignee's account (domain.check_assignee): no name, no phone."""
    id = fields.String(required=True, validate=ID_LENGTH)
    party_member = fields.Boolean(required=True, strict=True)
    active = fields.Boolean(required=True, strict=True)


class CaseCloseSchema(Schema):
    outcome = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    outcome_kind = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(OUTCOME_KINDS),
                                 metadata={"description": "how it ended, for the monthly counts; none: unspecified"})


class CaseEraseSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class CaseDismissSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class CaseReopenSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ReopeningSchema(Schema):
    """A closed case taken up again, and the closing it undid."""
    reason = fields.String()
    reopened_by = fields.String()
    reopened_at = UtcDateTime()
    previous_outcome = fields.String(allow_none=True)
    previous_closed_at = UtcDateTime(allow_none=True)
    previous_closed_by = fields.String(allow_none=True)


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
    next_visit_due = UtcDateTime(dump_only=True, allow_none=True, metadata={
        "description": "when the next visit falls due (the follow-up rule: the case is overdue from then unless "
                       "visited); null unless open or in progress"})
    outcome = fields.String(dump_only=True, allow_none=True)
    outcome_kind = fields.String(dump_only=True, allow_none=True)
    closed_at = UtcDateTime(dump_only=True, allow_none=True)
    erased_at = UtcDateTime(dump_only=True, allow_none=True, metadata={
        "description": "set once its personal details were erased after the retention period"})
    reopenings = fields.List(fields.Nested(ReopeningSchema), dump_only=True)


CaseListSchema = page_of(CaseSchema)


class CaseQuerySchema(PageSchema):
    """Filters of the cases list; a member's list holds only their own cases whatever they ask."""
    status = fields.String(load_default=None, validate=validate.OneOf(CASE_STATUSES))
    category = fields.String(load_default=None, validate=validate.Length(min=1, max=40),
                             metadata={"description": "a category code; cases with it among theirs"})
    assignee_id = fields.String(load_default=None, validate=ID_LENGTH)
    compound = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    overdue = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "true: cases whose follow-up visit is overdue (the ones the follow-up alert was raised "
                       "for and not visited since); false: the others"})
    erasable = fields.Boolean(load_default=None, allow_none=True, metadata={
        "description": "true: closed or dismissed cases, not erased, closed longer ago than the retention period"})


class RecipientSchema(Schema):
    """A case goods may be sent to, as the donation office chooses one: no
    household, no names."""
    id = fields.String()
    compound = fields.String()
    categories = fields.List(fields.String())
    summary = fields.String()
    opened_at = UtcDateTime()


RecipientListSchema = page_of(RecipientSchema)


class AuditQuerySchema(PageSchema):
    case_id = fields.String(load_default=None, validate=ID_LENGTH)
    household_id = fields.String(load_default=None, validate=ID_LENGTH)


class AuditEntrySchema(Schema):
    id = fields.String()
    actor_id = fields.String()
    action = fields.String()
    case_id = fields.String(allow_none=True)
    household_id = fields.String(allow_none=True)
    at = UtcDateTime()


AuditListSchema = page_of(AuditEntrySchema)


class HouseholdExportSchema(Schema):
    """Everything welfare holds about a household, for the household on request."""
    exported_at = UtcDateTime()
    household = fields.Nested(HouseholdSchema)
    consents = fields.List(fields.Nested(ConsentSchema), metadata={"description": "every answer, oldest first"})
    cases = fields.List(fields.Nested(CaseSchema))
