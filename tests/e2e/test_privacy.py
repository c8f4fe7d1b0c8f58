"""The privacy lifecycle of a household in the welfare records, through the
gateway with every service a real process (issue 17): consents recorded and
withdrawn, everything held about the household downloaded as a file (and that
download in the audit log), a closed case refused erasure before the
retention period and erased after it (the office stack keeps a closed case
OFFICE_RETENTION_SECONDS), shown erased, and erased only once."""
import json
import uuid

import pytest

from tests.conftest import wait_for
from tests.e2e.conftest import OFFICE_RETENTION_SECONDS, new_key, ok
from tests.e2e.test_office_pages import run_journey

ERASED = "[已删除 erased]"


@pytest.fixture(scope="module")
def stack(office_stack):
    return office_stack


def test_consent_export_and_erasure_of_a_household(admin, register):
    tag = uuid.uuid4().hex[:6]
    _, member = register()
    household = ok(admin.post("/households", {
        "compound": f"Hehua {tag}", "address": f"Building 2, Room 303 {tag}", "phone": "010 6333 1234",
        "people": [{"name": f"赵玉兰{tag}", "relation": "self", "birth_year": 1938, "conditions": ["糖尿病"]},
                   {"name": f"赵强{tag}", "relation": "son", "birth_year": 1966, "conditions": []}]}), 201)
    path = f"/households/{household['id']}"

    # Consents: given, then withdrawn (a new row); a bad one names its field.
    given = ok(admin.post(path + "/consents", {"person_position": 0, "purpose": "health_information",
                                               "given": True, "given_on": "2026-03-01"}, key=new_key()), 201)
    assert (given["person_name"], given["label_en"]) == (f"赵玉兰{tag}", "Recording health conditions")
    ok(admin.post(path + "/consents", {"person_name": f"赵玉兰{tag}", "purpose": "health_information",
                                       "given": False}), 201)
    bad = admin.post(path + "/consents", {"person_position": 5, "purpose": "case_records", "given": True})
    assert bad.status_code == 400 and "person_position" in bad.json()["error"]["details"]["fields"]
    current = ok(admin.get(path))["consents"]
    assert [(c["person_position"], c["purpose"], c["given"]) for c in current] == [(0, "health_information", False)]

    # A case, closed with how it ended: not erasable yet (409 saying from when).
    case = ok(admin.post("/cases", {"household_id": household["id"], "categories": ["elderly"],
                                    "summary": f"独居老人 {tag}", "assignee_id": member["id"]}), 201)
    ok(admin.post(f"/cases/{case['id']}/visits", {"visited_on": case["opened_at"][:10],
                                                  "notes": f"血糖偏高 {tag}"}), 201)
    closed = ok(admin.post(f"/cases/{case['id']}/close", {"outcome": f"女儿接回同住 {tag}",
                                                          "outcome_kind": "moved_away"}))
    assert closed["outcome_kind"] == "moved_away"
    early = admin.post(f"/cases/{case['id']}/erase", {"reason": "retention passed"})
    assert early.status_code == 409, early.text
    assert early.json()["error"]["details"]["erasable_from"] in early.json()["error"]["message"]

    # The export: a JSON file download with everything, and the download audited.
    download = admin.get(path + "/export")
    assert download.status_code == 200, download.text
    assert download.headers["Content-Disposition"].startswith("attachment; filename=")
    assert download.headers["Content-Type"].startswith("application/json")
    exported = json.loads(download.content)
    assert exported["household"]["people"][0]["conditions"] == ["糖尿病"]
    assert [c["given"] for c in exported["consents"]] == [True, False]
    [held] = exported["cases"]
    assert (held["summary"], [v["notes"] for v in held["visits"]]) == (f"独居老人 {tag}", [f"血糖偏高 {tag}"])
    audit = ok(admin.get("/audit", params={"household_id": household["id"]}))["items"]
    assert "export_household" in [e["action"] for e in audit]

    # After the retention period: listed as erasable, erased, shown erased; twice is a 409.
    wait_for(lambda: case["id"] in [c["id"] for c in ok(admin.get("/cases", params={"erasable": "true"}))["items"]],
             timeout=OFFICE_RETENTION_SECONDS + 10, interval=0.5, what="the case to become erasable")
    erased = ok(admin.post(f"/cases/{case['id']}/erase", {"reason": "retention passed"}))
    assert erased["erased_at"] and (erased["summary"], erased["outcome"]) == (ERASED, ERASED)
    assert (erased["status"], erased["outcome_kind"], erased["categories"]) == ("closed", "moved_away", ["elderly"])
    shown = ok(admin.get(path))
    assert shown["erased_at"] and shown["address"] == ERASED and shown["phone"] is None
    assert [p["name"] for p in shown["people"]] == [ERASED, ERASED]
    assert f"赵玉兰{tag}" not in json.dumps(ok(admin.get(path + "/export")), ensure_ascii=False)
    again = admin.post(f"/cases/{case['id']}/erase", {"reason": "retention passed"})
    assert again.status_code == 409 and "already" in again.json()["error"]["message"]
    actions = [e["action"] for e in ok(admin.get("/audit", params={"case_id": case["id"]}))["items"]]
    assert "erase_case" in actions


def test_the_household_page_records_consent_exports_and_shows_erasure(stack, admin, register, tmp_path):
    tag = uuid.uuid4().hex[:6]
    _, member_account = register()
    person = f"钱秀英{tag}"
    household = ok(admin.post("/households", {
        "compound": f"Hehua {tag}", "address": f"Building 9, Room 101 {tag}",
        "people": [{"name": person, "relation": "self", "birth_year": 1940, "conditions": ["高血压"]}]}), 201)
    case = ok(admin.post("/cases", {"household_id": household["id"], "categories": ["elderly"],
                                    "summary": f"独居 {tag}", "assignee_id": member_account["id"]}), 201)

    found = run_journey(stack, "household_privacy", tmp_path, household_id=household["id"], case_id=case["id"],
                        person=person, outcome=f"搬去女儿家 {tag}", retention_seconds=OFFICE_RETENTION_SECONDS)

    assert found["console_errors"] == []
    assert found["export_name"].endswith(".json") and household["id"] in found["export_name"]
    exported = json.loads(open(found["export"], encoding="utf-8").read())
    assert [(c["person_name"], c["purpose"], c["given"]) for c in exported["consents"]] == [
        (person, "health_information", True), (person, "health_information", False)]
    assert exported["cases"][0]["summary"] == f"独居 {tag}"
    assert "erased from" in found["early"]
    assert found["scroll_widths"]["household-erased"] <= 360 and found["small_targets"]["household-erased"] == []
    shown = ok(admin.get(f"/cases/{case['id']}"))
    assert (shown["outcome_kind"], shown["summary"]) == ("moved_away", ERASED) and shown["erased_at"]
    assert ok(admin.get(f"/households/{household['id']}"))["people"][0]["name"] == ERASED
    actions = [e["action"] for e in ok(admin.get("/audit", params={"household_id": household["id"]}))["items"]]
    assert {"record_consent", "export_household", "erase_case"} <= set(actions)
