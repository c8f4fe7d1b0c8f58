"""What the community office's pages need (issue 15), as nameko workers over a
real database: households searched and edited, cases by filter, a closed case
reopened, the cases goods may go to and the check a dispatch makes (welfare);
members searched, each search with `q` audited, and that audit read back, and
a dispatch refused for a case that cannot receive goods (gateway)."""
import json
from types import SimpleNamespace

import pytest
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.clock import naive_utcnow
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.gateway import accounts
from services.gateway.models import Account
from services.gateway.models import AuditEntry as GatewayAuditEntry
from services.gateway.schemas import AuditQuerySchema, MemberQuerySchema
from services.gateway.service import GatewayService
from services.welfare.domain import CASE_TRANSITIONS
from services.welfare.models import AuditEntry, Case, Reopening
from services.welfare.schemas import CaseQuerySchema
from tests.unit.conftest import workers_of
from tests.unit.test_welfare_lifecycle import (  # noqa: F401 -- fixtures
    ADMIN, HOUSEHOLD, MEMBER_A, MEMBER_B, OUTCOME, case, days_ago, events, household, open_case,
    party_member, set_case, stored_case, visit,
)

VIEWER = {"id": "viewer-1", "roles": ["viewer"]}
OTHER_HOUSEHOLD = {"compound": "Peach Court", "address": "Building 9, Room 101", "phone": "010-6543 2100",
                   "people": [{"name": "Zhao Lei", "relation": "self", "birth_year": 1950, "conditions": []}]}
REASON = "The son's day-centre place was withdrawn; the mother cannot cope alone again."


def audit_entries(welfare_db, action=None) -> list[tuple]:
    with Session(welfare_db.engine) as session:
        statement = select(AuditEntry).order_by(AuditEntry.at)
        if action:
            statement = statement.where(AuditEntry.action == action)
        return [(e.actor_id, e.action, e.case_id, e.household_id) for e in session.scalars(statement)]


def ids(page) -> set[str]:
    return {item["id"] for item in page["items"]}


# -- households ------------------------------------------------------------------------------

def test_households_are_found_by_part_of_anyones_name_or_of_the_address_in_any_case(welfare, household):  # noqa: F811
    other = welfare().create_household(OTHER_HOUSEHOLD, ADMIN)
    assert ids(welfare().list_households(ADMIN, {"q": "guifang"})) == {household["id"]}
    assert ids(welfare().list_households(ADMIN, {"q": "li MING"})) == {household["id"]}
    assert ids(welfare().list_households(ADMIN, {"q": "building 9"})) == {other["id"]}
    assert ids(welfare().list_households(ADMIN, {"q": "Building"})) == {household["id"], other["id"]}
    assert welfare().list_households(ADMIN, {"q": "Nobody"})["items"] == []
    assert welfare().list_households(ADMIN, {"q": "%"})["items"] == []  # a wildcard is a character sought
    [found] = welfare().list_households(ADMIN, {"compound": "Peach Court"})["items"]
    assert found == other  # as GET /households/<id> answers: people and the contact phone
    assert found["people"][0]["name"] == "Zhao Lei" and found["phone"] == "010-6543 2100"


def test_the_household_list_pages_newest_first(welfare, household):  # noqa: F811
    other = welfare().create_household(OTHER_HOUSEHOLD, ADMIN)
    first = welfare().list_households(ADMIN, {"limit": 1})
    assert [h["id"] for h in first["items"]] == [other["id"]] and first["next_cursor"]
    second = welfare().list_households(ADMIN, {"limit": 1, "cursor": first["next_cursor"]})
    assert [h["id"] for h in second["items"]] == [household["id"]] and second["next_cursor"] is None


def test_each_household_a_search_shows_is_audited_and_found_by_household(welfare, welfare_db, household):  # noqa: F811
    other = welfare().create_household(OTHER_HOUSEHOLD, ADMIN)
    welfare().list_households(ADMIN, {"q": "Zhao"})
    welfare().list_households(ADMIN, {})
    assert sorted(audit_entries(welfare_db, "household_search")) == sorted([
        ("admin-1", "household_search", None, other["id"]), ("admin-1", "household_search", None, other["id"]),
        ("admin-1", "household_search", None, household["id"])])
    entries = welfare().list_audit(ADMIN, {"household_id": household["id"]})["items"]
    assert [(e["action"], e["household_id"]) for e in entries] == [("household_search", household["id"])]


@pytest.mark.parametrize("actor", [MEMBER_A, VIEWER])
def test_only_an_admin_lists_households(welfare, welfare_db, household, actor):  # noqa: F811
    with pytest.raises(Forbidden):
        welfare().list_households(actor, {"q": "Wang"})
    assert audit_entries(welfare_db) == []


def test_a_household_keeps_an_optional_contact_phone(welfare, household):  # noqa: F811
    assert household["phone"] is None
    other = welfare().create_household(OTHER_HOUSEHOLD, ADMIN)
    assert welfare().get_household(other["id"], ADMIN)["phone"] == "010-6543 2100"
    with pytest.raises(InvalidInput) as raised:
        welfare().create_household({**HOUSEHOLD, "phone": "call the neighbour"}, ADMIN)
    assert "phone" in raised.value.details["fields"]


def test_the_office_edits_a_household_and_the_edit_is_audited(welfare, welfare_db, household):  # noqa: F811
    mother_alone = [{"name": "Wang Guifang", "relation": "self", "birth_year": 1946, "conditions": ["arthritis"]}]
    edited = welfare().update_household(household["id"], {
        "address": "Building 5, Room 202", "phone": "139 1234 5678", "people": mother_alone}, ADMIN)
    assert (edited["compound"], edited["address"], edited["phone"]) == (
        "Lotus Garden", "Building 5, Room 202", "139 1234 5678")  # what was not sent stays
    assert [p["name"] for p in edited["people"]] == ["Wang Guifang"]  # the list sent replaces the old one
    assert welfare().get_household(household["id"], ADMIN) == edited
    assert ("admin-1", "edit_household", None, household["id"]) in audit_entries(welfare_db)

    moved = welfare().update_household(household["id"], {"compound": "Peach Court", "phone": None}, ADMIN)
    assert (moved["compound"], moved["phone"], moved["address"]) == ("Peach Court", None, "Building 5, Room 202")


@pytest.mark.parametrize("change, field", [
    ({"people": []}, "people"),
    ({"people": [{"name": "", "relation": "son", "birth_year": 1975}]}, "people"),
    ({"address": ""}, "address"),
    ({"compound": "x" * 101}, "compound"),
    ({"phone": "12"}, "phone"),
    ({"id": "another"}, "id"),
])
def test_a_bad_edit_names_the_field_and_changes_nothing(welfare, welfare_db, household, change, field):  # noqa: F811
    with pytest.raises(InvalidInput) as raised:
        welfare().update_household(household["id"], change, ADMIN)
    assert field in raised.value.details["fields"]
    assert welfare().get_household(household["id"], ADMIN) == household
    assert [e for e in audit_entries(welfare_db) if e[1] == "edit_household"] == []


def test_editing_an_unknown_household_is_not_found_and_a_member_may_not(welfare, welfare_db, household):  # noqa: F811
    with pytest.raises(NotFound):
        welfare().update_household("no-such-household", {"address": "Building 1"}, ADMIN)
    with pytest.raises(Forbidden):
        welfare().update_household(household["id"], {"address": "Building 1"}, MEMBER_A)
    assert welfare().get_household(household["id"], ADMIN)["address"] == HOUSEHOLD["address"]


# -- cases by filter -----------------------------------------------------------------------------

@pytest.fixture
def three_cases(welfare, household):  # noqa: F811
    """Member A's open case in Lotus Garden; member B's closed one in Peach Court; a draft."""
    other = welfare().create_household(OTHER_HOUSEHOLD, ADMIN)
    mine = open_case(welfare, household["id"], "member-a")
    theirs = welfare().open_case({"household_id": other["id"], "categories": ["elderly", "illness"],
                                  "summary": "Alone, needs meals.", "assignee_id": "member-b"}, ADMIN,
                                 party_member("member-b"))
    welfare().close_case(theirs["id"], {"outcome": OUTCOME}, ADMIN)
    draft = add_draft(welfare().db)
    return mine, theirs, draft


def add_draft(db) -> str:
    """A hardship found on patrol, not yet confirmed (as on_incident_reported makes it)."""
    draft = Case(compound="Lotus Garden", categories=["other"], status="draft", summary="Found on patrol.",
                 opened_by="member-c", opened_at=naive_utcnow())
    db.session.add(draft)
    db.session.commit()
    return draft.id


def listed(welfare, actor=ADMIN, **query) -> set[str]:
    return ids(welfare().list_cases(actor, query))


def test_cases_are_listed_by_status_category_assignee_and_compound(welfare, three_cases):
    mine, theirs, draft = three_cases
    assert listed(welfare) == {mine["id"], theirs["id"], draft}
    assert listed(welfare, status="open") == {mine["id"]}
    assert listed(welfare, status="closed") == {theirs["id"]}
    assert listed(welfare, status="draft") == {draft}
    assert listed(welfare, category="illness") == {theirs["id"]}
    assert listed(welfare, category="disability") == {mine["id"]}
    assert listed(welfare, category="ill") == set()  # a whole code, not part of one
    assert listed(welfare, category="unheard_of") == set()  # a code is not checked against a list
    assert listed(welfare, assignee_id="member-b") == {theirs["id"]}
    assert listed(welfare, compound="Peach Court") == {theirs["id"]}
    assert listed(welfare, compound="Lotus Garden", status="draft") == {draft}
    assert listed(welfare, compound="Lotus Garden", category="illness") == set()


def test_a_member_filters_only_their_own_cases(welfare, three_cases):
    mine, theirs, _draft = three_cases
    assert listed(welfare, MEMBER_A) == {mine["id"]}
    assert listed(welfare, MEMBER_A, assignee_id="member-b") == set()
    assert listed(welfare, MEMBER_A, status="closed") == set()
    assert listed(welfare, MEMBER_B, status="closed") == {theirs["id"]}
    assert listed(welfare, VIEWER) == set()


def test_each_case_a_filtered_list_shows_is_audited(welfare, welfare_db, three_cases):
    mine, _theirs, _draft = three_cases
    welfare().list_cases(ADMIN, {"status": "open"})
    assert audit_entries(welfare_db, "list_case") == [("admin-1", "list_case", mine["id"], None)]


@pytest.mark.parametrize("query, field", [
    ({"status": "pending"}, "status"), ({"overdue": "maybe"}, "overdue"), ({"category": ""}, "category"),
    ({"assignee_id": "x" * 65}, "assignee_id"), ({"colour": "red"}, "colour"),
])
def test_a_bad_filter_is_invalid_input_naming_it(welfare, welfare_db, query, field):
    with pytest.raises(InvalidInput) as raised:
        welfare().list_cases(ADMIN, query)
    assert field in raised.value.details["fields"]


def test_overdue_lists_the_cases_the_follow_up_alert_was_raised_for_until_visited(
        welfare, welfare_db, household):  # noqa: F811
    late = open_case(welfare, household["id"], "member-a")
    fresh = open_case(welfare, household["id"], "member-b")
    set_case(welfare_db, late["id"], opened_at=days_ago(45))
    assert listed(welfare, overdue=True) == set()  # the sweep decides, and has not swept yet
    welfare().sweep()
    assert [e["case_id"] for e in events(welfare_db, "followup_overdue")] == [late["id"]]
    assert listed(welfare, overdue=True) == {late["id"]}
    assert listed(welfare, overdue=False) == {fresh["id"]}
    assert listed(welfare, overdue="true", assignee_id="member-b") == set()
    assert welfare().summary()["followups_overdue"] == 1  # the dashboard counts the same cases

    visit(welfare, late["id"])  # a visit today starts a new lapse
    assert listed(welfare, overdue=True) == set()
    assert welfare().summary()["followups_overdue"] == 0


def test_a_closed_case_is_not_overdue(welfare, welfare_db, case):  # noqa: F811
    set_case(welfare_db, case["id"], opened_at=days_ago(45))
    welfare().sweep()
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    assert listed(welfare, overdue=True) == set()
    assert listed(welfare, overdue=False) == {case["id"]}


def test_the_status_filter_takes_every_state_a_case_can_be_in():
    reachable = {status for (before, _action), after in CASE_TRANSITIONS.items() for status in (before, after)}
    assert set(CaseQuerySchema().fields["status"].validate.choices) == reachable


# -- reopening ------------------------------------------------------------------------------------

def test_a_closed_case_is_reopened_with_its_assignee_and_the_closing_kept(welfare, welfare_db, case):  # noqa: F811
    closed = welfare().close_case(case["id"], {"outcome": OUTCOME}, MEMBER_A)
    reopened = welfare().reopen_case(case["id"], {"reason": REASON}, ADMIN)
    assert (reopened["status"], reopened["assignee_id"]) == ("open", "member-a")
    assert (reopened["outcome"], reopened["closed_at"]) == (None, None)
    [reopening] = reopened["reopenings"]
    assert reopening["reason"] == REASON and reopening["reopened_by"] == "admin-1"
    assert reopening["reopened_at"].endswith("Z")
    assert (reopening["previous_outcome"], reopening["previous_closed_at"], reopening["previous_closed_by"]) == (
        OUTCOME, closed["closed_at"], "member-a")
    assert welfare().get_case(case["id"], MEMBER_A)["reopenings"] == [reopening]  # the assignee sees it

    assert events(welfare_db, "case_reopened") == [{
        "case_id": case["id"], "compound": "Lotus Garden", "categories": ["low_income", "disability"]}]
    outbox = json.dumps([row["envelope"] for row in welfare_db.outbox("case_reopened")], ensure_ascii=False)
    assert "day-centre" not in outbox and OUTCOME not in outbox

    # Worked on again, closed again, reopened again: the history grows.
    visit(welfare, case["id"])
    welfare().close_case(case["id"], {"outcome": "Place found at another centre."}, MEMBER_A)
    again = welfare().reopen_case(case["id"], {"reason": "Moved away from that centre."}, ADMIN)
    assert [r["previous_outcome"] for r in again["reopenings"]] == [OUTCOME, "Place found at another centre."]


@pytest.mark.parametrize("how", ["open", "in_progress", "draft"])
def test_reopening_a_case_not_closed_is_a_conflict_and_changes_nothing(welfare, welfare_db, case, how):  # noqa: F811
    case_id = case["id"]
    if how == "in_progress":
        visit(welfare, case_id)
    elif how == "draft":
        case_id = add_draft(welfare().db)
    with pytest.raises(Conflict) as raised:
        welfare().reopen_case(case_id, {"reason": REASON}, ADMIN)
    assert how in raised.value.message
    assert stored_case(welfare_db, case_id).status == how
    assert welfare_db.count(Reopening) == 0 and welfare_db.outbox("case_reopened") == []


@pytest.mark.parametrize("payload", [{}, {"reason": ""}, {"reason": "x" * 501}, {"reason": 5}])
def test_reopening_needs_a_reason_of_1_to_500_characters(welfare, welfare_db, case, payload):  # noqa: F811
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    with pytest.raises(InvalidInput) as raised:
        welfare().reopen_case(case["id"], payload, ADMIN)
    assert "reason" in raised.value.details["fields"]
    assert stored_case(welfare_db, case["id"]).status == "closed"


def test_only_the_office_reopens_and_an_unknown_case_is_not_found(welfare, welfare_db, case):  # noqa: F811
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    with pytest.raises(Forbidden):
        welfare().reopen_case(case["id"], {"reason": REASON}, MEMBER_A)  # even the assignee
    with pytest.raises(NotFound):
        welfare().reopen_case("no-such-case", {"reason": REASON}, ADMIN)
    assert stored_case(welfare_db, case["id"]).status == "closed"


def test_a_reopened_case_starts_a_new_follow_up_lapse(welfare, welfare_db, case):  # noqa: F811
    set_case(welfare_db, case["id"], opened_at=days_ago(60))
    welfare().sweep()
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    welfare().reopen_case(case["id"], {"reason": REASON}, ADMIN)
    welfare().sweep()
    assert len(welfare_db.outbox("followup_overdue")) == 1  # not again at once: its assignee has the full time
    assert listed(welfare, overdue=True) == set()


# -- cases goods can go to -----------------------------------------------------------------------

def test_recipients_are_the_confirmed_cases_not_closed_without_household_or_names(
        welfare, welfare_db, household, three_cases):  # noqa: F811
    mine, _closed, _draft = three_cases
    working = open_case(welfare, household["id"], "member-b")
    visit(welfare, working["id"], actor=MEMBER_B)
    page = welfare().list_recipients(ADMIN)
    assert [item["id"] for item in page["items"]] == [working["id"], mine["id"]]  # newest first
    assert page["items"][1] == {"id": mine["id"], "compound": "Lotus Garden",
                                "categories": ["low_income", "disability"], "summary": mine["summary"],
                                "opened_at": mine["opened_at"]}
    shown = json.dumps(page, ensure_ascii=False)
    assert household["id"] not in shown and "Wang Guifang" not in shown and HOUSEHOLD["address"] not in shown
    # One audit entry for the listing, not one per case.
    assert audit_entries(welfare_db, "recipients_list") == [("admin-1", "recipients_list", None, None)]
    assert audit_entries(welfare_db, "list_case") == []


def test_recipients_page_with_a_cursor_and_only_an_admin_lists_them(welfare, household):  # noqa: F811
    for _ in range(3):
        open_case(welfare, household["id"])
    first = welfare().list_recipients(ADMIN, {"limit": 2})
    second = welfare().list_recipients(ADMIN, {"limit": 2, "cursor": first["next_cursor"]})
    assert len(ids(first) | ids(second)) == 3 and second["next_cursor"] is None
    with pytest.raises(Forbidden):
        welfare().list_recipients(MEMBER_A)


def test_whether_a_case_can_receive_goods_and_nothing_more(welfare, welfare_db, three_cases):
    mine, closed, draft = three_cases
    assert welfare().check_goods_recipient(mine["id"], ADMIN) == {"case_id": mine["id"], "status": "open"}
    for case_id, message in [(draft, "A draft case cannot receive goods. Confirm it first."),
                             (closed["id"], "A closed case cannot receive goods.")]:
        with pytest.raises(Conflict) as raised:
            welfare().check_goods_recipient(case_id, ADMIN)
        assert raised.value.message == message
        assert raised.value.details == {"fields": {"case_id": [message]}}
    with pytest.raises(NotFound):
        welfare().check_goods_recipient("no-such-case", ADMIN)
    with pytest.raises(Forbidden):
        welfare().check_goods_recipient(mine["id"], MEMBER_A)
    assert audit_entries(welfare_db) == []  # it reads no personal details


# -- the gateway: members searched, and their audit --------------------------------------------

GATEWAY_ADMIN = {"id": "gw-admin", "roles": ["admin"], "session_version": 0}


@pytest.fixture
def members(gateway_db):
    people = {
        "zhang": {"username": "zhang.wei", "name": "张伟", "phone": "139 1234-5678", "roles": ["member"],
                  "party_member": True, "compound": "Xingfu Garden"},
        "li": {"username": "li.na", "name": "Li Na", "phone": "+86 138 0000 0001", "roles": ["admin"],
               "party_member": False, "compound": None},
        "screen": {"username": "screen", "name": "Wall Screen", "phone": None, "roles": ["viewer"],
                   "party_member": False, "compound": None},
        "gone": {"username": "gone", "name": "Moved Away", "phone": "137-0000-0002", "roles": ["member"],
                 "party_member": False, "compound": "Xingfu Garden"},
    }
    with gateway_db.unit_of_work() as uow:
        made = {key: accounts.register(uow, data, password_hash="not-a-hash").id for key, data in people.items()}
        uow.commit()
    with gateway_db.unit_of_work() as uow:
        accounts.update_member(uow, made["gone"], {"active": False})
        uow.commit()
    return made


@pytest.fixture
def gateway(gateway_db):
    return workers_of(GatewayService, gateway_db)


def search(gateway, **params) -> set[str]:
    request = SimpleNamespace(principal=GATEWAY_ADMIN, query=MemberQuerySchema().load(params), query_params=params)
    return {member["id"] for member in gateway().list_members(request)["items"]}


def gateway_audit(gateway, **params) -> list[dict]:
    request = SimpleNamespace(principal=GATEWAY_ADMIN, query=AuditQuerySchema().load(params), query_params=params)
    return gateway().list_audit(request)["items"]


def test_members_are_found_by_name_username_or_phone_however_it_is_spaced(gateway, members):
    assert search(gateway, q="13912345678") == {members["zhang"]}
    assert search(gateway, q="1234 5678") == {members["zhang"]}
    assert search(gateway, q="139-1234") == {members["zhang"]}
    assert search(gateway, q="张") == {members["zhang"]}
    assert search(gateway, q="LI NA") == {members["li"]}
    assert search(gateway, q="li.") == {members["li"]}
    assert search(gateway, q="0000") == {members["li"], members["gone"]}
    assert search(gateway, q="_") == set()  # a wildcard is a character sought
    assert search(gateway, q="nobody") == set()


def test_members_are_filtered_by_role_compound_party_membership_and_activity(gateway, members):
    assert search(gateway) == set(members.values())
    assert search(gateway, role="admin") == {members["li"]}
    assert search(gateway, role="viewer") == {members["screen"]}
    assert search(gateway, compound="Xingfu Garden") == {members["zhang"], members["gone"]}
    assert search(gateway, party_member="true") == {members["zhang"]}
    assert search(gateway, active="false") == {members["gone"]}
    assert search(gateway, compound="Xingfu Garden", active="true", q="139") == {members["zhang"]}


@pytest.mark.parametrize("params, field", [
    ({"role": "boss"}, "role"), ({"active": "maybe"}, "active"), ({"q": ""}, "q"), ({"q": "x" * 101}, "q"),
])
def test_a_bad_member_filter_names_the_field(params, field):
    with pytest.raises(ValidationError) as raised:
        MemberQuerySchema().load(params)
    assert field in raised.value.messages


def test_a_search_with_q_is_audited_with_its_filters_and_listed_as_the_accounts_audit(gateway, gateway_db, members):
    search(gateway, role="admin")  # no q: a list, not a search of people
    search(gateway, q="139 1234", compound="Xingfu Garden")
    search(gateway, q="li.na", limit="5")
    entries = gateway_audit(gateway, source="accounts")
    assert [(e["actor_id"], e["action"], e["filters"]) for e in entries] == [
        ("gw-admin", "member_search", {"q": "li.na"}),  # newest first; paging is not a filter
        ("gw-admin", "member_search", {"q": "139 1234", "compound": "Xingfu Garden"}),
    ]
    assert all(e["at"].endswith("Z") and e["id"] for e in entries)
    assert gateway_db.count(GatewayAuditEntry) == 2
    assert len(gateway_audit(gateway, source="accounts", limit="1")) == 1


def test_the_accounts_audit_takes_no_other_audit_s_filters():
    for params in ({"source": "accounts", "case_id": "c1"}, {"source": "accounts", "incident_id": "i1"},
                   {"household_id": "h1", "patrol_id": "p1"}):
        with pytest.raises(ValidationError):
            AuditQuerySchema().load(params)
    assert AuditQuerySchema().load({"household_id": "h1"})["household_id"] == "h1"


def test_an_account_search_shows_no_password_hash(gateway, gateway_db, members):
    request = SimpleNamespace(principal=GATEWAY_ADMIN, query=MemberQuerySchema().load({"q": "zhang"}),
                              query_params={"q": "zhang"})
    [member] = gateway().list_members(request)["items"]
    assert "password" not in member and "password_hash" not in member
    with Session(gateway_db.engine) as session:
        assert session.get(Account, members["zhang"]).password_hash not in json.dumps(member)


# -- the gateway: welfare checks an assignee on the account handed over with the call -----------

def assign_request(assignee_id):
    body = {"assignee_id": assignee_id}
    return SimpleNamespace(principal=GATEWAY_ADMIN, payload=body, body=body, idempotency_key=None)


def test_the_gateway_hands_welfare_the_assignee_s_account_and_no_more(gateway, members):
    worker = gateway()
    worker.welfare.assign_case.return_value = {"id": "c1"}
    for key, account in [("zhang", {"id": members["zhang"], "party_member": True, "active": True}),
                         ("gone", {"id": members["gone"], "party_member": False, "active": False})]:
        assert worker.assign_case(assign_request(members[key]), "c1") == {"id": "c1"}
        worker.welfare.assign_case.assert_called_with("c1", {"assignee_id": members[key]}, GATEWAY_ADMIN, account)
    worker.assign_case(assign_request("no-such-member"), "c1")
    worker.welfare.assign_case.assert_called_with("c1", {"assignee_id": "no-such-member"}, GATEWAY_ADMIN, None)


def test_the_gateway_hands_volunteers_the_group_people_s_accounts_and_no_more(gateway, members):
    worker = gateway()
    worker.volunteers.update_group.return_value = {"id": "g1", "leader_id": None, "helper_ids": []}
    body = {"leader_id": members["zhang"], "helper_ids": [members["screen"], "no-such-member"]}
    request = SimpleNamespace(principal=GATEWAY_ADMIN, payload=body, body=body)
    worker.update_group(request, "g1")
    held = {members["zhang"]: {"id": members["zhang"], "party_member": True, "active": True, "roles": ["member"]},
            members["screen"]: {"id": members["screen"], "party_member": False, "active": True, "roles": ["viewer"]}}
    worker.volunteers.update_group.assert_called_once_with("g1", body, GATEWAY_ADMIN, [held[k] for k in sorted(held)])


# -- the gateway: a dispatch to a case asks welfare only whether it can receive goods -------------

def dispatch_request(case_id):
    body = {"case_id": case_id, "items": [{"category": "bedding", "quantity": 2}], "destination": None}
    return SimpleNamespace(principal=GATEWAY_ADMIN, payload=body, body=body, idempotency_key="key-1")


def test_a_dispatch_to_a_case_asks_only_whether_it_can_receive_goods(gateway):
    worker = gateway()
    worker.donations.dispatch.return_value = {"id": "d1"}
    assert worker.dispatch_goods(dispatch_request("c1"), "campaign-1") == {"id": "d1"}
    worker.welfare.check_goods_recipient.assert_called_once_with("c1", GATEWAY_ADMIN)
    worker.welfare.get_case.assert_not_called()  # which audited a read and shipped the household's details


def test_a_dispatch_to_an_unknown_case_is_invalid_input_naming_case_id(gateway):
    worker = gateway()
    worker.welfare.check_goods_recipient.side_effect = NotFound("No such case.")
    with pytest.raises(InvalidInput) as raised:
        worker.dispatch_goods(dispatch_request("nope"), "campaign-1")
    assert raised.value.details == {"fields": {"case_id": ["No case has this id."]}}
    worker.donations.dispatch.assert_not_called()


def test_a_dispatch_to_a_draft_case_is_welfare_s_conflict_and_sends_nothing(gateway):
    worker = gateway()
    message = "A draft case cannot receive goods. Confirm it first."
    worker.welfare.check_goods_recipient.side_effect = Conflict(message, {"fields": {"case_id": [message]}})
    with pytest.raises(Conflict) as raised:
        worker.dispatch_goods(dispatch_request("draft-1"), "campaign-1")
    assert raised.value.status == 409 and raised.value.details["fields"]["case_id"] == [message]
    worker.donations.dispatch.assert_not_called()
