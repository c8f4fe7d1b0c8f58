"""The patrol volunteer's and zone leader's phone pages (巡逻 Patrol, 事件 Incidents)
in a real Chromium at 360×740, checked against the API; and the office
acknowledging for a zone that has no leader. On the office's shared stack."""
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.test_office_pages import run_journey
from tests.e2e.conftest import ADMIN_PASSWORD, new_key, ok

SCRIPT = Path(__file__).with_name("field_browser.py")


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


@pytest.fixture(scope="module")
def field(admin, register):
    """A zone with a long compound name, its leader and a volunteer; a zone without a
    leader; an incident category of the community's, added through the API."""
    tag = uuid.uuid4().hex[:6]
    leader_client, leader = register(name="陈建国", party_member=False)
    volunteer_client, volunteer = register(name="刘桂芳", party_member=False)
    compound = f"幸福花园东区北苑第三期经济适用住房小区 Xingfu Garden East, North Court, Phase III {tag}"
    zone = ok(admin.post("/zones", {"name": f"东片区 East {tag}", "compounds": [compound, f"和平里 Heping Li {tag}"]}),
              201)
    ok(requests.put(f"{admin.api}/zones/{zone['id']}/team", headers=admin.headers, timeout=15,
                    json={"leader_id": leader["id"], "member_ids": [volunteer["id"]]}))
    leaderless = ok(admin.post("/zones", {"name": f"西片区 West {tag}", "compounds": [f"Lotus Court {tag}"]}), 201)
    code = f"stair_{tag}"
    ok(admin.post("/categories/incident", {"code": code, "label_zh": "楼道堆物", "label_en": "Stairwell clutter"}), 201)
    return {"tag": tag, "zone": zone, "compound": compound, "leader": leader, "leader_client": leader_client,
            "volunteer": volunteer, "volunteer_client": volunteer_client, "leaderless": leaderless,
            "category": code, "category_label": "楼道堆物 Stairwell clutter"}


def test_the_office_acknowledges_for_a_zone_without_a_leader(admin, field):
    zone = field["leaderless"]
    incident = ok(admin.post("/incidents", {
        "zone_id": zone["id"], "compound": zone["compounds"][0], "category": field["category"],
        "severity": "medium", "description": "Bicycles block the stairwell of building 2."}, key=new_key()), 201)
    # A member, not its leader (it has none), is refused and nothing changes.
    refused = field["volunteer_client"].post(f"/incidents/{incident['id']}/ack")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert ok(admin.get(f"/incidents/{incident['id']}"))["acked_at"] is None

    admin_id = ok(admin.get("/me"))["id"]
    acked = ok(admin.post(f"/incidents/{incident['id']}/ack"))
    assert acked["acked_by"] == admin_id and acked["acked_at"] and acked["status"] == "open"
    stored = ok(admin.get(f"/incidents/{incident['id']}"))
    assert (stored["acked_by"], stored["acked_at"]) == (admin_id, acked["acked_at"])
    # Still in the office's open queue (acknowledged is not resolved).
    assert incident["id"] in [i["id"] for i in ok(admin.get("/incidents", params={
        "zone_id": zone["id"], "status": "open"}))["items"]]


def test_a_volunteer_patrols_and_reports_on_a_phone_and_the_leader_acknowledges_and_resolves(
        stack, admin, field, tmp_path):
    volunteer, leader = field["volunteer"], field["leader"]
    leaderless = field["leaderless"]
    # The office's queue puts the zone without a leader first: it holds an open incident.
    ok(admin.post("/incidents", {
        "zone_id": leaderless["id"], "compound": leaderless["compounds"][0], "category": field["category"],
        "severity": "low", "description": "A broken lamp on the path."}, key=new_key()), 201)
    description = "三号楼二单元楼道堆满纸箱，挡住消防通道。Boxes block the fire exit of building 3."
    notes = "巡了两圈，其余正常。Two rounds, all else in order."
    resolution = "物业已清走纸箱。The management took the boxes away."
    found = run_journey(
        stack, "patrol_day", tmp_path, volunteer["username"], "member-password", script=SCRIPT,
        zone_name=field["zone"]["name"], compound=field["compound"], category_label=field["category_label"],
        description=description, notes=notes, resolution=resolution,
        leader_username=leader["username"], leader_password="member-password", admin_password=ADMIN_PASSWORD,
        leaderless_compound=leaderless["compounds"][0], offline_compound=field["zone"]["compounds"][1],
        offline_description="路灯不亮 (sent without a network)")

    assert all(width <= 360 for width in found["scroll_widths"].values()), found["scroll_widths"]
    assert all(small == [] for small in found["small_targets"].values()), found["small_targets"]

    # What the pages did is stored: the patrol with its notes, the incident, who acknowledged and resolved it.
    [patrol] = ok(admin.get("/patrols", params={"member_id": volunteer["id"]}))["items"]
    assert patrol["zone_id"] == field["zone"]["id"] and patrol["finished_at"] and patrol["notes"] == notes
    incident = ok(admin.get(f"/incidents/{found['incident_id']}"))
    assert incident["reported_by"] == volunteer["id"] and incident["patrol_id"] == patrol["id"]
    assert (incident["zone_id"], incident["compound"], incident["category"], incident["severity"]) == (
        field["zone"]["id"], field["compound"], field["category"], "high")
    assert incident["description"] == description
    assert incident["acked_by"] == leader["id"] and incident["acked_at"]
    assert incident["status"] == "resolved" and incident["resolved_by"] == leader["id"]
    assert incident["resolution"] == resolution
    assert found["incident_url"].endswith(f"#/incidents/{incident['id']}")
    # The report made without a network was sent once it was back, and counted once.
    kept = [i for i in ok(admin.get("/incidents", params={"zone_id": field["zone"]["id"]}))["items"]
            if i["id"] != incident["id"]]
    assert [(i["compound"], i["severity"], i["description"], i["reported_by"]) for i in kept] == [
        (field["zone"]["compounds"][1], "low", "路灯不亮 (sent without a network)", volunteer["id"])]
