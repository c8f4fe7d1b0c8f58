"""The welfare service's RPC input and output. The gateway validates HTTP
bodies with these same schemas, and documents them in its OpenAPI."""
from marshmallow import Schema, fields, validate

from services.common.schemas import UtcDateTime
from services.contracts.welfare import CATEGORIES


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
    categories = fields.List(fields.String(validate=validate.OneOf(CATEGORIES)), required=True,
                             validate=validate.Length(min=1, max=len(CATEGORIES)))
    summary = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    assignee_id = fields.String(required=True, validate=validate.Length(min=1, max=64))


class AssistanceSchema(Schema):
    campaign_id = fields.String()
    dispatch_id = fields.String()
    category = fields.String()
    quantity = fields.Integer()
    received_at = UtcDateTime()


class CaseSchema(CaseOpenSchema):
    id = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    compound = fields.Function(lambda case: case.household.compound, dump_only=True)
    opened_by = fields.String(dump_only=True)
    opened_at = UtcDateTime(dump_only=True)
    assistance = fields.List(fields.Nested(AssistanceSchema), dump_only=True)


class CaseListSchema(Schema):
    items = fields.List(fields.Nested(CaseSchema))
    next_cursor = fields.String(allow_none=True)
