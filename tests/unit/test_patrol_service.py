"""The patrol service as nameko workers (worker_factory) over a real in-memory
database: what a caller gets back, what is stored, what is announced, and what
the timer (sweep) escalates and flags."""
import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common.clock import naive_utcnow
from services.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.patrol import domain as patrol_domain
from services.patrol.models import AuditEntry, Incident, Patrol, Zone, ZoneCompound

ADMIN = {"id": "a" * 32, "roles": ["admin"]}
LEAD = {"id": "lead", "roles": ["member"]}
M1 = {"id": "m1", "roles": ["member"]}
M2 = {"id": "m2", "roles": ["member"]}
OUTSIDER = {"id": "outsider", "roles": ["member"]}

NORTH = ["Lotus Garden", "Pine Court", "Willow Lane"]
SOUTH = ["Harmony Estate", "Riverside"]

DESCRIPTION = "Old Zhang at Building 5 keeps gas cylinders in the stairwell, next to his door."
RESOLUTION = "Talked with Zhang Wei's daughter; cylinders moved to the balcony cage."
NOTES = "Gate 2 lock broken; Mrs Chen in 3-402 asked for a visit."


def make_zone(patrol, name="North", compounds=NORTH, leader="lead", members=("m1", "m2")):
    zone = patrol().create_zone({"name": name, "compounds": list(compounds)}, ADMIN)
    if leader is not None:
        zone = patrol().assign_team(zone["id"], {"leader_id": leader, "member_ids": list(members)}, ADMIN)
    return zone


def report(patrol, zone, actor=M1, compound=None, severity="medium", category="fire_hazard"):
    return patrol().report_incident({
        "zone_id": zone["id"], "compound": compound or zone["compounds"][0], "category": category,
        "description": DESCRIPTION, "severity": severity}, actor)


def set_column(db, model, row_id, **values):
    """Change a stored row behind the service's back (to move time)."""
    with Session(db.engine) as session:
        session.execute(update(model).where(model.id == row_id).values(**values))
        session.commit()


def stored(db, model, row_id):
    with Session(db.engine) as session:
        return session.get(model, row_id)


def event_data(db, event_type):
    return [row["envelope"]["data"] for row in db.outbox(event_type)]


# -- zones -----------------------------------------------------------------------------

def test_create_zone_returns_it_and_announces_zone_created(patrol, patrol_db):
    zone = patrol().create_zone({"name": "North", "compounds": [" Lotus Garden", "Pine Court", "Lotus Garden "]},
                                ADMIN)
    assert zone["id"] and zone["name"] == "North"
    assert zone["compounds"] == ["Lotus Garden", "Pine Court"]
    assert zone["team"] == {"leader_id": None, "member_ids": []}
    assert zone["created_at"].endswith("Z") and zone["last_patrol_at"] is None
    assert patrol().get_zone(zone["id"]) == zone

    rows = patrol_db.outbox("zone_created")
    assert len(rows) == 1
    envelope = rows[0]["envelope"]
    assert envelope["source"] == "patrol" and envelope["type"] == "zone_created"
    assert envelope["data"] == {"zone_id": zone["id"], "name": "North", "compounds": ["Lotus Garden", "Pine Court"]}


def test_a_compound_claimed_by_a_second_zone_is_a_conflict_naming_it_and_nothing_is_written(patrol, patrol_db):
    make_zone(patrol, leader=None)
    with pytest.raises(Conflict) as raised:
        patrol().create_zone({"name": "South", "compounds": ["Riverside", "Pine Court"]}, ADMIN)
    messages = raised.value.details["fields"]["compounds"]
    assert any("Pine Court" in m and "North" in m for m in messages)
    assert not any("Riverside" in m for m in messages)

    assert patrol_db.count(Zone) == 1
    assert patrol_db.count(ZoneCompound) == 3
    assert len(patrol_db.outbox("zone_created")) == 1
    assert len(patrol_db.outbox()) == 1
    # Riverside is still free.
    assert patrol().create_zone({"name": "South", "compounds": ["Riverside"]}, ADMIN)["compounds"] == ["Riverside"]


def test_a_duplicate_zone_name_is_a_conflict(patrol, patrol_db):
    make_zone(patrol, leader=None)
    with pytest.raises(Conflict) as raised:
        patrol().create_zone({"name": "North", "compounds": ["Riverside"]}, ADMIN)
    assert "name" in raised.value.details["fields"]
    assert patrol_db.count(Zone) == 1
    assert len(patrol_db.outbox("zone_created")) == 1


def test_a_member_cannot_create_a_zone(patrol, patrol_db):
    with pytest.raises(Forbidden):
        patrol().create_zone({"name": "North", "compounds": NORTH}, M1)
    assert patrol_db.count(Zone) == 0
    assert patrol_db.outbox() == []


@pytest.mark.parametrize("payload, field", [
    ({"compounds": NORTH}, "name"),
    ({"name": "North"}, "compounds"),
    ({"name": "North", "compounds": []}, "compounds"),
    ({"name": "", "compounds": NORTH}, "name"),
])
def test_an_invalid_zone_is_invalid_input_naming_the_field(patrol, patrol_db, payload, field):
    with pytest.raises(InvalidInput) as raised:
        patrol().create_zone(payload, ADMIN)
    assert field in raised.value.details["fields"]
    assert patrol_db.count(Zone) == 0


def test_a_zone_whose_compounds_are_all_blank_is_invalid_input(patrol, patrol_db):
    """Blank names pass the schema's length check and are then dropped by
    normalise_names: the zone would have no compound at all."""
    with pytest.raises(InvalidInput) as raised:
        patrol().create_zone({"name": "North", "compounds": ["  ", " "]}, ADMIN)
    assert "compounds" in raised.value.details["fields"]
    assert patrol_db.count(Zone) == 0
    assert patrol_db.outbox() == []


def test_a_zone_whose_name_is_blank_is_invalid_input(patrol, patrol_db):
    with pytest.raises(InvalidInput) as raised:
        patrol().create_zone({"name": "   ", "compounds": NORTH}, ADMIN)
    assert "name" in raised.value.details["fields"]
    assert patrol_db.count(Zone) == 0


def test_a_zone_name_differing_only_by_spaces_is_a_duplicate(patrol, patrol_db):
    """Compounds are trimmed before they are compared; names must be too."""
    make_zone(patrol, leader=None)
    with pytest.raises(Conflict):
        patrol().create_zone({"name": " North ", "compounds": SOUTH}, ADMIN)
    assert patrol_db.count(Zone) == 1


def test_get_zone_of_an_unknown_id_is_not_found(patrol):
    with pytest.raises(NotFound):
        patrol().get_zone("no-such-zone")


def test_list_zones_newest_first(patrol):
    north = make_zone(patrol, leader=None)
    south = make_zone(patrol, name="South", compounds=SOUTH, leader=None)
    listed = patrol().list_zones()
    assert [z["id"] for z in listed["items"]] == [south["id"], north["id"]]
    assert listed["next_cursor"] is None


# -- teams ------------------------------------------------------------------------------

def test_assign_team_strips_the_leader_from_the_members_and_announces_it(patrol, patrol_db):
    zone = make_zone(patrol, leader=None)
    result = patrol().assign_team(zone["id"], {"leader_id": "lead", "member_ids": ["m1", "lead", " m2 ", "m1"]},
                                  ADMIN)
    assert result["team"] == {"leader_id": "lead", "member_ids": ["m1", "m2"]}
    assert patrol().get_zone(zone["id"])["team"] == {"leader_id": "lead", "member_ids": ["m1", "m2"]}
    assert event_data(patrol_db, "team_assigned") == [
        {"zone_id": zone["id"], "leader_id": "lead", "member_ids": ["m1", "m2"]}]


def test_a_member_cannot_assign_a_team(patrol, patrol_db):
    zone = make_zone(patrol, leader=None)
    with pytest.raises(Forbidden):
        patrol().assign_team(zone["id"], {"leader_id": "m1", "member_ids": []}, M1)
    assert patrol().get_zone(zone["id"])["team"]["leader_id"] is None
    assert patrol_db.outbox("team_assigned") == []


def test_assign_team_to_an_unknown_zone_is_not_found(patrol, patrol_db):
    with pytest.raises(NotFound):
        patrol().assign_team("no-such-zone", {"leader_id": "lead", "member_ids": []}, ADMIN)
    assert patrol_db.outbox() == []


# -- patrols ----------------------------------------------------------------------------

def test_a_member_outside_the_team_cannot_patrol_the_zone(patrol, patrol_db):
    zone = make_zone(patrol)
    with pytest.raises(Forbidden):
        patrol().start_patrol({"zone_id": zone["id"]}, OUTSIDER)
    assert patrol_db.count(Patrol) == 0
    assert patrol_db.outbox("patrol_started") == []
    assert patrol().get_zone(zone["id"])["last_patrol_at"] is None


def test_start_patrol_in_an_unknown_zone_is_not_found(patrol):
    with pytest.raises(NotFound):
        patrol().start_patrol({"zone_id": "no-such-zone"}, M1)


def test_start_patrol_records_the_zones_last_patrol_and_announces_it(patrol, patrol_db):
    zone = make_zone(patrol)
    shift = patrol().start_patrol({"zone_id": zone["id"]}, M1)
    assert shift["zone_id"] == zone["id"] and shift["member_id"] == "m1"
    assert shift["finished_at"] is None and shift["started_at"].endswith("Z")
    assert patrol().get_zone(zone["id"])["last_patrol_at"] == shift["started_at"]
    assert event_data(patrol_db, "patrol_started") == [{
        "patrol_id": shift["id"], "zone_id": zone["id"], "member_id": "m1", "started_at": shift["started_at"]}]


def test_the_leader_patrols_too(patrol):
    zone = make_zone(patrol)
    assert patrol().start_patrol({"zone_id": zone["id"]}, LEAD)["member_id"] == "lead"


def test_two_patrols_at_once_is_a_conflict(patrol, patrol_db):
    zone = make_zone(patrol)
    make_zone(patrol, name="South", compounds=SOUTH, leader="m1", members=())
    first = patrol().start_patrol({"zone_id": zone["id"]}, M1)
    with pytest.raises(Conflict) as raised:
        patrol().start_patrol({"zone_id": zone["id"]}, M1)
    assert first["id"] in str(raised.value)
    south = patrol().list_zones()["items"][0]
    with pytest.raises(Conflict):
        patrol().start_patrol({"zone_id": south["id"]}, M1)  # in another zone neither
    assert patrol_db.count(Patrol) == 1
    assert len(patrol_db.outbox("patrol_started")) == 1
    # Another member of the team may patrol at the same time.
    patrol().start_patrol({"zone_id": zone["id"]}, M2)
    assert patrol_db.count(Patrol) == 2


def test_a_start_racing_past_the_check_is_refused_by_the_one_active_patrol_index(patrol, patrol_db, monkeypatch):
    """begin_patrol: when another start commits between this one's check and its
    insert (the check then saw none), the partial unique index refuses it whole."""
    zone = make_zone(patrol)
    racing, check = {}, patrol_domain.check_no_active_patrol

    def another_start_lands_meanwhile(active):
        monkeypatch.setattr(patrol_domain, "check_no_active_patrol", check)  # the other start checks as usual
        racing["patrol"] = patrol().start_patrol({"zone_id": zone["id"]}, M1)
    worker = patrol()
    monkeypatch.setattr(patrol_domain, "check_no_active_patrol", another_start_lands_meanwhile)
    with pytest.raises(Conflict, match="on patrol already"):
        worker.start_patrol({"zone_id": zone["id"]}, M1)
    assert patrol_db.count(Patrol) == 1 and racing["patrol"]["member_id"] == M1["id"]
    assert len(patrol_db.outbox("patrol_started")) == 1


def test_finish_patrol_keeps_the_notes_but_does_not_announce_them(patrol, patrol_db):
    zone = make_zone(patrol)
    shift = patrol().start_patrol({"zone_id": zone["id"]}, M1)
    done = patrol().finish_patrol(shift["id"], {"notes": NOTES}, M1)
    assert done["notes"] == NOTES and done["finished_at"].endswith("Z")
    assert stored(patrol_db, Patrol, shift["id"]).notes == NOTES

    rows = patrol_db.outbox("patrol_finished")
    assert len(rows) == 1
    assert rows[0]["envelope"]["data"] == {
        "patrol_id": shift["id"], "zone_id": zone["id"], "member_id": "m1",
        "started_at": shift["started_at"], "finished_at": done["finished_at"],
        "duration_minutes": 0, "closed_automatically": False}
    assert done["duration_minutes"] == 0 and done["closed_automatically"] is False and done["corrected_at"] is None
    text = json.dumps(rows[0]["envelope"], ensure_ascii=False)
    for fragment in (NOTES, "Gate 2", "Chen", "3-402"):
        assert fragment not in text
    # Finished: the member may start another.
    patrol().start_patrol({"zone_id": zone["id"]}, M1)


def test_only_the_member_on_patrol_finishes_it(patrol, patrol_db):
    zone = make_zone(patrol)
    shift = patrol().start_patrol({"zone_id": zone["id"]}, M1)
    for actor in (M2, LEAD, ADMIN):
        with pytest.raises(Forbidden):
            patrol().finish_patrol(shift["id"], {"notes": "x"}, actor)
    assert stored(patrol_db, Patrol, shift["id"]).finished_at is None
    assert patrol_db.outbox("patrol_finished") == []


def test_finishing_twice_is_a_conflict(patrol, patrol_db):
    zone = make_zone(patrol)
    shift = patrol().start_patrol({"zone_id": zone["id"]}, M1)
    patrol().finish_patrol(shift["id"], {"notes": NOTES}, M1)
    with pytest.raises(Conflict):
        patrol().finish_patrol(shift["id"], {"notes": "changed"}, M1)
    assert stored(patrol_db, Patrol, shift["id"]).notes == NOTES
    assert len(patrol_db.outbox("patrol_finished")) == 1


def test_a_keyed_start_finish_or_resolution_sent_again_counts_once(patrol, patrol_db):
    """A phone that lost the answer sends the same write again with its key (pending.js)."""
    zone = make_zone(patrol)
    shift = patrol().start_patrol({"zone_id": zone["id"]}, M1, idempotency_key="start-1")
    assert patrol().start_patrol({"zone_id": zone["id"]}, M1, idempotency_key="start-1") == shift
    done = patrol().finish_patrol(shift["id"], {"notes": NOTES}, M1, idempotency_key="finish-1")
    assert patrol().finish_patrol(shift["id"], {"notes": NOTES}, M1, idempotency_key="finish-1") == done
    incident = report(patrol, zone, M1)
    resolved = patrol().resolve_incident(incident["id"], {"resolution": RESOLUTION}, LEAD, idempotency_key="r-1")
    assert patrol().resolve_incident(incident["id"], {"resolution": RESOLUTION}, LEAD,
                                     idempotency_key="r-1") == resolved
    assert [len(patrol_db.outbox(t)) for t in ("patrol_started", "patrol_finished", "incident_resolved")] == [1, 1, 1]


def test_finishing_an_unknown_patrol_is_not_found(patrol):
    with pytest.raises(NotFound):
        patrol().finish_patrol("no-such-patrol", {}, M1)


def test_list_patrols_filters_active(patrol):
    zone = make_zone(patrol)
    done = patrol().start_patrol({"zone_id": zone["id"]}, M1)
    patrol().finish_patrol(done["id"], {}, M1)
    active = patrol().start_patrol({"zone_id": zone["id"]}, M2)

    assert [p["id"] for p in patrol().list_patrols(ADMIN, {"active": True})["items"]] == [active["id"]]
    assert [p["id"] for p in patrol().list_patrols(ADMIN, {"active": False})["items"]] == [done["id"]]
    assert {p["id"] for p in patrol().list_patrols(ADMIN)["items"]} == {done["id"], active["id"]}
    assert [p["id"] for p in patrol().list_patrols(ADMIN, {"member_id": "m1"})["items"]] == [done["id"]]
    with pytest.raises(InvalidInput) as raised:
        patrol().list_patrols(ADMIN, {"active": "maybe"})
    assert "active" in raised.value.details["fields"]


# -- incidents --------------------------------------------------------------------------

def test_report_incident_returns_it_and_announces_it_to_the_leader_without_the_description(patrol, patrol_db):
    zone = make_zone(patrol)
    incident = report(patrol, zone, M1, compound="Pine Court", severity="high")
    assert incident["status"] == "open" and incident["reported_by"] == "m1"
    assert incident["description"] == DESCRIPTION
    assert incident["patrol_id"] is None and incident["acked_at"] is None and incident["escalated_at"] is None
    assert stored(patrol_db, Incident, incident["id"]).description == DESCRIPTION

    rows = patrol_db.outbox("incident_reported")
    assert len(rows) == 1
    assert rows[0]["envelope"]["data"] == {
        "incident_id": incident["id"], "zone_id": zone["id"], "compound": "Pine Court",
        "category": "fire_hazard", "severity": "high", "status": "open", "leader_id": "lead",
        "reported_by": "m1", "category_label": "消防隐患 Fire hazard"}  # the label: for the alert's words
    text = json.dumps(rows[0]["envelope"], ensure_ascii=False)
    for fragment in (DESCRIPTION, "Zhang", "gas cylinders", "Building 5"):
        assert fragment not in text


def test_an_incident_in_a_zone_without_a_team_carries_no_leader(patrol, patrol_db):
    zone = make_zone(patrol, leader=None)
    report(patrol, zone, ADMIN)
    assert event_data(patrol_db, "incident_reported")[0]["leader_id"] is None


def test_the_incident_belongs_to_the_reporters_patrol_in_that_zone(patrol):
    north = make_zone(patrol)
    south = make_zone(patrol, name="South", compounds=SOUTH, leader="lead", members=("m1",))
    shift = patrol().start_patrol({"zone_id": north["id"]}, M1)

    assert report(patrol, north, M1)["patrol_id"] == shift["id"]
    assert report(patrol, south, M1)["patrol_id"] is None     # on patrol, but elsewhere
    assert report(patrol, north, M2)["patrol_id"] is None     # not on patrol
    patrol().finish_patrol(shift["id"], {}, M1)
    assert report(patrol, north, M1)["patrol_id"] is None     # that patrol is over


def test_a_compound_outside_the_zone_is_invalid_input(patrol, patrol_db):
    north = make_zone(patrol)
    make_zone(patrol, name="South", compounds=SOUTH, leader=None)
    for compound in ("Riverside", "Nowhere Yard"):  # another zone's, and no zone's
        with pytest.raises(InvalidInput) as raised:
            report(patrol, north, M1, compound=compound)
        assert raised.value.details["fields"] == {
            "compound": ["Not one of: Lotus Garden, Pine Court, Willow Lane."]}  # the zone's, in its order
    assert patrol_db.count(Incident) == 0
    assert patrol_db.outbox("incident_reported") == []


def test_an_unknown_zone_is_invalid_input_naming_zone_id(patrol, patrol_db):
    with pytest.raises(InvalidInput) as raised:
        report(patrol, {"id": "no-such-zone", "compounds": ["Lotus Garden"]}, ADMIN)
    assert "zone_id" in raised.value.details["fields"]
    assert patrol_db.count(Incident) == 0


def test_an_outsider_cannot_report_in_the_zone(patrol, patrol_db):
    zone = make_zone(patrol)
    with pytest.raises(Forbidden):
        report(patrol, zone, OUTSIDER)
    assert patrol_db.count(Incident) == 0
    assert patrol_db.outbox("incident_reported") == []


def test_an_admin_reports_anywhere(patrol):
    zone = make_zone(patrol)
    assert report(patrol, zone, ADMIN)["reported_by"] == ADMIN["id"]


@pytest.mark.parametrize("change, field", [
    ({"category": "noise"}, "category"),
    ({"severity": "critical"}, "severity"),
    ({"description": ""}, "description"),
])
def test_an_invalid_incident_is_invalid_input_naming_the_field(patrol, patrol_db, change, field):
    zone = make_zone(patrol)
    payload = {"zone_id": zone["id"], "compound": "Lotus Garden", "category": "dispute",
               "description": DESCRIPTION, "severity": "low", **change}
    with pytest.raises(InvalidInput) as raised:
        patrol().report_incident(payload, M1)
    assert field in raised.value.details["fields"]
    assert patrol_db.count(Incident) == 0


def test_only_the_leader_or_an_admin_acknowledges(patrol, patrol_db):
    zone = make_zone(patrol)
    incident = report(patrol, zone, M1)
    for actor in (M1, M2, OUTSIDER):
        with pytest.raises(Forbidden):
            patrol().acknowledge_incident(incident["id"], actor)
    assert stored(patrol_db, Incident, incident["id"]).acked_at is None
    assert patrol_db.outbox("incident_acknowledged") == []

    acked = patrol().acknowledge_incident(incident["id"], LEAD)
    assert acked["acked_by"] == "lead" and acked["acked_at"].endswith("Z")
    again = patrol().acknowledge_incident(incident["id"], LEAD)
    assert again["acked_at"] == acked["acked_at"]
    data = event_data(patrol_db, "incident_acknowledged")
    assert len(data) == 1 and data[0]["acknowledged_by"] == "lead"


def test_an_admin_acknowledges_for_a_zone_without_a_leader_and_it_does_not_escalate(patrol, patrol_db):
    zone = make_zone(patrol, leader=None)
    incident = report(patrol, zone, ADMIN)
    acked = patrol().acknowledge_incident(incident["id"], ADMIN)
    assert acked["acked_by"] == ADMIN["id"] and acked["status"] == "open"
    data = event_data(patrol_db, "incident_acknowledged")
    assert len(data) == 1 and data[0]["acknowledged_by"] == ADMIN["id"] and data[0]["leader_id"] is None
    set_column(patrol_db, Incident, incident["id"], reported_at=naive_utcnow() - timedelta(days=2))
    patrol().sweep()
    assert patrol_db.outbox("incident_escalated") == []


def test_the_leader_resolves_once_and_the_resolution_is_not_announced(patrol, patrol_db):
    zone = make_zone(patrol)
    incident = report(patrol, zone, M1)
    resolved = patrol().resolve_incident(incident["id"], {"resolution": RESOLUTION}, LEAD)
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == "lead"
    assert resolved["resolution"] == RESOLUTION and resolved["resolved_at"].endswith("Z")

    with pytest.raises(Conflict):
        patrol().resolve_incident(incident["id"], {"resolution": "Again."}, LEAD)
    with pytest.raises(Conflict):
        patrol().resolve_incident(incident["id"], {"resolution": "Again."}, ADMIN)
    assert patrol().get_incident(incident["id"], ADMIN)["resolution"] == RESOLUTION

    rows = patrol_db.outbox("incident_resolved")
    assert len(rows) == 1
    assert rows[0]["envelope"]["data"] == {
        "incident_id": incident["id"], "zone_id": zone["id"], "compound": "Lotus Garden",
        "category": "fire_hazard", "severity": "medium", "status": "resolved", "leader_id": "lead",
        "resolved_by": "lead"}
    text = json.dumps(rows[0]["envelope"], ensure_ascii=False)
    for fragment in (RESOLUTION, DESCRIPTION, "Zhang", "balcony"):
        assert fragment not in text


def test_a_member_who_is_not_the_leader_cannot_resolve(patrol, patrol_db):
    zone = make_zone(patrol)
    incident = report(patrol, zone, M1)
    for actor in (M1, OUTSIDER):
        with pytest.raises(Forbidden):
            patrol().resolve_incident(incident["id"], {"resolution": RESOLUTION}, actor)
    assert stored(patrol_db, Incident, incident["id"]).status == "open"
    assert patrol_db.outbox("incident_resolved") == []


def test_an_admin_resolves(patrol, patrol_db):
    zone = make_zone(patrol)
    incident = report(patrol, zone, M1)
    resolved = patrol().resolve_incident(incident["id"], {"resolution": RESOLUTION}, ADMIN)
    assert resolved["status"] == "resolved" and resolved["resolved_by"] == ADMIN["id"]
    assert len(patrol_db.outbox("incident_resolved")) == 1


def test_resolve_needs_a_resolution(patrol, patrol_db):
    zone = make_zone(patrol)
    incident = report(patrol, zone, M1)
    with pytest.raises(InvalidInput) as raised:
        patrol().resolve_incident(incident["id"], {"resolution": ""}, LEAD)
    assert "resolution" in raised.value.details["fields"]
    assert stored(patrol_db, Incident, incident["id"]).status == "open"


def test_unknown_incidents_are_not_found(patrol):
    with pytest.raises(NotFound):
        patrol().get_incident("no-such-incident", ADMIN)
    with pytest.raises(NotFound):
        patrol().acknowledge_incident("no-such-incident", LEAD)
    with pytest.raises(NotFound):
        patrol().resolve_incident("no-such-incident", {"resolution": RESOLUTION}, ADMIN)


@pytest.fixture
def three_incidents(patrol, patrol_db):
    """North: one on 11 May 10:00 (resolved), one on 12 May 08:00; South: one on 13 May 00:00 (UTC)."""
    north = make_zone(patrol)
    south = make_zone(patrol, name="South", compounds=SOUTH, leader="lead", members=("m1",))
    first, second, third = report(patrol, north), report(patrol, north), report(patrol, south)
    for incident, moment in [(first, datetime(2026, 5, 11, 10)), (second, datetime(2026, 5, 12, 8)),
                             (third, datetime(2026, 5, 13, 0))]:
        set_column(patrol_db, Incident, incident["id"], reported_at=moment)
    patrol().resolve_incident(first["id"], {"resolution": RESOLUTION}, LEAD)
    return {"north": north, "south": south, "ids": [first["id"], second["id"], third["id"]]}


def listed(patrol, query):
    return [i["id"] for i in patrol().list_incidents(ADMIN, query)["items"]]


def test_list_incidents_newest_first_and_by_zone_and_status(patrol, three_incidents):
    first, second, third = three_incidents["ids"]
    assert listed(patrol, None) == [third, second, first]
    assert listed(patrol, {"zone_id": three_incidents["north"]["id"]}) == [second, first]
    assert listed(patrol, {"zone_id": three_incidents["south"]["id"]}) == [third]
    assert listed(patrol, {"status": "open"}) == [third, second]
    assert listed(patrol, {"status": "resolved"}) == [first]
    assert listed(patrol, {"zone_id": three_incidents["north"]["id"], "status": "open"}) == [second]


def test_list_incidents_by_reporter(patrol, three_incidents):
    first, second, third = three_incidents["ids"]
    mine = report(patrol, three_incidents["south"], LEAD)
    assert listed(patrol, {"reported_by": "lead"}) == [mine["id"]]
    assert listed(patrol, {"reported_by": "m1"}) == [third, second, first]
    assert listed(patrol, {"reported_by": "m1", "status": "resolved"}) == [first]


def test_list_incidents_by_time(patrol, three_incidents):
    first, second, third = three_incidents["ids"]
    assert listed(patrol, {"since": "2026-05-12"}) == [third, second]
    assert listed(patrol, {"until": "2026-05-12"}) == [first]
    assert listed(patrol, {"since": "2026-05-12", "until": "2026-05-13"}) == [second]
    assert listed(patrol, {"since": "2026-05-12T07:00:00Z", "until": "2026-05-12T09:00:00+00:00"}) == [second]
    # 16:00 in Beijing is 08:00 UTC.
    assert listed(patrol, {"since": "2026-05-12T16:00:00+08:00"}) == [third, second]
    assert listed(patrol, {"since": "2026-05-12T08:00:01"}) == [third]


@pytest.mark.parametrize("query, field", [
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-45"}, "until"),
    ({"since": 20260512}, "since"),
    ({"status": "closed"}, "status"),
    ({"limit": 0}, "limit"),
])
def test_list_incidents_rejects_garbage_naming_the_field(patrol, query, field):
    with pytest.raises(InvalidInput) as raised:
        patrol().list_incidents(ADMIN, query)
    assert field in raised.value.details["fields"]


# -- free text: who reads it, and the audit of who did ------------------------------------

SOUTH_LEAD = {"id": "south-lead", "roles": ["member"]}
S1 = {"id": "s1", "roles": ["member"]}


@pytest.fixture
def two_zones(patrol):
    north = make_zone(patrol)
    south = make_zone(patrol, name="South", compounds=SOUTH, leader="south-lead", members=("s1",))
    return north, south


def audit_rows(db):
    with Session(db.engine) as session:
        return [(e.actor_id, e.action, e.incident_id, e.patrol_id)
                for e in session.scalars(select(AuditEntry).order_by(AuditEntry.at, AuditEntry.action))]


def test_another_zones_members_get_an_incident_without_its_description_or_resolution(patrol, patrol_db, two_zones):
    north, _south = two_zones
    incident = report(patrol, north, M1)
    patrol().resolve_incident(incident["id"], {"resolution": RESOLUTION}, LEAD)
    for reader in (SOUTH_LEAD, S1, OUTSIDER):
        shown = patrol().get_incident(incident["id"], reader)
        assert shown["description"] is None and shown["resolution"] is None and shown["free_text_hidden"] is True
        assert shown["id"] == incident["id"] and shown["category"] == "fire_hazard" and shown["status"] == "resolved"
        assert "Zhang" not in json.dumps(shown, ensure_ascii=False)
    assert audit_rows(patrol_db) == []  # nothing was read


def test_the_zones_team_the_reporter_and_the_office_read_it_in_full_and_each_read_is_audited(
        patrol, patrol_db, two_zones):
    north, _south = two_zones
    incident = report(patrol, north, M1)
    for reader in (LEAD, M2, M1, ADMIN):
        shown = patrol().get_incident(incident["id"], reader)
        assert shown["description"] == DESCRIPTION and shown["free_text_hidden"] is False
    assert audit_rows(patrol_db) == [(reader["id"], "read_incident", incident["id"], None)
                                     for reader in (LEAD, M2, M1, ADMIN)]


def test_the_reporter_still_reads_it_after_leaving_the_team(patrol, two_zones):
    north, _south = two_zones
    incident = report(patrol, north, M1)
    patrol().assign_team(north["id"], {"leader_id": "lead", "member_ids": ["m2"]}, ADMIN)
    assert patrol().get_incident(incident["id"], M1)["description"] == DESCRIPTION


def test_a_list_shows_each_incident_as_the_caller_may_see_it_and_audits_the_full_ones(patrol, patrol_db, two_zones):
    north, south = two_zones
    in_north, in_south = report(patrol, north, M1), report(patrol, south, S1)
    shown = {i["id"]: i for i in patrol().list_incidents(SOUTH_LEAD)["items"]}
    assert shown[in_south["id"]]["description"] == DESCRIPTION and not shown[in_south["id"]]["free_text_hidden"]
    assert shown[in_north["id"]]["description"] is None and shown[in_north["id"]]["free_text_hidden"]
    assert audit_rows(patrol_db) == [("south-lead", "list_incident", in_south["id"], None)]
    assert all(i["description"] is None for i in patrol().list_incidents(OUTSIDER)["items"])
    assert len(audit_rows(patrol_db)) == 1


def test_the_answers_to_writes_go_to_those_allowed_and_show_the_text(patrol, two_zones):
    north, _south = two_zones
    incident = report(patrol, north, M1)
    assert incident["description"] == DESCRIPTION and incident["free_text_hidden"] is False
    assert patrol().acknowledge_incident(incident["id"], LEAD)["description"] == DESCRIPTION
    resolved = patrol().resolve_incident(incident["id"], {"resolution": RESOLUTION}, ADMIN)
    assert resolved["description"] == DESCRIPTION and resolved["resolution"] == RESOLUTION
    shift = patrol().start_patrol({"zone_id": north["id"]}, M2)
    assert patrol().finish_patrol(shift["id"], {"notes": NOTES}, M2)["notes"] == NOTES


def test_another_zones_members_get_patrols_without_their_notes(patrol, patrol_db, two_zones):
    north, _south = two_zones
    shift = patrol().start_patrol({"zone_id": north["id"]}, M1)
    patrol().finish_patrol(shift["id"], {"notes": NOTES}, M1)
    for reader in (SOUTH_LEAD, S1, OUTSIDER):
        [shown] = patrol().list_patrols(reader, {"member_id": "m1"})["items"]
        assert shown["notes"] is None and shown["free_text_hidden"] is True and shown["finished_at"]
    assert audit_rows(patrol_db) == []
    for reader in (M1, LEAD, ADMIN):
        [shown] = patrol().list_patrols(reader, {"member_id": "m1"})["items"]
        assert shown["notes"] == NOTES and shown["free_text_hidden"] is False
    assert audit_rows(patrol_db) == [(reader["id"], "list_patrol", None, shift["id"]) for reader in (M1, LEAD, ADMIN)]


def test_a_patrol_without_notes_is_not_audited_as_read(patrol, patrol_db, two_zones):
    north, _south = two_zones
    patrol().start_patrol({"zone_id": north["id"]}, M1)
    assert patrol().list_patrols(LEAD)["items"][0]["notes"] is None
    assert audit_rows(patrol_db) == []


@pytest.mark.parametrize("actor", [None, {}, {"id": "m1"}, {"id": "m1", "roles": ["king"]}, "m1"])
def test_reads_without_a_valid_caller_are_refused_and_read_nothing(patrol, patrol_db, two_zones, actor):
    north, _south = two_zones
    incident = report(patrol, north, M1)
    for read in (lambda: patrol().get_incident(incident["id"], actor), lambda: patrol().list_incidents(actor),
                 lambda: patrol().list_patrols(actor)):
        with pytest.raises(InvalidInput):
            read()
    assert audit_rows(patrol_db) == []


def test_the_audit_of_free_text_is_for_admins_filtered_by_incident_or_patrol_and_holds_no_text(
        patrol, patrol_db, two_zones):
    north, _south = two_zones
    first, second = report(patrol, north, M1), report(patrol, north, M1)
    shift = patrol().start_patrol({"zone_id": north["id"]}, M2)
    patrol().finish_patrol(shift["id"], {"notes": NOTES}, M2)
    patrol().get_incident(first["id"], LEAD)
    patrol().get_incident(second["id"], ADMIN)
    patrol().list_patrols(LEAD)
    with pytest.raises(Forbidden):
        patrol().list_audit(LEAD)
    entries = patrol().list_audit(ADMIN)["items"]
    assert [(e["actor_id"], e["action"], e["incident_id"], e["patrol_id"]) for e in entries] == [
        ("lead", "list_patrol", None, shift["id"]), (ADMIN["id"], "read_incident", second["id"], None),
        ("lead", "read_incident", first["id"], None)]
    assert [e["actor_id"] for e in patrol().list_audit(ADMIN, {"incident_id": first["id"]})["items"]] == ["lead"]
    assert [e["action"] for e in patrol().list_audit(ADMIN, {"patrol_id": shift["id"]})["items"]] == ["list_patrol"]
    text = json.dumps(entries, ensure_ascii=False)
    assert DESCRIPTION not in text and NOTES not in text
    with pytest.raises(InvalidInput) as raised:
        patrol().list_audit(ADMIN, {"incident_id": ""})
    assert "incident_id" in raised.value.details["fields"]


# -- coverage ---------------------------------------------------------------------------

def test_a_zone_never_patrolled_is_not_covered_until_it_is(patrol):
    zone = make_zone(patrol)
    coverage = patrol().coverage()
    assert coverage["days"] == 7
    assert coverage["zones"] == [{"zone_id": zone["id"], "name": "North", "leader_id": "lead",
                                  "last_patrol_at": None, "covered": False}]

    shift = patrol().start_patrol({"zone_id": zone["id"]}, M1)
    coverage = patrol().coverage({"days": 3})
    assert coverage["days"] == 3
    assert coverage["zones"][0]["covered"] is True
    assert coverage["zones"][0]["last_patrol_at"] == shift["started_at"]


def test_coverage_of_a_patrol_older_than_days(patrol, patrol_db):
    zone = make_zone(patrol)
    patrol().start_patrol({"zone_id": zone["id"]}, M1)
    set_column(patrol_db, Zone, zone["id"], last_patrol_at=naive_utcnow() - timedelta(days=5))
    assert patrol().coverage({"days": 7})["zones"][0]["covered"] is True
    assert patrol().coverage({"days": 4})["zones"][0]["covered"] is False


@pytest.mark.parametrize("days", [0, -1, "soon", 100000])
def test_coverage_rejects_bad_days(patrol, days):
    with pytest.raises(InvalidInput) as raised:
        patrol().coverage({"days": days})
    assert "days" in raised.value.details["fields"]


# -- the timer: escalation --------------------------------------------------------------

def test_an_unacknowledged_incident_escalates_once(patrol, patrol_db):
    zone = make_zone(patrol)
    incident = report(patrol, zone, M1, severity="low")
    patrol().sweep()
    assert patrol_db.outbox("incident_escalated") == []  # too early

    set_column(patrol_db, Incident, incident["id"], reported_at=naive_utcnow() - timedelta(minutes=31))
    patrol().sweep()
    patrol().sweep()
    data = event_data(patrol_db, "incident_escalated")
    assert len(data) == 1
    assert data[0]["incident_id"] == incident["id"] and data[0]["leader_id"] == "lead"
    assert data[0]["status"] == "open"
    assert 31 <= data[0]["minutes_unacknowledged"] < 32
    assert patrol().get_incident(incident["id"], ADMIN)["escalated_at"] is not None  # the incident shows it

    text = json.dumps(patrol_db.outbox("incident_escalated")[0]["envelope"], ensure_ascii=False)
    assert DESCRIPTION not in text and "Zhang" not in text


def test_escalation_follows_the_configured_limit(patrol, patrol_db):
    zone = make_zone(patrol)
    report(patrol, zone, M1)
    patrol(ESCALATE_AFTER_MINUTES=0).sweep()
    patrol(ESCALATE_AFTER_MINUTES=0).sweep()
    assert len(patrol_db.outbox("incident_escalated")) == 1


def test_an_acknowledged_incident_never_escalates(patrol, patrol_db):
    zone = make_zone(patrol)
    incident = report(patrol, zone, M1)
    patrol().acknowledge_incident(incident["id"], LEAD)
    set_column(patrol_db, Incident, incident["id"], reported_at=naive_utcnow() - timedelta(days=2))
    patrol().sweep()
    assert patrol_db.outbox("incident_escalated") == []
    assert patrol().get_incident(incident["id"], ADMIN)["escalated_at"] is None


def test_a_resolved_incident_never_escalates(patrol, patrol_db):
    zone = make_zone(patrol)
    incident = report(patrol, zone, M1)
    patrol().resolve_incident(incident["id"], {"resolution": RESOLUTION}, LEAD)
    set_column(patrol_db, Incident, incident["id"], reported_at=naive_utcnow() - timedelta(days=2))
    patrol().sweep()
    assert patrol_db.outbox("incident_escalated") == []


# -- the timer: zones that went unpatrolled ------------------------------------------

def age_zone(db, zone_id, days):
    """Move the zone's whole history `days` back in time, as if that long had passed."""
    with Session(db.engine) as session:
        zone = session.get(Zone, zone_id)
        zone.created_at -= timedelta(days=days)
        if zone.last_patrol_at is not None:
            zone.last_patrol_at -= timedelta(days=days)
        if zone.uncovered_alerted_at is not None:
            zone.uncovered_alerted_at -= timedelta(days=days)
        session.commit()


def test_a_new_zone_is_not_flagged(patrol, patrol_db):
    make_zone(patrol)
    patrol().sweep()
    assert patrol_db.outbox("zone_uncovered") == []


def test_a_zone_never_patrolled_is_flagged_once_per_lapse(patrol, patrol_db):
    zone = make_zone(patrol)
    age_zone(patrol_db, zone["id"], 8)
    patrol().sweep()
    patrol().sweep()
    data = event_data(patrol_db, "zone_uncovered")
    assert data == [{"zone_id": zone["id"], "leader_id": "lead", "last_patrol_at": None, "days": 7.0}]

    # Ten more days without a patrol: the same lapse, no second alert.
    age_zone(patrol_db, zone["id"], 10)
    patrol().sweep()
    assert len(patrol_db.outbox("zone_uncovered")) == 1

    # A patrol ends the lapse ...
    shift = patrol().start_patrol({"zone_id": zone["id"]}, M1)
    patrol().finish_patrol(shift["id"], {}, M1)
    patrol().sweep()
    assert len(patrol_db.outbox("zone_uncovered")) == 1
    assert patrol().coverage()["zones"][0]["covered"] is True

    # ... and eight days later a new lapse raises a second alert, once.
    age_zone(patrol_db, zone["id"], 8)
    patrol().sweep()
    patrol().sweep()
    data = event_data(patrol_db, "zone_uncovered")
    assert len(data) == 2
    assert data[1]["zone_id"] == zone["id"]
    assert data[1]["last_patrol_at"] is not None
    assert patrol().coverage()["zones"][0]["covered"] is False


def test_a_zone_patrolled_recently_is_not_flagged(patrol, patrol_db):
    zone = make_zone(patrol)
    age_zone(patrol_db, zone["id"], 30)
    patrol().start_patrol({"zone_id": zone["id"]}, M1)
    patrol().sweep()
    assert patrol_db.outbox("zone_uncovered") == []


def test_uncovered_follows_the_configured_days(patrol, patrol_db):
    zone = make_zone(patrol)
    age_zone(patrol_db, zone["id"], 3)
    patrol().sweep()
    assert patrol_db.outbox("zone_uncovered") == []
    patrol(UNCOVERED_AFTER_DAYS=2).sweep()
    assert event_data(patrol_db, "zone_uncovered")[0]["days"] == 2.0


def test_each_zone_is_flagged_on_its_own(patrol, patrol_db):
    north = make_zone(patrol)
    south = make_zone(patrol, name="South", compounds=SOUTH, leader="south-lead", members=())
    age_zone(patrol_db, north["id"], 8)
    age_zone(patrol_db, south["id"], 8)
    patrol().start_patrol({"zone_id": north["id"]}, M1)
    patrol().sweep()
    data = event_data(patrol_db, "zone_uncovered")
    assert [(d["zone_id"], d["leader_id"]) for d in data] == [(south["id"], "south-lead")]


def test_a_zone_without_a_leader_waits_for_one_before_its_lapse_is_flagged(patrol, patrol_db):
    south = make_zone(patrol, name="South", compounds=SOUTH, leader=None)
    age_zone(patrol_db, south["id"], 8)
    patrol().sweep()
    assert event_data(patrol_db, "zone_uncovered") == []  # no one to tell yet
    patrol().assign_team(south["id"], {"leader_id": "south-lead", "member_ids": []}, ADMIN)
    patrol().sweep()
    patrol().sweep()
    data = event_data(patrol_db, "zone_uncovered")
    assert [(d["zone_id"], d["leader_id"]) for d in data] == [(south["id"], "south-lead")]
