"""What the party member's phone pages rest on (issue 16): a referral's stages
only in order and on possible dates, the household of one's own case (and
its audit), and when a case's next visit falls due."""
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from services.common.clock import naive_utcnow
from services.common.errors import Conflict, InvalidInput, NotFound
from services.welfare import domain
from services.welfare.domain import REFERRAL_STAGES, RuleBroken, StageDateInvalid
from services.welfare.models import AuditEntry, Referral
from tests.unit.test_welfare_lifecycle import (
    ADMIN, FOLLOWUP_AFTER_DAYS, HOUSEHOLD, MEMBER_A, MEMBER_B, open_case, party_member, refer, stored_case,
    visit,
)

TODAY = date(2026, 5, 20)


@pytest.fixture
def household(welfare):
    return welfare().create_household(HOUSEHOLD, ADMIN)


@pytest.fixture
def case(welfare, household):
    """An open case of the household, paired with member A."""
    return open_case(welfare, household["id"])


def on(days_ago: int) -> date:
    return TODAY - timedelta(days=days_ago)


# -- the stage rule (domain) ------------------------------------------------------------

def test_the_next_stage_is_the_first_not_recorded():
    assert domain.next_stage([]) == "application_submitted"
    assert domain.next_stage(["application_submitted"]) == "documents_checked"
    assert domain.next_stage(list(REFERRAL_STAGES)) is None


def test_each_stage_in_order_is_taken_on_days_that_do_not_go_back():
    recorded = []
    for days_ago, stage in zip((9, 9, 4, 0), REFERRAL_STAGES, strict=True):  # the same day as the one before is fine
        domain.check_stage("submitted", recorded, stage, on(days_ago), TODAY)
        recorded.append((stage, on(days_ago)))


@pytest.mark.parametrize("recorded, stage, says", [
    ([], "documents_checked", "The next stage is application_submitted"),
    ([("application_submitted", on(3))], "agency_home_visit", "The next stage is documents_checked"),
    ([("application_submitted", on(3))], "application_submitted", "recorded already"),
    ([(s, on(3)) for s in REFERRAL_STAGES], "decision_made", "recorded already"),
])
def test_a_stage_out_of_order_is_refused_in_words(recorded, stage, says):
    with pytest.raises(RuleBroken, match=says):
        domain.check_stage("submitted", recorded, stage, TODAY, TODAY)


@pytest.mark.parametrize("status", ["approved", "rejected"])
def test_a_decided_referral_takes_no_stage(status):
    with pytest.raises(RuleBroken, match=f"is {status} already"):
        domain.check_stage(status, [], "application_submitted", TODAY, TODAY)


def test_a_stage_in_the_future_is_refused():
    with pytest.raises(StageDateInvalid, match="in the future"):
        domain.check_stage("submitted", [], "application_submitted", TODAY + timedelta(days=1), TODAY)


def test_a_stage_before_the_previous_one_is_refused():
    with pytest.raises(StageDateInvalid, match=r"before the previous stage's \(application_submitted, 2026-05-17\)"):
        domain.check_stage("submitted", [("application_submitted", on(3))], "documents_checked", on(4), TODAY)


# -- the stage rule through the service -----------------------------------------------------

def stages_of(welfare_db, referral_id):
    with Session(welfare_db.engine) as session:
        return session.get(Referral, referral_id).stages


def stage(welfare, referral_id, name, day, actor=MEMBER_A):
    return welfare().record_referral_stage(referral_id, {"stage": name, "on": day.isoformat()}, actor)


def test_the_assignee_records_stages_in_order(welfare, welfare_db, case):
    referral = refer(welfare, case["id"])
    today = naive_utcnow().date()
    stage(welfare, referral["id"], "application_submitted", today - timedelta(days=2))
    answer = stage(welfare, referral["id"], "documents_checked", today - timedelta(days=1))
    assert answer["stages"] == [{"stage": "application_submitted", "on": (today - timedelta(days=2)).isoformat()},
                                {"stage": "documents_checked", "on": (today - timedelta(days=1)).isoformat()}]


def test_a_skipped_stage_is_a_conflict_naming_the_next_and_changes_nothing(welfare, welfare_db, case):
    referral = refer(welfare, case["id"])
    events = len(welfare_db.outbox())
    with pytest.raises(Conflict, match="The next stage is application_submitted") as refused:
        stage(welfare, referral["id"], "documents_checked", naive_utcnow().date())
    assert refused.value.details == {"next_stage": "application_submitted"}
    assert stages_of(welfare_db, referral["id"]) == [] and len(welfare_db.outbox()) == events


@pytest.mark.parametrize("days_ago, says", [(-2, "in the future"), (5, "before the previous stage's")])
def test_an_impossible_date_is_invalid_input_naming_on_and_changes_nothing(welfare, welfare_db, case, days_ago, says):
    referral = refer(welfare, case["id"])
    today = naive_utcnow().date()
    stage(welfare, referral["id"], "application_submitted", today - timedelta(days=3))
    before, events = stages_of(welfare_db, referral["id"]), len(welfare_db.outbox())
    with pytest.raises(InvalidInput, match=says) as refused:
        stage(welfare, referral["id"], "documents_checked", today - timedelta(days=days_ago))
    assert says in refused.value.details["fields"]["on"][0]
    assert stages_of(welfare_db, referral["id"]) == before and len(welfare_db.outbox()) == events


def test_today_is_the_community_s_today(welfare, case):
    """A stage dated the community's today is taken whatever the server's clock's day."""
    community_today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    referral = refer(welfare, case["id"])
    assert stage(welfare, referral["id"], "application_submitted", community_today)["stages"][0]["on"] == (
        community_today.isoformat())


# -- the household of one's own case ----------------------------------------------------------

def test_the_assignee_reads_the_household_of_the_case_and_it_is_audited(welfare, welfare_db, case, household):
    shown = welfare().get_case_household(case["id"], MEMBER_A)
    assert (shown["address"], [p["name"] for p in shown["people"]]) == (
        HOUSEHOLD["address"], [p["name"] for p in HOUSEHOLD["people"]])
    entries = welfare().list_audit(ADMIN, {"household_id": household["id"]})["items"]
    assert [(e["actor_id"], e["action"], e["case_id"]) for e in entries] == [
        ("member-a", "read_household", case["id"])]


@pytest.mark.parametrize("actor", [MEMBER_B, {"id": "viewer-1", "roles": ["viewer"]}])
def test_another_member_finds_no_such_case_and_nothing_is_audited(welfare, welfare_db, case, actor):
    with pytest.raises(NotFound):
        welfare().get_case_household(case["id"], actor)
    assert welfare_db.count(AuditEntry) == 0


def test_a_reassigned_member_no_longer_reads_the_household(welfare, case):
    welfare().assign_case(case["id"], {"assignee_id": "member-b"}, ADMIN, party_member("member-b"))
    with pytest.raises(NotFound):
        welfare().get_case_household(case["id"], MEMBER_A)
    assert welfare().get_case_household(case["id"], MEMBER_B)["address"] == HOUSEHOLD["address"]


def test_an_admin_reads_it_too(welfare, case):
    assert welfare().get_case_household(case["id"], ADMIN)["address"] == HOUSEHOLD["address"]


# -- when the next visit is due ----------------------------------------------------------------

def due(shown) -> datetime:
    return datetime.fromisoformat(shown["next_visit_due"].removesuffix("Z"))


def test_a_new_case_is_due_a_visit_the_follow_up_rule_s_days_after_opening(welfare, welfare_db, case):
    opened = stored_case(welfare_db, case["id"]).opened_at
    assert due(welfare().get_case(case["id"], MEMBER_A)) == opened + timedelta(days=FOLLOWUP_AFTER_DAYS)
    assert due(welfare().list_cases(MEMBER_A)["items"][0]) == opened + timedelta(days=FOLLOWUP_AFTER_DAYS)


def test_a_visit_moves_the_next_one_on_and_a_closed_case_is_due_none(welfare, case):
    day = naive_utcnow().date() - timedelta(days=2)
    visit(welfare, case["id"], on=day)
    assert due(welfare().get_case(case["id"], MEMBER_A)) == datetime.combine(day, datetime.min.time()) + timedelta(
        days=FOLLOWUP_AFTER_DAYS)
    closed = welfare().close_case(case["id"], {"outcome": "Helped."}, MEMBER_A)
    assert closed["next_visit_due"] is None


def test_the_sweep_alerts_exactly_when_the_case_says_it_is_due(welfare, welfare_db, household, monkeypatch):
    """One rule: a case whose next_visit_due has passed is the one the sweep alerts
    (the sweep's clock set to a microsecond before, then to the moment itself)."""
    opened = open_case(welfare, household["id"])
    shown = welfare().get_case(opened["id"], ADMIN)
    for moment, alerts in ((due(shown) - timedelta(microseconds=1), 0), (due(shown), 1)):
        monkeypatch.setattr("services.welfare.service.naive_utcnow", lambda moment=moment: moment)
        welfare().sweep()
        assert len(welfare_db.outbox("followup_overdue")) == alerts, moment
