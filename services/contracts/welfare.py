"""Events published by the welfare service. No names, conditions or notes."""
from marshmallow import Schema, fields, validate

from services.contracts.categories import SCHEMAS as CATEGORY_SCHEMAS, category_code

CASE_OPENED = "case_opened"
CASE_DRAFTED = "case_drafted"
CASE_DISMISSED = "case_dismissed"
CASE_ASSIGNED = "case_assigned"
VISIT_LOGGED = "visit_logged"
REFERRAL_UPDATED = "referral_updated"
CASE_CLOSED = "case_closed"
CASE_REOPENED = "case_reopened"
CASE_ERASED = "case_erased"
FOLLOWUP_OVERDUE = "followup_overdue"
REFERRAL_OVERDUE = "referral_overdue"


class CaseOpened(Schema):
    case_id = fields.String(required=True)
    household_id = fields.String(required=True)
    compound = fields.String(required=True)
    categories = fields.List(category_code(), required=True)
    assignee_id = fields.String(required=True)
    status = fields.String(required=True)
    # The categories in words, in their order, for the assignee's alert ("高龄独居 Elderly"): a label of
    # hardship, so never on the feed (not in FEED_FIELDS). case_opened and case_assigned carry it.
    category_labels = fields.List(fields.String(), load_default=None, allow_none=True)


class CaseAssigned(CaseOpened):
    previous_assignee_id = fields.String(required=True)


class VisitLogged(Schema):
    case_id = fields.String(required=True)
    visit_id = fields.String(required=True)
    visited_on = fields.String(required=True)
    status = fields.String(required=True)


class ReferralUpdated(Schema):
    """The agency and the benefit stay home: a benefit can tell a condition."""
    case_id = fields.String(required=True)
    referral_id = fields.String(required=True)
    referral_status = fields.String(required=True, validate=validate.OneOf(("submitted", "approved", "rejected")))
    status = fields.String(required=True)


class CaseClosed(CaseOpened):
    # helped, referred, moved_away, deceased, declined, other; None: not said (and from older producers).
    outcome_kind = fields.String(load_default=None, allow_none=True)


class CaseErased(Schema):
    """A closed case's personal details were erased after the retention period. Nothing else: not even its compound."""
    case_id = fields.String(required=True)


class CaseReopened(Schema):
    """A closed case taken up again. The reason stays home: it is about the household."""
    case_id = fields.String(required=True)
    compound = fields.String(required=True)
    categories = fields.List(fields.String(), required=True)


class FollowupOverdue(Schema):
    case_id = fields.String(required=True)
    assignee_id = fields.String(required=True)
    compound = fields.String(required=True)
    last_visit_on = fields.String(required=True, allow_none=True)
    days = fields.Float(required=True)


class ReferralOverdue(Schema):
    """The agency and the benefit are for the assignee's alert only: never on the feed (not in FEED_FIELDS)."""
    case_id = fields.String(required=True)
    referral_id = fields.String(required=True)
    assignee_id = fields.String(required=True)
    deadline = fields.String(required=True)
    compound = fields.String(load_default=None, allow_none=True)
    agency = fields.String(load_default=None, allow_none=True)
    benefit = fields.String(load_default=None, allow_none=True)


class CaseDrafted(Schema):
    """A hardship found on patrol, waiting for the office."""
    case_id = fields.String(required=True)
    compound = fields.String(required=True)
    incident_id = fields.String(required=True)
    status = fields.String(required=True)


class CaseDismissed(Schema):
    case_id = fields.String(required=True)
    compound = fields.String(required=True)
    status = fields.String(required=True)


SCHEMAS = {
    CASE_OPENED: CaseOpened,
    CASE_DRAFTED: CaseDrafted,
    CASE_DISMISSED: CaseDismissed,
    CASE_ASSIGNED: CaseAssigned,
    VISIT_LOGGED: VisitLogged,
    REFERRAL_UPDATED: ReferralUpdated,
    CASE_CLOSED: CaseClosed,
    CASE_REOPENED: CaseReopened,
    CASE_ERASED: CaseErased,
    FOLLOWUP_OVERDUE: FollowupOverdue,
    REFERRAL_OVERDUE: ReferralOverdue,
    **CATEGORY_SCHEMAS,
}
