"""The welfare and notifications services as nameko workers (worker_factory),
over a real in-memory database: what a caller gets back, what is stored and
what is announced."""
import json

import pytest
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.envelope import make_envelope
from services.common.errors import Forbidden, InvalidInput, NotFound
from services.notifications.models import Alert
from services.welfare.models import Case, Household
from tests.unit.test_welfare_lifecycle import party_member

ADMIN = {"id": "admin-1", "roles": ["admin"]}
MEMBER_A = {"id": "member-a", "roles": ["member"]}
MEMBER_B = {"id": "member-b", "roles": ["member"]}

HOUSEHOLD = {
    "compound": "Lotus Garden",
    "address": "Building 3, Unit 2, Room 401",
    "people": [
        {"name": "Wang Guifang", "relation": "mother", "birth_year": 1946, "conditions": ["arthritis"]},
        {"name": "Li Ming", "relation": "son", "birth_year": 1975,
         "conditions": ["severe mental illness"]},
    ],
}
SUMMARY = "Mother, 80, cares alone for her son; needs a minimum-living allowance."


# -- welfare ----------------------------------------------------------------------

def open_case(welfare, household_id, assignee_id="member-a", categories=("disability", "low_income")):
    return welfare().open_case({"household_id": household_id, "categories": list(categories),
                                "summary": SUMMARY, "assignee_id": assignee_id}, ADMIN,
                               party_member(assignee_id))


def test_create_household_returns_it_with_its_people(welfare, welfare_db):
    household = welfare().create_household(HOUSEHOLD, ADMIN)
    assert household["id"]
    assert household["compound"] == "Lotus Garden"
    assert [p["name"] for p in household["people"]] == ["Wang Guifang", "Li Ming"]
    assert household["created_at"].endswith("Z")
    # Stored, and readable by another worker.
    again = welfare().get_household(household["id"], ADMIN)
    assert again["people"][1]["conditions"] == ["severe mental illness"]
    assert welfare_db.count(Household) == 1


def test_only_an_admin_creates_a_household(welfare, welfare_db):
    with pytest.raises(Forbidden):
        welfare().create_household(HOUSEHOLD, MEMBER_A)
    assert welfare_db.count(Household) == 0


def test_open_case_stores_the_case_and_announces_it_without_personal_data(welfare, welfare_db):
    household = welfare().create_household(HOUSEHOLD, ADMIN)
    case = open_case(welfare, household["id"])

    assert case["status"] == "open"
    assert case["assignee_id"] == "member-a"
    assert case["categories"] == ["low_income", "disability"]  # canonical order
    assert case["compound"] == "Lotus Garden"
    assert case["opened_by"] == "admin-1"

    with Session(welfare_db.engine) as session:
        stored = session.get(Case, case["id"])
        assert stored is not None and stored.summary == SUMMARY

    rows = welfare_db.outbox("case_opened")
    assert len(rows) == 1
    envelope = rows[0]["envelope"]
    assert envelope["source"] == "welfare" and envelope["type"] == "case_opened"
    assert envelope["data"] == {
        "case_id": case["id"], "household_id": household["id"], "compound": "Lotus Garden",
        "categories": ["low_income", "disability"], "assignee_id": "member-a", "status": "open",
        "category_labels": ["低收入 Low income", "残疾 Disability"],  # for the assignee's alert, never the feed
    }
    text = json.dumps(envelope, ensure_ascii=False)
    personal = [HOUSEHOLD["address"], SUMMARY, "Building 3", "allowance"]
    for person in HOUSEHOLD["people"]:
        personal.append(person["name"])
        personal.extend(person["conditions"])
    for value in personal:
        assert value not in text, f"{value!r} left in an event"


def test_a_member_cannot_open_a_case(welfare, welfare_db):
    household = welfare().create_household(HOUSEHOLD, ADMIN)
    with pytest.raises(Forbidden):
        welfare().open_case({"household_id": household["id"], "categories": ["elderly"],
                             "summary": SUMMARY, "assignee_id": "member-a"}, MEMBER_A,
                             party_member("member-a"))
    assert welfare_db.count(Case) == 0
    assert welfare_db.outbox("case_opened") == []


def test_get_case_is_not_found_for_another_member(welfare):
    household = welfare().create_household(HOUSEHOLD, ADMIN)
    case = open_case(welfare, household["id"], assignee_id="member-a")
    with pytest.raises(NotFound):
        welfare().get_case(case["id"], MEMBER_B)


def test_get_case_answers_the_assignee_and_an_admin(welfare):
    household = welfare().create_household(HOUSEHOLD, ADMIN)
    case = open_case(welfare, household["id"], assignee_id="member-a")
    assert welfare().get_case(case["id"], MEMBER_A) == case
    assert welfare().get_case(case["id"], ADMIN) == case


def test_get_case_of_an_unknown_id_is_not_found(welfare):
    with pytest.raises(NotFound):
        welfare().get_case("no-such-case", ADMIN)


def test_a_member_lists_only_their_own_cases(welfare):
    household = welfare().create_household(HOUSEHOLD, ADMIN)
    own = [open_case(welfare, household["id"], assignee_id="member-a")["id"] for _ in range(3)]
    other = [open_case(welfare, household["id"], assignee_id="member-b")["id"] for _ in range(2)]

    mine = welfare().list_cases(MEMBER_A)
    assert [case["id"] for case in mine["items"]] == list(reversed(own))  # newest first
    assert mine["next_cursor"] is None

    theirs = welfare().list_cases(MEMBER_B)
    assert [case["id"] for case in theirs["items"]] == list(reversed(other))

    everything = welfare().list_cases(ADMIN)
    assert {case["id"] for case in everything["items"]} == set(own + other)


def test_list_cases_pages_with_a_cursor(welfare):
    household = welfare().create_household(HOUSEHOLD, ADMIN)
    ids = [open_case(welfare, household["id"])["id"] for _ in range(3)]
    first = welfare().list_cases(ADMIN, {"limit": 2})
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = welfare().list_cases(ADMIN, {"limit": 2, "cursor": first["next_cursor"]})
    assert second["next_cursor"] is None
    assert [c["id"] for c in first["items"] + second["items"]] == list(reversed(ids))


def test_list_cases_with_a_bad_cursor_is_invalid_input(welfare):
    with pytest.raises(InvalidInput) as raised:
        welfare().list_cases(ADMIN, {"cursor": "not-a-cursor"})
    assert "cursor" in raised.value.details["fields"]


@pytest.mark.parametrize("payload, field", [
    ({"categories": ["elderly"], "summary": SUMMARY, "assignee_id": "member-a"}, "household_id"),
    ({"household_id": "h", "categories": ["homeless"], "summary": SUMMARY, "assignee_id": "m"}, "categories"),
    ({"household_id": "h", "categories": ["elderly"], "summary": "", "assignee_id": "m"}, "summary"),
    ({"household_id": "h", "categories": ["elderly"], "summary": SUMMARY, "assignee_id": 7}, "assignee_id"),
])
def test_an_invalid_case_is_invalid_input_naming_the_field(welfare, welfare_db, payload, field):
    with pytest.raises(InvalidInput) as raised:
        welfare().open_case(payload, ADMIN, party_member(payload.get("assignee_id")))
    assert field in raised.value.details["fields"]
    assert welfare_db.count(Case) == 0


def test_an_invalid_household_is_invalid_input_naming_the_field(welfare):
    bad = dict(HOUSEHOLD, people=[{"name": "Wang Guifang", "relation": "mother", "birth_year": "1946"}])
    with pytest.raises(InvalidInput) as raised:
        welfare().create_household(bad, ADMIN)
    assert "people" in raised.value.details["fields"]


def test_no_payload_at_all_is_invalid_input(welfare):
    with pytest.raises(InvalidInput) as raised:
        welfare().open_case(None, ADMIN, None)
    assert {"household_id", "categories", "summary", "assignee_id"} <= set(raised.value.details["fields"])


def test_an_unknown_household_is_invalid_input(welfare, welfare_db):
    with pytest.raises(InvalidInput) as raised:
        welfare().open_case({"household_id": "no-such-household", "categories": ["elderly"],
                             "summary": SUMMARY, "assignee_id": "member-a"}, ADMIN,
                             party_member("member-a"))
    assert "household_id" in raised.value.details["fields"]
    assert welfare_db.count(Case) == 0
    assert welfare_db.outbox() == []


def test_a_malformed_actor_is_invalid_input(welfare):
    with pytest.raises(InvalidInput):
        welfare().create_household(HOUSEHOLD, {"id": "x", "roles": ["superuser"]})


# -- notifications ----------------------------------------------------------------

def case_opened(case_id="case-1", assignee_id="member-a"):
    return make_envelope("welfare", "case_opened", {
        "case_id": case_id, "household_id": "h1", "compound": "Lotus Garden",
        "categories": ["elderly"], "assignee_id": assignee_id, "status": "open",
    })


def test_a_case_opened_twice_makes_one_alert_and_one_announcement(notifications, notifications_db):
    envelope = case_opened()
    notifications().on_case_opened(envelope)
    notifications().on_case_opened(json.loads(json.dumps(envelope)))  # the redelivery

    with Session(notifications_db.engine) as session:
        alerts = session.scalars(select(Alert)).all()
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.member_id, alert.kind, alert.ref_type, alert.ref_id) == (
        "member-a", "case_assigned", "case", "case-1")

    rows = notifications_db.outbox("alert_created")
    assert len(rows) == 1
    data = rows[0]["envelope"]["data"]
    assert data["alert_id"] == alert.id
    assert data["member_id"] == "member-a"
    assert data["ref"] == {"type": "case", "id": "case-1"}


def test_two_different_cases_make_two_alerts(notifications, notifications_db):
    notifications().on_case_opened(case_opened("case-1"))
    notifications().on_case_opened(case_opened("case-2"))
    assert notifications_db.count(Alert) == 2
    assert len(notifications_db.outbox("alert_created")) == 2


def test_an_envelope_that_breaks_the_contract_makes_no_alert(notifications, notifications_db):
    envelope = case_opened()
    del envelope["data"]["assignee_id"]
    with pytest.raises(ValidationError):
        notifications().on_case_opened(envelope)
    assert notifications_db.count(Alert) == 0
    assert notifications_db.outbox() == []


def test_list_alerts_returns_only_the_members_own(notifications):
    notifications().on_case_opened(case_opened("case-1", "member-a"))
    notifications().on_case_opened(case_opened("case-2", "member-b"))
    notifications().on_case_opened(case_opened("case-3", "member-a"))

    mine = notifications().list_alerts("member-a")
    assert [a["ref"]["id"] for a in mine["items"]] == ["case-3", "case-1"]  # newest first
    assert mine["next_cursor"] is None
    assert all(a["acked_at"] is None and a["kind"] == "case_assigned" for a in mine["items"])

    theirs = notifications().list_alerts("member-b")
    assert [a["ref"]["id"] for a in theirs["items"]] == ["case-2"]
    assert notifications().list_alerts("member-c")["items"] == []


def test_list_alerts_needs_a_member(notifications):
    with pytest.raises(InvalidInput):
        notifications().list_alerts("")


def test_ack_alert_by_another_member_is_not_found(notifications, notifications_db):
    notifications().on_case_opened(case_opened("case-1", "member-a"))
    alert_id = notifications().list_alerts("member-a")["items"][0]["id"]
    with pytest.raises(NotFound):
        notifications().ack_alert("member-b", alert_id)
    with Session(notifications_db.engine) as session:
        assert session.get(Alert, alert_id).acked_at is None


def test_ack_alert_of_an_unknown_id_is_not_found(notifications):
    with pytest.raises(NotFound):
        notifications().ack_alert("member-a", "no-such-alert")


def test_ack_alert_by_the_owner_marks_it_read_once(notifications, notifications_db):
    notifications().on_case_opened(case_opened("case-1", "member-a"))
    alert_id = notifications().list_alerts("member-a")["items"][0]["id"]

    acked = notifications().ack_alert("member-a", alert_id)
    assert acked["id"] == alert_id
    assert acked["acked_at"] is not None and acked["acked_at"].endswith("Z")
    with Session(notifications_db.engine) as session:
        assert session.get(Alert, alert_id).acked_at is not None

    again = notifications().ack_alert("member-a", alert_id)
    assert again["acked_at"] == acked["acked_at"]  # acking twice keeps the first time
    assert notifications().list_alerts("member-a")["items"][0]["acked_at"] == acked["acked_at"]


def test_alerts_after_replays_what_a_stream_missed_oldest_first(notifications):
    for case_id, member in [("case-1", "member-a"), ("case-2", "member-b"), ("case-3", "member-a"),
                            ("case-4", "member-a")]:
        notifications().on_case_opened(case_opened(case_id, member))
    first = notifications().list_alerts("member-a")["items"][-1]
    assert first["ref"]["id"] == "case-1"

    missed = notifications().alerts_after("member-a", first["id"])
    assert [a["ref"]["id"] for a in missed] == ["case-3", "case-4"]
    assert notifications().alerts_after("member-a", missed[-1]["id"]) == []
    # Another member's alert id, or an unknown one, replays nothing.
    assert notifications().alerts_after("member-b", first["id"]) == []
    assert notifications().alerts_after("member-a", "no-such-alert") == []


def test_linli_up_warns_of_several_instances_on_one_sqlite_file(tmp_path):
    from services.ops.cli import scaled_on_sqlite
    from services.ops.stack import Stack

    env = {"LINLI_WELFARE_DB": "postgresql://postgres@127.0.0.1:5432/linli_welfare"}
    stack = Stack(tmp_path, env=env, scale={"donations": 3, "welfare": 2, "patrol": 1})
    assert scaled_on_sqlite(stack) == ["donations"]
