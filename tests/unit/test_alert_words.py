"""Issue 16: an alert names what happened and where, in words, Chinese first
then English (services/notifications/domain.py, the one home of the wording);
an incident in a zone without a leader alerts every admin at once, once each;
what leaves Linli through a webhook is its kind, the compound and a link."""
import json
from datetime import date

import pytest

from services import contracts
from services.common.envelope import make_envelope
from services.notifications import domain

ADMINS = ["admin-1", "admin-2"]


def incident(**extra) -> dict:
    return {"incident_id": "inc-1", "zone_id": "zone-north", "compound": "幸福花园 Xingfu Garden",
            "category": "illegal_structure", "category_label": "违章建筑 Illegal structure",
            "severity": "high", "status": "open", "leader_id": "lead", "reported_by": "m1"} | extra


def case(**extra) -> dict:
    return {"case_id": "case-1", "household_id": "h1", "compound": "Lotus Garden",
            "categories": ["elderly", "illness"], "category_labels": ["高龄独居 Elderly", "重病 Illness"],
            "assignee_id": "member-a", "status": "open"} | extra


# -- incidents ---------------------------------------------------------------------------

def test_an_incident_names_its_compound_category_and_severity():
    [leader, *admins] = domain.alerts_for_incident_reported(incident(), ADMINS)
    assert leader.message == ("幸福花园 Xingfu Garden：违章建筑 Illegal structure · 严重 High — "
                              "片区有新上报 New incident in your zone")
    assert leader.compound == "幸福花园 Xingfu Garden"
    assert [a.message for a in admins] == ["幸福花园 Xingfu Garden：违章建筑 Illegal structure · 严重 High — "
                                           "紧急问题上报 High-severity incident"] * 2


def test_an_incident_from_an_older_producer_says_its_category_code():
    [leader] = domain.alerts_for_incident_reported(incident(category_label=None, severity="low"), ADMINS)
    assert leader.message == ("幸福花园 Xingfu Garden：illegal_structure · 轻微 Low — "
                              "片区有新上报 New incident in your zone")


@pytest.mark.parametrize("severity, kind", [("low", "incident_reported"), ("medium", "incident_reported"),
                                            ("high", "incident_high_severity")])
def test_a_zone_without_a_leader_alerts_every_admin_at_once_once_each(severity, kind):
    alerts = domain.alerts_for_incident_reported(incident(leader_id=None, severity=severity), ADMINS)
    assert [(a.member_id, a.kind, a.ref_type, a.ref_id) for a in alerts] == [
        ("admin-1", kind, "incident", "inc-1"), ("admin-2", kind, "incident", "inc-1")]
    for alert in alerts:
        assert "片区无负责人" in alert.message and "without a leader" in alert.message
        assert "违章建筑 Illegal structure" in alert.message


def test_a_zone_with_a_leader_is_not_said_to_have_none():
    for alert in domain.alerts_for_incident_reported(incident(), ADMINS):
        assert "without a leader" not in alert.message


def test_an_escalation_says_how_long_it_waited():
    [alert] = domain.alerts_for_incident_escalated(incident(minutes_unacknowledged=31.4), ["admin-1"])
    assert alert.message == ("幸福花园 Xingfu Garden：违章建筑 Illegal structure · 严重 High — "
                             "31 分钟未确认，已升级 Not acknowledged for 31 minutes: escalated")


# -- cases, referrals, follow-ups ----------------------------------------------------------

def test_a_case_names_its_compound_and_categories():
    alert = domain.alert_for_case_opened(case())
    assert alert.message == ("Lotus Garden：高龄独居 Elderly、重病 Illness — "
                             "新的帮扶个案交给您 A hardship case is now yours")
    assert (alert.member_id, alert.kind, alert.compound) == ("member-a", "case_assigned", "Lotus Garden")


def test_a_case_without_labels_says_its_codes():
    assert domain.alert_for_case_opened(case(category_labels=None)).message.startswith(
        "Lotus Garden：elderly、illness — ")
    assert domain.alert_for_case_opened(case(category_labels=["高龄独居 Elderly"])).message.startswith(
        "Lotus Garden：高龄独居 Elderly、illness — ")


def test_a_reassigned_case_tells_both_members_which_case():
    new, old = domain.alerts_for_case_assigned(case(assignee_id="member-b", previous_assignee_id="member-a"))
    assert (new.member_id, new.kind) == ("member-b", "case_assigned")
    assert (old.member_id, old.kind) == ("member-a", "case_unassigned")
    assert old.message == ("Lotus Garden：高龄独居 Elderly、重病 Illness — "
                           "您的帮扶个案已转交他人 A case of yours went to another party member")


def test_a_referral_names_its_agency_benefit_and_deadline():
    [alert] = domain.alerts_for_referral_overdue({
        "case_id": "case-1", "referral_id": "r1", "assignee_id": "member-a", "deadline": "2026-05-20",
        "compound": "Lotus Garden", "agency": "街道民政科 Civil affairs", "benefit": "低保 Minimum-living allowance"})
    assert alert.message == ("Lotus Garden：街道民政科 Civil affairs · 低保 Minimum-living allowance · "
                             "截止 2026-05-20 deadline — 转介已逾期 Referral past its deadline")


def test_a_referral_from_an_older_producer_says_its_deadline():
    [alert] = domain.alerts_for_referral_overdue({
        "case_id": "case-1", "referral_id": "r1", "assignee_id": "member-a", "deadline": "2026-05-20"})
    assert alert.message == "截止 2026-05-20 deadline — 转介已逾期 Referral past its deadline"
    assert alert.compound is None


@pytest.mark.parametrize("last_visit_on, words", [
    ("2026-05-01", "上次走访 23 天前 last visit 23 days ago"),
    ("2026-05-23", "上次走访 1 天前 last visit 1 day ago"),
    (None, "从未走访 never visited"),
])
def test_a_follow_up_says_how_long_since_the_last_visit(last_visit_on, words):
    [alert] = domain.alerts_for_followup_overdue({
        "case_id": "case-1", "assignee_id": "member-a", "compound": "Lotus Garden",
        "last_visit_on": last_visit_on, "days": 30.0}, today=date(2026, 5, 24))
    assert alert.message == f"Lotus Garden：{words} — 需要回访 Due a visit"


def test_a_long_message_is_cut_in_its_details_never_its_headline():
    labels = ["很长的类别" * 8 + " A very long category label"] * 20
    alert = domain.alert_for_case_opened(case(categories=["c"] * 20, category_labels=labels))
    assert len(alert.message) <= domain.MAX_MESSAGE
    assert alert.message.endswith("… — 新的帮扶个案交给您 A hardship case is now yours")


def test_every_kind_has_words():
    assert set(domain.KINDS) == set(domain.HEADLINES) and set(domain.NO_LEADER_HEADLINES) <= set(domain.KINDS)


# -- what leaves Linli ----------------------------------------------------------------------

def test_a_webhook_body_is_the_kind_the_compound_and_a_link_back():
    assert domain.webhook_body("case_assigned", "Lotus Garden",
                               domain.alert_link("https://linli.example.org/", "a1")) == {
        "kind": "case_assigned", "compound": "Lotus Garden", "link": "https://linli.example.org/app/#/alerts/a1"}


def test_the_inbox_and_alert_created_carry_the_words_and_the_compound_the_feed_neither(notifications,
                                                                                        notifications_db):
    notifications().on_case_opened(make_envelope("welfare", "case_opened", case()))
    [alert] = notifications().list_alerts("member-a")["items"]
    assert alert["compound"] == "Lotus Garden" and "高龄独居 Elderly、重病 Illness" in alert["message"]
    [row] = notifications_db.outbox("alert_created")
    envelope = row["envelope"]
    assert contracts.validate(envelope)["data"]["message"] == alert["message"]
    shown = json.dumps(contracts.for_feed(envelope), ensure_ascii=False)
    assert "Elderly" not in shown and "新的帮扶个案" not in shown and "message" not in shown


def test_the_welfare_events_labels_agency_and_benefit_never_reach_the_feed():
    for event_type, data in [
            ("case_opened", case()),
            ("referral_overdue", {"case_id": "c", "referral_id": "r", "assignee_id": "m", "deadline": "2026-05-20",
                                  "compound": "Lotus Garden", "agency": "街道民政科", "benefit": "残疾证"})]:
        shown = json.dumps(contracts.for_feed(make_envelope("welfare", event_type, data)), ensure_ascii=False)
        for words in ("Elderly", "重病", "街道民政科", "残疾证"):
            assert words not in shown
    shown = json.dumps(contracts.for_feed(make_envelope("patrol", "incident_reported", incident())),
                       ensure_ascii=False)
    assert "Illegal structure" not in shown and "illegal_structure" in shown
