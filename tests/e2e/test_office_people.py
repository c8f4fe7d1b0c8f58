"""The office's people pages in a real Chromium (members, zones and teams,
categories, households and cases, the audit log), each journey then checked
against the API: what the page said it did is what the system holds."""
import uuid

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import login
from tests.e2e.test_office_pages import run_journey


def _unique() -> str:
    return uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def people(register):
    """Three party members, by name, in two compounds (two of the same name would be told apart by it)."""
    made = {}
    for name, compound in (("王芳", "幸福花园"), ("赵东", "阳光小区"), ("刘洋", "幸福花园")):
        _, member = register(name=name, compound=compound, party_member=True)
        made[name] = member
    return made


def test_the_office_adds_a_category_and_sees_it_listed(stack, admin, tmp_path):
    found = run_journey(stack, "add_category", tmp_path, code="illegal_structure", label_zh="違章建築",
                        label_en="Illegal structure")
    assert found["listed"] == 1
    assert "hardship" in found["hardship_refusal"].lower()  # the 409, in words, by the category
    incident = {c["code"]: c for c in admin.get("/categories").json()["incident"]}
    assert incident["illegal_structure"] == {"code": "illegal_structure", "label_zh": "違章建築",
                                             "label_en": "Illegal structure", "retired": False}
    assert incident["hardship"]["retired"] is False


def test_the_office_registers_a_member_and_finds_them_by_phone(stack, admin, tmp_path):
    username = f"li.{_unique()}"
    found = run_journey(stack, "register_member", tmp_path, account=username, full_name="李明华",
                        phone="138 0013 8000", search="13800138000", compound="和平里")
    assert found["keyboard_only"]
    assert "last active admin" in found["last_admin_refusal"]
    member = next(m for m in admin.get("/members", params={"q": username}).json()["items"])
    assert (member["name"], member["phone"], member["compound"], member["roles"], member["party_member"]) == (
        "李明华", "138 0013 8000", "和平里", ["member"], True)
    login(stack.url, username, "a-long-initial-password")  # the password the page set works
    assert all(m["active"] for m in admin.get("/members", params={"role": "admin"}).json()["items"])


def test_the_office_creates_a_zone_and_builds_its_team_by_name(stack, admin, people, tmp_path):
    zone = f"东片区 East {_unique()}"
    label = {name: f"{name} ({m['compound']})" for name, m in people.items()}
    run_journey(stack, "build_team", tmp_path, zone=zone, compounds=[f"幸福花园 {zone}", f"阳光小区 {zone}"],
                leader=label["王芳"], members=[label["赵东"], label["刘洋"]])
    zones = {z["name"]: z for z in admin.get("/zones", params={"limit": 100}).json()["items"]}
    assert zones[zone]["compounds"] == [f"幸福花园 {zone}", f"阳光小区 {zone}"]
    assert zones[zone]["team"]["leader_id"] == people["王芳"]["id"]
    assert sorted(zones[zone]["team"]["member_ids"]) == sorted([people["赵东"]["id"], people["刘洋"]["id"]])


def _a_draft_found_on_patrol(admin, compound: str) -> dict:
    """A hardship incident reported in a zone of `compound` becomes a draft case in welfare."""
    zone = admin.post("/zones", {"name": f"Zone {_unique()}", "compounds": [compound]})
    assert zone.status_code == 201, zone.text
    incident = admin.post("/incidents", {"zone_id": zone.json()["id"], "compound": compound, "category": "hardship",
                                         "description": "一位老人独居，家中没有暖气。", "severity": "medium"})
    assert incident.status_code == 201, incident.text
    return wait_for(lambda: admin.get("/cases", params={"status": "draft"}).json()["items"], what="the draft case")[0]


def test_the_office_opens_a_case_for_a_new_household_and_assigns_it_by_name(stack, admin, people, tmp_path):
    address = f"3号楼2单元401 Building 3-2-401 {_unique()}"
    label = {name: f"{name} ({m['compound']})" for name, m in people.items()}
    draft = _a_draft_found_on_patrol(admin, "幸福花园")
    found = run_journey(
        stack, "household_case", tmp_path, compound="幸福花园", address=address, phone="010-6543 2100",
        people=[{"name": "李秀英", "relation": "母亲 mother", "birth_year": 1946, "conditions": ["行动不便", "独居"]},
                {"name": "李强", "relation": "儿子 son", "birth_year": 1975}],
        categories=["高龄独居 Elderly", "重病 Illness"], summary="申请低保和残疾证。Minimum-living allowance.",
        first_assignee=label["王芳"], second_assignee=label["赵东"], outcome="低保已批 Allowance granted",
        reason="病情加重 The illness got worse")
    assert found["typo_error"]  # shown by the birth year's field
    household = admin.get(f"/households/{found['household_id']}").json()
    assert (household["compound"], household["address"], household["phone"]) == ("幸福花园", address, "010-6543 2100")
    assert [(p["name"], p["birth_year"], p["conditions"]) for p in household["people"]] == [
        ("李秀英", 1946, ["行动不便", "独居"]), ("李强", 1975, [])]
    case = admin.get(f"/cases/{found['case_id']}").json()
    assert case["household_id"] == found["household_id"]
    assert case["assignee_id"] == people["赵东"]["id"]
    assert sorted(case["categories"]) == ["elderly", "illness"]
    assert case["status"] == "open"
    assert [(r["reason"], r["previous_outcome"]) for r in case["reopenings"]] == [
        ("病情加重 The illness got worse", "低保已批 Allowance granted")]
    confirmed = admin.get(f"/cases/{draft['id']}").json()
    assert found["confirmed_id"] == draft["id"]
    assert (confirmed["status"], confirmed["household_id"], confirmed["assignee_id"], confirmed["categories"]) == (
        "open", found["household_id"], people["王芳"]["id"], ["elderly"])
