"""The gateway's own HTTP shapes: tokens and members. Households and cases use
the welfare service's schemas, alerts the notifications service's."""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.categories import CategoryCreateSchema, CategorySchema  # noqa: F401 -- the routes' shapes
from services.common.pagination import PageSchema, page_of
from services.common.schemas import ID_LENGTH, Month, UtcDateTime, phone_number
from services.contracts.principal import ROLES
from services.contracts import PRODUCERS
from services.donations.schemas import AuditEntrySchema as DonationsAuditEntrySchema
from services.gateway import devices, passwords
from services.gateway.exports import FORMATS
from services.patrol.schemas import AuditEntrySchema as PatrolAuditEntrySchema
from services.welfare.schemas import AuditEntrySchema as WelfareAuditEntrySchema
from services.volunteers.schemas import ServiceQuerySchema


class TokenRequestSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=40))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))


class TokenSchema(Schema):
    access_token = fields.String()
    token_type = fields.String()
    expires_in = fields.Integer()


def new_password(**kwargs):
    """A password being set: at least passwords.MIN_LENGTH characters, not a common one."""
    return fields.String(required=True, load_only=True, validate=passwords.validate_new, **kwargs)


def _name(**kwargs):
    return fields.String(validate=validate.Length(min=1, max=100), **kwargs)


def _roles(**kwargs):
    return fields.List(fields.String(validate=validate.OneOf(ROLES)),
                       validate=validate.Length(min=1, max=len(ROLES)), **kwargs)


def _compound(**kwargs):
    return fields.String(allow_none=True, validate=validate.Length(min=1, max=100), **kwargs)


class MemberCreateSchema(Schema):
    username = fields.String(required=True, validate=validate.Regexp(
        r"^[a-z0-9_.-]{3,40}\Z", error="3 to 40 of a-z, 0-9, '_', '.', '-'."))
    password = new_password()
    name = _name(required=True)
    phone = phone_number(load_default=None)
    roles = _roles(load_default=lambda: ["member"])
    party_member = fields.Boolean(load_default=False)
    compound = _compound(load_default=None)


class MemberSchema(MemberCreateSchema):
    id = fields.String(dump_only=True)
    active = fields.Boolean(dump_only=True)
    created_at = UtcDateTime(dump_only=True)


class MemberUpdateSchema(Schema):
    """What the office may change of an account; only the fields sent change.
    `active: false` disables it: no login, its tokens refused."""
    active = fields.Boolean()
    roles = _roles()
    party_member = fields.Boolean()
    name = _name()
    phone = phone_number()
    compound = _compound()


class PasswordSetSchema(Schema):
    """The office sets a member's password; the member's sessions end."""
    new_password = new_password()


class PasswordChangeSchema(Schema):
    """One's own password; one's other sessions end."""
    current_password = fields.String(required=True, load_only=True, validate=validate.Length(min=1, max=200))
    new_password = new_password()


MemberListSchema = page_of(MemberSchema)


class MemberQuerySchema(PageSchema):
    """Filters of the members list. A search with `q` is audited (`member_search`)."""
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=100), metadata={
        "description": "part of the name or username (any case), or of the phone (spaces and dashes ignored)"})
    role = fields.String(load_default=None, validate=validate.OneOf(ROLES))
    compound = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    party_member = fields.Boolean(load_default=None, allow_none=True)
    active = fields.Boolean(load_default=None, allow_none=True)


class ErrorBodySchema(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict(required=True)
    request_id = fields.String(metadata={"description": "the X-Request-Id of the request: quote it to an operator"})


class ErrorSchema(Schema):
    """Every error answer: {"error": {"code", "message", "details"}}."""
    error = fields.Nested(ErrorBodySchema, required=True)


class HealthSchema(Schema):
    status = fields.String()


class ReadySchema(Schema):
    status = fields.String()
    checks = fields.Dict(keys=fields.String(), values=fields.String())


class NotReadySchema(ErrorSchema, ReadySchema):
    """/ready's 503: the error shape, and the same status and checks as a 200."""


class ServicesHealthSchema(Schema):
    status = fields.String(metadata={"description": "`ok`, or `degraded` when a service does not answer"})
    services = fields.Dict(keys=fields.String(), values=fields.String(),
                           metadata={"description": "each backend: `ok`, or e.g. `unavailable (timeout)`"})


class ServicesDegradedSchema(ErrorSchema, ServicesHealthSchema):
    """/health/services' 503: the error shape, and the same status and services as a 200."""


class FeedQuerySchema(Schema):
    source = fields.String(load_default=None, validate=validate.OneOf(sorted(PRODUCERS)))


_AUDIT_ID = ID_LENGTH
# Which audit a filter belongs to: a service's, or the gateway's own (accounts).
AUDIT_FILTERS = {"welfare": ("case_id", "household_id"), "patrol": ("incident_id", "patrol_id"),
                 "donations": ("campaign_id",), "accounts": ()}


class AuditQuerySchema(PageSchema):
    """One audit at a time: welfare's (reads of cases and households),
    patrol's (full reads of incidents' descriptions and patrols' notes),
    donations' (ledger exports: a drive's donors' names read in bulk) or the
    gateway's own (searches of the members)."""
    source = fields.String(load_default=None, validate=validate.OneOf(sorted(AUDIT_FILTERS)), metadata={
        "description": "welfare (the default), patrol, donations or accounts; case_id or household_id imply "
                       "welfare, incident_id or patrol_id patrol, campaign_id donations"})
    case_id = fields.String(load_default=None, validate=_AUDIT_ID)
    household_id = fields.String(load_default=None, validate=_AUDIT_ID)
    campaign_id = fields.String(load_default=None, validate=_AUDIT_ID)
    incident_id = fields.String(load_default=None, validate=_AUDIT_ID)
    patrol_id = fields.String(load_default=None, validate=_AUDIT_ID)

    @validates_schema
    def one_source(self, data, **kwargs):
        wanted = {source for source, names in AUDIT_FILTERS.items() if any(data.get(n) for n in names)}
        if data.get("source"):
            wanted.add(data["source"])
        if len(wanted) > 1:
            raise ValidationError({name: ["Not with the filters of another audit (case_id, household_id vs "
                                          "incident_id, patrol_id vs campaign_id) or another source."]
                                   for names in AUDIT_FILTERS.values() for name in names if data.get(name)}
                                  or {"source": ["Not with these filters."]})


class AuditEntrySchema(WelfareAuditEntrySchema, PatrolAuditEntrySchema, DonationsAuditEntrySchema):
    """A read of personal details: which case or household (welfare), which
    incident or patrol (patrol), which drive's ledger and how many gifts
    (donations), or a search of the members with its filters (accounts); by
    whom, when."""
    filters = fields.Dict(metadata={"description": "accounts: the filters of the search"})


AuditListSchema = page_of(AuditEntrySchema)


class ExportQuerySchema(Schema):
    """`?format=` on a route that can answer with a file instead of JSON."""
    format = fields.String(validate=validate.OneOf(FORMATS), metadata={
        "description": "csv (UTF-8 with a BOM) or xlsx: the whole list as a file; without it, JSON"})


class MonthlyReportQuerySchema(Schema):
    """`?month=YYYY-MM` (required; from the year 2000, as the services count
    months, and not a month still to come: the route checks that in the
    community's calendar) and `?format=xlsx` for the file."""
    month = Month(required=True)
    format = fields.String(validate=validate.OneOf(("xlsx",)), metadata={
        "description": "xlsx: the report as a workbook, one sheet per section; without it, JSON"})


class DonationListQuerySchema(PageSchema, ExportQuerySchema):
    """A page of a drive's gifts as JSON, or with `format` the whole ledger as a file (admin)."""


class ServiceListQuerySchema(ServiceQuerySchema, ExportQuerySchema):
    """A page of service records as JSON, or with `format` every record the filters find as a file."""


class CategoriesSchema(Schema):
    """Every kind's categories, each in the order its service lists them,
    retired ones too (old records keep them): incident (patrol), case
    (welfare), goods (donations)."""
    incident = fields.List(fields.Nested(CategorySchema))
    case = fields.List(fields.Nested(CategorySchema))
    goods = fields.List(fields.Nested(CategorySchema))


def _named(text: str):
    """Not only spaces (a function, not a pattern: the OpenAPI document stays plain)."""
    if not text.strip():
        raise ValidationError("Give the screen a name.")


def _not_a_boolean(value):
    if isinstance(value, bool):  # JSON's true is no number of days
        raise ValidationError("Not a valid integer.")


class DeviceCreateSchema(Schema):
    """A wall screen's device token: `name` says which screen ("大厅大屏 Hall screen"),
    `days` how long it holds (default 365, at most 730)."""
    name = fields.String(required=True, validate=[validate.Length(min=1, max=100), _named])
    days = fields.Integer(load_default=devices.DEFAULT_DAYS, strict=True,
                          validate=[_not_a_boolean, validate.Range(min=1, max=devices.MAX_DAYS)])


class DeviceSchema(Schema):
    """A device as the office sees it: never its token."""
    id = fields.String()
    name = fields.String()
    created_by = fields.String()
    created_at = UtcDateTime()
    expires_at = UtcDateTime()
    revoked_at = UtcDateTime(allow_none=True)
    last_seen_at = UtcDateTime(allow_none=True, metadata={"description": "to the minute"})
    status = fields.String(metadata={"description": "active, revoked or expired"})


class DeviceIssuedSchema(DeviceSchema):
    token = fields.String(metadata={"description": "shown this once: the screen's bearer token"})


DeviceListSchema = page_of(DeviceSchema)
