"""Events published by the donations service. Amounts, categories, ids and
receipt numbers only: never a donor's name, nor a dispatch's destination text."""
from marshmallow import Schema, fields, validate

from services.contracts.categories import SCHEMAS as CATEGORY_SCHEMAS, category_code

CAMPAIGN_CREATED = "campaign_created"
CAMPAIGN_CLOSED = "campaign_closed"
CAMPAIGN_UPDATED = "campaign_updated"
DONATION_RECEIVED = "donation_received"
DONATION_VOIDED = "donation_voided"
GOAL_REACHED = "goal_reached"
ITEMS_DISPATCHED = "items_dispatched"


class ItemCount(Schema):
    category = category_code(required=True)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))


class CampaignCreated(Schema):
    campaign_id = fields.String(required=True)
    name = fields.String(required=True)
    goal_fen = fields.Integer(required=True, strict=True)
    starts_on = fields.String(required=True)
    ends_on = fields.String(required=True)


class CampaignUpdated(CampaignCreated):
    """The drive as it is after the change (its name, goal and dates)."""


class CampaignClosed(Schema):
    campaign_id = fields.String(required=True)


class DonationReceived(Schema):
    campaign_id = fields.String(required=True)
    donation_id = fields.String(required=True)
    receipt_no = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("cash", "in_kind")))
    amount_fen = fields.Integer(required=True, strict=True, allow_none=True)
    items = fields.List(fields.Nested(ItemCount), required=True)
    cash_fen_total = fields.Integer(required=True, strict=True)
    donations_total = fields.Integer(required=True, strict=True)


class DonationVoided(DonationReceived):
    """A gift recorded in error, voided: what it had counted, and the drive's
    totals after it no longer does. Never the donor's name nor the reason."""


class GoalReached(Schema):
    campaign_id = fields.String(required=True)
    goal_fen = fields.Integer(required=True, strict=True)
    cash_fen = fields.Integer(required=True, strict=True)
    created_by = fields.String(required=True)


class ItemsDispatched(Schema):
    campaign_id = fields.String(required=True)
    dispatch_id = fields.String(required=True)
    # A place, or a welfare case (then case_id is set): the destination's text stays home.
    to = fields.String(required=True, validate=validate.OneOf(("place", "case")))
    case_id = fields.String(required=True, allow_none=True)
    items = fields.List(fields.Nested(ItemCount), required=True)


SCHEMAS = {
    CAMPAIGN_CREATED: CampaignCreated,
    CAMPAIGN_CLOSED: CampaignClosed,
    CAMPAIGN_UPDATED: CampaignUpdated,
    DONATION_RECEIVED: DonationReceived,
    DONATION_VOIDED: DonationVoided,
    GOAL_REACHED: GoalReached,
    ITEMS_DISPATCHED: ItemsDispatched,
    **CATEGORY_SCHEMAS,
}
