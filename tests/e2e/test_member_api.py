"""What a party member's phone pages rest on, through the gateway with every
service a real process (issue 16): the household of one's own case (and only
while it is one's own), audited; a referral's stages only in order and on
possible dates, refused in words with nothing changed; when the next visit is due."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import HOUSEHOLD, ok, open_case


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


def test_the_assignee_reads_the_household_audited_and_no_one_else_does(admin, register):
    member, profile = register()
    other, other_profile = register()
    case = open_case(admin, profile["id"])

    household = ok(member.get(f"/cases/{case['id']}/household"))
    assert (household["address"], [p["name"] for p in household["people"]]) == (
        HOUSEHOLD["address"], [p["name"] for p in HOUSEHOLD["people"]])
    audit = ok(admin.get("/audit", params={"household_id": case["household_id"]}))["items"]
    assert [(e["actor_id"], e["action"], e["case_id"]) for e in audit] == [
        (profile["id"], "read_household", case["id"])]

    assert other.get(f"/cases/{case['id']}/household").status_code == 404  # as another's case is
    ok(admin.post(f"/cases/{case['id']}/assign", {"assignee_id": other_profile["id"]}))
    gone = member.get(f"/cases/{case['id']}/household")
    assert gone.status_code == 404 and gone.json()["error"]["message"] == "No such case."
    assert ok(other.get(f"/cases/{case['id']}/household"))["address"] == HOUSEHOLD["address"]
    assert len(ok(admin.get("/audit", params={"household_id": case["household_id"]}))["items"]) == 2


def test_stages_only_in_order_and_on_possible_days_else_refused_in_words(admin, register):
    member, profile = register()
    case = open_case(admin, profile["id"])
    referral = ok(member.post(f"/cases/{case['id']}/referrals", {"agency": "Civil affairs", "benefit": "dibao"}), 201)
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()  # the stack's LINLI_TIMEZONE (the default)
    path = f"/referrals/{referral['id']}/stages"

    def stages():
        return ok(member.get(f"/cases/{case['id']}"))["referrals"][0]["stages"]

    skipped = member.post(path, {"stage": "documents_checked", "on": today.isoformat()})
    assert skipped.status_code == 409
    assert skipped.json()["error"]["message"] == (
        "The next stage is application_submitted: stages are recorded in order, none skipped.")
    future = member.post(path, {"stage": "application_submitted", "on": (today + timedelta(days=1)).isoformat()})
    assert future.status_code == 400 and "in the future" in future.json()["error"]["details"]["fields"]["on"][0]
    assert stages() == []

    ok(member.post(path, {"stage": "application_submitted", "on": (today - timedelta(days=3)).isoformat()}))
    earlier = member.post(path, {"stage": "documents_checked", "on": (today - timedelta(days=4)).isoformat()})
    assert earlier.status_code == 400
    assert "before the previous stage's" in earlier.json()["error"]["message"]
    assert [s["stage"] for s in stages()] == ["application_submitted"]
    ok(member.post(path, {"stage": "documents_checked", "on": today.isoformat()}))  # today, the community's
    assert stages() == [{"stage": "application_submitted", "on": (today - timedelta(days=3)).isoformat()},
                        {"stage": "documents_checked", "on": today.isoformat()}]


def test_a_case_shows_when_its_next_visit_is_due(admin, register):
    member, profile = register()
    case = open_case(admin, profile["id"])
    opened = datetime.fromisoformat(case["opened_at"].removesuffix("Z"))
    shown = ok(member.get(f"/cases/{case['id']}"))
    assert datetime.fromisoformat(shown["next_visit_due"].removesuffix("Z")) == opened + timedelta(days=30)
    listed = ok(member.get("/cases"))["items"]
    assert [c["next_visit_due"] for c in listed if c["id"] == case["id"]] == [shown["next_visit_due"]]
