"""What the community office's pages do, through the gateway with every
service a real process (issue 15): find a member by phone however it is
spaced (and see that search in the audit), find a household by a person's
name and edit it, list cases by filter, close and reopen one, list the cases
goods may go to, and be refused a dispatch to a draft case."""
import random
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.conftest import wait_for
from tests.e2e.conftest import new_key, ok


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


def patch(client, path, body):
    return requests.patch(client.api + path, json=body, headers=client.headers, timeout=15)


def refused(answer, status: int, code: str, field: str | None = None) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"], error
    if field:
        assert field in error["details"]["fields"], error
    return error


def test_the_office_finds_a_member_by_phone_and_the_search_is_audited(admin, register):
    digits = f"{random.randrange(10**7):07d}"
    _, member = register(phone=f"136 {digits[:3]}-{digits[3:]}", name="周秀兰")
    register(phone="135 0000 0000")  # someone else

    found = ok(admin.get("/members", params={"q": f"136{digits}"}))["items"]
    assert [(m["id"], m["phone"]) for m in found] == [(member["id"], f"136 {digits[:3]}-{digits[3:]}")]
    narrowed = ok(admin.get("/members", params={"q": f"136-{digits[:3]} {digits[3:]}", "party_member": "true",
                                                "active": "true", "role": "member"}))["items"]
    assert [m["id"] for m in narrowed] == [member["id"]]
    assert ok(admin.get("/members", params={"q": f"136{digits}", "role": "admin"}))["items"] == []
    refused(admin.get("/members", params={"role": "boss"}), 400, "invalid_input", "role")

    audit = ok(admin.get("/audit", params={"source": "accounts", "limit": 3}))["items"]
    admin_id = ok(admin.get("/me"))["id"]
    assert [(e["actor_id"], e["action"], e["filters"]) for e in audit[:2]] == [
        (admin_id, "member_search", {"q": f"136{digits}", "role": "admin"}),
        (admin_id, "member_search", {"q": f"136-{digits[:3]} {digits[3:]}", "party_member": True,
                                     "active": True, "role": "member"})]
    refused(admin.get("/audit", params={"source": "accounts", "case_id": "c1"}), 400, "invalid_input", "case_id")


def test_the_office_finds_a_household_by_a_name_edits_it_and_works_its_case(admin, register):
    tag = uuid.uuid4().hex[:6]
    compound = f"Meiyuan {tag}"
    household = ok(admin.post("/households", {
        "compound": compound, "address": "Building 7, Room 502", "phone": "010 6222 3344",
        "people": [{"name": f"孙桂英{tag}", "relation": "self", "birth_year": 1941, "conditions": ["frail"]}]}), 201)

    # Found by part of a person's name, as GET /households/<id> answers, and audited per household.
    [found] = ok(admin.get("/households", params={"q": f"桂英{tag}"}))["items"]
    assert found == ok(admin.get(f"/households/{household['id']}"))
    assert found["phone"] == "010 6222 3344" and found["people"][0]["conditions"] == ["frail"]
    assert [h["id"] for h in ok(admin.get("/households", params={"compound": compound}))["items"]] == [
        household["id"]]
    searches = ok(admin.get("/audit", params={"household_id": household["id"]}))["items"]
    assert {e["action"] for e in searches} >= {"household_search", "read_household"}

    # Edited: the people sent replace the list; a bad edit changes nothing.
    people = [{"name": f"孙桂英{tag}", "relation": "self", "birth_year": 1941, "conditions": ["frail"]},
              {"name": f"孙建国{tag}", "relation": "son", "birth_year": 1968, "conditions": []}]
    edited = ok(patch(admin, f"/households/{household['id']}", {"address": "Building 7, Room 101",
                                                                 "people": people}))
    assert edited["address"] == "Building 7, Room 101" and [p["name"] for p in edited["people"]] == [
        p["name"] for p in people]
    assert [h["id"] for h in ok(admin.get("/households", params={"q": f"建国{tag}"}))["items"]] == [household["id"]]
    refused(patch(admin, f"/households/{household['id']}", {"people": []}), 400, "invalid_input", "people")
    refused(patch(admin, "/households/no-such-household", {"address": "x"}), 404, "not_found")
    assert ok(admin.get(f"/households/{household['id']}"))["people"] == edited["people"]
    assert "edit_household" in {e["action"] for e in ok(admin.get(
        "/audit", params={"household_id": household["id"]}))["items"]}

    # Its case, listed by filters; a member sees only their own.
    assignee, profile = register()
    case = ok(admin.post("/cases", {"household_id": household["id"], "categories": ["elderly", "low_income"],
                                    "summary": "Needs meals and a pension top-up.",
                                    "assignee_id": profile["id"]}), 201)

    def listed(client, **params) -> list[str]:
        return [c["id"] for c in ok(client.get("/cases", params=params))["items"]]

    assert listed(admin, compound=compound) == [case["id"]]
    assert listed(admin, compound=compound, status="open", category="elderly", assignee_id=profile["id"],
                  overdue="false") == [case["id"]]
    assert listed(admin, compound=compound, category="illness") == []
    assert listed(admin, compound=compound, overdue="true") == []
    assert listed(assignee, status="open") == [case["id"]]
    refused(admin.get("/cases", params={"status": "pending"}), 400, "invalid_input", "status")

    # Closed, then reopened by the office with its reason; the assignee keeps it.
    ok(assignee.post(f"/cases/{case['id']}/close", {"outcome": "Meals arranged."}))
    assert listed(admin, compound=compound, status="closed") == [case["id"]]
    refused(admin.post(f"/cases/{case['id']}/reopen", {}), 400, "invalid_input", "reason")
    refused(assignee.post(f"/cases/{case['id']}/reopen", {"reason": "x"}), 403, "forbidden")
    reopened = ok(admin.post(f"/cases/{case['id']}/reopen", {"reason": "The meals service stopped."}))
    assert (reopened["status"], reopened["assignee_id"], reopened["outcome"]) == ("open", profile["id"], None)
    assert [(r["reason"], r["previous_outcome"]) for r in reopened["reopenings"]] == [
        ("The meals service stopped.", "Meals arranged.")]
    refused(admin.post(f"/cases/{case['id']}/reopen", {"reason": "again"}), 409, "conflict")
    assert listed(assignee, status="open") == [case["id"]]

    # The cases goods may go to: this one, by compound and summary, no household and no names.
    recipients = ok(admin.get("/cases/recipients", params={"limit": 200}))
    [recipient] = [r for r in recipients["items"] if r["id"] == case["id"]]
    assert recipient == {"id": case["id"], "compound": compound, "categories": ["low_income", "elderly"],
                         "summary": "Needs meals and a pension top-up.", "opened_at": case["opened_at"]}
    assert household["id"] not in str(recipients) and tag not in str(recipients).replace(compound, "")
    refused(assignee.get("/cases/recipients"), 403, "forbidden")


def test_goods_cannot_be_dispatched_to_a_draft_case(admin, register):
    # A hardship found on patrol becomes a draft case of its compound.
    leader, leader_profile = register()
    compound = f"Compound {uuid.uuid4().hex[:8]}"
    zone = ok(admin.post("/zones", {"name": f"Zone {uuid.uuid4().hex[:8]}", "compounds": [compound]}), 201)
    ok(requests.put(f"{admin.api}/zones/{zone['id']}/team", json={"leader_id": leader_profile["id"],
                                                                   "member_ids": []},
                    headers=admin.headers, timeout=15))
    ok(leader.post("/patrols", {"zone_id": zone["id"]}), 201)
    ok(leader.post("/incidents", {"zone_id": zone["id"], "compound": compound, "category": "hardship",
                                  "severity": "medium", "description": "An old man alone, no heating."}), 201)
    [draft] = wait_for(lambda: ok(admin.get("/cases", params={"status": "draft", "compound": compound}))["items"],
                       timeout=15, what="the draft case")
    assert draft["id"] not in {r["id"] for r in ok(admin.get("/cases/recipients", params={"limit": 200}))["items"]}

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    campaign = ok(admin.post("/campaigns", {"name": f"Winter drive {uuid.uuid4().hex[:6]}", "goal_fen": 100_000,
                                            "starts_on": (today - timedelta(days=1)).isoformat(),
                                            "ends_on": (today + timedelta(days=1)).isoformat()}), 201)
    ok(admin.post(f"/campaigns/{campaign['id']}/donations", {"kind": "in_kind", "anonymous": True, "items": [
        {"category": "bedding", "quantity": 3}]}, key=new_key()), 201)

    answer = admin.post(f"/campaigns/{campaign['id']}/dispatches", {
        "case_id": draft["id"], "items": [{"category": "bedding", "quantity": 1}]}, key=new_key())
    error = refused(answer, 409, "conflict", "case_id")
    assert error["message"] == "A draft case cannot receive goods. Confirm it first."
    unknown = admin.post(f"/campaigns/{campaign['id']}/dispatches", {
        "case_id": uuid.uuid4().hex, "items": [{"category": "bedding", "quantity": 1}]}, key=new_key())
    refused(unknown, 400, "invalid_input", "case_id")
    assert ok(admin.get(f"/campaigns/{campaign['id']}"))["stock"] == {"bedding": 3}
    assert ok(admin.get(f"/campaigns/{campaign['id']}/dispatches"))["items"] == []
    # The check read no personal details: the draft's audit has its listing above, no read.
    assert {e["action"] for e in ok(admin.get("/audit", params={"case_id": draft["id"]}))["items"]} == {"list_case"}
