"""Schemas and input checks the kernel shares. Who is calling (roles, the
office) is the gateway's contract with the services: services/contracts/principal.py."""
import functools
import re
from datetime import datetime, timezone

from marshmallow import Schema, ValidationError, fields, validate

from services.common.clock import isoformat, month_days
from services.common.errors import InvalidInput, invalid_input
from services.common.strict_json import DEPTH_MESSAGE, MAX_DEPTH

@functools.cache
def shared(schema_class: type[Schema], many: bool = False) -> Schema:
    """One instance of a schema class for every call: building a marshmallow
    schema costs more than most loads and dumps with it, and an instance keeps
    no state between them (no schema here uses `context`)."""
    return schema_class(many=many)


class UtcDateTime(fields.Field):
    """Dumps a stored (naive UTC) datetime as 2026-05-12T08:00:00.000000Z."""

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else isoformat(value)


class Moment(fields.Field):
    """Loads '2026-05-12' (the start of that day, UTC) or an ISO 8601 time
    (without a zone: UTC) as a naive UTC datetime, as the databases store it."""

    default_error_messages = {"invalid": "Not a date (2026-05-12) or a time (2026-05-12T08:00:00Z)."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise self.make_error("invalid")
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        return moment


class Month(fields.String):
    """A month of the community's calendar, "2026-11": exactly what
    clock.month_days takes (the years 2000 to 9998), so that every query of a
    month (the monthly report, volunteers' lists and totals) refuses the same
    ones, with the same words, before any service is asked."""

    default_error_messages = {"invalid": "A month as YYYY-MM, e.g. 2026-11."}

    def __init__(self, **kwargs):
        kwargs.setdefault("metadata", {"description": "the community's month, YYYY-MM"})
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            month_days(text)
        except InvalidInput:
            raise self.make_error("invalid") from None
        return text


def phone_number(**kwargs) -> fields.String:
    """A phone number as people write one (a member's, a household's contact):
    digits, spaces and '-', an optional leading '+'; at most 20 characters, as stored."""
    return fields.String(allow_none=True, validate=validate.Regexp(
        r"^\+?[0-9][0-9 -]{4,18}\Z", error="A phone number: digits, spaces, '-', an optional '+'."), **kwargs)


MAX_ID_LENGTH = 64
ID_LENGTH = validate.Length(min=1, max=MAX_ID_LENGTH)  # an id in any schema, as require_id takes it

# Text no database here can store: PostgreSQL refuses the NUL character in
# text, and a lone surrogate (JSON may spell one, "\ud800") has no UTF-8 at
# all, so neither SQLite, PostgreSQL nor a log file can take it.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Text may not contain the NUL character (U+0000) or a lone surrogate (U+D800 to U+DFFF)."


def storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def is_id(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and storable(value)


class _TooDeep(Exception):
    pass


def unstorable(value, depth: int = 1) -> bool:
    """Text a database cannot store anywhere in JSON-like input (keys too): it
    is bad input, refused before any query. _TooDeep past MAX_DEPTH levels."""
    if isinstance(value, str):
        return not storable(value)
    if isinstance(value, (dict, list, tuple)) and depth > MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, dict):
        return any(unstorable(key, depth + 1) or unstorable(item, depth + 1) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(unstorable(item, depth + 1) for item in value)
    return False


def field_name(name) -> str:
    """A field's name as an error may echo it: a lone surrogate escaped (no UTF-8 has it)."""
    return str(name).encode("utf-8", "backslashreplace").decode("utf-8")


def refuse_unstorable(payload: dict):
    """InvalidInput naming each field of `payload` that holds text a database
    cannot store, or that is nested deeper than MAX_DEPTH levels."""
    bad = {}
    for name, value in payload.items():
        try:
            if unstorable(name) or unstorable(value, depth=2):
                bad[field_name(name)] = [UNSTORABLE_MESSAGE]
        except _TooDeep:
            bad[field_name(name)] = [DEPTH_MESSAGE]
    if bad:
        raise InvalidInput("The request has invalid fields.", {"fields": dict(sorted(bad.items()))})


def require_id(value, field: str = "id") -> str:
    """An id from an RPC caller: a string of 1 to 64 characters, or InvalidInput."""
    if not is_id(value):
        raise InvalidInput(f"{field} must be a string of 1 to {MAX_ID_LENGTH} characters.",
                           {"fields": {field: [f"Not an id (a string of 1 to {MAX_ID_LENGTH} characters)."]}})
    return value


def load_or_raise(schema: Schema, payload) -> dict:
    """Load RPC input; bad input becomes InvalidInput, field by field."""
    if isinstance(payload, dict):
        refuse_unstorable(payload)
    try:
        return schema.load(payload if payload is not None else {})
    except ValidationError as exc:
        raise invalid_input(exc)
