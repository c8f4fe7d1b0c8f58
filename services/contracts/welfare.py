"""Events published by the welfare service. No names, conditions or notes."""
from marshmallow import Schema, fields, validate

CASE_OPENED = "case_opened"

CATEGORIES = ("low_income", "disability", "elderly", "illness", "other")


class CaseOpened(Schema):
    case_id = fields.String(required=True)
    household_id = fields.String(required=True)
    compound = fields.String(required=True)
    categories = fields.List(fields.String(validate=validate.OneOf(CATEGORIES)), required=True)
    assignee_id = fields.String(required=True)
    status = fields.String(required=True)


SCHEMAS = {
    CASE_OPENED: CaseOpened,
}
