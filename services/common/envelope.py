"""The event envelope every Linli event travels in (see DESIGN, Events)."""
from __future__ import annotations

import uuid

from marshmallow import Schema, fields, validate

from services.common.clock import isoformat, utcnow
from services.common.schemas import ID_LENGTH


class EnvelopeSchema(Schema):
    id = fields.String(required=True, validate=ID_LENGTH)
    type = fields.String(required=True)
    source = fields.String(required=True)
    occurred_at = fields.String(required=True)
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    data = fields.Dict(required=True)


def make_envelope(source: str, event_type: str, data: dict, version: int = 1) -> dict:
    return {
        "id": uuid.uuid4().hex,
        "type": event_type,
        "source": source,
        "occurred_at": isoformat(utcnow()),
        "version": version,
        "data": data,
    }
