"""The shapes services accept: RPC input, HTTP bodies and the event contract."""
import json
import re
from datetime import datetime

import pytest
from marshmallow import ValidationError

from services import contracts
from services.common.envelope import make_envelope
from services.common.errors import InvalidInput
from services.common.schemas import UNSTORABLE_MESSAGE, load_or_raise, require_id
from services.gateway.schemas import MemberCreateSchema
from services.welfare.schemas import CaseOpenSchema, HouseholdCreateSchema


def household(**overrides):
    payload = {
        "compound": "Lotus Garden",
        "address": "Building 3, Unit 2, Room 401",
        "people": [
            {"name": "Wang Guifang", "relation": "mother", "birth_year": 1946, "conditions": []},
            {"name": "Li Ming", "relation": "son", "birth_year": 1975,
             "conditions": ["severe mental illness"]},
        ],
    }
    payload.update(overrides)
    return payload


def case(**overrides):
    payload = {"household_id": "h1", "categories": ["low_income", "disability"],
               "summary": "Needs a minimum-living allowance.", "assignee_id": "m1"}
    payload.update(overrides)
    return payload


def member(**overrides):
    payload = {"username": "zhang.wei", "password": "correct horse", "name": "Zhang Wei",
               "phone": "+86 138-0000-0000", "party_member": True, "compound": "Lotus Garden"}
    payload.update(overrides)
    return payload


def errors_of(schema, payload) -> dict:
    with pytest.raises(ValidationError) as raised:
        schema.load(payload)
    return raised.value.messages


# -- welfare: households ----------------------------------------------------------

def test_a_good_household_loads_with_its_people():
    loaded = HouseholdCreateSchema().load(household())
    assert loaded["compound"] == "Lotus Garden"
    assert [p["birth_year"] for p in loaded["people"]] == [1946, 1975]
    assert loaded["people"][1]["conditions"] == ["severe mental illness"]


def test_conditions_default_to_none():
    people = [{"name": "Wang Guifang", "relation": "mother", "birth_year": 1946}]
    assert HouseholdCreateSchema().load(household(people=people))["people"][0]["conditions"] == []


@pytest.mark.parametrize("field", ["compound", "address", "people"])
def test_a_household_without_a_required_field_is_rejected(field):
    payload = household()
    del payload[field]
    assert field in errors_of(HouseholdCreateSchema(), payload)


def test_a_household_without_people_is_rejected():
    assert "people" in errors_of(HouseholdCreateSchema(), household(people=[]))


@pytest.mark.parametrize("birth_year", ["1946", 1946.5, None])
def test_birth_year_must_be_an_integer_not_a_string(birth_year):
    people = [{"name": "Wang Guifang", "relation": "mother", "birth_year": birth_year}]
    messages = errors_of(HouseholdCreateSchema(), household(people=people))
    assert "birth_year" in messages["people"][0]


def test_a_person_without_a_name_is_rejected():
    people = [{"relation": "mother", "birth_year": 1946}]
    messages = errors_of(HouseholdCreateSchema(), household(people=people))
    assert "name" in messages["people"][0]


def test_a_compound_that_is_not_a_string_is_rejected():
    assert "compound" in errors_of(HouseholdCreateSchema(), household(compound=14))


# -- welfare: cases ---------------------------------------------------------------

def test_a_good_case_loads():
    assert CaseOpenSchema().load(case()) == case()


@pytest.mark.parametrize("field", ["household_id", "categories", "summary", "assignee_id"])
def test_a_case_without_a_required_field_is_rejected(field):
    payload = case()
    del payload[field]
    assert field in errors_of(CaseOpenSchema(), payload)


def test_a_category_that_is_not_a_code_is_rejected():
    messages = errors_of(CaseOpenSchema(), case(categories=["elderly", "Homeless!"]))
    assert 1 in messages["categories"]  # the second item, by index


def test_any_category_code_passes_the_schema_welfare_decides_which_exist():
    assert CaseOpenSchema().load(case(categories=["elderly", "homeless"]))["categories"] == ["elderly", "homeless"]


def test_categories_must_be_a_list():
    assert "categories" in errors_of(CaseOpenSchema(), case(categories="elderly"))


def test_a_case_without_categories_is_rejected():
    assert "categories" in errors_of(CaseOpenSchema(), case(categories=[]))


def test_unknown_fields_in_a_case_are_rejected():
    assert "priority" in errors_of(CaseOpenSchema(), case(priority="high"))


# -- gateway: members -------------------------------------------------------------

def test_a_member_gets_the_member_role_by_default():
    loaded = MemberCreateSchema().load(member())
    assert loaded["roles"] == ["member"]
    assert loaded["party_member"] is True


def test_roles_given_are_kept():
    assert MemberCreateSchema().load(member(roles=["admin", "viewer"]))["roles"] == ["admin", "viewer"]


@pytest.mark.parametrize("username", [
    "zw",                 # too short
    "Zhang",              # upper case
    "zhang wei",          # a space
    "x" * 41,             # too long
    "zhang@wei",          # a character outside the set
    "zhang\n",            # a trailing newline is not one of a-z, 0-9, '_', '.', '-'
])
def test_a_username_outside_the_pattern_is_rejected(username):
    assert "username" in errors_of(MemberCreateSchema(), member(username=username))


@pytest.mark.parametrize("phone", [
    "call me",            # not digits
    "123",                # too short
    "13800000000\n",      # a trailing newline is none of digits, spaces, '-', '+'
])
def test_a_phone_outside_the_pattern_is_rejected(phone):
    assert "phone" in errors_of(MemberCreateSchema(), member(phone=phone))


def test_a_short_password_is_rejected():
    assert "password" in errors_of(MemberCreateSchema(), member(password="1234567"))


@pytest.mark.parametrize("roles", [["superuser"], ["member", "root"], []])
def test_a_bad_role_is_rejected(roles):
    assert "roles" in errors_of(MemberCreateSchema(), member(roles=roles))


def test_a_password_is_never_dumped():
    assert "password" not in MemberCreateSchema().dump(member())


# -- the event contract -----------------------------------------------------------

def case_opened_envelope():
    return make_envelope("welfare", "case_opened", {
        "case_id": "c1", "household_id": "h1", "compound": "Lotus Garden",
        "categories": ["low_income", "disability"], "assignee_id": "m1", "status": "open",
    })


def test_a_good_case_opened_envelope_passes():
    envelope = case_opened_envelope()
    loaded = contracts.validate(envelope)
    assert loaded["id"] == envelope["id"]
    assert loaded["data"]["categories"] == ["low_income", "disability"]


def test_an_envelope_without_data_is_rejected():
    envelope = case_opened_envelope()
    del envelope["data"]
    with pytest.raises(ValidationError) as raised:
        contracts.validate(envelope)
    assert "data" in raised.value.messages


def test_an_unknown_event_type_is_rejected():
    envelope = case_opened_envelope()
    envelope["type"] = "case_exploded"
    with pytest.raises(ValidationError) as raised:
        contracts.validate(envelope)
    assert "type" in raised.value.messages


def test_an_event_from_an_unknown_source_is_rejected():
    envelope = case_opened_envelope()
    envelope["source"] = "payroll"
    with pytest.raises(ValidationError):
        contracts.validate(envelope)


@pytest.mark.parametrize("version", ["1", 1.5, 0, None, True])
def test_a_version_that_is_not_a_positive_integer_is_rejected(version):
    envelope = case_opened_envelope()
    envelope["version"] = version
    with pytest.raises(ValidationError) as raised:
        contracts.validate(envelope)
    assert "version" in raised.value.messages


def test_data_that_breaks_the_event_schema_is_rejected():
    envelope = case_opened_envelope()
    del envelope["data"]["assignee_id"]
    with pytest.raises(ValidationError) as raised:
        contracts.validate(envelope)
    assert "assignee_id" in raised.value.messages


def test_personal_data_cannot_ride_along_in_case_opened():
    """The producer's check (UnitOfWork.emit) refuses a field the contract does not name."""
    envelope = case_opened_envelope()
    envelope["data"]["name"] = "Wang Guifang"
    with pytest.raises(ValidationError) as raised:
        contracts.validate(envelope, strict=True)
    assert "name" in raised.value.messages


def test_a_consumer_reads_a_newer_producers_event_without_the_fields_it_does_not_know():
    """While two versions run side by side, an event with a field added by the newer
    producer is handled by the older consumer, the field left out, not dead-lettered."""
    envelope = case_opened_envelope()
    envelope["data"]["added_in_a_later_version"] = "x"
    loaded = contracts.validate(envelope)
    assert "added_in_a_later_version" not in loaded["data"]
    assert loaded["data"]["categories"] == ["low_income", "disability"]


def test_make_envelope_has_the_designed_shape():
    data = {"member_id": "m1", "roles": ["member"], "party_member": False, "compound": None}
    envelope = make_envelope("gateway", "member_registered", data)
    assert set(envelope) == {"id", "type", "source", "occurred_at", "version", "data"}
    assert envelope["type"] == "member_registered"
    assert envelope["source"] == "gateway"
    assert envelope["version"] == 1
    assert envelope["data"] == data
    assert re.fullmatch(r"[0-9a-f]{32}", envelope["id"])
    assert envelope["occurred_at"].endswith("Z")
    # A time one can read back: UTC, to the microsecond.
    datetime.strptime(envelope["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert make_envelope("gateway", "member_registered", data)["id"] != envelope["id"]
    contracts.validate(envelope)


@pytest.mark.parametrize("value", [None, 12, ["x"], {"id": "x"}, "", "x" * 65])
def test_what_is_not_an_id_is_invalid_input_naming_the_field(value):
    with pytest.raises(InvalidInput) as raised:
        require_id(value, "case_id")
    assert "case_id" in raised.value.details["fields"]


def test_an_id_is_returned_as_it_came():
    assert require_id("0f3c" * 8) == "0f3c" * 8


def test_a_nul_character_anywhere_in_rpc_input_is_refused_field_by_field():
    """PostgreSQL cannot store one in text: it must never reach a query."""
    good = {"compound": "Xingfu Garden", "address": "Room 1", "people": [
        {"name": "王", "relation": "self", "birth_year": 1950}]}
    with pytest.raises(InvalidInput) as refused:
        load_or_raise(HouseholdCreateSchema(), {**good, "address": "Room\x001", "people": [
            {"name": "王\x00", "relation": "self", "birth_year": 1950}]})
    assert refused.value.details["fields"] == {"address": [UNSTORABLE_MESSAGE], "people": [UNSTORABLE_MESSAGE]}
    with pytest.raises(InvalidInput):
        require_id("\x00")
    assert load_or_raise(HouseholdCreateSchema(), good)["address"] == "Room 1"


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udc80"])
def test_a_lone_surrogate_is_refused_like_a_nul_character(text):
    """No UTF-8 has a lone surrogate: neither SQLite, PostgreSQL nor a log file can take it."""
    good = {"compound": "Xingfu Garden", "address": "Room 1", "people": [
        {"name": "王", "relation": "self", "birth_year": 1950}]}
    with pytest.raises(InvalidInput) as refused:
        load_or_raise(HouseholdCreateSchema(), {**good, "address": text, "people": [
            {"name": "王", "relation": text, "birth_year": 1950}]})
    assert refused.value.details["fields"] == {"address": [UNSTORABLE_MESSAGE], "people": [UNSTORABLE_MESSAGE]}
    with pytest.raises(InvalidInput):
        require_id(text)
    # A key is a field too; its name is echoed escaped, so that the error itself can be sent and logged.
    with pytest.raises(InvalidInput) as refused:
        load_or_raise(HouseholdCreateSchema(), {**good, text: 1})
    (name,) = refused.value.details["fields"]
    assert name == text.encode("utf-8", "backslashreplace").decode()
    json.dumps(refused.value.details, ensure_ascii=False).encode("utf-8")  # it can be sent and logged
    # A whole surrogate pair, decoded as JSON does, is a character like any other.
    assert load_or_raise(HouseholdCreateSchema(), {**good, "address": json.loads('"\\ud83c\\udfe0 1"')})


def test_input_nested_deeper_than_the_bound_is_refused_naming_the_field():
    from services.common.strict_json import DEPTH_MESSAGE, MAX_DEPTH

    deep = "x"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    good = {"compound": "Xingfu Garden", "address": "Room 1", "people": [
        {"name": "王", "relation": "self", "birth_year": 1950}]}
    with pytest.raises(InvalidInput) as refused:
        load_or_raise(HouseholdCreateSchema(), {**good, "people": deep})
    assert refused.value.details["fields"] == {"people": [DEPTH_MESSAGE]}
    very_deep = []
    for _ in range(5000):  # past the recursion limit
        very_deep = [very_deep]
    with pytest.raises(InvalidInput) as refused:
        load_or_raise(HouseholdCreateSchema(), {**good, "people": very_deep})
    assert refused.value.details["fields"] == {"people": [DEPTH_MESSAGE]}


@pytest.mark.parametrize("month", [
    "2026-13", "2026-00", "2026-1", "1999-12", "9999-01", "2026-11\n", "２０２６-11", 202611])
def test_a_month_is_refused_alike_by_the_report_and_by_volunteers(month):
    from services.gateway.schemas import MonthlyReportQuerySchema
    from services.volunteers.schemas import SessionQuerySchema, TotalsQuerySchema

    for schema in (MonthlyReportQuerySchema(), TotalsQuerySchema(), SessionQuerySchema()):
        with pytest.raises(ValidationError) as refused:
            schema.load({"month": month})
        assert refused.value.messages == {"month": ["A month as YYYY-MM, e.g. 2026-11."]}


def test_a_month_of_the_calendar_loads_as_written():
    from services.gateway.schemas import MonthlyReportQuerySchema
    from services.volunteers.schemas import TotalsQuerySchema

    assert MonthlyReportQuerySchema().load({"month": "2026-11"}) == {"month": "2026-11"}
    assert TotalsQuerySchema().load({"month": "2000-01"}) == {"month": "2000-01"}
