"""The live feed shows ids, categories, compound, status, amounts and dates,
never personal data: checked against every event type of every service."""
import json

import pytest
from marshmallow import ValidationError, fields

from services import contracts
from services.common.envelope import make_envelope
from services.contracts import welfare

EVENT_TYPES = sorted((source, event_type) for source, module in contracts.PRODUCERS.items()
                     for event_type in module.SCHEMAS)
PERSONAL = {"name": "李秀英", "phone": "138 0000 0001", "address": "Building 3, Room 401",
            "conditions": ["severe mental illness"], "notes": "Mother frail", "description": "Noise at 3-401",
            "donor_name": "张伟", "summary": "Needs the allowance", "resolution": "Talked it over",
            "outcome": "Allowance granted", "message": "Your case", "receipt_no": "K7QW2M-000001",
            "verification_code": "4ZT6DUX9", "destination": "Room 401", "agency": "Civil affairs",
            "benefit": "Disability certificate",
            # Categories in words, for alerts (issue 16): a label of hardship stays off the wall.
            "category_label": "违章建筑 Illegal structure", "category_labels": ["重病 Illness"]}


def filled(schema) -> dict:
    """Every field of an event's data, strings made recognisable."""
    data = {}
    for name, field in schema.fields.items():
        if isinstance(field, fields.String):
            data[name] = f"value-of-{name}"
        elif isinstance(field, fields.List):
            data[name] = [{"category": "bedding", "quantity": 2, "note": "x"}] if name == "items" else ["a"]
        elif isinstance(field, fields.Nested):
            data[name] = {"type": "case", "id": "c1", "extra": "x"}
        else:
            data[name] = 1
    return data


@pytest.mark.parametrize("source, event_type", EVENT_TYPES)
def test_no_event_type_shows_personal_data_on_the_feed(source, event_type):
    data = {**filled(contracts.data_schema(source, event_type)), **PERSONAL}
    shown = contracts.for_feed(make_envelope(source, event_type, data))
    text = json.dumps(shown, ensure_ascii=False)
    assert [key for key, value in PERSONAL.items() if json.dumps(value, ensure_ascii=False).strip('"[]') in text] == []
    assert set(shown) == {"id", "type", "source", "occurred_at", "version", "data"}
    for key in shown["data"]:
        assert key in contracts.FEED_FIELDS, key
    assert not {"household_id", "household_ids"} & set(shown["data"])


@pytest.mark.parametrize("event_type", [welfare.CASE_OPENED, welfare.CASE_ASSIGNED, welfare.CASE_CLOSED])
def test_a_case_on_the_feed_shows_its_categories_but_not_whose_household(event_type):
    """A household id next to 'disability' would tell any dashboard login who lives with what."""
    data = {"case_id": "c1", "household_id": "h-li-family", "compound": "Lotus Garden",
            "categories": ["disability", "low_income"], "assignee_id": "m1", "status": "open",
            "previous_assignee_id": "m2"}
    shown = contracts.for_feed(make_envelope("welfare", event_type, data))["data"]
    assert "h-li-family" not in json.dumps(shown)
    assert shown["case_id"] == "c1" and shown["categories"] == ["disability", "low_income"]


def test_every_id_the_feed_shows_is_one_an_event_carries():
    carried = {name for module in contracts.PRODUCERS.values() for schema in module.SCHEMAS.values()
               for name in schema().fields}
    assert contracts.FEED_IDS <= carried
    assert not any(name.startswith("household") for name in contracts.FEED_FIELDS)


def test_what_a_dashboard_needs_is_kept():
    envelope = make_envelope("donations", "donation_received", {
        "campaign_id": "c1", "donation_id": "d1", "receipt_no": "K7QW2M-000001", "kind": "in_kind",
        "amount_fen": None, "items": [{"category": "bedding", "quantity": 3}], "cash_fen_total": 100,
        "donations_total": 2})
    assert contracts.for_feed(envelope)["data"] == {
        "campaign_id": "c1", "donation_id": "d1", "kind": "in_kind", "amount_fen": None,
        "items": [{"category": "bedding", "quantity": 3}], "cash_fen_total": 100, "donations_total": 2}


def test_nested_values_keep_only_their_known_keys():
    envelope = make_envelope("notifications", "alert_created", {
        "alert_id": "a1", "member_id": "m1", "kind": "case_assigned", "message": "x",
        "ref": {"type": "case", "id": "c1", "name": "李秀英"}, "created_at": "2026-05-12T08:00:00Z"})
    assert contracts.for_feed(envelope)["data"]["ref"] == {"type": "case", "id": "c1"}


def test_something_that_is_not_an_envelope_shows_nothing_personal():
    shown = contracts.for_feed({"name": "李秀英", "data": "not a dict"})
    assert shown["data"] == {} and "李秀英" not in json.dumps(shown, ensure_ascii=False)


@pytest.mark.parametrize("event_type, free_text", [
    ("incident_reported", "description"), ("incident_resolved", "resolution"), ("patrol_finished", "notes")])
def test_an_event_carrying_an_incidents_or_a_patrols_free_text_is_refused_by_its_contract(event_type, free_text):
    data = {**filled(contracts.data_schema("patrol", event_type)), "severity": "low", "category": "hardship",
            "leader_id": None, free_text: "old Mr Wu, 13900001111, bldg 2 rm 302, diabetic"}
    with pytest.raises(ValidationError) as raised:
        contracts.validate(make_envelope("patrol", event_type, data), strict=True)
    assert free_text in str(raised.value)
