"""Schemas the kernel shares: who is calling, as the gateway vouches for it."""
import functools
from datetime import datetime, timezone

from marshmallow import Schema, ValidationError, fields, validate

from services.common.clock import isoformat
from services.common.errors import Forbidden, InvalidInput, invalid_input

ROLES = ("admin", "member", "viewer")


class ActorSchema(Schema):
    id = fields.String(required=True)
    roles = fields.List(fields.String(validate=validate.OneOf(ROLES)), required=True)


@functools.cache
def shared(schema_class: type[Schema], many: bool = False) -> Schema:
    """One instance of a schema class for every call: building a marshmallow
    schema costs more than most loads and dumps with it, and an instance keeps
    no state between them (no schema here uses `context`)."""
    return schema_class(many=many)


def load_actor(actor: dict) -> dict:
    return load_or_raise(shared(ActorSchema), actor)


def is_admin(actor: dict) -> bool:
    return "admin" in actor["roles"]


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


MAX_ID_LENGTH = 64


def is_id(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH and "\x00" not in value


NUL_MESSAGE = "Text may not contain the NUL character (U+0000)."


def has_nul(value) -> bool:
    """A NUL character anywhere in JSON-like input: PostgreSQL cannot store
    one in text, so it is bad input, refused before any query."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_nul(item) for item in value)
    return False


def refuse_nul(payload: dict):
    """InvalidInput naming each field of `payload` that holds a NUL character."""
    fields_with_nul = sorted(str(name) for name, value in payload.items() if has_nul(name) or has_nul(value))
    if fields_with_nul:
        raise InvalidInput("The request has invalid fields.",
                           {"fields": {name: [NUL_MESSAGE] for name in fields_with_nul}})


def require_id(value, field: str = "id") -> str:
    """An id from an RPC caller: a string of 1 to 64 characters, or InvalidInput."""
    if not is_id(value):
        raise InvalidInput(f"{field} must be a string of 1 to {MAX_ID_LENGTH} characters.",
                           {"fields": {field: [f"Not an id (a string of 1 to {MAX_ID_LENGTH} characters)."]}})
    return value


def load_or_raise(schema: Schema, payload) -> dict:
    """Load RPC input; bad input becomes InvalidInput, field by field."""
    if isinstance(payload, dict):
        refuse_nul(payload)
    try:
        return schema.load(payload if payload is not None else {})
    except ValidationError as exc:
        raise invalid_input(exc)


def require_admin(actor: dict):
    if not is_admin(actor):
        raise Forbidden("Only the community office (admin) may do this.")
