"""The donations service's RPC input and output; the gateway validates HTTP
bodies with these same schemas and documents them in its OpenAPI."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.common.pagination import PageSchema, page_of
from services.common.schemas import ID_LENGTH, UtcDateTime
from services.contracts.categories import category_code
from services.donations.domain import MAX_AMOUNT_FEN, MAX_ITEM_LINES, MAX_ITEM_QUANTITY, check_dates


_CAMPAIGN_NAME = validate.Length(min=1, max=200)
_GOAL_FEN = validate.Range(min=1, max=MAX_AMOUNT_FEN)


class _CampaignDates(Schema):
    @validates_schema
    def _ends_after_start(self, data, **_kwargs):
        """domain.check_dates, when both dates are sent (the service checks one against the stored other)."""
        if "starts_on" in data and "ends_on" in data:
            try:
                check_dates(data["starts_on"], data["ends_on"])
            except ValueError as exc:
                raise ValidationError(str(exc), "ends_on")


class CampaignCreateSchema(_CampaignDates):
    name = fields.String(required=True, validate=_CAMPAIGN_NAME)
    goal_fen = fields.Integer(required=True, strict=True, validate=_GOAL_FEN)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    test = fields.Boolean(load_default=False, metadata={
        "description": "a drive to try things out: apart on the wall, not on the public page"})


class CampaignUpdateSchema(_CampaignDates):
    """A drive's name, goal or dates, by the same rules as when it was opened;
    only the fields sent change (at least one). A closed drive can only be
    renamed. The dates are checked again against the stored ones by the service."""
    name = fields.String(validate=_CAMPAIGN_NAME)
    goal_fen = fields.Integer(strict=True, validate=_GOAL_FEN)
    starts_on = fields.Date()
    ends_on = fields.Date()
    test = fields.Boolean()

    @validates_schema
    def _something_to_change(self, data, **_kwargs):
        if not data:
            raise ValidationError("Send at least one of name, goal_fen, starts_on, ends_on, test.", "_schema")


def _said(text: str):
    """Not only spaces (a function, not a pattern: the OpenAPI document stays plain)."""
    if not text.strip():
        raise ValidationError("Say why the gift is voided.")


class VoidSchema(Schema):
    """Why a gift recorded in error is voided (kept with it, shown to the office only)."""
    reason = fields.String(required=True, validate=[validate.Length(min=1, max=500), _said])


class TotalsSchema(Schema):
    cash_fen = fields.Integer()
    items = fields.Dict(keys=fields.String(), values=fields.Integer())
    donations = fields.Integer()


class CampaignSchema(CampaignCreateSchema):
    id = fields.String(dump_only=True)
    code = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    created_by = fields.String(dump_only=True)
    created_at = UtcDateTime(dump_only=True)
    goal_reached_at = UtcDateTime(dump_only=True, allow_none=True)
    totals = fields.Nested(TotalsSchema, dump_only=True)
    progress_percent = fields.Float(dump_only=True)
    stock = fields.Dict(keys=fields.String(), values=fields.Integer(), dump_only=True)


CampaignListSchema = page_of(CampaignSchema)


class DonatedItemSchema(Schema):
    category = category_code(required=True)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_ITEM_QUANTITY))
    description = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))


class DonationCreateSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("cash", "in_kind")))
    amount_fen = fields.Integer(load_default=None, allow_none=True, strict=True,
                                validate=validate.Range(min=1, max=MAX_AMOUNT_FEN,
                                                        error="A positive whole number of fen, at most {max}."))
    items = fields.List(fields.Nested(DonatedItemSchema), load_default=None, allow_none=True,
                        validate=validate.Length(min=1, max=MAX_ITEM_LINES))
    donor_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))
    anonymous = fields.Boolean(load_default=False)

    @validates_schema
    def _cash_or_goods(self, data, **_kwargs):
        if data.get("kind") == "cash":
            if data.get("amount_fen") is None:
                raise ValidationError("A cash donation needs amount_fen (an integer of fen).", "amount_fen")
            if data.get("items"):
                raise ValidationError("A cash donation has no items.", "items")
        if data.get("kind") == "in_kind":
            if not data.get("items"):
                raise ValidationError("An in-kind donation needs items.", "items")
            if data.get("amount_fen") is not None:
                raise ValidationError("An in-kind donation has no amount_fen.", "amount_fen")


class DonationSchema(Schema):
    """A donation as its recorder sees it (with the receipt's verification code)."""
    id = fields.String()
    campaign_id = fields.String()
    receipt_no = fields.String()
    verification_code = fields.String()
    kind = fields.String()
    amount_fen = fields.Integer(allow_none=True)
    items = fields.List(fields.Nested(DonatedItemSchema))
    donor_name = fields.String(allow_none=True)
    anonymous = fields.Boolean()
    recorded_by = fields.String()
    created_at = UtcDateTime()
    voided = fields.Method("_voided", metadata={"description": "recorded in error and voided: counted nowhere"})
    voided_at = UtcDateTime(allow_none=True)
    void_reason = fields.String(allow_none=True)
    lookup_path = fields.Method("_lookup_path", metadata={
        "description": "where anyone holding the printed receipt can look it up (number and code in the query)"})

    @staticmethod
    def _voided(donation) -> bool:
        return donation.voided_at is not None

    @staticmethod
    def _lookup_path(donation) -> str:
        return f"/public?receipt={donation.receipt_no}&code={donation.verification_code}"


class DonationListItemSchema(DonationSchema):
    class Meta:
        exclude = ("verification_code", "lookup_path")  # the code is on the paper receipt only


DonationListSchema = page_of(DonationListItemSchema, "DonationListSchema")


class DispatchItemSchema(Schema):
    category = category_code(required=True)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_ITEM_QUANTITY))


class DispatchCreateSchema(Schema):
    destination = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=200))
    case_id = fields.String(load_default=None, allow_none=True, validate=ID_LENGTH)
    items = fields.List(fields.Nested(DispatchItemSchema), required=True,
                        validate=validate.Length(min=1, max=MAX_ITEM_LINES))

    @validates_schema
    def _one_destination(self, data, **_kwargs):
        if (data.get("destination") is None) == (data.get("case_id") is None):
            raise ValidationError("Give either a destination (a place) or a case_id.", "destination")


class DispatchSchema(Schema):
    id = fields.String()
    campaign_id = fields.String()
    destination = fields.String(allow_none=True)
    case_id = fields.String(allow_none=True)
    items = fields.List(fields.Nested(DispatchItemSchema))
    created_by = fields.String()
    created_at = UtcDateTime()


DispatchListSchema = page_of(DispatchSchema)


class ReceiptQuerySchema(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=32))


class SentGoodsSchema(Schema):
    category = fields.String()
    to = fields.String()
    quantity = fields.Integer()


class SentDispatchSchema(Schema):
    """One dispatch as the public sees it: when, where (a case is "a household in need"), what."""
    sent_at = fields.String()
    sent_on = fields.String(metadata={"description": "the day, in the community's time zone"})
    to = fields.String()
    items = fields.List(fields.Nested(DispatchItemSchema))


class ReceiptSchema(Schema):
    """What anyone holding a receipt's number and code may see: no names."""
    receipt_no = fields.String()
    campaign = fields.Dict(keys=fields.String(), values=fields.String())
    kind = fields.String()
    amount_fen = fields.Integer(allow_none=True)
    items = fields.List(fields.Nested(DispatchItemSchema))
    received_at = fields.String()
    received_on = fields.String(metadata={"description": "the day, in the community's time zone"})
    goods_sent = fields.List(fields.Nested(SentGoodsSchema), metadata={
        "description": "goods of the gift's kinds sent after it was recorded, by destination"})
    dispatches = fields.List(fields.Nested(SentDispatchSchema), metadata={
        "description": "those dispatches, newest first (20 at most), with their dates"})
    voided = fields.Boolean()
    voided_at = fields.String(allow_none=True)


class LedgerRowSchema(Schema):
    """One gift as the office's ledger export shows it (names included: audited)."""
    receipt_no = fields.String()
    recorded_on = fields.String(metadata={"description": "local date and time, YYYY-MM-DD HH:MM"})
    kind = fields.String()
    amount_fen = fields.Integer(allow_none=True)
    items = fields.List(fields.Nested(DispatchItemSchema))
    donor_name = fields.String(allow_none=True)
    anonymous = fields.Boolean()
    voided = fields.Boolean()
    void_reason = fields.String(allow_none=True)


class LedgerSchema(Schema):
    """Every gift of a drive, oldest first, voided ones too."""
    campaign = fields.Dict(keys=fields.String(), values=fields.String())
    rows = fields.List(fields.Nested(LedgerRowSchema))


class AuditQuerySchema(PageSchema):
    campaign_id = fields.String(load_default=None, validate=ID_LENGTH)


class AuditEntrySchema(Schema):
    """One bulk read of a drive's donors' names (its ledger export)."""
    id = fields.String()
    actor_id = fields.String()
    action = fields.String()
    campaign_id = fields.String(allow_none=True)
    rows = fields.Integer(allow_none=True)
    at = UtcDateTime()


AuditListSchema = page_of(AuditEntrySchema, "DonationsAuditListSchema")
