"""The privacy lifecycle of the people in the welfare records (issue 17): who
consented to what and when, the export of everything held about a household,
erasure of a closed case's personal details after the retention period (the
counts stay), and the month in counts with cases closed by outcome kind. As
nameko workers (worker_factory) over a real in-memory database."""
import json
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common.clock import month_bounds, month_days, naive_utcnow
from services.common.envelope import make_envelope
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.welfare import domain
from services.welfare.models import Case, Consent, Household, Person, Referral, Reopening, Visit
from services.welfare.service import WelfareService
from tests.unit.test_welfare_lifecycle import (
    ADMIN, AGENCY, BENEFIT, HOUSEHOLD, MEMBER_A, NOTES, OUTCOME, PERSONAL, SUMMARY, audit, events, open_case, refer,
    stored_case, visit,
)
from tests.unit.conftest import FOLLOWUP_AFTER_DAYS, workers_of

RETENTION_DAYS = 30
REASON = "Three years since closing: the office's retention rule."
REOPEN_REASON = "Her son stopped going to the day centre."
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def welfare(welfare_db):
    return workers_of(WelfareService, welfare_db, FOLLOWUP_AFTER_DAYS=FOLLOWUP_AFTER_DAYS,
                      RETENTION_DAYS=RETENTION_DAYS)


PHONE = "13800138000"


@pytest.fixture
def household(welfare):
    return welfare().create_household({**HOUSEHOLD, "phone": PHONE}, ADMIN)


def this_month() -> str:
    return datetime.now(ZONE).strftime("%Y-%m")


def close(welfare, case_id, kind="helped", actor=MEMBER_A):
    body = {"outcome": OUTCOME} if kind is None else {"outcome": OUTCOME, "outcome_kind": kind}
    return welfare().close_case(case_id, body, actor)


def age_closing(welfare_db, case_id, days):
    """The case closed `days` ago (behind the service's back)."""
    with Session(welfare_db.engine) as session:
        session.execute(update(Case).where(Case.id == case_id).values(closed_at=naive_utcnow() - timedelta(days=days)))
        session.commit()


def receive_goods(welfare, case_id):
    welfare().on_items_dispatched(make_envelope("donations", "items_dispatched", {
        "campaign_id": "c1", "dispatch_id": f"d{case_id[1:]}", "to": "case", "case_id": case_id,
        "items": [{"category": "food", "quantity": 3}]}))


def stored_texts(welfare_db) -> str:
    """Every row of the welfare tables that hold people's details, as one text."""
    with Session(welfare_db.engine) as session:
        rows = []
        for model in (Household, Person, Case, Visit, Referral, Reopening, Consent):
            for row in session.scalars(select(model)).all():
                rows.append({c.name: getattr(row, c.key) for c in model.__table__.columns})
    return json.dumps(rows, default=str, ensure_ascii=False)


def a_worked_case(welfare, household):
    """A case visited, referred (a stage recorded, granted), given goods, closed, reopened and closed again."""
    case = open_case(welfare, household["id"])
    visit(welfare, case["id"])
    referral = refer(welfare, case["id"])
    welfare().record_referral_stage(referral["id"], {"stage": "application_submitted",
                                                     "on": datetime.now(ZONE).date().isoformat()}, MEMBER_A)
    welfare().decide_referral(referral["id"], {"status": "approved"}, MEMBER_A)
    receive_goods(welfare, case["id"])
    close(welfare, case["id"], "referred")
    welfare().reopen_case(case["id"], {"reason": REOPEN_REASON}, ADMIN)
    close(welfare, case["id"], "helped")
    return case


# -- consents -------------------------------------------------------------------------------

def test_a_consent_and_its_withdrawal_are_both_kept_and_the_household_shows_the_latest(welfare, welfare_db, household):
    given = welfare().record_consent(household["id"], {"person_position": 1, "purpose": "health_information",
                                                       "given": True, "given_on": "2026-01-10"}, ADMIN)
    assert (given["person_name"], given["purpose"], given["given"], given["given_on"], given["recorded_by"]) == (
        "Li Ming", "health_information", True, "2026-01-10", "admin-1")
    assert (given["label_zh"], given["label_en"]) == domain.CONSENT_PURPOSES["health_information"]
    welfare().record_consent(household["id"], {"person_name": "Wang Guifang", "purpose": "case_records",
                                               "given": True}, ADMIN)
    withdrawn = welfare().record_consent(household["id"], {"person_name": "Li Ming", "purpose": "health_information",
                                                           "given": False}, ADMIN)
    assert withdrawn["given_on"] == datetime.now(ZONE).date().isoformat()  # today, the community's day
    shown = welfare().get_household(household["id"], ADMIN)
    assert [(c["person_name"], c["purpose"], c["given"]) for c in shown["consents"]] == [
        ("Wang Guifang", "case_records", True), ("Li Ming", "health_information", False)]
    history = welfare().export_household(household["id"], ADMIN)["consents"]
    assert [(c["person_position"], c["purpose"], c["given"]) for c in history] == [
        (1, "health_information", True), (0, "case_records", True), (1, "health_information", False)]
    assert [a[1] for a in audit(welfare_db) if a[3] == household["id"]].count("record_consent") == 3


@pytest.mark.parametrize("body, field", [
    ({"purpose": "case_records", "given": True}, "person_position"),
    ({"person_position": 0, "person_name": "Li Ming", "purpose": "case_records", "given": True}, "person_name"),
    ({"person_position": 2, "purpose": "case_records", "given": True}, "person_position"),
    ({"person_name": "Zhang San", "purpose": "case_records", "given": True}, "person_name"),
    ({"person_position": 0, "purpose": "selling_lists", "given": True}, "purpose"),
    ({"person_position": 0, "purpose": "case_records"}, "given"),
    ({"person_position": 0, "purpose": "case_records", "given": True, "given_on": "2999-01-01"}, "given_on"),
])
def test_a_bad_consent_is_refused_naming_the_field_and_nothing_is_kept(welfare, welfare_db, household, body, field):
    with pytest.raises(InvalidInput) as raised:
        welfare().record_consent(household["id"], body, ADMIN)
    assert field in raised.value.details["fields"]
    assert welfare_db.count(Consent) == 0


def test_only_the_office_records_consents(welfare, household):
    with pytest.raises(Forbidden):
        welfare().record_consent(household["id"], {"person_position": 0, "purpose": "case_records",
                                                   "given": True}, MEMBER_A)
    with pytest.raises(NotFound):
        welfare().record_consent("nope", {"person_position": 0, "purpose": "case_records", "given": True}, ADMIN)


# -- the export ------------------------------------------------------------------------------

def test_the_export_holds_everything_about_the_household_and_is_audited(welfare, welfare_db, household):
    welfare().record_consent(household["id"], {"person_position": 0, "purpose": "case_records", "given": True}, ADMIN)
    case = a_worked_case(welfare, household)
    exported = welfare().export_household(household["id"], ADMIN)
    assert exported["household"]["address"] == HOUSEHOLD["address"]
    assert [p["name"] for p in exported["household"]["people"]] == ["Wang Guifang", "Li Ming"]
    assert exported["household"]["people"][1]["conditions"] == ["severe mental illness"]
    [kept] = exported["cases"]
    assert (kept["id"], kept["summary"], kept["outcome"], kept["outcome_kind"]) == (
        case["id"], SUMMARY, OUTCOME, "helped")
    assert [v["notes"] for v in kept["visits"]] == [NOTES]
    [referral] = kept["referrals"]
    assert (referral["agency"], referral["benefit"], referral["status"]) == (AGENCY, BENEFIT, "approved")
    assert [s["stage"] for s in referral["stages"]] == ["application_submitted"]
    assert [(a["category"], a["quantity"]) for a in kept["assistance"]] == [("food", 3)]
    assert [r["reason"] for r in kept["reopenings"]] == [REOPEN_REASON]
    assert [c["purpose"] for c in exported["consents"]] == ["case_records"]
    assert exported["exported_at"].endswith("Z")
    assert ("admin-1", "export_household", None, household["id"]) in audit(welfare_db)


def test_only_the_office_exports_a_household(welfare, welfare_db, household):
    with pytest.raises(Forbidden):
        welfare().export_household(household["id"], MEMBER_A)
    with pytest.raises(NotFound):
        welfare().export_household("nope", ADMIN)
    assert [a for a in audit(welfare_db) if a[1] == "export_household"] == []


# -- erasure ---------------------------------------------------------------------------------

def test_erasure_before_the_retention_period_is_refused_saying_from_when(welfare, welfare_db, household):
    case = open_case(welfare, household["id"])
    closed = close(welfare, case["id"])
    age_closing(welfare_db, case["id"], RETENTION_DAYS - 2)
    with pytest.raises(Conflict) as raised:
        welfare().erase_case(case["id"], {"reason": REASON}, ADMIN)
    expected = (datetime.fromisoformat(closed["closed_at"].replace("Z", "+00:00")) - timedelta(days=RETENTION_DAYS - 2)
                + timedelta(days=RETENTION_DAYS)).astimezone(ZONE).date().isoformat()
    assert raised.value.details["erasable_from"] == expected
    assert expected in str(raised.value)
    assert stored_case(welfare_db, case["id"]).summary == SUMMARY
    assert events(welfare_db, "case_erased") == []


def test_an_open_case_is_never_erased(welfare, welfare_db, household):
    case = open_case(welfare, household["id"])
    with pytest.raises(Conflict) as raised:
        welfare().erase_case(case["id"], {"reason": REASON}, ADMIN)
    assert "open" in str(raised.value)
    assert stored_case(welfare_db, case["id"]).erased_at is None


def test_erasure_needs_a_reason_and_the_office(welfare, welfare_db, household):
    case = open_case(welfare, household["id"])
    close(welfare, case["id"])
    age_closing(welfare_db, case["id"], RETENTION_DAYS + 1)
    with pytest.raises(InvalidInput) as raised:
        welfare().erase_case(case["id"], {}, ADMIN)
    assert "reason" in raised.value.details["fields"]
    with pytest.raises(Forbidden):
        welfare().erase_case(case["id"], {"reason": REASON}, MEMBER_A)
    assert stored_case(welfare_db, case["id"]).erased_at is None


def test_erasure_wipes_the_texts_keeps_the_counts_and_twice_is_a_conflict(welfare, welfare_db, household):
    welfare().record_consent(household["id"], {"person_position": 1, "purpose": "health_information",
                                               "given": True}, ADMIN)
    case = a_worked_case(welfare, household)
    before = welfare().monthly_summary(this_month())
    assert (before["cases_opened"], before["cases_helped"], before["cases_closed"]) == (1, 1, 1)
    age_closing(welfare_db, case["id"], RETENTION_DAYS + 1)
    # Aged, the closing left this month: compare the summaries of the months it now touches.
    aged_month = (naive_utcnow() - timedelta(days=RETENTION_DAYS + 1)).replace(tzinfo=timezone.utc) \
        .astimezone(ZONE).strftime("%Y-%m")
    before = [welfare().monthly_summary(m) for m in (this_month(), aged_month)]
    assert welfare().list_cases(ADMIN, {"erasable": "true"})["items"][0]["id"] == case["id"]

    erased = welfare().erase_case(case["id"], {"reason": REASON}, ADMIN)

    assert erased["erased_at"].endswith("Z")
    assert (erased["summary"], erased["outcome"]) == (domain.ERASED, domain.ERASED)
    assert (erased["status"], erased["outcome_kind"], erased["categories"], erased["compound"]) == (
        "closed", "helped", ["low_income", "disability"], HOUSEHOLD["compound"])
    assert [v["notes"] for v in erased["visits"]] == [domain.ERASED]
    assert [(r["agency"], r["status"]) for r in erased["referrals"]] == [(domain.ERASED, "approved")]
    assert [r["reason"] for r in erased["reopenings"]] == [domain.ERASED]
    assert [(a["category"], a["quantity"]) for a in erased["assistance"]] == [("food", 3)]
    assert [welfare().monthly_summary(m) for m in (this_month(), aged_month)] == before
    texts = stored_texts(welfare_db)
    assert [text for text in [*PERSONAL, PHONE, REOPEN_REASON] if text in texts] == []
    assert HOUSEHOLD["compound"] in texts  # the compound stays: the counts by compound
    shown = welfare().get_household(household["id"], ADMIN)
    assert shown["erased_at"] and shown["address"] == domain.ERASED and shown["phone"] is None
    assert [(p["name"], p["conditions"], p["birth_year"]) for p in shown["people"]] == [
        (domain.ERASED, [], 1946), (domain.ERASED, [], 1975)]
    assert events(welfare_db, "case_erased") == [{"case_id": case["id"]}]
    assert ("admin-1", "erase_case", case["id"], household["id"]) in audit(welfare_db)
    assert welfare().list_cases(ADMIN, {"erasable": "true"})["items"] == []

    with pytest.raises(Conflict) as raised:
        welfare().erase_case(case["id"], {"reason": REASON}, ADMIN)
    assert "already" in str(raised.value)
    assert len(events(welfare_db, "case_erased")) == 1
    with pytest.raises(Conflict):  # its details are gone: a new case, not this one
        welfare().reopen_case(case["id"], {"reason": REOPEN_REASON}, ADMIN)


def test_the_household_stays_while_another_of_its_cases_is_not_erased(welfare, welfare_db, household):
    first, second = open_case(welfare, household["id"]), open_case(welfare, household["id"])
    close(welfare, first["id"])
    age_closing(welfare_db, first["id"], RETENTION_DAYS + 1)
    welfare().erase_case(first["id"], {"reason": REASON}, ADMIN)
    kept = welfare().get_household(household["id"], ADMIN)
    assert kept["erased_at"] is None and kept["address"] == HOUSEHOLD["address"]
    assert [p["name"] for p in kept["people"]] == ["Wang Guifang", "Li Ming"]
    assert stored_case(welfare_db, second["id"]).summary == SUMMARY
    assert stored_case(welfare_db, first["id"]).summary == domain.ERASED

    close(welfare, second["id"])
    age_closing(welfare_db, second["id"], RETENTION_DAYS + 1)
    welfare().erase_case(second["id"], {"reason": REASON}, ADMIN)
    gone = welfare().get_household(household["id"], ADMIN)
    assert gone["erased_at"] and gone["address"] == domain.ERASED
    with pytest.raises(Conflict):
        welfare().record_consent(household["id"], {"person_position": 0, "purpose": "case_records",
                                                   "given": True}, ADMIN)


def test_a_dismissed_draft_is_erased_too(welfare, welfare_db):
    welfare().on_incident_reported(make_envelope("patrol", "incident_reported", {
        "incident_id": "inc-1", "zone_id": "z1", "compound": "Lotus Garden", "category": "hardship",
        "severity": "low", "status": "open", "leader_id": None, "reported_by": "member-a"}))
    [draft] = welfare().list_cases(ADMIN, {"status": "draft"})["items"]
    welfare().dismiss_case(draft["id"], {"reason": "Wang Guifang's family came back to care for her."}, ADMIN)
    with pytest.raises(Conflict):
        welfare().erase_case(draft["id"], {"reason": REASON}, ADMIN)
    age_closing(welfare_db, draft["id"], RETENTION_DAYS + 1)
    erased = welfare().erase_case(draft["id"], {"reason": REASON}, ADMIN)
    assert (erased["status"], erased["outcome"], erased["summary"]) == ("dismissed", domain.ERASED, domain.ERASED)


def test_with_no_retention_a_closed_case_may_be_erased_at_once(welfare, household):
    case = open_case(welfare, household["id"])
    close(welfare, case["id"])
    assert welfare(RETENTION_DAYS=0).erase_case(case["id"], {"reason": REASON}, ADMIN)["erased_at"]


# -- outcome kinds and the month ------------------------------------------------------------

def test_closing_keeps_the_outcome_kind_and_the_event_carries_it(welfare, welfare_db, household):
    case = open_case(welfare, household["id"])
    closed = close(welfare, case["id"], "moved_away")
    assert closed["outcome_kind"] == "moved_away"
    [event] = events(welfare_db, "case_closed")
    assert event["outcome_kind"] == "moved_away" and OUTCOME not in json.dumps(event)


def test_an_unknown_outcome_kind_is_refused(welfare, welfare_db, household):
    case = open_case(welfare, household["id"])
    with pytest.raises(InvalidInput) as raised:
        welfare().close_case(case["id"], {"outcome": OUTCOME, "outcome_kind": "cured"}, MEMBER_A)
    assert "outcome_kind" in raised.value.details["fields"]
    assert stored_case(welfare_db, case["id"]).status == "open"


def test_the_month_counts_cases_closed_by_outcome_kind(welfare, household):
    kinds = ["helped", "helped", "deceased", None]
    cases = [open_case(welfare, household["id"]) for _ in kinds]
    for case, kind in zip(cases, kinds, strict=True):
        close(welfare, case["id"], kind)
    still_open = open_case(welfare, household["id"])
    visit(welfare, still_open["id"])
    month = welfare().monthly_summary(this_month())
    assert month["cases_closed"] == 4
    assert month["closed_by_outcome"] == {"helped": 2, "referred": 0, "moved_away": 0, "deceased": 1,
                                          "declined": 0, "other": 0, "unspecified": 1}
    assert month["cases_opened"] == 5 and month["open_at_month_end"] == 1
    assert month["cases_helped"] == 1 and month["visits"] == 1
    assert month["cases_opened_by_category"] == [
        {"category": "low_income", "label_zh": "低收入", "label_en": "Low income", "count": 5},
        {"category": "disability", "label_zh": "残疾", "label_en": "Disability", "count": 5},
    ]


def test_the_month_counts_what_was_done_and_nothing_else(welfare, household):
    a_worked_case(welfare, household)
    month = welfare().monthly_summary(this_month())
    assert month == {**month, "month": this_month(), "cases_opened": 1, "cases_helped": 1, "visits": 1,
                     "referrals_made": 1, "referrals_granted": 1, "cases_closed": 1, "open_at_month_end": 0}
    assert set(month) == {"month", "cases_opened", "cases_opened_by_category", "cases_helped", "visits",
                          "referrals_made", "referrals_granted", "cases_closed", "closed_by_outcome",
                          "open_at_month_end"}
    last_year = welfare().monthly_summary(f"{int(this_month()[:4]) - 1}{this_month()[4:]}")
    assert (last_year["cases_opened"], last_year["cases_helped"], last_year["cases_closed"]) == (0, 0, 0)
    assert sum(last_year["closed_by_outcome"].values()) == 0


@pytest.mark.parametrize("month", ["2026-13", "2026-5", "May 2026", "", None, 202605])
def test_a_bad_month_is_refused_naming_it(welfare, month):
    with pytest.raises(InvalidInput) as raised:
        welfare().monthly_summary(month)
    assert "month" in raised.value.details["fields"]


# -- the pure rules --------------------------------------------------------------------------

def test_a_month_is_the_communitys_month_in_utc():
    assert month_days("2026-12") == (date(2026, 12, 1), date(2027, 1, 1))
    assert month_bounds("2026-12", ZONE) == (datetime(2026, 11, 30, 16), datetime(2026, 12, 31, 16))


def test_erasable_only_closed_once_and_after_the_retention():
    closed = datetime(2026, 1, 1)
    domain.check_erasable("closed", closed, None, 30, closed + timedelta(days=30))
    domain.check_erasable("dismissed", closed, None, 30, closed + timedelta(days=31))
    for args in [("closed", closed, None, 30, closed + timedelta(days=29, hours=23)),
                 ("open", None, None, 30, closed + timedelta(days=100)),
                 ("in_progress", None, None, 0, closed),
                 ("closed", closed, closed + timedelta(days=40), 30, closed + timedelta(days=50))]:
        with pytest.raises(domain.RuleBroken):
            domain.check_erasable(*args)


def test_outcome_counts_name_every_kind():
    assert domain.outcome_counts(["declined", None, "other", "declined"]) == {
        "helped": 0, "referred": 0, "moved_away": 0, "deceased": 0, "declined": 2, "other": 1, "unspecified": 1}


def test_the_latest_answer_of_each_person_holds():
    assert domain.current_consents([(0, "case_records", True), (1, "case_records", True),
                                    (0, "case_records", False)]) == {(0, "case_records"): False,
                                                                     (1, "case_records"): True}
