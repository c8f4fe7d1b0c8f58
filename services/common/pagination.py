"""Keyset pagination with opaque cursors: every list answers {items, next_cursor}.
Lists are ordered newest first by (a time, an id); the cursor carries that key."""
from __future__ import annotations

import base64
import json
from datetime import datetime

from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import and_, or_

from services.common import strict_json
from services.common.schemas import is_id

MAX_LIMIT = 200
_NOT_OURS = "Not a cursor from this API."


def encode_cursor(moment: datetime, row_id: str) -> str:
    raw = json.dumps([moment.isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """A cursor is the client's to send back as it got it; anything else in it
    (1,500 nested brackets, an id no database can hold) is not ours."""
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode())
        moment, row_id = strict_json.loads(raw)
        if not isinstance(moment, str) or not is_id(row_id):
            raise ValueError
        return datetime.fromisoformat(moment), row_id
    except (ValueError, TypeError):
        raise ValidationError(_NOT_OURS)


def page_of(item_schema: type[Schema], name: str | None = None) -> type[Schema]:
    """The schema of one page of a list: {items: [item], next_cursor}."""
    name = name or item_schema.__name__.removesuffix("Schema") + "ListSchema"
    return Schema.from_dict({
        "items": fields.List(fields.Nested(item_schema)),
        "next_cursor": fields.String(allow_none=True),
    }, name=name)


class PageSchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = fields.String(load_default=None, allow_none=True, validate=lambda c: bool(decode_cursor(c)))


def paginate(session, query, paging: dict, time_column, id_column) -> dict:
    """Run `query` newest first, one page of it; items are ORM rows."""
    query = query.order_by(time_column.desc(), id_column.desc())
    if paging.get("cursor"):
        moment, row_id = decode_cursor(paging["cursor"])
        query = query.where(or_(time_column < moment, and_(time_column == moment, id_column < row_id)))
    limit = paging["limit"]
    rows = list(session.scalars(query.limit(limit + 1)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    next_cursor = (encode_cursor(getattr(last, time_column.key), getattr(last, id_column.key))
                   if more and last is not None else None)
    return {"items": rows, "next_cursor": next_cursor}
