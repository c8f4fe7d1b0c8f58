"""A hardship case through its life, through the gateway: visits, referrals to
agencies, reassignment (both party members alerted), closing; who may see and
do what; the audit of reads; a follow-up falling due.

This module runs its own stack with follow-ups due after ~8.6 s
(LINLI_WELFARE_FOLLOWUP_AFTER_DAYS=0.0001; the sweep runs every 2 s)."""
import datetime

import pytest
import requests

from tests.conftest import wait_for
from tests.e2e.conftest import HOUSEHOLD, open_case, running_stack


@pytest.fixture(scope="module")
def stack(module_vhost, tmp_path_factory):
    with running_stack(module_vhost, tmp_path_factory.mktemp("linli-welfare") / "var",
                       LINLI_WELFARE_FOLLOWUP_AFTER_DAYS="0.0001") as stack:
        yield stack


def kinds(client, case_id: str) -> list[str]:
    return sorted(a["kind"] for a in client.get("/me/alerts", params={"limit": 200}).json()["items"]
                  if a["ref"]["id"] == case_id)


def patch(client, path, body):
    return requests.patch(client.api + path, json=body, headers=client.headers, timeout=15)


def test_a_case_from_first_visit_to_closing(admin, register):
    first, first_profile = register()
    second, second_profile = register()
    outsider, _ = register()
    case = open_case(admin, first_profile["id"])
    today = datetime.date.today().isoformat()

    visit = first.post(f"/cases/{case['id']}/visits", {"visited_on": today, "notes": "Mother frail, son calm."})
    assert visit.status_code == 201, visit.text
    assert first.get(f"/cases/{case['id']}").json()["status"] == "in_progress"

    allowance = first.post(f"/cases/{case['id']}/referrals",
                           {"agency": "Civil affairs bureau", "benefit": "Minimum-living allowance"}).json()
    certificate = first.post(f"/cases/{case['id']}/referrals",
                             {"agency": "Disability federation", "benefit": "Severe-disability certificate"}).json()
    assert (allowance["status"], certificate["status"]) == ("submitted", "submitted")
    assert patch(first, f"/referrals/{allowance['id']}", {"status": "approved"}).json()["status"] == "approved"
    assert patch(first, f"/referrals/{certificate['id']}", {"status": "rejected"}).json()["status"] == "rejected"
    # A decided referral stays decided.
    assert patch(first, f"/referrals/{certificate['id']}", {"status": "approved"}).status_code == 409
    assert patch(first, f"/referrals/{allowance['id']}", {"status": "maybe"}).status_code == 400

    # Another member: the case and its referrals do not exist for them.
    assert outsider.post(f"/cases/{case['id']}/visits", {"visited_on": today, "notes": "x"}).status_code == 404
    assert patch(outsider, f"/referrals/{allowance['id']}", {"status": "approved"}).status_code == 404
    assert outsider.post(f"/cases/{case['id']}/close", {"outcome": "x"}).status_code == 404
    assert first.post(f"/cases/{case['id']}/assign", {"assignee_id": second_profile["id"]}).status_code == 403

    # Reassigned: both party members hear of it; the case moves with it.
    moved = admin.post(f"/cases/{case['id']}/assign", {"assignee_id": second_profile["id"]})
    assert moved.status_code == 200 and moved.json()["assignee_id"] == second_profile["id"]
    # (A follow-up alert may join them: this module's follow-ups fall due after ~9 s.)
    wait_for(lambda: "case_assigned" in kinds(second, case["id"]), timeout=10, what="the new assignee's alert")
    wait_for(lambda: {"case_assigned", "case_unassigned"} <= set(kinds(first, case["id"])), timeout=10,
             what="the previous assignee's alert")
    assert "case_unassigned" not in kinds(second, case["id"])
    assert first.get(f"/cases/{case['id']}").status_code == 404

    detail = second.get(f"/cases/{case['id']}").json()
    assert [v["notes"] for v in detail["visits"]] == ["Mother frail, son calm."]
    assert [(r["benefit"], r["status"]) for r in detail["referrals"]] == [
        ("Minimum-living allowance", "approved"), ("Severe-disability certificate", "rejected")]

    closed = second.post(f"/cases/{case['id']}/close", {"outcome": "Allowance granted; household secured."})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert second.post(f"/cases/{case['id']}/close", {"outcome": "again"}).status_code == 409
    assert second.post(f"/cases/{case['id']}/visits", {"visited_on": today, "notes": "x"}).status_code == 409
    assert admin.get(f"/cases/{case['id']}").json()["outcome"] == "Allowance granted; household secured."


def test_bad_lifecycle_input_is_refused_and_changes_nothing(admin, register):
    member, profile = register()
    not_party, not_party_profile = register(party_member=False)
    viewer, _ = register(roles=["viewer"], party_member=False)
    case = open_case(admin, profile["id"])
    tomorrow_plus = (datetime.date.today() + datetime.timedelta(days=3)).isoformat()

    for body, field in [({"notes": "x"}, "visited_on"), ({"visited_on": "yesterday", "notes": "x"}, "visited_on"),
                        ({"visited_on": tomorrow_plus, "notes": "x"}, "visited_on"),
                        ({"visited_on": "2026-01-01"}, "notes")]:
        answer = member.post(f"/cases/{case['id']}/visits", body)
        assert answer.status_code == 400 and field in answer.json()["error"]["details"]["fields"], answer.text
    assert member.post(f"/cases/{case['id']}/referrals", {"agency": "A"}).status_code == 400
    assert member.post(f"/cases/{case['id']}/close", {}).status_code == 400
    wrong = admin.post(f"/cases/{case['id']}/assign", {"assignee_id": not_party_profile["id"]})
    assert wrong.status_code == 400 and "assignee_id" in wrong.json()["error"]["details"]["fields"]
    assert admin.post(f"/cases/{case['id']}/assign", {"assignee_id": profile["id"]}).status_code == 409
    assert viewer.get(f"/cases/{case['id']}").status_code == 403
    assert member.get("/audit").status_code == 403
    assert admin.post("/cases/no-such-case/visits", {"visited_on": "2026-01-01", "notes": "x"}).status_code == 404

    after = admin.get(f"/cases/{case['id']}").json()
    assert (after["status"], after["visits"], after["referrals"], after["assignee_id"]) == (
        "open", [], [], profile["id"])
    assert not_party.get("/me/alerts").json()["items"] == []


def test_every_read_of_a_case_is_in_the_audit_log(admin, register):
    member, profile = register()
    case = open_case(admin, profile["id"])
    member.get(f"/cases/{case['id']}")
    admin.get(f"/cases/{case['id']}")
    member.get("/cases")
    entries = admin.get("/audit", params={"case_id": case["id"]}).json()["items"]
    assert sorted((e["actor_id"], e["action"]) for e in entries) == sorted([
        (profile["id"], "read_case"), (admin_id(admin), "read_case"), (profile["id"], "list_case")])
    assert all(e["case_id"] == case["id"] and e["at"].endswith("Z") for e in entries)


def admin_id(admin) -> str:
    return admin.get("/me").json()["id"]


@pytest.mark.slow  # about 20 s of waiting for the sweep; integration covers the rule
def test_a_case_unvisited_too_long_alerts_its_assignee_once(admin, register):
    member, profile = register()
    case = open_case(admin, profile["id"])
    wait_for(lambda: "followup_overdue" in kinds(member, case["id"]), timeout=30, what="the follow-up alert")
    # Further sweeps (every 2 s) add nothing for the same lapse; a visit starts a new one.
    other = open_case(admin, profile["id"])
    wait_for(lambda: "followup_overdue" in kinds(member, other["id"]), timeout=30, what="a later follow-up alert")
    assert kinds(member, case["id"]).count("followup_overdue") == 1


def test_referral_stages_in_order_and_a_missed_deadline_alerts_the_assignee(admin, register):
    member, profile = register()
    case = open_case(admin, profile["id"])
    yesterday = (datetime.date.today() - datetime.timedelta(days=2)).isoformat()
    referral = member.post(f"/cases/{case['id']}/referrals", {
        "agency": "Disability federation", "benefit": "Severe-disability certificate", "deadline": yesterday}).json()
    assert referral["stages"] == []
    # Stages move forward only, none skipped, each once.
    assert member.post(f"/referrals/{referral['id']}/stages",
                       {"stage": "documents_checked", "on": yesterday}).status_code == 409
    staged = member.post(f"/referrals/{referral['id']}/stages", {"stage": "application_submitted", "on": yesterday})
    assert staged.status_code == 200
    assert staged.json()["stages"] == [{"stage": "application_submitted", "on": yesterday}]
    assert member.post(f"/referrals/{referral['id']}/stages",
                       {"stage": "application_submitted", "on": yesterday}).status_code == 409
    assert member.post(f"/referrals/{referral['id']}/stages", {"stage": "lunch", "on": yesterday}).status_code == 400

    wait_for(lambda: "referral_overdue" in kinds(member, case["id"]), timeout=15, what="the deadline alert")
    assert kinds(member, case["id"]).count("referral_overdue") == 1


def test_a_hardship_found_on_patrol_becomes_a_draft_the_office_confirms(stack, admin, register):
    leader, leader_profile = register()
    assignee, assignee_profile = register()
    zone = admin.post("/zones", {"name": f"Zone {leader_profile['id'][:6]}",
                                 "compounds": [f"Compound {leader_profile['id'][:6]}"]}).json()
    requests.put(f"{admin.api}/zones/{zone['id']}/team", headers=admin.headers, timeout=10,
                 json={"leader_id": leader_profile["id"], "member_ids": []}).raise_for_status()
    incident = leader.post("/incidents", {"zone_id": zone["id"], "compound": zone["compounds"][0],
                                          "category": "hardship", "severity": "medium",
                                          "description": "An old man living alone, no heating."}).json()

    def draft():
        return [c for c in admin.get("/cases", params={"limit": 200}).json()["items"]
                if c.get("source_incident_id") == incident["id"]]

    found = wait_for(draft, timeout=15, what="the draft case")[0]
    assert (found["status"], found["compound"], found["assignee_id"]) == ("draft", zone["compounds"][0], None)
    assert "An old man" not in found["summary"]  # the description stays with the incident
    wait_for(lambda: "case_drafted" in kinds(admin, found["id"]), timeout=10, what="the office's alert")
    # A draft takes no visits; members do not see it.
    assert admin.post(f"/cases/{found['id']}/visits", {"visited_on": "2026-01-01", "notes": "x"}).status_code == 409
    assert assignee.get(f"/cases/{found['id']}").status_code == 404

    household = admin.post("/households", {"compound": zone["compounds"][0], "address": "Room 1",
                                           "people": [{"name": "Wang", "relation": "self", "birth_year": 1940}]})
    confirmed = admin.post(f"/cases/{found['id']}/confirm", {
        "household_id": household.json()["id"], "categories": ["elderly"], "summary": "Lives alone, no heating.",
        "assignee_id": assignee_profile["id"]})
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "open"
    wait_for(lambda: "case_assigned" in kinds(assignee, found["id"]), timeout=10, what="the assignee's alert")
    assert admin.post(f"/cases/{found['id']}/confirm", {
        "household_id": household.json()["id"], "categories": ["elderly"], "summary": "again",
        "assignee_id": assignee_profile["id"]}).status_code == 409
    assert admin.post(f"/cases/{found['id']}/dismiss", {"reason": "late"}).status_code == 409


def test_a_case_is_paired_only_with_an_active_party_member_and_a_refused_one_leaves_no_case(admin, register):
    _, not_in_the_party = register(party_member=False)
    _, disabled = register()
    assert patch(admin, f"/members/{disabled['id']}", {"active": False}).status_code == 200
    household = admin.post("/households", HOUSEHOLD).json()
    before = admin.get("/cases", params={"limit": 200}).json()["items"]
    for assignee_id, words in ((not_in_the_party["id"], "No registered party member"),
                               (disabled["id"], "the account is disabled"),
                               ("no-such-account", "No registered party member")):
        refused = admin.post("/cases", {"household_id": household["id"], "categories": ["elderly"],
                                        "summary": "Alone, needs meals.", "assignee_id": assignee_id})
        assert refused.status_code == 400, refused.text
        assert words in " ".join(refused.json()["error"]["details"]["fields"]["assignee_id"])
    assert admin.get("/cases", params={"limit": 200}).json()["items"] == before
