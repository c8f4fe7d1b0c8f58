"""The monthly report through the gateway, on the office's shared stack (issue
17's story): the illegal-structure clean-up reported and resolved, a gateball
match held, the tutor's weekend hours recorded, a hardship case helped and
closed, a drive's gifts and goods sent -- each appears in the month's report
with the right counts (as what this test adds to what the month held before),
in JSON and in the workbook, and no one's name or circumstances are in it."""
import io
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest
import requests

from tests.conftest import wait_for
from tests.e2e.conftest import login, new_key, ok, open_case

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ILLEGAL_STRUCTURE = {"code": "illegal_structure", "label_zh": "违章建筑", "label_en": "Illegal structure"}
TUTOR = "王建国"  # the tutor (a party member): leads the gateball team, patrols, tutors at the weekend
HELPER = "赵小梅"
DESCRIPTION = "A brick shed built over the fire lane behind Building 2."
TUTORING = "周末给三个孩子辅导数学 weekend maths tutoring"
VISIT = "Mother's blood pressure high; son's allowance forms filled in."


@pytest.fixture(scope="module")
def stack(office_stack):
    return office_stack


def today():
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def this_month() -> str:
    return today().strftime("%Y-%m")


def next_month() -> str:
    now = today()
    return f"{now.year + now.month // 12}-{now.month % 12 + 1:02d}"


def report(admin, month: str) -> dict:
    return ok(admin.get("/reports/monthly", params={"month": month}))


def put(client, path, body):
    return requests.put(client.api + path, json=body, headers=client.headers, timeout=15)


def register(stack, admin, name: str, party_member: bool):
    username = f"m{uuid.uuid4().hex[:10]}"
    account = ok(admin.post("/members", {"username": username, "password": "member-password", "name": name,
                                         "phone": "139 1234 5678", "roles": ["member"], "party_member": party_member,
                                         "compound": "Xingfu Garden"}), 201)
    return login(stack.url, username, "member-password"), account


def by(entries: list[dict], key: str, value) -> dict:
    return next((entry for entry in entries if entry[key] == value), {})


def the_community_s_month(stack, admin) -> dict:
    """The story, through the API as the office and its members do it: what it made."""
    tutor, tutor_account = register(stack, admin, TUTOR, party_member=True)
    _helper, helper_account = register(stack, admin, HELPER, party_member=False)
    suffix = uuid.uuid4().hex[:6]

    # The illegal-structure clean-up: a category of the community's own, found on patrol, resolved.
    added = admin.post("/categories/incident", ILLEGAL_STRUCTURE, key=new_key())
    assert added.status_code in (201, 409), added.text  # 409: an earlier module added it already
    zone = ok(admin.post("/zones", {"name": f"东片 East {suffix}", "compounds": [f"Kangle Yuan {suffix}"]}), 201)
    ok(put(admin, f"/zones/{zone['id']}/team", {"leader_id": tutor_account["id"], "member_ids": []}))
    patrol = ok(tutor.post("/patrols", {"zone_id": zone["id"]}), 201)
    incident = ok(tutor.post("/incidents", {"zone_id": zone["id"], "compound": zone["compounds"][0],
                                            "category": "illegal_structure", "description": DESCRIPTION,
                                            "severity": "high"}), 201)
    ok(admin.post(f"/incidents/{incident['id']}/resolve", {"resolution": "Taken down by its owner; lane clear."}))
    ok(tutor.post(f"/patrols/{patrol['id']}/finish", {"notes": "Shed reported."}))

    # A gateball match held, with its helper; the tutor's weekend hours recorded by the office.
    group = ok(admin.post("/groups", {"name": f"门球队 Gateball team {suffix}", "kind": "sport",
                                      "leader_id": tutor_account["id"], "helper_ids": [helper_account["id"]]}), 201)
    ok(tutor.post(f"/groups/{group['id']}/sessions", {
        "held_on": today().isoformat(), "starts_at": "09:00", "duration_minutes": 120, "place": "社区门球场",
        "what": "与邻社区的门球友谊赛 A friendly gateball match", "kind": "match", "participants": 24,
        "helper_ids": [helper_account["id"]]}, key=new_key()), 201)
    ok(admin.post("/service", {"member_id": tutor_account["id"], "served_on": today().isoformat(), "minutes": 240,
                               "what": TUTORING}, key=new_key()), 201)

    # A hardship case helped and closed; a drive's gifts, and goods sent to a place.
    case = open_case(admin, tutor_account["id"])
    ok(tutor.post(f"/cases/{case['id']}/visits", {"visited_on": today().isoformat(), "notes": VISIT},
                  key=new_key()), 201)
    ok(admin.post(f"/cases/{case['id']}/close", {"outcome": "Allowance granted.", "outcome_kind": "helped"}))
    drive = ok(admin.post("/campaigns", {"name": f"冬衣募捐 Winter clothes {suffix}", "goal_fen": 500_000,
                                         "starts_on": today().isoformat(), "ends_on": today().isoformat()}), 201)
    ok(admin.post(f"/campaigns/{drive['id']}/donations", {"kind": "cash", "amount_fen": 10_000,
                                                          "donor_name": "孙丽"}, key=new_key()), 201)
    ok(admin.post(f"/campaigns/{drive['id']}/donations", {"kind": "in_kind", "donor_name": "周强", "items": [
        {"category": "bedding", "quantity": 5}]}, key=new_key()), 201)
    ok(admin.post(f"/campaigns/{drive['id']}/dispatches", {"destination": f"安置点 Shelter {suffix}", "items": [
        {"category": "bedding", "quantity": 2}]}, key=new_key()), 201)
    return {"tutor": tutor_account, "zone": zone, "group": group, "drive": drive, "suffix": suffix}


def test_the_community_s_month_appears_in_its_report_with_the_right_counts(stack, admin):
    month = this_month()
    before = report(admin, month)
    made = the_community_s_month(stack, admin)

    # Hours from a patrol come by its event: the report is asked until the volunteers have them all.
    def with_both_members_serving():
        after = report(admin, month)
        return after if after["volunteers"]["members_serving"] - before["volunteers"]["members_serving"] >= 2 else None
    after = wait_for(with_both_members_serving, timeout=20, interval=0.5, what="both members' hours in the report")

    def grew(part: str, *path) -> int:
        old, new = before[part], after[part]
        for key in path:
            old, new = old[key], new[key]
        return new - old

    patrol = after["patrol"]
    assert grew("patrol", "patrols") == 1 and grew("patrol", "zones_total") == 1
    assert grew("patrol", "zones_covered") == 1
    assert by(patrol["zones"], "zone_id", made["zone"]["id"])["patrols"] == 1
    assert grew("patrol", "incidents", "reported") == 1 and grew("patrol", "incidents", "resolved") == 1
    illegal = by(patrol["incidents_by_category"], "category", "illegal_structure")
    was = by(before["patrol"]["incidents_by_category"], "category", "illegal_structure")
    assert (illegal["reported"] - was.get("reported", 0), illegal["resolved"] - was.get("resolved", 0)) == (1, 1)
    assert illegal["label_en"] == "Illegal structure"

    volunteers = after["volunteers"]
    assert grew("volunteers", "sessions") == 1 and grew("volunteers", "sessions_by_kind", "match") == 1
    assert grew("volunteers", "participants") == 24
    assert grew("volunteers", "minutes_by_source", "other") == 240  # the tutor's weekend
    assert grew("volunteers", "minutes_by_source", "session") == 240  # the match: the tutor and the helper
    assert grew("volunteers", "members_serving") == 2
    group = by(volunteers["groups"], "group_id", made["group"]["id"])
    assert (group["kind"], group["sessions"], group["participants"]) == ("sport", 1, 24)

    assert grew("welfare", "cases_opened") == 1 and grew("welfare", "cases_closed") == 1
    assert grew("welfare", "closed_by_outcome", "helped") == 1
    assert grew("welfare", "cases_helped") == 1 and grew("welfare", "visits") == 1  # its visit

    donations = after["donations"]
    assert grew("donations", "cash_fen") == 10_000 and grew("donations", "gifts") == 2
    drive = by(donations["drives"], "campaign_id", made["drive"]["id"])
    assert (drive["cash_fen"], drive["gifts"]) == (10_000, 2)
    [sent] = [d for d in donations["dispatches"] if d["destination"] == f"安置点 Shelter {made['suffix']}"]
    assert (sent["to_case"], [(i["category"], i["quantity"]) for i in sent["items"]]) == (False, [("bedding", 2)])

    # Counts only: no one's name, no address, no free text of an incident or of service.
    text = str(after)
    for private in (TUTOR, HELPER, DESCRIPTION, TUTORING, VISIT, "孙丽", "周强", "李秀英", "Building 3", "139 1234"):
        assert private not in text, private
    assert made["tutor"]["id"] not in text


def test_the_report_as_a_workbook_through_the_gateway(stack, admin):
    answer = admin.get("/reports/monthly", params={"month": this_month(), "format": "xlsx"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"] == XLSX
    assert answer.headers["Content-Disposition"] == f'attachment; filename="linli-report-{this_month()}.xlsx"'
    book = openpyxl.load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames == ["巡逻与事件 Patrols", "募捐 Donations", "帮扶个案 Cases", "文体与志愿 Volunteers"]
    volunteers = [tuple(row) for row in book["文体与志愿 Volunteers"].iter_rows(values_only=True)]
    assert ("月份 month", None, None, this_month()) in volunteers
    assert any(row[0] == "队伍场次 group's sessions" and row[1].startswith("门球队 Gateball team") and row[3] == 1
               for row in volunteers)


def test_a_bad_or_future_month_is_named_and_only_the_office_reads_the_report(stack, admin):
    for month in ("2026-13", "11-2026", "", next_month()):
        answer = admin.get("/reports/monthly", params={"month": month})
        assert answer.status_code == 400, (month, answer.text)
        assert list(answer.json()["error"]["details"]["fields"]) == ["month"]
    answer = admin.get("/reports/monthly")
    assert answer.status_code == 400 and "month" in answer.json()["error"]["details"]["fields"]
    member, _ = register(stack, admin, "钱多多", party_member=True)
    assert member.get("/reports/monthly", params={"month": this_month()}).status_code == 403
