"""Forgotten patrols (issue 17): the sweep closes a patrol not finished within
the cap (PATROL_CAP_HOURS) at its start + the cap, a finish counts at most the
cap, a finish racing the sweep announces one patrol_finished, and the office
corrects a finished patrol's times."""
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from services.common import config
from services.common.clock import isoformat, naive_utcnow
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.patrol import domain
from services.patrol.models import Patrol, Zone
from tests.unit.test_patrol_service import (
    ADMIN, M1, M2, NOTES, OUTSIDER, event_data, make_zone, set_column, stored,
)

REASON = "Li Ming forgot to tap finish; he walked from 19:00 to 21:30, his wife Chen Hua confirmed."


def on_patrol_since(patrol, patrol_db, zone, actor=M1, hours=0.0):
    """A patrol of `actor` started `hours` ago."""
    shift = patrol().start_patrol({"zone_id": zone["id"]}, actor)
    started_at = naive_utcnow() - timedelta(hours=hours)
    set_column(patrol_db, Patrol, shift["id"], started_at=started_at)
    return shift["id"], started_at


def test_a_patrol_left_on_past_the_default_four_hours_is_closed_at_the_cap_and_counts_it(patrol, patrol_db):
    zone = make_zone(patrol)
    forgotten, started_at = on_patrol_since(patrol, patrol_db, zone, M1, hours=4.1)
    recent, _ = on_patrol_since(patrol, patrol_db, zone, M2, hours=3.9)
    patrol().sweep()
    patrol().sweep()

    data = event_data(patrol_db, "patrol_finished")
    assert data == [{"patrol_id": forgotten, "zone_id": zone["id"], "member_id": "m1",
                     "started_at": isoformat(started_at), "finished_at": isoformat(started_at + timedelta(hours=4)),
                     "duration_minutes": 240, "closed_automatically": True}]
    shown = {p["id"]: p for p in patrol().list_patrols(M1)["items"]}
    assert shown[forgotten]["closed_automatically"] is True and shown[forgotten]["duration_minutes"] == 240
    assert shown[forgotten]["notes"] is None  # the member's notes field is left alone
    assert shown[recent]["finished_at"] is None and shown[recent]["closed_automatically"] is False
    assert stored(patrol_db, Patrol, recent).finished_at is None

    # The member finishing it late is told what happened, and nothing changes ...
    with pytest.raises(Conflict) as raised:
        patrol().finish_patrol(forgotten, {"notes": NOTES}, M1)
    assert "closed automatically" in str(raised.value) and "4 hours" in str(raised.value)
    assert stored(patrol_db, Patrol, forgotten).notes is None
    assert len(patrol_db.outbox("patrol_finished")) == 1
    # ... and starts the next day's patrol.
    assert patrol().start_patrol({"zone_id": zone["id"]}, M1)["finished_at"] is None


def test_the_cap_follows_the_configuration(patrol, patrol_db):
    zone = make_zone(patrol)
    shift, started_at = on_patrol_since(patrol, patrol_db, zone, M1, hours=1.5)
    patrol().sweep()
    assert patrol_db.outbox("patrol_finished") == []
    patrol(PATROL_CAP_HOURS=1).sweep()
    data = event_data(patrol_db, "patrol_finished")
    assert [(d["patrol_id"], d["duration_minutes"], d["finished_at"]) for d in data] == [
        (shift, 60, isoformat(started_at + timedelta(hours=1)))]


def test_the_cap_is_four_hours_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv("LINLI_PATROL_CAP_HOURS", raising=False)
    assert config.load("patrol")["PATROL_CAP_HOURS"] == 4
    monkeypatch.setenv("LINLI_PATROL_CAP_HOURS", "0.003")
    assert domain.cap_hours(config.load("patrol")["PATROL_CAP_HOURS"]) == 0.003


@pytest.mark.parametrize("configured, hours", [(2, 2.0), (0.003, 0.003), ("1.5", 1.5), (24, 24)])
def test_the_cap_in_force(configured, hours):
    assert domain.cap_hours(configured) == hours


@pytest.mark.parametrize("configured", [0, -1, 25, "soon", None, ""])
def test_a_cap_that_cannot_be_is_refused(configured):
    with pytest.raises((ValueError, TypeError)):
        domain.cap_hours(configured)


def test_a_finish_after_the_cap_counts_only_the_cap(patrol, patrol_db):
    zone = make_zone(patrol)
    shift, _ = on_patrol_since(patrol, patrol_db, zone, M1, hours=6)
    done = patrol().finish_patrol(shift, {"notes": NOTES}, M1)  # before the sweep came by
    assert done["duration_minutes"] == 240 and done["closed_automatically"] is False
    data = event_data(patrol_db, "patrol_finished")
    assert [(d["duration_minutes"], d["closed_automatically"]) for d in data] == [(240, False)]
    patrol().sweep()
    assert len(patrol_db.outbox("patrol_finished")) == 1


def test_a_finish_within_the_cap_counts_its_whole_minutes(patrol, patrol_db):
    zone = make_zone(patrol)
    shift, _ = on_patrol_since(patrol, patrol_db, zone, M1, hours=1.5)
    assert patrol().finish_patrol(shift, {}, M1)["duration_minutes"] == 90


def test_minutes_counted():
    start = datetime(2026, 11, 3, 11, 0)
    assert domain.minutes_counted(start, start + timedelta(minutes=59, seconds=59), 4) == 59
    assert domain.minutes_counted(start, start + timedelta(hours=9), 4) == 240
    assert domain.minutes_counted(start, start + timedelta(hours=9), None) == 540
    assert domain.minutes_counted(start, start - timedelta(minutes=5), 4) == 0


def race(monkeypatch, other):
    """Run `other` at the first domain.minutes_counted: after the racing call
    has read the patrol, before its conditional update."""
    real = domain.minutes_counted
    pending = [other]

    def counted(*args):
        while pending:
            pending.pop()()
        return real(*args)
    monkeypatch.setattr(domain, "minutes_counted", counted)


def test_the_sweep_closing_first_wins_over_a_finish_that_read_the_patrol_open(patrol, patrol_db, monkeypatch):
    zone = make_zone(patrol)
    shift, _ = on_patrol_since(patrol, patrol_db, zone, M1, hours=5)
    race(monkeypatch, lambda: patrol().sweep())
    with pytest.raises(Conflict) as raised:
        patrol().finish_patrol(shift, {"notes": NOTES}, M1)
    assert "closed" in str(raised.value)
    data = event_data(patrol_db, "patrol_finished")
    assert [(d["patrol_id"], d["closed_automatically"]) for d in data] == [(shift, True)]
    kept = stored(patrol_db, Patrol, shift)
    assert kept.closed_automatically is True and kept.notes is None and kept.duration_minutes == 240


def test_a_finish_first_wins_over_a_sweep_that_found_the_patrol_open(patrol, patrol_db, monkeypatch):
    zone = make_zone(patrol)
    shift, _ = on_patrol_since(patrol, patrol_db, zone, M1, hours=5)
    answers = []
    race(monkeypatch, lambda: answers.append(patrol().finish_patrol(shift, {"notes": NOTES}, M1)))
    patrol().sweep()
    data = event_data(patrol_db, "patrol_finished")
    assert [(d["patrol_id"], d["closed_automatically"], d["duration_minutes"]) for d in data] == [
        (shift, False, 240)]
    kept = stored(patrol_db, Patrol, shift)
    assert kept.closed_automatically is False and kept.notes == NOTES
    assert answers[0]["finished_at"] == isoformat(kept.finished_at)


# -- the office corrects a patrol's times ------------------------------------------------

def finished_patrol(patrol, patrol_db, zone, hours=5):
    shift, _ = on_patrol_since(patrol, patrol_db, zone, M1, hours=hours)
    patrol().sweep()
    return shift


def test_the_office_corrects_a_forgotten_patrol_and_it_counts_the_corrected_times(patrol, patrol_db):
    zone = make_zone(patrol)
    shift = finished_patrol(patrol, patrol_db, zone)
    started = (naive_utcnow() - timedelta(hours=5)).replace(microsecond=0)
    finished = started + timedelta(hours=4, minutes=30)
    corrected = patrol().correct_patrol(shift, {
        "started_at": isoformat(started), "finished_at": isoformat(finished), "reason": REASON}, ADMIN)
    assert corrected["started_at"] == isoformat(started) and corrected["finished_at"] == isoformat(finished)
    assert corrected["duration_minutes"] == 270  # the office vouches for the times: no cap
    assert corrected["closed_automatically"] is True  # what happened stays told
    assert corrected["corrected_at"] is not None and corrected["corrected_by"] == ADMIN["id"]
    assert corrected["correction_reason"] == REASON

    rows = patrol_db.outbox("patrol_corrected")
    assert [row["envelope"]["data"] for row in rows] == [{
        "patrol_id": shift, "zone_id": zone["id"], "member_id": "m1", "started_at": isoformat(started),
        "finished_at": isoformat(finished), "duration_minutes": 270}]
    text = json.dumps(rows[0]["envelope"], ensure_ascii=False)
    for fragment in (REASON, "Li Ming", "Chen Hua", "forgot"):
        assert fragment not in text
    with Session(patrol_db.engine) as session:
        assert session.get(Zone, zone["id"]).last_patrol_at == started


def test_the_correction_reason_is_free_text_only_those_who_may_read(patrol, patrol_db):
    zone = make_zone(patrol)
    shift = finished_patrol(patrol, patrol_db, zone)
    now = naive_utcnow()
    patrol().correct_patrol(shift, {"started_at": isoformat(now - timedelta(hours=3)),
                                    "finished_at": isoformat(now - timedelta(hours=1)), "reason": REASON}, ADMIN)
    outsider = patrol().list_patrols(OUTSIDER)["items"][0]
    assert outsider["correction_reason"] is None and outsider["free_text_hidden"] is True
    assert outsider["duration_minutes"] == 120 and outsider["corrected_at"] is not None
    assert patrol().list_patrols(M1)["items"][0]["correction_reason"] == REASON


def test_only_the_office_corrects(patrol, patrol_db):
    zone = make_zone(patrol)
    shift = finished_patrol(patrol, patrol_db, zone)
    now = naive_utcnow()
    body = {"started_at": isoformat(now - timedelta(hours=3)), "finished_at": isoformat(now), "reason": "x"}
    for actor in (M1, OUTSIDER):
        with pytest.raises(Forbidden):
            patrol().correct_patrol(shift, body, actor)
    assert stored(patrol_db, Patrol, shift).corrected_at is None
    assert patrol_db.outbox("patrol_corrected") == []


def test_a_patrol_still_on_is_not_corrected(patrol, patrol_db):
    zone = make_zone(patrol)
    shift, _ = on_patrol_since(patrol, patrol_db, zone, M1, hours=1)
    now = naive_utcnow()
    with pytest.raises(Conflict):
        patrol().correct_patrol(shift, {"started_at": isoformat(now - timedelta(hours=1)),
                                        "finished_at": isoformat(now), "reason": "x"}, ADMIN)
    assert stored(patrol_db, Patrol, shift).finished_at is None
    assert patrol_db.outbox("patrol_corrected") == []
    with pytest.raises(NotFound):
        patrol().correct_patrol("no-such-patrol", {"started_at": isoformat(now - timedelta(hours=1)),
                                                   "finished_at": isoformat(now), "reason": "x"}, ADMIN)


HOUR = timedelta(hours=1)


@pytest.mark.parametrize("started, finished, reason, field", [
    (-3 * HOUR, -4 * HOUR, "x", "finished_at"),           # finished before started
    (-3 * HOUR, -3 * HOUR, "x", "finished_at"),           # no time at all
    (-30 * HOUR, -5 * HOUR, "x", "finished_at"),          # more than 24 hours
    (-1 * HOUR, 2 * HOUR, "x", "finished_at"),            # in the future
    (1 * HOUR, 2 * HOUR, "x", "started_at"),
    (-3 * HOUR, -1 * HOUR, "   ", "reason"),
    (-3 * HOUR, -1 * HOUR, "", "reason"),
    (-3 * HOUR, -1 * HOUR, None, "reason"),
    ("yesterday", -1 * HOUR, "x", "started_at"),
    (-3 * HOUR, None, "x", "finished_at"),
])
def test_times_that_cannot_be_are_refused_naming_the_field_and_change_nothing(
        patrol, patrol_db, started, finished, reason, field):
    zone = make_zone(patrol)
    shift = finished_patrol(patrol, patrol_db, zone)
    before = patrol().list_patrols(ADMIN)["items"][0]
    now = naive_utcnow()

    def moment(offset):
        return isoformat(now + offset) if isinstance(offset, timedelta) else offset
    with pytest.raises(InvalidInput) as raised:
        patrol().correct_patrol(shift, {"started_at": moment(started), "finished_at": moment(finished),
                                        "reason": reason}, ADMIN)
    assert field in raised.value.details["fields"]
    assert patrol().list_patrols(ADMIN)["items"][0] == before
    assert patrol_db.outbox("patrol_corrected") == []


def test_the_office_lists_the_patrols_closed_automatically(patrol, patrol_db):
    zone = make_zone(patrol)
    forgotten = finished_patrol(patrol, patrol_db, zone)
    finished, _ = on_patrol_since(patrol, patrol_db, zone, M2, hours=1)
    patrol().finish_patrol(finished, {}, M2)
    assert [p["id"] for p in patrol().list_patrols(ADMIN, {"closed_automatically": True})["items"]] == [forgotten]
    assert [p["id"] for p in patrol().list_patrols(ADMIN, {"closed_automatically": False})["items"]] == [finished]
