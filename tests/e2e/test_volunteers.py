"""Activity groups and volunteer service through the gateway, every service a
real process: the office makes a group under a party member, its leader
records a session (another member may not; a group without a leader holds
none), a patrol finished in patrol counts in volunteers through its event,
a member sees their own hours by month, and the office lists, totals and
exports everyone's with their names. Bad input is a 400 naming the field."""
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.conftest import wait_for
from tests.e2e.conftest import new_key, ok
from tests.e2e.test_corrections import csv_rows, download, xlsx_rows
from tests.e2e.test_patrol import assert_error, make_zone, set_team


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


# Last year's months: this year's May may still be ahead (a session is never recorded before it is held).
YEAR = datetime.now(ZoneInfo("Asia/Shanghai")).year - 1


def patch(client, path: str, body: dict):
    return requests.patch(client.api + path, json=body, headers=client.headers, timeout=15)


def session_body(**changes) -> dict:
    return {"held_on": f"{YEAR}-05-09", "starts_at": "19:00", "duration_minutes": 90,
            "place": "3号楼前广场 Square by Building 3", "what": "排练新节目 Rehearsed a new programme",
            "kind": "rehearsal", "participants": 24, "helper_ids": [], **changes}


def test_a_group_its_leaders_session_and_everyones_hours(admin, register):
    leader, leader_profile = register(name="王秀兰")
    helper, helper_profile = register(name="陈建国", party_member=False)
    outsider, _ = register(party_member=False)
    not_party = register(party_member=False)[1]
    name = f"秧歌队 Yangge dance {uuid.uuid4().hex[:6]}"

    # The leader must be a party member, the helpers members: 400 naming the field, nothing made.
    assert_error(admin.post("/groups", {"name": name, "kind": "dance", "leader_id": not_party["id"]}),
                 400, "invalid_input", ("leader_id",))
    assert_error(admin.post("/groups", {"name": name, "kind": "dance", "leader_id": leader_profile["id"],
                                        "helper_ids": ["no-such-member"]}), 400, "invalid_input", ("helper_ids",))
    assert_error(admin.post("/groups", {"name": name, "kind": "opera"}), 400, "invalid_input", ("kind",))
    group = ok(admin.post("/groups", {"name": name, "kind": "dance", "leader_id": leader_profile["id"],
                                      "helper_ids": [helper_profile["id"]]}), 201)
    assert (group["leader_name"], group["helper_names"], group["active"]) == ("王秀兰", ["陈建国"], True)
    seen_by_member = ok(leader.get(f"/groups/{group['id']}"))
    assert "leader_name" not in seen_by_member and seen_by_member["leader_id"] == leader_profile["id"]
    assert group["id"] in [g["id"] for g in ok(leader.get("/groups", params={"limit": 200}))["items"]]

    # The leader records a session; another member may not; the key is required.
    path = f"/groups/{group['id']}/sessions"
    assert_error(outsider.post(path, session_body(), key=new_key()), 403, "forbidden")
    assert_error(leader.post(path, session_body()), 400, "idempotency_key_required")
    key = new_key()
    session = ok(leader.post(path, session_body(helper_ids=[helper_profile["id"]]), key=key), 201)
    assert ok(leader.post(path, session_body(helper_ids=[helper_profile["id"]]), key=key), 201) == session
    assert (session["leader_id"], session["helper_ids"], session["participants"]) == \
        (leader_profile["id"], [helper_profile["id"]], 24)
    listed = ok(helper.get("/sessions", params={"group_id": group["id"], "month": f"{YEAR}-05"}))["items"]
    assert [s["id"] for s in listed] == [session["id"]]

    # Bad input names its field and records nothing.
    for field, value in (("duration_minutes", 0), ("participants", -3), ("starts_at", "7pm"),
                         ("held_on", "09/05"), ("kind", "party")):
        assert_error(leader.post(path, session_body(**{field: value}), key=new_key()), 400, "invalid_input",
                     (field,))
    assert_error(leader.post(path, session_body(helper_ids=[outsider.get("/me").json()["id"]]), key=new_key()),
                 400, "invalid_input", ("helper_ids",))

    # Without its leader the group holds no session: a 409, nothing recorded.
    ok(patch(admin, f"/groups/{group['id']}", {"leader_id": None}))
    assert_error(admin.post(path, session_body(), key=new_key()), 409, "conflict")
    ok(patch(admin, f"/groups/{group['id']}", {"leader_id": leader_profile["id"]}))

    # Other service the office records: tutoring.
    assert_error(admin.post("/service", {"member_id": helper_profile["id"], "served_on": f"{YEAR}-06-13",
                                         "minutes": 0, "what": "Tutoring"}, key=new_key()),
                 400, "invalid_input", ("minutes",))
    ok(admin.post("/service", {"member_id": helper_profile["id"], "served_on": f"{YEAR}-06-13", "minutes": 120,
                               "what": "周末辅导功课 Weekend tutoring"}, key=new_key()), 201)

    # Each sees their own hours by month.
    mine = ok(helper.get("/me/service", params={"year": YEAR}))
    months = {m["month"]: m for m in mine["months"]}
    assert mine["total_minutes"] == 90 + 120
    assert months[f"{YEAR}-05"] == {"month": f"{YEAR}-05", "minutes": 90, "patrol": 0, "session": 90, "other": 0}
    assert months[f"{YEAR}-06"]["other"] == 120
    assert ok(leader.get("/me/service", params={"year": YEAR}))["total_minutes"] == 90
    assert_error(helper.get("/me/service", params={"year": "twenty"}), 400, "invalid_input", ("year",))
    assert_error(helper.get("/service"), 403, "forbidden")

    # The office: records with names, totals, and the export read back as a spreadsheet would.
    records = ok(admin.get("/service", params={"member_id": helper_profile["id"]}))["items"]
    assert sorted((r["source"], r["role"], r["minutes"], r["member_name"]) for r in records) == [
        ("other", None, 120, "陈建国"), ("session", "helper", 90, "陈建国")]
    totals = ok(admin.get("/service/totals", params={"month": f"{YEAR}-05"}))["members"]
    assert {"member_id": leader_profile["id"], "member_name": "王秀兰", "minutes": 90, "patrol": 0,
            "session": 90, "other": 0} in totals
    assert_error(admin.get("/service/totals", params={"month": "May"}), 400, "invalid_input", ("month",))
    rows = csv_rows(download(admin, f"/service?member_id={helper_profile['id']}", "csv"))
    assert rows[0][:2] == ["日期 date", "成员 member"]
    assert sorted((row[0], row[1], row[4], row[6]) for row in rows[1:]) == [
        (f"{YEAR}-05-09", "陈建国", "1.5", name), (f"{YEAR}-06-13", "陈建国", "2.0", "周末辅导功课 Weekend tutoring")]
    sheet = xlsx_rows(download(admin, f"/service?member_id={helper_profile['id']}", "xlsx"))
    assert sorted(row[5] for row in sheet[1:]) == [90, 120] and {row[1] for row in sheet[1:]} == {"陈建国"}
    audited = ok(admin.get("/audit", params={"source": "accounts", "limit": 200}))["items"]
    exports = [entry for entry in audited if entry["action"] == "service_export"
               and entry["filters"].get("member_id") == helper_profile["id"]]
    assert sorted(entry["filters"]["format"] for entry in exports) == ["csv", "xlsx"]


def test_a_finished_patrol_counts_in_the_members_hours(admin, register):
    member, profile = register()
    zone = make_zone(admin)
    set_team(admin, zone["id"], profile["id"], [])
    patrol = ok(member.post("/patrols", {"zone_id": zone["id"]}), 201)
    ok(member.post(f"/patrols/{patrol['id']}/finish", {"notes": ""}))

    def counted():
        records = ok(member.get("/me/service"))["records"]
        return [r for r in records if r["source"] == "patrol" and r["source_id"] == patrol["id"]]

    record, = wait_for(counted, timeout=15, what="the patrol's hours in volunteers")
    assert record["role"] == "patrol" and record["minutes"] >= 0
