"""A hardship case through its whole life, as nameko workers (worker_factory)
over a real in-memory database: assignment, visits, referrals, closing, who
may do and see what, the audit log of reads, the follow-up timer, and the
alerts notifications makes of welfare's events."""
import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common.clock import naive_utcnow
from services.common.envelope import make_envelope
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.notifications.models import Alert
from services.welfare.domain import lapse_start
from services.welfare.models import AuditEntry, Case, Referral, Visit
from tests.unit.conftest import FOLLOWUP_AFTER_DAYS

ADMIN = {"id": "admin-1", "roles": ["admin"]}
MEMBER_A = {"id": "member-a", "roles": ["member"]}
MEMBER_B = {"id": "member-b", "roles": ["member"]}

HOUSEHOLD = {
    "compound": "Lotus Garden",
    "address": "Building 3, Unit 2, Room 401",
    "people": [
        {"name": "Wang Guifang", "relation": "mother", "birth_year": 1946, "conditions": ["arthritis"]},
        {"name": "Li Ming", "relation": "son", "birth_year": 1975, "conditions": ["severe mental illness"]},
    ],
}
SUMMARY = "Mother, 80, cares alone for her son; needs a minimum-living allowance."
NOTES = "Son off his medication for a week; mother exhausted, asked for day care."
AGENCY = "Civil Affairs Bureau of Haidian"
BENEFIT = "Minimum living guarantee (dibao)"
OUTCOME = "Dibao granted in March; son enrolled at the Sunflower day centre."

PERSONAL = [HOUSEHOLD["address"], SUMMARY, NOTES, AGENCY, BENEFIT, OUTCOME, "Sunflower", "dibao"]
for _person in HOUSEHOLD["people"]:
    PERSONAL += [_person["name"], *_person["conditions"]]

# -- fixtures and helpers -------------------------------------------------------------

@pytest.fixture
def household(welfare):
    return welfare().create_household(HOUSEHOLD, ADMIN)


@pytest.fixture
def case(welfare, household):
    """An open case of the household, paired with member A."""
    return open_case(welfare, household["id"])


def open_case(welfare, household_id, assignee_id="member-a"):
    return welfare().open_case({"household_id": household_id, "categories": ["disability", "low_income"],
                                "summary": SUMMARY, "assignee_id": assignee_id}, ADMIN, party_member(assignee_id))


def party_member(member_id):
    """The assignee's account as the gateway vouches for it with the call (domain.check_assignee)."""
    return {"id": member_id, "party_member": True, "active": True}


def visit(welfare, case_id, actor=MEMBER_A, on=None):
    on = on or naive_utcnow().date()
    return welfare().log_visit(case_id, {"visited_on": on.isoformat(), "notes": NOTES}, actor)


def refer(welfare, case_id, actor=MEMBER_A):
    return welfare().add_referral(case_id, {"agency": AGENCY, "benefit": BENEFIT}, actor)


def stored_case(welfare_db, case_id) -> Case:
    with Session(welfare_db.engine, expire_on_commit=False) as session:
        return session.get(Case, case_id)


def set_case(welfare_db, case_id, **values):
    """Change a case behind the service's back (to age it), keeping the start
    of its lapse in step as the service would."""
    with Session(welfare_db.engine) as session:
        session.execute(update(Case).where(Case.id == case_id).values(**values))
        stored = session.get(Case, case_id)
        stored.lapse_started_at = lapse_start(stored.last_visit_on, stored.opened_at)
        session.commit()


def days_ago(days):
    return naive_utcnow() - timedelta(days=days)


def events(welfare_db, event_type):
    return [row["envelope"]["data"] for row in welfare_db.outbox(event_type)]


def audit(welfare_db):
    with Session(welfare_db.engine) as session:
        return [(e.actor_id, e.action, e.case_id, e.household_id)
                for e in session.scalars(select(AuditEntry).order_by(AuditEntry.at)).all()]


# -- the lifecycle -------------------------------------------------------------------------

def test_the_first_visit_puts_an_open_case_in_progress(welfare, welfare_db, case):
    logged = visit(welfare, case["id"], on=date.today() - timedelta(days=2))
    assert logged["case_id"] == case["id"] and logged["logged_by"] == "member-a"
    assert logged["notes"] == NOTES
    assert stored_case(welfare_db, case["id"]).status == "in_progress"
    assert events(welfare_db, "visit_logged") == [{
        "case_id": case["id"], "visit_id": logged["id"],
        "visited_on": (date.today() - timedelta(days=2)).isoformat(), "status": "in_progress"}]


def test_the_first_referral_puts_an_open_case_in_progress(welfare, welfare_db, case):
    referral = refer(welfare, case["id"])
    assert referral["status"] == "submitted"
    assert (referral["agency"], referral["benefit"]) == (AGENCY, BENEFIT)
    assert stored_case(welfare_db, case["id"]).status == "in_progress"
    assert events(welfare_db, "referral_updated") == [{
        "case_id": case["id"], "referral_id": referral["id"], "referral_status": "submitted",
        "status": "in_progress"}]


@pytest.mark.parametrize("decision", ["approved", "rejected"])
def test_a_submitted_referral_is_decided(welfare, welfare_db, case, decision):
    referral = refer(welfare, case["id"])
    decided = welfare().decide_referral(referral["id"], {"status": decision}, ADMIN)
    assert decided["status"] == decision
    assert decided["decided_by"] == "admin-1" and decided["decided_at"].endswith("Z")
    assert [e["referral_status"] for e in events(welfare_db, "referral_updated")] == ["submitted", decision]


def test_closing_with_an_outcome_closes_the_case(welfare, welfare_db, case):
    visit(welfare, case["id"])
    closed = welfare().close_case(case["id"], {"outcome": OUTCOME}, MEMBER_A)
    assert closed["status"] == "closed"
    assert closed["outcome"] == OUTCOME
    assert closed["closed_at"].endswith("Z")
    stored = stored_case(welfare_db, case["id"])
    assert (stored.status, stored.outcome, stored.closed_by) == ("closed", OUTCOME, "member-a")
    [event] = events(welfare_db, "case_closed")
    assert event["case_id"] == case["id"] and event["status"] == "closed"


def test_an_open_case_can_be_closed_straight_away(welfare, case):
    assert welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)["status"] == "closed"


def test_closing_needs_an_outcome(welfare, welfare_db, case):
    with pytest.raises(InvalidInput) as raised:
        welfare().close_case(case["id"], {}, ADMIN)
    assert "outcome" in raised.value.details["fields"]
    assert stored_case(welfare_db, case["id"]).status == "open"
    assert events(welfare_db, "case_closed") == []


def test_closing_a_closed_case_is_a_conflict_and_changes_nothing(welfare, welfare_db, case):
    welfare().close_case(case["id"], {"outcome": OUTCOME}, MEMBER_A)
    before = stored_case(welfare_db, case["id"])
    with pytest.raises(Conflict):
        welfare().close_case(case["id"], {"outcome": "Closed again by mistake."}, ADMIN)
    after = stored_case(welfare_db, case["id"])
    assert (after.status, after.outcome, after.closed_at, after.closed_by) == (
        "closed", OUTCOME, before.closed_at, "member-a")
    assert len(welfare_db.outbox("case_closed")) == 1


def test_visiting_a_closed_case_is_a_conflict(welfare, welfare_db, case):
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    with pytest.raises(Conflict):
        visit(welfare, case["id"])
    assert welfare_db.count(Visit) == 0
    assert welfare_db.outbox("visit_logged") == []
    assert stored_case(welfare_db, case["id"]).last_visit_on is None


def test_referring_a_closed_case_is_a_conflict(welfare, welfare_db, case):
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    with pytest.raises(Conflict):
        refer(welfare, case["id"])
    assert welfare_db.count(Referral) == 0
    assert welfare_db.outbox("referral_updated") == []


def test_reassigning_a_closed_case_is_a_conflict(welfare, welfare_db, case):
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    with pytest.raises(Conflict):
        welfare().assign_case(case["id"], {"assignee_id": "member-b"}, ADMIN, party_member("member-b"))
    assert stored_case(welfare_db, case["id"]).assignee_id == "member-a"
    assert welfare_db.outbox("case_assigned") == []


def test_a_stage_on_a_closed_case_s_referral_is_a_conflict_and_changes_nothing(welfare, welfare_db, case):
    """As a decision on it is: a closed case's referrals move no more (found by a property test)."""
    referral = refer(welfare, case["id"])
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    with pytest.raises(Conflict):
        welfare().record_referral_stage(referral["id"], {"stage": "documents_checked", "on": "2026-05-20"}, ADMIN)
    with Session(welfare_db.engine) as session:
        assert session.get(Referral, referral["id"]).stages == []
    assert len(welfare_db.outbox("referral_updated")) == 1  # submitted only


@pytest.mark.parametrize("first, second", [("rejected", "approved"), ("approved", "approved"),
                                           ("approved", "rejected")])
def test_deciding_a_decided_referral_is_a_conflict_and_changes_nothing(welfare, welfare_db, case, first, second):
    referral = refer(welfare, case["id"])
    welfare().decide_referral(referral["id"], {"status": first}, ADMIN)
    with pytest.raises(Conflict):
        welfare().decide_referral(referral["id"], {"status": second}, ADMIN)
    with Session(welfare_db.engine) as session:
        assert session.get(Referral, referral["id"]).status == first
    assert len(welfare_db.outbox("referral_updated")) == 2  # submitted, first decision


def test_a_decision_other_than_approved_or_rejected_is_invalid_input(welfare, welfare_db, case):
    referral = refer(welfare, case["id"])
    with pytest.raises(InvalidInput) as raised:
        welfare().decide_referral(referral["id"], {"status": "submitted"}, ADMIN)
    assert "status" in raised.value.details["fields"]
    with Session(welfare_db.engine) as session:
        assert session.get(Referral, referral["id"]).status == "submitted"


def test_deciding_an_unknown_referral_is_not_found(welfare):
    with pytest.raises(NotFound):
        welfare().decide_referral("no-such-referral", {"status": "approved"}, ADMIN)


def test_a_visit_in_the_future_is_invalid_input_naming_visited_on(welfare, welfare_db, case):
    with pytest.raises(InvalidInput) as raised:
        visit(welfare, case["id"], on=date.today() + timedelta(days=7))
    assert "visited_on" in raised.value.details["fields"]
    assert welfare_db.count(Visit) == 0
    assert stored_case(welfare_db, case["id"]).status == "open"
    assert welfare_db.outbox("visit_logged") == []


def test_a_visit_without_notes_is_invalid_input(welfare, welfare_db, case):
    with pytest.raises(InvalidInput) as raised:
        welfare().log_visit(case["id"], {"visited_on": date.today().isoformat()}, MEMBER_A)
    assert "notes" in raised.value.details["fields"]
    assert welfare_db.count(Visit) == 0


# -- assignment ----------------------------------------------------------------------------

def test_reassigning_announces_the_previous_and_the_new_assignee(welfare, welfare_db, case, household):
    assigned = welfare().assign_case(case["id"], {"assignee_id": "member-b"}, ADMIN, party_member("member-b"))
    assert assigned["assignee_id"] == "member-b" and assigned["status"] == "open"
    assert events(welfare_db, "case_assigned") == [{
        "case_id": case["id"], "household_id": household["id"], "compound": "Lotus Garden",
        "categories": ["low_income", "disability"], "assignee_id": "member-b",
        "previous_assignee_id": "member-a", "status": "open",
        "category_labels": ["低收入 Low income", "残疾 Disability"]}]  # for the assignees' alerts
    # The case moved: the new assignee sees it, the previous one no longer does.
    assert welfare().get_case(case["id"], MEMBER_B)["assignee_id"] == "member-b"
    with pytest.raises(NotFound):
        welfare().get_case(case["id"], MEMBER_A)
    with pytest.raises(NotFound):
        visit(welfare, case["id"], actor=MEMBER_A)


def test_reassigning_keeps_a_case_in_progress(welfare, case):
    visit(welfare, case["id"])
    assigned = welfare().assign_case(case["id"], {"assignee_id": "member-b"}, ADMIN, party_member("member-b"))
    assert assigned["status"] == "in_progress"


def test_reassigning_to_the_same_member_is_a_conflict(welfare, welfare_db, case):
    with pytest.raises(Conflict):
        welfare().assign_case(case["id"], {"assignee_id": "member-a"}, ADMIN, party_member("member-a"))
    assert welfare_db.outbox("case_assigned") == []


@pytest.mark.parametrize("actor", [MEMBER_A, MEMBER_B])
def test_a_member_cannot_assign(welfare, welfare_db, case, actor):
    with pytest.raises(Forbidden):
        welfare().assign_case(case["id"], {"assignee_id": "member-b"}, actor, party_member("member-b"))
    assert stored_case(welfare_db, case["id"]).assignee_id == "member-a"
    assert welfare_db.outbox("case_assigned") == []


def test_assigning_an_unknown_case_is_not_found(welfare):
    with pytest.raises(NotFound):
        welfare().assign_case("no-such-case", {"assignee_id": "member-b"}, ADMIN, party_member("member-b"))


# -- who may do what -----------------------------------------------------------------------

UNFIT = [None, {"id": "member-b", "party_member": False, "active": True},
         {"id": "member-b", "party_member": True, "active": False},
         {"id": "member-c", "party_member": True, "active": True}]  # another member's account


@pytest.mark.parametrize("account", UNFIT, ids=["no account", "not a party member", "disabled", "someone else"])
def test_only_an_active_party_member_is_paired_with_a_case(welfare, welfare_db, household, case, account):
    """Opening, confirming and reassigning: welfare checks the account the
    gateway vouched for with the call; a 400 naming assignee_id, nothing written."""
    outbox_before = len(welfare_db.outbox())
    body = {"household_id": household["id"], "categories": ["elderly"], "summary": SUMMARY,
            "assignee_id": "member-b"}
    welfare().on_incident_reported(make_envelope("patrol", "incident_reported", {
        "incident_id": "inc-1", "zone_id": "z1", "compound": "Lotus Garden", "category": "hardship",
        "severity": "medium", "status": "open", "leader_id": None, "reported_by": "member-a"}))
    draft = next(c for c in welfare().list_cases(ADMIN)["items"] if c["status"] == "draft")
    for attempt in (lambda w: w.open_case(body, ADMIN, account),
                    lambda w: w.confirm_case(draft["id"], body, ADMIN, account),
                    lambda w: w.assign_case(case["id"], {"assignee_id": "member-b"}, ADMIN, account)):
        with pytest.raises(InvalidInput) as refused:
            attempt(welfare())
        assert list(refused.value.details["fields"]) == ["assignee_id"]
    assert welfare_db.count(Case) == 2 and stored_case(welfare_db, draft["id"]).status == "draft"
    assert stored_case(welfare_db, case["id"]).assignee_id == "member-a"
    assert len(welfare_db.outbox()) == outbox_before + 1  # the draft's case_drafted only


def test_an_assignee_s_account_carries_nothing_but_what_the_rule_needs(welfare, welfare_db, household):
    body = {"household_id": household["id"], "categories": ["elderly"], "summary": SUMMARY,
            "assignee_id": "member-a"}
    with pytest.raises(InvalidInput) as refused:
        welfare().open_case(body, ADMIN, {**party_member("member-a"), "name": "Zhang Wei"})
    assert "name" in refused.value.details["fields"]
    assert welfare_db.count(Case) == 0


def test_the_assignee_works_the_case_from_first_visit_to_closing(welfare, welfare_db, case):
    visit(welfare, case["id"], actor=MEMBER_A)
    referral = refer(welfare, case["id"], actor=MEMBER_A)
    welfare().decide_referral(referral["id"], {"status": "approved"}, MEMBER_A)
    closed = welfare().close_case(case["id"], {"outcome": OUTCOME}, MEMBER_A)
    assert closed["status"] == "closed"
    assert [r["status"] for r in closed["referrals"]] == ["approved"]


ATTEMPTS = {
    "get_case": lambda w, case_id, ref_id, actor: w.get_case(case_id, actor),
    "log_visit": lambda w, case_id, ref_id, actor: w.log_visit(
        case_id, {"visited_on": date.today().isoformat(), "notes": NOTES}, actor),
    "add_referral": lambda w, case_id, ref_id, actor: w.add_referral(
        case_id, {"agency": AGENCY, "benefit": BENEFIT}, actor),
    "decide_referral": lambda w, case_id, ref_id, actor: w.decide_referral(ref_id, {"status": "approved"}, actor),
    "close_case": lambda w, case_id, ref_id, actor: w.close_case(case_id, {"outcome": OUTCOME}, actor),
}


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
@pytest.mark.parametrize("actor", [MEMBER_B, {"id": "viewer-1", "roles": ["viewer"]}])
def test_another_members_case_does_not_exist_for_them(welfare, welfare_db, case, attempt, actor):
    referral = refer(welfare, case["id"])
    outbox_before = len(welfare_db.outbox())
    with pytest.raises(NotFound):
        ATTEMPTS[attempt](welfare(), case["id"], referral["id"], actor)
    stored = stored_case(welfare_db, case["id"])
    assert (stored.status, stored.outcome, stored.last_visit_on) == ("in_progress", None, None)
    assert welfare_db.count(Visit) == 0 and welfare_db.count(Referral) == 1
    with Session(welfare_db.engine) as session:
        assert session.get(Referral, referral["id"]).status == "submitted"
    assert len(welfare_db.outbox()) == outbox_before
    assert welfare_db.count(AuditEntry) == 0


def test_a_member_lists_only_their_own_cases(welfare, household):
    mine = open_case(welfare, household["id"], "member-a")
    theirs = open_case(welfare, household["id"], "member-b")
    assert [c["id"] for c in welfare().list_cases(MEMBER_A)["items"]] == [mine["id"]]
    assert [c["id"] for c in welfare().list_cases(MEMBER_B)["items"]] == [theirs["id"]]
    assert {c["id"] for c in welfare().list_cases(ADMIN)["items"]} == {mine["id"], theirs["id"]}
    assert welfare().list_cases({"id": "viewer-1", "roles": ["viewer"]})["items"] == []


# -- what a case shows, and what events keep to themselves ---------------------------------

def test_get_case_shows_visits_referrals_last_visit_and_outcome(welfare, case):
    today = naive_utcnow().date()
    visit(welfare, case["id"], on=today - timedelta(days=3))
    visit(welfare, case["id"], on=today - timedelta(days=10))  # logged late: not the last visit
    referral = refer(welfare, case["id"])
    welfare().decide_referral(referral["id"], {"status": "rejected"}, ADMIN)
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)

    shown = welfare().get_case(case["id"], MEMBER_A)
    assert shown["status"] == "closed" and shown["outcome"] == OUTCOME
    assert shown["last_visit_on"] == (today - timedelta(days=3)).isoformat()
    assert [v["visited_on"] for v in shown["visits"]] == [
        (today - timedelta(days=10)).isoformat(), (today - timedelta(days=3)).isoformat()]
    assert all(v["notes"] == NOTES for v in shown["visits"])
    assert [(r["id"], r["agency"], r["benefit"], r["status"]) for r in shown["referrals"]] == [
        (referral["id"], AGENCY, BENEFIT, "rejected")]


def test_a_fresh_case_shows_no_visit_and_no_outcome(welfare, case):
    shown = welfare().get_case(case["id"], ADMIN)
    assert shown["visits"] == [] and shown["referrals"] == []
    assert shown["last_visit_on"] is None and shown["outcome"] is None and shown["closed_at"] is None


def test_no_event_of_the_lifecycle_carries_personal_details(welfare, welfare_db, case):
    visit(welfare, case["id"])
    referral = refer(welfare, case["id"])
    welfare().decide_referral(referral["id"], {"status": "approved"}, ADMIN)
    welfare().assign_case(case["id"], {"assignee_id": "member-b"}, ADMIN, party_member("member-b"))
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    set_case(welfare_db, case["id"], status="in_progress", opened_at=days_ago(60), last_visit_on=None)
    welfare().sweep()

    rows = welfare_db.outbox()
    assert {row["event_type"] for row in rows} == {
        "case_opened", "visit_logged", "referral_updated", "case_assigned", "case_closed", "followup_overdue"}
    for row in rows:
        text = json.dumps(row["envelope"], ensure_ascii=False).lower()
        for value in PERSONAL:
            assert value.lower() not in text, f"{value!r} left in {row['event_type']}"


# -- the audit log of reads ----------------------------------------------------------------

def test_each_read_of_a_case_is_audited_for_admins(welfare, welfare_db, case, household):
    welfare().get_case(case["id"], ADMIN)
    welfare().get_case(case["id"], MEMBER_A)
    welfare().get_household(household["id"], ADMIN)
    welfare().list_cases(MEMBER_A)

    entries = welfare().list_audit(ADMIN)["items"]
    assert [(e["actor_id"], e["action"], e["case_id"], e["household_id"]) for e in entries] == [
        ("member-a", "list_case", case["id"], None),        # newest first
        ("admin-1", "read_household", None, household["id"]),
        ("member-a", "read_case", case["id"], None),
        ("admin-1", "read_case", case["id"], None),
    ]
    assert all(e["at"].endswith("Z") and e["id"] for e in entries)


def test_the_audit_log_is_filtered_by_case(welfare, case, household):
    other = open_case(welfare, household["id"], "member-b")
    welfare().get_case(case["id"], ADMIN)
    welfare().get_case(other["id"], MEMBER_B)
    welfare().get_case(other["id"], ADMIN)

    entries = welfare().list_audit(ADMIN, {"case_id": other["id"]})["items"]
    assert [(e["actor_id"], e["case_id"]) for e in entries] == [("admin-1", other["id"]),
                                                                ("member-b", other["id"])]
    assert welfare().list_audit(ADMIN, {"case_id": "no-such-case"})["items"] == []


def test_listing_cases_audits_every_case_listed(welfare, welfare_db, household):
    ids = {open_case(welfare, household["id"])["id"] for _ in range(3)}
    welfare().list_cases(ADMIN, {"limit": 2})
    listed = [entry for entry in audit(welfare_db) if entry[1] == "list_case"]
    assert len(listed) == 2 and {entry[2] for entry in listed} < ids
    assert all(entry[0] == "admin-1" for entry in listed)


def test_the_audit_log_pages_with_a_cursor(welfare, case):
    for _ in range(3):
        welfare().get_case(case["id"], ADMIN)
    first = welfare().list_audit(ADMIN, {"limit": 2})
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = welfare().list_audit(ADMIN, {"limit": 2, "cursor": first["next_cursor"]})
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    assert len({e["id"] for e in first["items"] + second["items"]}) == 3


@pytest.mark.parametrize("actor", [MEMBER_A, {"id": "viewer-1", "roles": ["viewer"]}])
def test_only_an_admin_reads_the_audit_log(welfare, case, actor):
    welfare().get_case(case["id"], ADMIN)
    with pytest.raises(Forbidden):
        welfare().list_audit(actor)


def test_a_failed_read_adds_no_audit_entry(welfare, welfare_db, case):
    with pytest.raises(NotFound):
        welfare().get_case(case["id"], MEMBER_B)
    with pytest.raises(NotFound):
        welfare().get_case("no-such-case", ADMIN)
    with pytest.raises(NotFound):
        welfare().get_household("no-such-household", ADMIN)
    with pytest.raises(Forbidden):
        welfare().get_household(case["household_id"], MEMBER_A)
    assert welfare_db.count(AuditEntry) == 0
    assert welfare().list_audit(ADMIN)["items"] == []


def test_writes_are_not_reads(welfare, welfare_db, case):
    visit(welfare, case["id"])
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    assert welfare_db.count(AuditEntry) == 0


# -- the follow-up timer --------------------------------------------------------------------

def test_a_young_case_is_not_overdue(welfare, welfare_db, case):
    set_case(welfare_db, case["id"], opened_at=days_ago(FOLLOWUP_AFTER_DAYS - 1))
    welfare().sweep()
    assert welfare_db.outbox("followup_overdue") == []


def test_an_unvisited_case_is_overdue_once_however_often_swept(welfare, welfare_db, case):
    set_case(welfare_db, case["id"], opened_at=days_ago(FOLLOWUP_AFTER_DAYS + 1))
    welfare().sweep()
    welfare().sweep()
    assert events(welfare_db, "followup_overdue") == [{
        "case_id": case["id"], "assignee_id": "member-a", "compound": "Lotus Garden",
        "last_visit_on": None, "days": float(FOLLOWUP_AFTER_DAYS)}]


def test_the_limit_comes_from_config(welfare, welfare_db, case):
    set_case(welfare_db, case["id"], opened_at=days_ago(8))
    welfare(FOLLOWUP_AFTER_DAYS=10).sweep()
    assert welfare_db.outbox("followup_overdue") == []
    welfare(FOLLOWUP_AFTER_DAYS=7).sweep()
    assert len(welfare_db.outbox("followup_overdue")) == 1


def test_a_case_opened_long_ago_but_visited_lately_is_not_overdue(welfare, welfare_db, case):
    visit(welfare, case["id"], on=naive_utcnow().date() - timedelta(days=5))
    set_case(welfare_db, case["id"], opened_at=days_ago(200))
    welfare().sweep()
    assert welfare_db.outbox("followup_overdue") == []


def test_a_visit_starts_a_new_lapse_which_is_alerted_once_it_ages(welfare, welfare_db, case):
    set_case(welfare_db, case["id"], opened_at=days_ago(90))
    welfare().sweep()
    assert len(welfare_db.outbox("followup_overdue")) == 1

    visit(welfare, case["id"])  # the new lapse starts today
    welfare().sweep()
    assert len(welfare_db.outbox("followup_overdue")) == 1

    aged_visit = naive_utcnow().date() - timedelta(days=FOLLOWUP_AFTER_DAYS + 2)
    set_case(welfare_db, case["id"], last_visit_on=aged_visit)
    welfare().sweep()
    welfare().sweep()
    overdue = events(welfare_db, "followup_overdue")
    assert [e["last_visit_on"] for e in overdue] == [None, aged_visit.isoformat()]


def test_a_closed_case_is_never_overdue(welfare, welfare_db, case):
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    set_case(welfare_db, case["id"], opened_at=days_ago(400))
    welfare().sweep()
    welfare().sweep()
    assert welfare_db.outbox("followup_overdue") == []


def test_only_overdue_cases_are_alerted(welfare, welfare_db, household):
    overdue = open_case(welfare, household["id"], "member-a")
    fresh = open_case(welfare, household["id"], "member-b")
    set_case(welfare_db, overdue["id"], opened_at=days_ago(45))
    set_case(welfare_db, fresh["id"], opened_at=days_ago(3))
    welfare().sweep()
    assert [e["case_id"] for e in events(welfare_db, "followup_overdue")] == [overdue["id"]]


def test_two_instances_sweeping_one_after_the_other_alert_once_per_lapse(welfare, welfare_db, case):
    first, second = welfare(), welfare()
    set_case(welfare_db, case["id"], opened_at=days_ago(40))
    first.sweep()
    second.sweep()
    assert len(welfare_db.outbox("followup_overdue")) == 1

    visit(welfare, case["id"], on=naive_utcnow().date() - timedelta(days=35))
    second.sweep()
    first.sweep()
    assert len(welfare_db.outbox("followup_overdue")) == 2


def test_an_instance_that_read_the_case_before_the_other_claimed_it_does_not_alert_again(
        welfare, welfare_db, case):
    first, second = welfare(), welfare()
    set_case(welfare_db, case["id"], opened_at=days_ago(40))
    stale = second.db.session.get(Case, case["id"])  # the second instance has read the unalerted case
    assert stale.followup_alerted_for is None
    first.sweep()
    second.sweep()
    assert len(welfare_db.outbox("followup_overdue")) == 1


def test_an_overdue_case_is_alerted_however_many_cases_are_on_the_books(welfare, welfare_db, household, case):
    """Long-running cases that are visited regularly are not overdue; they must
    not hide the one case nobody has visited."""
    long_ago, yesterday = days_ago(365), naive_utcnow().date() - timedelta(days=1)
    with Session(welfare_db.engine) as session:
        session.add_all(Case(household_id=household["id"], categories=["elderly"], summary=SUMMARY,
                             assignee_id="member-b", status="in_progress", opened_by="admin-1",
                             opened_at=long_ago + timedelta(seconds=i), last_visit_on=yesterday,
                             lapse_started_at=lapse_start(yesterday, long_ago))
                        for i in range(500))
        session.commit()
    set_case(welfare_db, case["id"], opened_at=days_ago(40))
    welfare().sweep()
    assert [e["case_id"] for e in events(welfare_db, "followup_overdue")] == [case["id"]]


# -- the referral deadline timer ---------------------------------------------------------------

def community_today():
    """Today in the community's calendar (the service's default LOCAL_TIMEZONE)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def set_deadline(welfare_db, referral_id, deadline):
    with Session(welfare_db.engine) as session:
        session.execute(update(Referral).where(Referral.id == referral_id).values(deadline=deadline))
        session.commit()


def test_an_undecided_referral_past_its_deadline_alerts_once(welfare, welfare_db, case):
    referral = refer(welfare, case["id"])
    deadline = community_today() - timedelta(days=1)
    set_deadline(welfare_db, referral["id"], deadline)
    welfare().sweep()
    welfare().sweep()
    assert events(welfare_db, "referral_overdue") == [{
        "case_id": case["id"], "referral_id": referral["id"], "assignee_id": "member-a",
        "deadline": deadline.isoformat(), "compound": "Lotus Garden", "agency": AGENCY, "benefit": BENEFIT}]


@pytest.mark.parametrize("days_left", [0, 7], ids=["due today", "due next week"])
def test_a_referral_on_or_before_its_deadline_does_not_alert(welfare, welfare_db, case, days_left):
    referral = refer(welfare, case["id"])
    set_deadline(welfare_db, referral["id"], community_today() + timedelta(days=days_left))
    welfare().sweep()
    assert welfare_db.outbox("referral_overdue") == []


def test_a_referral_without_a_deadline_or_decided_never_alerts(welfare, welfare_db, case):
    refer(welfare, case["id"])  # no deadline
    decided = refer(welfare, case["id"])
    welfare().decide_referral(decided["id"], {"status": "approved"}, MEMBER_A)
    set_deadline(welfare_db, decided["id"], community_today() - timedelta(days=30))
    welfare().sweep()
    assert welfare_db.outbox("referral_overdue") == []


def test_a_closed_case_s_overdue_referral_is_claimed_without_an_alert(welfare, welfare_db, case):
    referral = refer(welfare, case["id"])
    welfare().close_case(case["id"], {"outcome": OUTCOME}, ADMIN)
    set_deadline(welfare_db, referral["id"], community_today() - timedelta(days=3))
    welfare().sweep()
    assert welfare_db.outbox("referral_overdue") == []
    with Session(welfare_db.engine) as session:
        assert session.get(Referral, referral["id"]).overdue_alerted_at is not None
    welfare().reopen_case(case["id"], {"reason": "The need came back after the move."}, ADMIN)
    welfare().sweep()
    assert welfare_db.outbox("referral_overdue") == []  # once claimed, never again


# -- alerts from welfare's events -----------------------------------------------------------

def alerts(notifications_db):
    with Session(notifications_db.engine) as session:
        return sorted((a.member_id, a.kind, a.ref_type, a.ref_id)
                      for a in session.scalars(select(Alert)).all())


def test_a_reassignment_alerts_the_new_and_the_previous_assignee_once(
        welfare, welfare_db, notifications, notifications_db, case):
    welfare().assign_case(case["id"], {"assignee_id": "member-b"}, ADMIN, party_member("member-b"))
    [row] = welfare_db.outbox("case_assigned")
    envelope = row["envelope"]

    notifications().on_case_assigned(envelope)
    notifications().on_case_assigned(json.loads(json.dumps(envelope)))  # redelivered

    assert alerts(notifications_db) == [
        ("member-a", "case_unassigned", "case", case["id"]),
        ("member-b", "case_assigned", "case", case["id"]),
    ]
    announced = [row["envelope"]["data"] for row in notifications_db.outbox("alert_created")]
    assert sorted((a["member_id"], a["kind"]) for a in announced) == [
        ("member-a", "case_unassigned"), ("member-b", "case_assigned")]
    for alert in announced:
        text = json.dumps(alert, ensure_ascii=False).lower()
        assert not any(value.lower() in text for value in PERSONAL)


def test_an_overdue_follow_up_alerts_the_assignee_once(welfare, welfare_db, notifications, notifications_db, case):
    set_case(welfare_db, case["id"], opened_at=days_ago(40))
    welfare().sweep()
    [row] = welfare_db.outbox("followup_overdue")

    notifications().on_followup_overdue(row["envelope"])
    notifications().on_followup_overdue(json.loads(json.dumps(row["envelope"])))  # redelivered

    assert alerts(notifications_db) == [("member-a", "followup_overdue", "case", case["id"])]
    [announced] = notifications_db.outbox("alert_created")
    assert announced["envelope"]["data"]["ref"] == {"type": "case", "id": case["id"]}


def test_two_lapses_make_two_follow_up_alerts(notifications, notifications_db):
    data = {"case_id": "case-1", "assignee_id": "member-a", "compound": "Lotus Garden",
            "last_visit_on": None, "days": 30.0}
    notifications().on_followup_overdue(make_envelope("welfare", "followup_overdue", data))
    notifications().on_followup_overdue(make_envelope("welfare", "followup_overdue",
                                                      dict(data, last_visit_on="2026-03-01")))
    assert alerts(notifications_db) == [("member-a", "followup_overdue", "case", "case-1")] * 2
    messages = sorted(row["envelope"]["data"]["message"] for row in notifications_db.outbox("alert_created"))
    assert messages[0].startswith("Lotus Garden：上次走访 ") and " days ago — 需要回访 Due a visit" in messages[0]
    assert messages[1] == "Lotus Garden：从未走访 never visited — 需要回访 Due a visit"
