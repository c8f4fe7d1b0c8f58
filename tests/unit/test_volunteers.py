"""Activity groups, their sessions and volunteer service hours, as nameko
workers (worker_factory) over a real in-memory database: hours from patrols
(once, whatever is redelivered; a correction recounts), from sessions for the
leader and each helper, other service the office records, and the counts of
the monthly summary."""
import json
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from services import contracts
from services.common.envelope import make_envelope
from services.common.errors import Conflict, Forbidden, InvalidInput
from services.contracts import patrol as patrol_events
from services.contracts import volunteers as events
from services.volunteers import domain
from services.volunteers.models import GroupSession, ServiceRecord
from services.volunteers.service import VolunteersService
from tests.unit.conftest import workers_of

ADMIN = {"id": "admin-1", "roles": ["admin"]}
LEADER = {"id": "leader-1", "roles": ["member"]}
HELPER = {"id": "helper-1", "roles": ["member"]}
OTHER = {"id": "member-9", "roles": ["member"]}


@pytest.fixture
def volunteers(volunteers_db):
    return workers_of(VolunteersService, volunteers_db)


def accounts(leader=None, helpers=()):
    """The accounts the gateway vouches for with a group's call: the leader an
    active party member, each helper an active member (domain.check_group_people)."""
    held = [{"id": leader, "party_member": True, "active": True, "roles": ["member"]}] if leader else []
    return held + [{"id": helper, "party_member": False, "active": True, "roles": ["member"]} for helper in helpers]


@pytest.fixture
def group(volunteers):
    return volunteers().create_group({"name": "秧歌队 Yangge dance", "kind": "dance", "leader_id": LEADER["id"],
                                      "helper_ids": [HELPER["id"], "helper-2"]}, ADMIN,
                                     accounts(LEADER["id"], [HELPER["id"], "helper-2"]))


def session_payload(**changes):
    return {"held_on": "2026-05-09", "starts_at": "19:00", "duration_minutes": 90, "place": "Square by Building 3",
            "what": "Rehearsed the new fan dance", "kind": "rehearsal", "participants": 24,
            "helper_ids": [HELPER["id"]], **changes}


def finished(patrol_id="patrol-1", member_id="member-5", started="2026-05-10T01:00:00Z",
             finished_at="2026-05-10T02:30:00Z", duration=None, event=patrol_events.PATROL_FINISHED):
    data = {"patrol_id": patrol_id, "zone_id": "zone-1", "member_id": member_id, "started_at": started,
            "finished_at": finished_at, "duration_minutes": duration}
    if event == patrol_events.PATROL_FINISHED:
        data["closed_automatically"] = False
    return make_envelope("patrol", event, data)


def redelivery(envelope):
    return json.loads(json.dumps(envelope))


def records(db) -> list[ServiceRecord]:
    with Session(db.engine) as session:
        return list(session.scalars(select(ServiceRecord).order_by(ServiceRecord.member_id)).all())


# -- the pure rules -------------------------------------------------------------

def test_a_patrol_counts_its_producers_capped_duration_or_else_its_length():
    assert domain.patrol_minutes("2026-05-10T01:00:00Z", "2026-05-10T09:00:00Z", 240) == 240
    assert domain.patrol_minutes("2026-05-10T01:00:00Z", "2026-05-10T02:30:59Z", None) == 90


def test_a_patrol_is_served_on_the_communitys_date_of_its_start():
    assert domain.local_date("2026-05-10T17:00:00Z", ZoneInfo("Asia/Shanghai")).isoformat() == "2026-05-11"


def test_a_session_needs_a_leader_and_an_active_group():
    with pytest.raises(domain.RuleBroken):
        domain.check_session(True, None, [], [])
    with pytest.raises(domain.RuleBroken):
        domain.check_session(False, "leader-1", [], [])
    with pytest.raises(domain.BadHelpers):
        domain.check_session(True, "leader-1", ["stranger"], ["helper-1"])


# -- sessions and their hours ----------------------------------------------------------

def test_a_group_s_leader_is_an_active_party_member_and_each_helper_an_active_member():
    def account(member_id, party_member=True, active=True, roles=("member",)):
        return {member_id: {"id": member_id, "party_member": party_member, "active": active, "roles": list(roles)}}

    domain.check_group_people("l", ["h"], {**account("l"), **account("h", party_member=False, roles=["admin"])})
    domain.check_group_people(None, [], {})
    for leader in ({}, account("l", party_member=False), account("l", active=False)):
        with pytest.raises(domain.BadPeople) as refused:
            domain.check_group_people("l", [], leader)
        assert (refused.value.field, refused.value.messages) == ("leader_id", ["No active party member has this id."])
    helpers = {**account("viewer", roles=["viewer"]), **account("gone", active=False), **account("ok")}
    with pytest.raises(domain.BadPeople) as refused:
        domain.check_group_people(None, ["viewer", "ok", "gone", "nobody"], helpers)
    assert refused.value.field == "helper_ids" and refused.value.messages == [
        f"No active member has the id {helper}." for helper in ("viewer", "gone", "nobody")]


@pytest.mark.parametrize("change, field", [({"leader_id": "stranger"}, "leader_id"),
                                           ({"helper_ids": ["stranger"]}, "helper_ids")])
def test_a_group_with_someone_unfit_is_a_400_naming_the_field(volunteers, volunteers_db, group, change, field):
    body = {"name": "合唱团 Choir", "kind": "music", **change}
    with pytest.raises(InvalidInput) as refused:
        volunteers().create_group(body, ADMIN, [])
    assert list(refused.value.details["fields"]) == [field]
    with pytest.raises(InvalidInput) as refused:
        volunteers().update_group(group["id"], change, ADMIN, [])
    assert list(refused.value.details["fields"]) == [field]
    assert volunteers().get_group(group["id"]) == group
    assert len(volunteers_db.outbox(events.GROUP_CREATED)) == 1


def test_a_session_counts_its_duration_for_the_leader_and_each_helper_present(volunteers, volunteers_db, group):
    session = volunteers().record_session(group["id"], session_payload(), LEADER)
    assert (session["leader_id"], session["helper_ids"], session["participants"]) == ("leader-1", ["helper-1"], 24)
    got = [(r.member_id, r.role, r.minutes, r.served_on.isoformat(), r.what) for r in records(volunteers_db)]
    assert got == [("helper-1", "helper", 90, "2026-05-09", "秧歌队 Yangge dance"),
                   ("leader-1", "leader", 90, "2026-05-09", "秧歌队 Yangge dance")]
    held, = [row["envelope"]["data"] for row in volunteers_db.outbox(events.SESSION_HELD)]
    assert held["participants"] == 24 and held["helper_ids"] == ["helper-1"]
    assert sorted(row["envelope"]["data"]["member_id"] for row in volunteers_db.outbox(events.SERVICE_RECORDED)) \
        == ["helper-1", "leader-1"]


def test_a_session_without_a_leader_is_refused_and_nothing_is_written(volunteers, volunteers_db, group):
    volunteers().update_group(group["id"], {"leader_id": None}, ADMIN, [])
    with pytest.raises(Conflict, match="needs its leader"):
        volunteers().record_session(group["id"], session_payload(), ADMIN)
    assert volunteers_db.count(GroupSession) == 0 and records(volunteers_db) == []
    assert volunteers_db.outbox(events.SESSION_HELD) == []


def test_an_inactive_group_holds_no_session(volunteers, volunteers_db, group):
    volunteers().update_group(group["id"], {"active": False}, ADMIN, [])
    with pytest.raises(Conflict, match="inactive"):
        volunteers().record_session(group["id"], session_payload(), ADMIN)
    assert volunteers_db.count(GroupSession) == 0


def test_only_the_leader_or_the_office_records_a_session(volunteers, volunteers_db, group):
    with pytest.raises(Forbidden):
        volunteers().record_session(group["id"], session_payload(), OTHER)
    with pytest.raises(Forbidden):  # a helper is not the leader
        volunteers().record_session(group["id"], session_payload(), HELPER)
    assert volunteers_db.count(GroupSession) == 0


def test_a_helper_not_of_the_group_is_a_400_naming_helper_ids(volunteers, volunteers_db, group):
    with pytest.raises(InvalidInput) as refused:
        volunteers().record_session(group["id"], session_payload(helper_ids=["member-9"]), LEADER)
    assert "helper_ids" in refused.value.details["fields"]
    assert volunteers_db.count(GroupSession) == 0


@pytest.mark.parametrize("field, value", [("duration_minutes", 0), ("duration_minutes", 721), ("participants", -1),
                                          ("starts_at", "25:00"), ("held_on", "2026-13-01"), ("kind", "party"),
                                          ("place", ""), ("what", "x" * 501), ("held_on", "2999-01-01"),
                                          ("starts_at", "１９:００"), ("place", "   ")])
def test_bad_session_input_names_its_field(volunteers, volunteers_db, group, field, value):
    with pytest.raises(InvalidInput) as refused:
        volunteers().record_session(group["id"], session_payload(**{field: value}), LEADER)
    assert field in refused.value.details["fields"]
    assert volunteers_db.count(GroupSession) == 0


# -- hours from patrols -------------------------------------------------------------

def test_a_finished_patrol_counts_its_minutes_on_its_local_day(volunteers, volunteers_db):
    volunteers().on_patrol_finished(finished(started="2026-05-10T17:00:00Z", finished_at="2026-05-10T18:15:00Z"))
    record, = records(volunteers_db)
    assert (record.member_id, record.source, record.source_id, record.role, record.minutes,
            record.served_on.isoformat()) == ("member-5", "patrol", "patrol-1", "patrol", 75, "2026-05-11")


def test_the_producers_capped_duration_is_what_counts(volunteers, volunteers_db):
    volunteers().on_patrol_finished(finished(finished_at="2026-05-10T11:00:00Z", duration=240))
    assert [r.minutes for r in records(volunteers_db)] == [240]


def test_a_redelivered_patrol_finished_counts_once(volunteers, volunteers_db):
    envelope = finished()
    volunteers().on_patrol_finished(envelope)
    volunteers().on_patrol_finished(redelivery(envelope))
    volunteers().on_patrol_finished(finished())  # the same patrol in another envelope
    assert [r.minutes for r in records(volunteers_db)] == [90]
    assert len(volunteers_db.outbox(events.SERVICE_RECORDED)) == 1


def test_a_correction_changes_the_patrols_minutes(volunteers, volunteers_db):
    volunteers().on_patrol_finished(finished(finished_at="2026-05-10T11:00:00Z", duration=240))
    record_id = records(volunteers_db)[0].id
    volunteers().on_patrol_corrected(finished(finished_at="2026-05-10T02:00:00Z", duration=60,
                                              event=patrol_events.PATROL_CORRECTED))
    record, = records(volunteers_db)
    assert (record.id, record.minutes) == (record_id, 60)
    assert [row["envelope"]["data"]["minutes"] for row in volunteers_db.outbox(events.SERVICE_RECORDED)] == [240, 60]
    # and the late finish of a patrol already corrected changes nothing
    volunteers().on_patrol_finished(finished(finished_at="2026-05-10T11:00:00Z", duration=240))
    assert [r.minutes for r in records(volunteers_db)] == [60]


def test_every_event_it_emits_keeps_the_contract(volunteers, volunteers_db, group):
    volunteers().record_session(group["id"], session_payload(), LEADER)
    volunteers().on_patrol_finished(finished())
    for row in volunteers_db.outbox():
        contracts.validate(row["envelope"], strict=True)
        assert "Rehearsed" not in json.dumps(row["envelope"]) and "Square" not in json.dumps(row["envelope"])


# -- other service, totals, one's own record, summaries ------------------------------------

def test_the_office_records_other_service_and_a_member_may_not(volunteers, volunteers_db):
    payload = {"member_id": "teacher-1", "served_on": "2026-05-16", "minutes": 120, "what": "Weekend tutoring"}
    with pytest.raises(Forbidden):
        volunteers().record_service(payload, LEADER)
    record = volunteers().record_service(payload, ADMIN)
    assert (record["source"], record["source_id"], record["role"], record["what"], record["minutes"]) == \
        ("other", None, None, "Weekend tutoring", 120)
    for field, value in (("minutes", 0), ("served_on", "2999-01-01"), ("what", " ")):
        with pytest.raises(InvalidInput) as refused:
            volunteers().record_service({**payload, field: value}, ADMIN)
        assert field in refused.value.details["fields"]


def test_my_service_totals_by_month_and_source(volunteers, group):
    volunteers().record_session(group["id"], session_payload(), LEADER)
    volunteers().record_session(group["id"], session_payload(held_on="2026-06-02", duration_minutes=60), LEADER)
    volunteers().on_patrol_finished(finished(member_id="leader-1"))
    volunteers().record_service({"member_id": "leader-1", "served_on": "2026-06-20", "minutes": 30,
                                 "what": "Blackboard bulletin"}, ADMIN)
    mine = volunteers().my_service(LEADER, {"year": 2026})
    months = {m["month"]: m for m in mine["months"]}
    assert mine["total_minutes"] == 90 + 60 + 90 + 30
    assert months["2026-05"] == {"month": "2026-05", "minutes": 180, "patrol": 90, "session": 90, "other": 0}
    assert months["2026-06"] == {"month": "2026-06", "minutes": 90, "patrol": 0, "session": 60, "other": 30}
    assert [r["served_on"] for r in mine["records"]] == ["2026-06-20", "2026-06-02", "2026-05-10", "2026-05-09"]
    assert volunteers().my_service(HELPER, {"year": 2025})["total_minutes"] == 0


def test_monthly_summary_counts(volunteers, group):
    gateball = volunteers().create_group({"name": "门球队 Gateball", "kind": "sport", "leader_id": "leader-2"},
                                         ADMIN, accounts("leader-2"))
    volunteers().create_group({"name": "合唱团 Choir", "kind": "music", "leader_id": "leader-3"}, ADMIN,
                              accounts("leader-3"))
    volunteers().record_session(group["id"], session_payload(), LEADER)
    volunteers().record_session(group["id"], session_payload(kind="performance", participants=40,
                                                             held_on="2026-05-20", helper_ids=[]), ADMIN)
    volunteers().record_session(gateball["id"], session_payload(kind="match", participants=12, helper_ids=[]),
                                ADMIN)
    volunteers().record_session(gateball["id"], session_payload(held_on="2026-06-01", helper_ids=[]), ADMIN)
    volunteers().on_patrol_finished(finished())
    summary = volunteers().monthly_summary("2026-05")
    assert {key: summary[key] for key in ("month", "groups_active", "sessions", "participants", "minutes",
                                          "members_serving")} == {
        "month": "2026-05", "groups_active": 2, "sessions": 3, "participants": 24 + 40 + 12,
        "minutes": 90 * 2 + 90 + 90 + 90, "members_serving": 4}
    assert summary["sessions_by_kind"] == {"rehearsal": 1, "practice": 0, "performance": 1, "match": 1}
    assert summary["minutes_by_source"] == {"patrol": 90, "session": 360, "other": 0}
    assert [(g["name"], g["sessions"], g["participants"]) for g in summary["groups"]] == [
        ("秧歌队 Yangge dance", 2, 64), ("门球队 Gateball", 1, 12), ("合唱团 Choir", 0, 0)]
    with pytest.raises(InvalidInput):
        volunteers().monthly_summary("2026-5")


def test_service_totals_per_member_most_first(volunteers, group):
    volunteers().record_session(group["id"], session_payload(), LEADER)
    volunteers().on_patrol_finished(finished(member_id="leader-1"))
    totals = volunteers().service_totals({"month": "2026-05"})
    assert totals == {"month": "2026-05", "members": [
        {"member_id": "leader-1", "minutes": 180, "patrol": 90, "session": 90, "other": 0},
        {"member_id": "helper-1", "minutes": 90, "patrol": 0, "session": 90, "other": 0}]}


def test_a_group_name_is_taken_once(volunteers, group):
    with pytest.raises(Conflict):
        volunteers().create_group({"name": " 秧歌队 Yangge dance ", "kind": "dance"}, ADMIN, [])


def test_two_instances_counting_one_patrol_at_once_count_it_once(volunteers, volunteers_db):
    """The second instance looked before the first committed (it saw no record),
    then its insert meets the unique constraint: it changes nothing, and fails nothing."""
    volunteers().on_patrol_finished(finished())
    late = volunteers()
    real_scalar = late.db.session.scalar
    late.db.session.scalar = lambda statement: None  # what it saw before the other's commit
    late.on_patrol_finished(finished())
    late.db.session.scalar = real_scalar
    assert [(r.member_id, r.minutes) for r in records(volunteers_db)] == [("member-5", 90)]
    assert len(volunteers_db.outbox(events.SERVICE_RECORDED)) == 1


def test_the_database_refuses_a_second_record_of_one_patrol_for_one_member(volunteers_db):
    from datetime import date

    from sqlalchemy.exc import IntegrityError
    row = {"member_id": "member-5", "served_on": date(2026, 5, 10), "minutes": 90, "source": "patrol",
           "source_id": "patrol-1", "role": "patrol"}
    with Session(volunteers_db.engine) as session:
        session.add(ServiceRecord(**row))
        session.commit()
        session.add(ServiceRecord(**row))
        with pytest.raises(IntegrityError):
            session.commit()
