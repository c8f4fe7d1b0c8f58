"""The patrol and donations services' monthly summaries for the street
office's report (issue 17): counts in the community's month (Asia/Shanghai:
November 2026 runs from 2026-10-31T16:00Z to 2026-11-30T16:00Z), edges
included and excluded, test drives left out, voided gifts not counted, a
case only as `to_case`; a month that is not one is an InvalidInput."""
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from services.common.errors import InvalidInput
from services.donations.models import Dispatch, Donation
from services.patrol.models import Incident, Patrol, Zone
from tests.unit.test_donations_service import (
    ADMIN as OFFICE, CASE_ID, SHELTER, VOLUNTEER, campaign_payload, cash, goods,
)
from tests.unit.test_patrol_service import ADMIN, DESCRIPTION, M1, M2, SOUTH, make_zone

NOVEMBER_STARTS = datetime(2026, 10, 31, 16, 0)  # 2026-11-01 00:00 in Shanghai, as stored (naive UTC)
NOVEMBER_ENDS = datetime(2026, 11, 30, 16, 0)
JUST = timedelta(seconds=1)


def set_times(db, model, row_id, **values):
    with Session(db.engine) as session:
        session.execute(update(model).where(model.id == row_id).values(**values))
        session.commit()


# -- patrol --------------------------------------------------------------------------

def a_patrol(patrol, patrol_db, zone, actor, started_at, minutes=None, closed=False, stored_minutes=True):
    shift = patrol().start_patrol({"zone_id": zone["id"]}, actor)
    patrol().finish_patrol(shift["id"], {}, actor)
    set_times(patrol_db, Patrol, shift["id"], started_at=started_at,
              finished_at=started_at + timedelta(minutes=minutes or 0),
              duration_minutes=minutes if stored_minutes else None, closed_automatically=closed)
    return shift["id"]


def an_incident(patrol, patrol_db, zone, reported_at, category="fire_hazard", resolved_at=None):
    incident = patrol().report_incident({"zone_id": zone["id"], "compound": zone["compounds"][0],
                                         "category": category, "description": DESCRIPTION,
                                         "severity": "low"}, ADMIN)
    if resolved_at is not None:
        patrol().resolve_incident(incident["id"], {"resolution": "Done."}, ADMIN)
    set_times(patrol_db, Incident, incident["id"], reported_at=reported_at, resolved_at=resolved_at)


def test_the_patrol_summary_counts_the_communitys_month(patrol, patrol_db):
    north = make_zone(patrol)
    south = make_zone(patrol, name="South", compounds=SOUTH, leader="south-lead", members=("m1", "m2"))
    east = make_zone(patrol, name="East", compounds=["Sunrise Court"], leader="east-lead", members=())
    for zone in (north, south):
        set_times(patrol_db, Zone, zone["id"], created_at=NOVEMBER_STARTS - timedelta(days=60))
    set_times(patrol_db, Zone, east["id"], created_at=NOVEMBER_ENDS + JUST)  # made in December

    a_patrol(patrol, patrol_db, north, M1, NOVEMBER_STARTS - JUST, 50)                 # October 31st, 23:59:59
    a_patrol(patrol, patrol_db, north, M1, NOVEMBER_STARTS, 90)                        # November 1st, 00:00
    a_patrol(patrol, patrol_db, north, M2, NOVEMBER_STARTS + timedelta(days=3), 240, closed=True)
    a_patrol(patrol, patrol_db, north, M2, NOVEMBER_STARTS + timedelta(days=4), 300, stored_minutes=False)
    a_patrol(patrol, patrol_db, north, M1, NOVEMBER_ENDS - JUST, 30)                   # November 30th, 23:59:59
    a_patrol(patrol, patrol_db, south, M1, NOVEMBER_ENDS, 45)                          # December 1st, 00:00
    on = patrol().start_patrol({"zone_id": south["id"]}, M2)                           # still on: no minutes
    set_times(patrol_db, Patrol, on["id"], started_at=NOVEMBER_STARTS + timedelta(days=10))

    an_incident(patrol, patrol_db, north, NOVEMBER_STARTS - JUST, "fire_hazard",
                resolved_at=NOVEMBER_STARTS + timedelta(days=1))  # reported October, resolved November
    an_incident(patrol, patrol_db, north, NOVEMBER_STARTS, "fire_hazard",
                resolved_at=NOVEMBER_STARTS + timedelta(days=2))
    an_incident(patrol, patrol_db, south, NOVEMBER_STARTS + timedelta(days=5), "dispute",
                resolved_at=NOVEMBER_ENDS + JUST)  # resolved in December: open at the end
    an_incident(patrol, patrol_db, south, NOVEMBER_ENDS - JUST, "dispute")
    an_incident(patrol, patrol_db, south, NOVEMBER_ENDS, "stranger")                   # December

    summary = patrol(LOCAL_TIMEZONE="Asia/Shanghai").monthly_summary("2026-11")
    assert summary == {
        "month": "2026-11",
        "patrols": 5,
        "patrol_minutes": 90 + 240 + 240 + 30,  # an old patrol without stored minutes counts its times, capped
        "patrols_closed_automatically": 1,
        "zones_total": 2,
        "zones_covered": 2,
        "zones": [{"zone_id": north["id"], "name": "North", "patrols": 4},
                  {"zone_id": south["id"], "name": "South", "patrols": 1}],
        "incidents": {"reported": 3, "resolved": 2, "open_at_month_end": 2},
        "incidents_by_category": [
            {"category": "dispute", "label_zh": "纠纷", "label_en": "Dispute", "reported": 2, "resolved": 0},
            {"category": "fire_hazard", "label_zh": "消防隐患", "label_en": "Fire hazard", "reported": 1,
             "resolved": 2}],
    }
    assert DESCRIPTION not in json.dumps(summary, ensure_ascii=False)

    # In UTC, the same rows fall in other months: the bounds are the community's.
    in_utc = patrol(LOCAL_TIMEZONE="UTC").monthly_summary("2026-11")
    assert in_utc["patrols"] == 5 and in_utc["zones_total"] == 3
    assert in_utc["incidents"]["reported"] == 3 and in_utc["incidents"]["resolved"] == 3

    december = patrol().monthly_summary("2026-12")
    assert december["patrols"] == 1 and december["zones_total"] == 3 and december["zones_covered"] == 1
    assert [z["patrols"] for z in december["zones"]] == [0, 0, 1]  # East, North, South
    assert december["incidents"] == {"reported": 1, "resolved": 1, "open_at_month_end": 1}


def test_an_empty_month_is_all_zeros(patrol):
    make_zone(patrol)
    summary = patrol().monthly_summary("2031-02")
    assert summary["patrols"] == 0 and summary["patrol_minutes"] == 0 and summary["zones_covered"] == 0
    assert summary["incidents"] == {"reported": 0, "resolved": 0, "open_at_month_end": 0}
    assert summary["incidents_by_category"] == []


BAD_MONTHS = ["2026-13", "2026-00", "2026-1", "26-11", "2026/11", "2026-11-01", "", None, 202611, "１２３４-11",
              "1999-12", "2026-11\x00"]


@pytest.mark.parametrize("month", BAD_MONTHS)
def test_a_month_that_is_not_one_is_invalid_input_naming_it(patrol, donations, month):
    for service in (patrol(), donations()):
        with pytest.raises(InvalidInput) as raised:
            service.monthly_summary(month)
        assert "month" in raised.value.details["fields"]


# -- donations -----------------------------------------------------------------------

def gift(donations, donations_db, campaign, payload, received_at, voided_at=None):
    donation = donations().record_donation(campaign["id"], payload, VOLUNTEER)
    if voided_at is not None:
        donations().void_donation(campaign["id"], donation["receipt_no"], {"reason": "Typed twice."}, OFFICE)
    set_times(donations_db, Donation, donation["id"], created_at=received_at, voided_at=voided_at)


def sent(donations, donations_db, campaign, at, **payload):
    dispatch = donations().dispatch(campaign["id"], payload, OFFICE)
    set_times(donations_db, Dispatch, dispatch["id"], created_at=at)


def test_the_donations_summary_counts_the_communitys_month(donations, donations_db):
    relief = donations().create_campaign(campaign_payload(goal_fen=1_600_000, name="Earthquake relief"), OFFICE)
    winter = donations().create_campaign(campaign_payload(goal_fen=500_000, name="Winter coats"), OFFICE)
    quiet = donations().create_campaign(campaign_payload(name="Library books"), OFFICE)
    trial = donations().create_campaign({**campaign_payload(name="Trial run"), "test": True}, OFFICE)

    gift(donations, donations_db, relief, cash(10_000), NOVEMBER_STARTS - JUST)                 # October
    gift(donations, donations_db, relief, cash(20_000), NOVEMBER_STARTS)                        # November 1st
    gift(donations, donations_db, relief, cash(40_000), NOVEMBER_ENDS - JUST)                   # November 30th
    gift(donations, donations_db, relief, cash(80_000), NOVEMBER_ENDS)                          # December
    gift(donations, donations_db, relief, cash(7_700), NOVEMBER_STARTS + timedelta(days=2),
         voided_at=NOVEMBER_STARTS + timedelta(days=3))                                         # voided in November
    gift(donations, donations_db, relief, cash(3_300), NOVEMBER_STARTS - timedelta(days=3),
         voided_at=NOVEMBER_STARTS + JUST)  # October's, voided in November
    gift(donations, donations_db, relief, goods(("clothing", 30), ("bedding", 5)), NOVEMBER_STARTS + timedelta(days=1))
    gift(donations, donations_db, winter, goods(("clothing", 12)), NOVEMBER_STARTS + timedelta(days=9))
    gift(donations, donations_db, winter, goods(("bedding", 4)), NOVEMBER_STARTS + timedelta(days=9),
         voided_at=NOVEMBER_STARTS + timedelta(days=10))
    gift(donations, donations_db, quiet, cash(999), NOVEMBER_STARTS - timedelta(days=20))       # nothing in November
    gift(donations, donations_db, trial, cash(123_456), NOVEMBER_STARTS + timedelta(days=5))
    gift(donations, donations_db, trial, goods(("food", 9)), NOVEMBER_STARTS + timedelta(days=5))
    gift(donations, donations_db, trial, cash(1), NOVEMBER_STARTS + timedelta(days=5),
         voided_at=NOVEMBER_STARTS + timedelta(days=6))

    sent(donations, donations_db, relief, NOVEMBER_STARTS - JUST, destination="Old people's home", items=[
        {"category": "clothing", "quantity": 1}])                                               # October
    sent(donations, donations_db, relief, NOVEMBER_STARTS + timedelta(days=4, hours=1), destination=SHELTER,
         items=[{"category": "clothing", "quantity": 10}, {"category": "bedding", "quantity": 2}])
    sent(donations, donations_db, winter, NOVEMBER_ENDS - JUST, case_id=CASE_ID, items=[
        {"category": "clothing", "quantity": 4}])
    sent(donations, donations_db, trial, NOVEMBER_STARTS + timedelta(days=6), destination="Trial shelter",
         items=[{"category": "food", "quantity": 2}])

    summary = donations().monthly_summary("2026-11")
    assert summary == {
        "month": "2026-11",
        "cash_fen": 60_000,
        "gifts": 4,
        "voided": 3,
        "items_received": [
            {"category": "clothing", "label_zh": "衣物", "label_en": "Clothing", "quantity": 42},
            {"category": "bedding", "label_zh": "被褥", "label_en": "Bedding", "quantity": 5}],
        "drives": [
            {"campaign_id": relief["id"], "name": "Earthquake relief", "status": "open", "goal_fen": 1_600_000,
             "cash_fen": 60_000, "gifts": 3},
            {"campaign_id": winter["id"], "name": "Winter coats", "status": "open", "goal_fen": 500_000,
             "cash_fen": 0, "gifts": 1}],
        "dispatches": [
            {"dispatched_on": "2026-11-05", "destination": SHELTER, "to_case": False, "items": [
                {"category": "clothing", "label_zh": "衣物", "label_en": "Clothing", "quantity": 10},
                {"category": "bedding", "label_zh": "被褥", "label_en": "Bedding", "quantity": 2}]},
            {"dispatched_on": "2026-11-30", "destination": None, "to_case": True, "items": [
                {"category": "clothing", "label_zh": "衣物", "label_en": "Clothing", "quantity": 4}]}],
    }
    text = json.dumps(summary, ensure_ascii=False)
    assert CASE_ID not in text and "张伟" not in text and "Trial" not in text

    october = donations().monthly_summary("2026-10")
    assert (october["cash_fen"], october["gifts"], october["voided"]) == (10_000 + 999, 2, 0)
    assert [d["dispatched_on"] for d in october["dispatches"]] == ["2026-10-31"]
    december = donations().monthly_summary("2026-12")
    assert (december["cash_fen"], december["gifts"], december["dispatches"]) == (80_000, 1, [])
