"""Keyset pagination: opaque cursors, bounded limits, newest first, no row twice."""
import base64
import json
from datetime import datetime, timedelta

import pytest
from marshmallow import ValidationError
from sqlalchemy import select

from services.common.pagination import (
    MAX_LIMIT, PageSchema, decode_cursor, encode_cursor, paginate,
)
from services.welfare.models import Case, Household


def test_a_cursor_round_trips():
    moment = datetime(2026, 5, 12, 8, 0, 0, 123456)
    cursor = encode_cursor(moment, "c42")
    assert decode_cursor(cursor) == (moment, "c42")


def test_a_cursor_is_url_safe_and_unpadded():
    cursor = encode_cursor(datetime(2026, 5, 12, 8, 0), "?&/+=" * 5)
    assert "=" not in cursor and "+" not in cursor and "/" not in cursor
    assert decode_cursor(cursor)[1] == "?&/+=" * 5


def test_a_cursor_is_checked_by_the_page_schema():
    cursor = encode_cursor(datetime(2026, 5, 12, 8, 0), "c1")
    assert PageSchema().load({"cursor": cursor}) == {"cursor": cursor, "limit": 50}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "garbage!!",
    "a",                                              # not even base64
    "",
    _b64(b"not json"),
    _b64(json.dumps(["yesterday", "c1"]).encode()),   # not a time
    _b64(json.dumps(["2026-05-12T08:00:00"]).encode()),  # one part missing
    _b64(json.dumps({"at": "x"}).encode()),
    _b64(json.dumps(42).encode()),
    _b64(b"\xff\xfe\x00"),                            # not UTF-8
])
def test_a_garbage_cursor_is_a_field_error(cursor):
    with pytest.raises(ValidationError) as raised:
        PageSchema().load({"cursor": cursor})
    assert set(raised.value.messages) == {"cursor"}


def test_limit_defaults_to_fifty():
    assert PageSchema().load({}) == {"limit": 50, "cursor": None}


@pytest.mark.parametrize("limit", [1, MAX_LIMIT, "10"])
def test_limits_within_bounds_are_accepted(limit):
    assert PageSchema().load({"limit": limit})["limit"] == int(limit)


@pytest.mark.parametrize("limit", [0, -1, MAX_LIMIT + 1, "many"])
def test_limits_out_of_bounds_are_rejected(limit):
    with pytest.raises(ValidationError) as raised:
        PageSchema().load({"limit": limit})
    assert "limit" in raised.value.messages


# -- paginate over a real (in-memory) table ----------------------------------------

@pytest.fixture
def cases(welfare_db):
    """Eleven cases; several share an opening time, so the id has to break ties."""
    session = welfare_db.session
    household = Household(compound="Lotus Garden", address="Building 3")
    session.add(household)
    base = datetime(2026, 5, 1, 8, 0)
    offsets = [0, 1, 1, 1, 2, 3, 3, 4, 5, 5, 6]  # minutes
    for i, minutes in enumerate(offsets):
        session.add(Case(id=f"case{i:02d}", household=household, categories=["other"],
                         summary="-", assignee_id="m1", status="open", opened_by="a1",
                         opened_at=base + timedelta(minutes=minutes)))
    session.commit()
    return welfare_db


def walk(session, limit):
    pages, cursor = [], None
    for _ in range(50):  # a guard against a cursor that never ends
        paging = PageSchema().load({"limit": limit, "cursor": cursor})
        page = paginate(session, select(Case), paging, Case.opened_at, Case.id)
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
    pytest.fail("pagination never ended")


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 10, 11, 50])
def test_pages_cover_every_row_once_newest_first(cases, limit):
    pages = walk(cases.session, limit)
    rows = [case for page in pages for case in page["items"]]
    keys = [(case.opened_at, case.id) for case in rows]

    assert len(rows) == 11
    assert len({case.id for case in rows}) == 11, "a row came back twice"
    assert keys == sorted(keys, reverse=True), "not newest first"
    assert all(len(page["items"]) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]["items"]) <= limit
    assert pages[-1]["next_cursor"] is None
    assert all(page["next_cursor"] is not None for page in pages[:-1])


def test_the_first_page_starts_with_the_newest(cases):
    page = paginate(cases.session, select(Case), {"limit": 3, "cursor": None}, Case.opened_at, Case.id)
    assert [case.id for case in page["items"]] == ["case10", "case09", "case08"]


def test_a_page_exactly_as_long_as_the_rest_has_no_next_cursor(cases):
    first = paginate(cases.session, select(Case), {"limit": 5, "cursor": None}, Case.opened_at, Case.id)
    rest = paginate(cases.session, select(Case), {"limit": 6, "cursor": first["next_cursor"]},
                    Case.opened_at, Case.id)
    assert len(rest["items"]) == 6
    assert rest["next_cursor"] is None


def test_a_filter_in_the_query_holds_across_pages(cases):
    session = cases.session
    for case in session.scalars(select(Case).where(Case.id.in_(["case01", "case02", "case07"]))):
        case.assignee_id = "m2"
    session.commit()
    query = select(Case).where(Case.assignee_id == "m2")
    first = paginate(session, query, {"limit": 2, "cursor": None}, Case.opened_at, Case.id)
    second = paginate(session, query, {"limit": 2, "cursor": first["next_cursor"]}, Case.opened_at, Case.id)
    ids = [case.id for case in first["items"] + second["items"]]
    assert ids == ["case07", "case02", "case01"]
    assert second["next_cursor"] is None


def test_an_empty_table_gives_an_empty_page(welfare_db):
    page = paginate(welfare_db.session, select(Case), {"limit": 10, "cursor": None}, Case.opened_at, Case.id)
    assert page == {"items": [], "next_cursor": None}
