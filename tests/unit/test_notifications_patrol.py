"""The notifications service's patrol handlers as nameko workers over a real
in-memory database: who is alerted by which patrol event, once per event,
and what each alert announces."""
import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.envelope import make_envelope
from services.contracts import patrol as patrol_events
from services.notifications.models import Alert, Member

ADMINS = ["admin-1", "admin-2"]
DESCRIPTION = "Old Zhang at Building 5 keeps gas cylinders in the stairwell, next to his door."


def member_registered(member_id, roles):
    return make_envelope("gateway", "member_registered", {
        "member_id": member_id, "roles": roles, "party_member": True, "compound": "Lotus Garden"})


@pytest.fixture
def community(notifications):
    """Two admins (one also a member), a leader and a volunteer, as the gateway announced them."""
    notifications().on_member_registered(member_registered("admin-1", ["admin"]))
    notifications().on_member_registered(member_registered("admin-2", ["member", "admin"]))
    notifications().on_member_registered(member_registered("lead", ["member"]))
    notifications().on_member_registered(member_registered("viewer-1", ["viewer"]))


def incident(event_type=patrol_events.INCIDENT_REPORTED, severity="medium", leader_id="lead",
             incident_id="inc-1", **extra):
    data = {"incident_id": incident_id, "zone_id": "zone-north", "compound": "Pine Court",
            "category": "fire_hazard", "severity": severity, "status": "open", "leader_id": leader_id}
    if event_type == patrol_events.INCIDENT_REPORTED:
        data["reported_by"] = "m1"
    elif event_type == patrol_events.INCIDENT_ESCALATED:
        data["minutes_unacknowledged"] = 31.5
    data.update(extra)
    return make_envelope("patrol", event_type, data)


def zone_uncovered(leader_id="lead", zone_id="zone-north"):
    return make_envelope("patrol", patrol_events.ZONE_UNCOVERED, {
        "zone_id": zone_id, "leader_id": leader_id, "last_patrol_at": None, "days": 7.0})


def alerts(db):
    """(member, kind, ref type, ref id) of every stored alert, sorted."""
    with Session(db.engine) as session:
        rows = session.scalars(select(Alert)).all()
        return sorted((a.member_id, a.kind, a.ref_type, a.ref_id) for a in rows)


def announced(db):
    return sorted((row["envelope"]["data"]["member_id"], row["envelope"]["data"]["kind"])
                  for row in db.outbox("alert_created"))


def redelivery(envelope):
    return json.loads(json.dumps(envelope))


# -- who the admins are -----------------------------------------------------------------

def test_member_registered_records_who_is_an_admin(notifications, notifications_db, community):
    with Session(notifications_db.engine) as session:
        members = {m.id: m.is_admin for m in session.scalars(select(Member))}
    assert members == {"admin-1": True, "admin-2": True, "lead": False, "viewer-1": False}
    assert notifications_db.outbox() == []  # remembering members announces nothing


def test_a_member_registered_again_keeps_one_row(notifications, notifications_db):
    envelope = member_registered("admin-1", ["admin"])
    notifications().on_member_registered(envelope)
    notifications().on_member_registered(redelivery(envelope))
    assert notifications_db.count(Member) == 1


def member_updated(member_id, roles, active=True):
    return make_envelope("gateway", "member_updated", {
        "member_id": member_id, "roles": roles, "active": active, "party_member": False, "compound": None})


def test_a_disabled_or_de_admined_admin_gets_no_more_admin_alerts(notifications, notifications_db, community):
    notifications().on_member_updated(member_updated("admin-1", ["admin"], active=False))
    notifications().on_member_updated(member_updated("admin-2", ["member"]))
    notifications().on_incident_reported(incident(severity="high"))
    assert alerts(notifications_db) == [("lead", "incident_reported", "incident", "inc-1")]
    # Made an admin again (and active), one hears of the next one.
    notifications().on_member_updated(member_updated("admin-2", ["admin", "member"]))
    notifications().on_incident_reported(incident(severity="high", incident_id="inc-2"))
    assert ("admin-2", "incident_high_severity", "incident", "inc-2") in alerts(notifications_db)


def test_a_registration_handled_after_an_update_does_not_undo_it(notifications, notifications_db):
    notifications().on_member_updated(member_updated("admin-9", ["member"]))
    notifications().on_member_registered(member_registered("admin-9", ["admin"]))  # redelivered, older
    notifications().on_incident_reported(incident(severity="high"))
    assert not [alert for alert in alerts(notifications_db) if alert[0] == "admin-9"]


# -- incident reported ------------------------------------------------------------------

def test_an_incident_alerts_the_zones_leader(notifications, notifications_db, community):
    notifications().on_incident_reported(incident(severity="medium"))
    assert alerts(notifications_db) == [("lead", "incident_reported", "incident", "inc-1")]
    assert announced(notifications_db) == [("lead", "incident_reported")]


def test_a_low_severity_incident_alerts_no_admin(notifications, notifications_db, community):
    notifications().on_incident_reported(incident(severity="low"))
    assert alerts(notifications_db) == [("lead", "incident_reported", "incident", "inc-1")]


def test_a_high_severity_incident_alerts_the_leader_and_every_admin(notifications, notifications_db, community):
    notifications().on_incident_reported(incident(severity="high"))
    assert alerts(notifications_db) == [
        ("admin-1", "incident_high_severity", "incident", "inc-1"),
        ("admin-2", "incident_high_severity", "incident", "inc-1"),
        ("lead", "incident_reported", "incident", "inc-1"),
    ]
    assert announced(notifications_db) == [
        ("admin-1", "incident_high_severity"), ("admin-2", "incident_high_severity"),
        ("lead", "incident_reported")]


def test_a_redelivered_incident_makes_no_extra_alerts(notifications, notifications_db, community):
    envelope = incident(severity="high")
    notifications().on_incident_reported(envelope)
    notifications().on_incident_reported(redelivery(envelope))
    assert notifications_db.count(Alert) == 3
    assert len(notifications_db.outbox("alert_created")) == 3


def test_two_incidents_make_two_sets_of_alerts(notifications, notifications_db, community):
    notifications().on_incident_reported(incident(incident_id="inc-1"))
    notifications().on_incident_reported(incident(incident_id="inc-2"))
    assert alerts(notifications_db) == [("lead", "incident_reported", "incident", "inc-1"),
                                        ("lead", "incident_reported", "incident", "inc-2")]


def test_no_leader_and_low_severity_alerts_every_admin_at_once(notifications, notifications_db, community):
    """Issue 16: no one would hear of it until the escalation, 30 minutes later."""
    notifications().on_incident_reported(incident(severity="low", leader_id=None,
                                                  category_label="消防隐患 Fire hazard"))
    assert alerts(notifications_db) == [("admin-1", "incident_reported", "incident", "inc-1"),
                                        ("admin-2", "incident_reported", "incident", "inc-1")]
    assert announced(notifications_db) == [("admin-1", "incident_reported"), ("admin-2", "incident_reported")]
    for row in notifications_db.outbox("alert_created"):
        assert row["envelope"]["data"]["message"] == (
            "Pine Court：消防隐患 Fire hazard · 轻微 Low — "
            "片区无负责人，有新上报 New incident in a zone without a leader")


def test_no_leader_and_high_severity_gives_each_admin_one_urgent_alert(notifications, notifications_db, community):
    notifications().on_incident_reported(incident(severity="high", leader_id=None))
    assert [a[:2] for a in alerts(notifications_db)] == [("admin-1", "incident_high_severity"),
                                                         ("admin-2", "incident_high_severity")]
    for row in notifications_db.outbox("alert_created"):
        assert "片区无负责人" in row["envelope"]["data"]["message"]
        assert "zone without a leader" in row["envelope"]["data"]["message"]


def test_alerts_never_carry_the_incidents_description(notifications, notifications_db, community):
    notifications().on_incident_reported(incident(severity="high"))
    notifications().on_incident_escalated(incident(patrol_events.INCIDENT_ESCALATED))
    rows = notifications_db.outbox("alert_created")
    assert len(rows) == 5
    for row in rows:
        data = row["envelope"]["data"]
        assert data["message"].startswith("Pine Court：fire_hazard · ") and data["compound"] == "Pine Court"
        text = json.dumps(row["envelope"], ensure_ascii=False)
        for fragment in (DESCRIPTION, "Zhang", "gas cylinders", "Building 5"):
            assert fragment not in text


def test_each_alert_is_announced_once_with_its_ref(notifications, notifications_db, community):
    notifications().on_incident_reported(incident(severity="high"))
    with Session(notifications_db.engine) as session:
        stored = {a.id: a for a in session.scalars(select(Alert))}
    rows = notifications_db.outbox("alert_created")
    assert sorted(row["envelope"]["data"]["alert_id"] for row in rows) == sorted(stored)
    for row in rows:
        envelope = row["envelope"]
        assert envelope["source"] == "notifications" and envelope["type"] == "alert_created"
        data = envelope["data"]
        alert = stored[data["alert_id"]]
        assert (data["member_id"], data["kind"]) == (alert.member_id, alert.kind)
        assert data["ref"] == {"type": "incident", "id": "inc-1"}
        assert data["created_at"].endswith("Z")


def test_the_leader_reads_the_incident_alert_in_their_inbox(notifications, community):
    notifications().on_incident_reported(incident(severity="low", category="illegal_structure",
                                                  category_label="违章建筑 Illegal structure"))
    inbox = notifications().list_alerts("lead")["items"]
    assert len(inbox) == 1
    assert inbox[0]["kind"] == "incident_reported"
    assert inbox[0]["ref"] == {"type": "incident", "id": "inc-1"}
    assert inbox[0]["message"] == ("Pine Court：违章建筑 Illegal structure · 轻微 Low — "
                                   "片区有新上报 New incident in your zone")
    assert inbox[0]["compound"] == "Pine Court"
    assert notifications().list_alerts("admin-1")["items"] == []


# -- incident escalated ------------------------------------------------------------------

def test_an_escalated_incident_alerts_every_admin_once(notifications, notifications_db, community):
    envelope = incident(patrol_events.INCIDENT_ESCALATED)
    notifications().on_incident_escalated(envelope)
    notifications().on_incident_escalated(redelivery(envelope))
    assert alerts(notifications_db) == [("admin-1", "incident_escalated", "incident", "inc-1"),
                                        ("admin-2", "incident_escalated", "incident", "inc-1")]
    assert announced(notifications_db) == [("admin-1", "incident_escalated"), ("admin-2", "incident_escalated")]


def test_an_escalation_with_no_admin_known_alerts_nobody(notifications, notifications_db):
    notifications().on_incident_escalated(incident(patrol_events.INCIDENT_ESCALATED))
    assert notifications_db.count(Alert) == 0


# -- zone uncovered ---------------------------------------------------------------------

def test_an_uncovered_zone_alerts_its_leader_once(notifications, notifications_db, community):
    envelope = zone_uncovered()
    notifications().on_zone_uncovered(envelope)
    notifications().on_zone_uncovered(redelivery(envelope))
    assert alerts(notifications_db) == [("lead", "zone_uncovered", "zone", "zone-north")]
    rows = notifications_db.outbox("alert_created")
    assert len(rows) == 1
    data = rows[0]["envelope"]["data"]
    assert data["ref"] == {"type": "zone", "id": "zone-north"}
    assert data["message"] == "您负责的片区已 7 天未巡逻 Your zone has not been patrolled for 7 days"
    assert data["compound"] is None


def test_a_new_lapse_of_the_same_zone_alerts_again(notifications, notifications_db, community):
    notifications().on_zone_uncovered(zone_uncovered())
    notifications().on_zone_uncovered(zone_uncovered())  # a second event: another lapse
    assert notifications_db.count(Alert) == 2


def test_an_uncovered_zone_without_a_leader_alerts_nobody(notifications, notifications_db, community):
    notifications().on_zone_uncovered(zone_uncovered(leader_id=None))
    assert notifications_db.count(Alert) == 0
    assert notifications_db.outbox() == []
