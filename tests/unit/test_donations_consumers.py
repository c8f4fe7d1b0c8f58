"""What other services do with the donations service's events, as nameko
workers over a real in-memory database: welfare shows goods sent to a case as
assistance received; notifications alerts a campaign's creator when its goal
is reached. Each once per event, whatever the redeliveries."""
import json

import pytest
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.envelope import make_envelope
from services.common.errors import NotFound
from services.contracts import donations as donation_events
from services.notifications.domain import HEADLINES
from services.notifications.models import Alert
from services.welfare.models import Assistance
from tests.unit.test_welfare_lifecycle import party_member

ADMIN = {"id": "admin-1", "roles": ["admin"]}
ASSIGNEE = {"id": "member-a", "roles": ["member"]}
HOUSEHOLD = {
    "compound": "Lotus Garden",
    "address": "Building 3, Unit 2, Room 401",
    "people": [{"name": "Wang Guifang", "relation": "mother", "birth_year": 1946, "conditions": []}],
}


def redelivery(envelope):
    """The same message again, as it comes off the wire."""
    return json.loads(json.dumps(envelope))


# -- welfare: items_dispatched ------------------------------------------------------

@pytest.fixture
def case(welfare):
    household = welfare().create_household(HOUSEHOLD, ADMIN)
    return welfare().open_case({"household_id": household["id"], "categories": ["elderly"],
                                "summary": "Lives alone after the earthquake.", "assignee_id": "member-a"},
                               ADMIN, party_member("member-a"))


def items_dispatched(case_id, to="case", dispatch_id="dispatch-1", items=(("bedding", 2), ("clothing", 3))):
    return make_envelope("donations", donation_events.ITEMS_DISPATCHED, {
        "campaign_id": "campaign-1", "dispatch_id": dispatch_id, "to": to, "case_id": case_id,
        "items": [{"category": c, "quantity": q} for c, q in items]})


def assistance(welfare, case_id, actor=ADMIN):
    return sorted((a["campaign_id"], a["dispatch_id"], a["category"], a["quantity"])
                  for a in welfare().get_case(case_id, actor)["assistance"])


def processed(db):
    with Session(db.engine) as session:
        return session.execute(select(db.kernel.processed_events)).all()


def test_a_new_case_has_no_assistance(welfare, case):
    assert case["assistance"] == []


def test_goods_sent_to_a_case_show_on_it_as_assistance_received(welfare, welfare_db, case):
    welfare().on_items_dispatched(items_dispatched(case["id"]))

    seen = welfare().get_case(case["id"], ASSIGNEE)["assistance"]
    assert sorted((a["campaign_id"], a["dispatch_id"], a["category"], a["quantity"]) for a in seen) == [
        ("campaign-1", "dispatch-1", "bedding", 2), ("campaign-1", "dispatch-1", "clothing", 3)]
    assert all(a["received_at"].endswith("Z") for a in seen)
    assert assistance(welfare, case["id"], ADMIN) == assistance(welfare, case["id"], ASSIGNEE)
    assert welfare_db.count(Assistance) == 2


def test_a_redelivered_dispatch_adds_nothing_twice(welfare, welfare_db, case):
    envelope = items_dispatched(case["id"])
    welfare().on_items_dispatched(envelope)
    welfare().on_items_dispatched(redelivery(envelope))
    welfare().on_items_dispatched(redelivery(envelope))
    assert welfare_db.count(Assistance) == 2

    # Another dispatch to the same case (a new event, the same goods) is counted.
    welfare().on_items_dispatched(items_dispatched(case["id"], dispatch_id="dispatch-2", items=[("bedding", 2)]))
    assert assistance(welfare, case["id"]) == [
        ("campaign-1", "dispatch-1", "bedding", 2), ("campaign-1", "dispatch-1", "clothing", 3),
        ("campaign-1", "dispatch-2", "bedding", 2)]


def test_goods_sent_to_a_place_add_nothing_to_any_case(welfare, welfare_db, case):
    welfare().on_items_dispatched(items_dispatched(None, to="place"))
    assert welfare_db.count(Assistance) == 0
    assert welfare().get_case(case["id"], ADMIN)["assistance"] == []


def test_goods_sent_to_an_unknown_case_fail_so_the_message_is_retried_then_dead_lettered(
        welfare, welfare_db, case):
    envelope = items_dispatched("no-such-case")
    with pytest.raises(NotFound):
        welfare().on_items_dispatched(envelope)
    # Not marked as handled: a redelivery is tried again, and fails again.
    assert processed(welfare_db) == []
    with pytest.raises(NotFound):
        welfare().on_items_dispatched(redelivery(envelope))
    assert welfare_db.count(Assistance) == 0
    assert welfare().get_case(case["id"], ADMIN)["assistance"] == []


def test_a_dispatch_that_breaks_the_contract_adds_nothing(welfare, welfare_db, case):
    envelope = items_dispatched(case["id"], items=[("bedding", 0)])
    with pytest.raises(ValidationError):
        welfare().on_items_dispatched(envelope)
    assert welfare_db.count(Assistance) == 0
    assert processed(welfare_db) == []


# -- notifications: goal_reached ------------------------------------------------------

def goal_reached(campaign_id="campaign-1", created_by="admin-7"):
    return make_envelope("donations", donation_events.GOAL_REACHED, {
        "campaign_id": campaign_id, "goal_fen": 1_600_000, "cash_fen": 1_604_000, "created_by": created_by})


def alerts(db):
    with Session(db.engine) as session:
        return sorted((a.member_id, a.kind, a.ref_type, a.ref_id, a.message)
                      for a in session.scalars(select(Alert)).all())


def test_goal_reached_alerts_the_campaigns_creator_once(notifications, notifications_db):
    envelope = goal_reached()
    notifications().on_goal_reached(envelope)
    notifications().on_goal_reached(redelivery(envelope))

    assert alerts(notifications_db) == [
        ("admin-7", "goal_reached", "campaign", "campaign-1", HEADLINES["goal_reached"])]
    rows = notifications_db.outbox("alert_created")
    assert len(rows) == 1
    data = rows[0]["envelope"]["data"]
    assert (data["member_id"], data["kind"], data["ref"]) == (
        "admin-7", "goal_reached", {"type": "campaign", "id": "campaign-1"})

    inbox = notifications().list_alerts("admin-7")["items"]
    assert [(a["kind"], a["ref"]) for a in inbox] == [("goal_reached", {"type": "campaign", "id": "campaign-1"})]
    assert notifications().list_alerts("admin-1")["items"] == []


def test_each_campaign_reaching_its_goal_alerts_its_own_creator(notifications, notifications_db):
    notifications().on_goal_reached(goal_reached("campaign-1", "admin-7"))
    notifications().on_goal_reached(goal_reached("campaign-2", "admin-8"))
    assert [(a[0], a[3]) for a in alerts(notifications_db)] == [("admin-7", "campaign-1"), ("admin-8", "campaign-2")]
    assert len(notifications_db.outbox("alert_created")) == 2
