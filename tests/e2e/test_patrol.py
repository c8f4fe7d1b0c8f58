"""Patrol through the gateway: zones of compounds and their teams, patrol
shifts, incidents and their alerts, escalation of unacknowledged incidents,
and zones that went unpatrolled.

This module runs its own stack with the patrol service's clocks shortened
(escalation after 3 s, a zone uncovered after ~8.6 s; the sweep runs every 2 s)
so the timers can be watched within a test."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.conftest import nothing_more_arrives, wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, linli, login, running_stack

ESCALATE_AFTER_SECONDS = 3  # LINLI_PATROL_ESCALATE_AFTER_MINUTES=0.05
UNCOVERED_AFTER_DAYS = "0.0001"  # ~8.6 s
SWEEP_SECONDS = 2


@pytest.fixture(scope="module")
def stack(module_vhost, tmp_path_factory):
    """The shared stack's shape, with the patrol timers shortened."""
    with running_stack(module_vhost, tmp_path_factory.mktemp("linli-patrol") / "var",
                       LINLI_PATROL_ESCALATE_AFTER_MINUTES="0.05",
                       LINLI_PATROL_UNCOVERED_AFTER_DAYS=UNCOVERED_AFTER_DAYS) as stack:
        yield stack


# -- helpers ---------------------------------------------------------------------------

def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def put(client, path, json_body=None):
    return requests.put(client.api + path, json=json_body, headers=client.headers, timeout=15)


def assert_error(answer, status: int, code: str, fields: tuple = ()):
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and error["message"], error
    for field in fields:
        assert field in error["details"]["fields"], (field, error)


def alerts(client, kind: str | None = None, ref_id: str | None = None) -> list[dict]:
    answer = client.get("/me/alerts", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    return [a for a in answer.json()["items"]
            if (kind is None or a["kind"] == kind) and (ref_id is None or a["ref"]["id"] == ref_id)]


def make_zone(admin, compounds: list[str] | None = None) -> dict:
    body = {"name": unique("Zone"), "compounds": compounds or [unique("Compound"), unique("Compound")]}
    answer = admin.post("/zones", body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def set_team(admin, zone_id: str, leader_id: str, member_ids: list[str]) -> dict:
    answer = put(admin, f"/zones/{zone_id}/team", {"leader_id": leader_id, "member_ids": member_ids})
    assert answer.status_code == 200, answer.text
    return answer.json()


def report(client, zone: dict, severity: str = "medium", category: str = "fire_hazard", **fields):
    body = {"zone_id": zone["id"], "compound": zone["compounds"][0], "category": category,
            "description": "Bicycles charging in the stairwell of building 2.", "severity": severity} | fields
    return client.post("/incidents", body)


def report_ok(client, zone: dict, **kwargs) -> dict:
    answer = report(client, zone, **kwargs)
    assert answer.status_code == 201, answer.text
    return answer.json()


def counts(admin) -> tuple[int, int, int]:
    def count(path):
        answer = admin.get(path, params={"limit": 200})
        assert answer.status_code == 200, answer.text
        return len(answer.json()["items"])
    return count("/zones"), count("/incidents"), count("/patrols")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def coverage_of(client, zone_id: str, **params) -> dict:
    answer = client.get("/zones/coverage", params=params)
    assert answer.status_code == 200, answer.text
    rows = [row for row in answer.json()["zones"] if row["zone_id"] == zone_id]
    assert len(rows) == 1, answer.json()
    return rows[0]


# -- 1. the whole story -------------------------------------------------------------------

def test_a_zone_its_team_a_patrol_and_the_incidents_it_finds(admin, register):
    leader, leader_profile = register()
    member, member_profile = register()
    outsider, _ = register()
    taken, other = unique("Xingfu Garden"), unique("Heping Lane")

    created = admin.post("/zones", {"name": unique("Zone North"), "compounds": [taken, other]})
    assert created.status_code == 201, created.text
    zone = created.json()
    assert zone["id"] and zone["compounds"] == [taken, other]
    assert zone["team"] == {"leader_id": None, "member_ids": []}
    assert admin.get(f"/zones/{zone['id']}").json()["name"] == zone["name"]

    # A compound belongs to one zone at most: the second claim is refused and not written.
    rival_name = unique("Zone Rival")
    assert_error(admin.post("/zones", {"name": rival_name, "compounds": [unique("Anle"), taken]}),
                 409, "conflict", ("compounds",))
    names = [z["name"] for z in admin.get("/zones", params={"limit": 200}).json()["items"]]
    assert zone["name"] in names and rival_name not in names

    team = set_team(admin, zone["id"], leader_profile["id"], [member_profile["id"]])
    assert team["team"] == {"leader_id": leader_profile["id"], "member_ids": [member_profile["id"]]}
    assert member.get(f"/zones/{zone['id']}").json()["team"] == team["team"]

    # A team member patrols; one patrol at a time; an outsider may not patrol here.
    started = member.post("/patrols", {"zone_id": zone["id"]})
    assert started.status_code == 201, started.text
    patrol = started.json()
    assert patrol["zone_id"] == zone["id"] and patrol["member_id"] == member_profile["id"]
    assert patrol["finished_at"] is None
    assert_error(member.post("/patrols", {"zone_id": zone["id"]}), 409, "conflict")
    assert_error(outsider.post("/patrols", {"zone_id": zone["id"]}), 403, "forbidden")
    active = member.get("/patrols", params={"zone_id": zone["id"], "active": "true"}).json()["items"]
    assert [p["id"] for p in active] == [patrol["id"]]

    # The member reports what they found; the leader is alerted, the outsider is not.
    incident = report_ok(member, zone, severity="medium", compound=other)
    assert incident["status"] == "open" and incident["zone_id"] == zone["id"]
    assert incident["reported_by"] == member_profile["id"] and incident["patrol_id"] == patrol["id"]
    assert incident["compound"] == other and incident["resolved_at"] is None
    reported = wait_for(lambda: alerts(leader, "incident_reported"), timeout=10,
                        what="the leader's incident alert")
    assert [(a["ref"], a["acked_at"]) for a in reported] == [({"type": "incident", "id": incident["id"]}, None)]
    # A medium incident does not alert the office.
    assert alerts(admin, "incident_high_severity", incident["id"]) == []

    # A high-severity one alerts the admin too.
    urgent = report_ok(member, zone, severity="high", category="unsafe_structure")
    high = wait_for(lambda: alerts(admin, "incident_high_severity", urgent["id"]), timeout=10,
                    what="the admin's high-severity alert")
    assert [a["ref"] for a in high] == [{"type": "incident", "id": urgent["id"]}]
    wait_for(lambda: alerts(leader, "incident_reported", urgent["id"]), timeout=10,
             what="the leader's alert of the urgent incident")
    assert alerts(outsider) == []

    # The leader acknowledges and resolves; twice is a conflict.
    acked = leader.post(f"/incidents/{incident['id']}/ack")
    assert acked.status_code == 200, acked.text
    assert acked.json()["acked_at"] is not None and acked.json()["acked_by"] == leader_profile["id"]
    resolved = leader.post(f"/incidents/{incident['id']}/resolve",
                           {"resolution": "Chargers moved to the shed; residents told."})
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert body["status"] == "resolved" and body["resolved_by"] == leader_profile["id"]
    assert body["resolution"] == "Chargers moved to the shed; residents told." and body["resolved_at"]
    assert_error(leader.post(f"/incidents/{incident['id']}/resolve", {"resolution": "Again."}),
                 409, "conflict")
    assert member.get(f"/incidents/{incident['id']}").json()["resolution"] == body["resolution"]

    # Filters by zone, status and time.
    def listed(**params):
        answer = member.get("/incidents", params={"zone_id": zone["id"], **params})
        assert answer.status_code == 200, answer.text
        return [i["id"] for i in answer.json()["items"]]
    assert listed(status="resolved") == [incident["id"]]
    assert listed(status="open") == [urgent["id"]]
    assert set(listed()) == {incident["id"], urgent["id"]}
    just_before = (parse_time(incident["reported_at"]) - timedelta(seconds=1)).isoformat()
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert set(listed(since=just_before)) == {incident["id"], urgent["id"]}
    assert listed(since=tomorrow) == []
    assert listed(until=just_before) == []

    # Only the member on the patrol finishes it, once.
    assert_error(leader.post(f"/patrols/{patrol['id']}/finish", {"notes": "Not mine."}), 403, "forbidden")
    finished = member.post(f"/patrols/{patrol['id']}/finish", {"notes": "All quiet after 22:00."})
    assert finished.status_code == 200, finished.text
    assert finished.json()["finished_at"] is not None and finished.json()["notes"] == "All quiet after 22:00."
    assert_error(member.post(f"/patrols/{patrol['id']}/finish", {"notes": "Twice."}), 409, "conflict")
    assert member.get("/patrols", params={"zone_id": zone["id"], "active": "true"}).json()["items"] == []

    # The zone is covered, as of the patrol.
    row = coverage_of(outsider, zone["id"], days=1)
    assert row["covered"] is True and row["leader_id"] == leader_profile["id"]
    assert row["last_patrol_at"] is not None
    assert parse_time(row["last_patrol_at"]) == parse_time(patrol["started_at"])
    assert admin.get(f"/zones/{zone['id']}").json()["last_patrol_at"] is not None


def test_free_text_is_read_by_the_zones_team_the_writer_and_the_office_and_each_full_read_is_audited(
        stack, admin, register):
    """Issue 13 §4: a West leader read an East hardship incident's phone and illness."""
    east_leader, east_leader_profile = register()
    east_member, east_member_profile = register()
    west_leader, west_leader_profile = register()
    west_member, west_member_profile = register()
    east, west = make_zone(admin), make_zone(admin)
    set_team(admin, east["id"], east_leader_profile["id"], [east_member_profile["id"]])
    set_team(admin, west["id"], west_leader_profile["id"], [west_member_profile["id"]])
    description = "old Mr Wu, 13900001111, bldg 2 rm 302, diabetic"
    notes = "Mr Wu in 2-302 is out of insulin; his daughter 13900001111 is told."

    shift = east_member.post("/patrols", {"zone_id": east["id"]}).json()
    incident = report_ok(east_member, east, category="hardship", description=description)
    assert incident["description"] == description  # the reporter's own answer
    finished = east_member.post(f"/patrols/{shift['id']}/finish", {"notes": notes})
    assert finished.status_code == 200 and finished.json()["notes"] == notes, finished.text

    # Another zone's leader and member get the records without the text.
    for outsider in (west_leader, west_member):
        answer = outsider.get(f"/incidents/{incident['id']}")
        assert answer.status_code == 200, answer.text
        shown = answer.json()
        assert shown["description"] is None and shown["free_text_hidden"] is True
        assert shown["category"] == "hardship" and shown["compound"] == east["compounds"][0]
        listed = outsider.get("/incidents", params={"zone_id": east["id"]})
        assert listed.status_code == 200, listed.text
        assert [(i["id"], i["description"], i["free_text_hidden"]) for i in listed.json()["items"]] == [
            (incident["id"], None, True)]
        patrols = outsider.get("/patrols", params={"member_id": east_member_profile["id"]})
        assert patrols.status_code == 200, patrols.text
        assert [(p["id"], p["notes"], p["free_text_hidden"]) for p in patrols.json()["items"]] == [
            (shift["id"], None, True)]
        for text in (answer.text, listed.text, patrols.text):
            assert "13900001111" not in text and "Wu" not in text
    assert admin.get("/audit", params={"incident_id": incident["id"]}).json()["items"] == []
    assert admin.get("/audit", params={"patrol_id": shift["id"]}).json()["items"] == []

    # The zone's leader, the reporter and the office read it in full, each read audited.
    admin_id = admin.get("/me").json()["id"]
    for reader in (east_leader, east_member, admin):
        answer = reader.get(f"/incidents/{incident['id']}")
        assert answer.status_code == 200, answer.text
        assert answer.json()["description"] == description and answer.json()["free_text_hidden"] is False
    audit = admin.get("/audit", params={"incident_id": incident["id"]})
    assert audit.status_code == 200, audit.text
    assert [(e["actor_id"], e["action"], e["incident_id"]) for e in audit.json()["items"]] == [
        (admin_id, "read_incident", incident["id"]), (east_member_profile["id"], "read_incident", incident["id"]),
        (east_leader_profile["id"], "read_incident", incident["id"])]
    led = east_leader.get("/patrols", params={"member_id": east_member_profile["id"]}).json()["items"]
    assert [p["notes"] for p in led] == [notes]
    audit = admin.get("/audit", params={"patrol_id": shift["id"]}).json()["items"]
    assert [(e["actor_id"], e["action"], e["patrol_id"]) for e in audit] == [
        (east_leader_profile["id"], "list_patrol", shift["id"])]
    everything = admin.get("/audit", params={"source": "patrol", "limit": 200})
    assert everything.status_code == 200 and "13900001111" not in everything.text, everything.text
    assert {e["incident_id"] for e in everything.json()["items"]} >= {incident["id"]}

    # One audit at a time; a member may not read it.
    assert_error(admin.get("/audit", params={"case_id": "c1", "incident_id": incident["id"]}),
                 400, "invalid_input", ("case_id", "incident_id"))
    assert_error(admin.get("/audit", params={"source": "welfare", "patrol_id": shift["id"]}),
                 400, "invalid_input", ("patrol_id",))
    assert_error(east_leader.get("/audit", params={"incident_id": incident["id"]}), 403, "forbidden")

    # The text is in no alert and no log.
    wait_for(lambda: alerts(east_leader, "incident_reported", incident["id"]), timeout=10,
             what="the leader's alert")
    for client in (east_leader, admin):
        assert "13900001111" not in client.get("/me/alerts", params={"limit": 200}).text
    for log in (stack.var_dir / "log").iterdir():
        assert "13900001111" not in log.read_text(encoding="utf-8", errors="replace"), log.name


# -- 2. escalation ------------------------------------------------------------------------------

@pytest.mark.slow  # about 11 s; tests/integration/test_patrol_events.py covers escalation
def test_an_incident_nobody_acknowledges_escalates_to_the_office_once(admin, register):
    leader, leader_profile = register()
    member, member_profile = register()
    zone = make_zone(admin)
    set_team(admin, zone["id"], leader_profile["id"], [member_profile["id"]])

    ignored = report_ok(member, zone, severity="low", category="stranger")
    seen = report_ok(member, zone, severity="low", category="dispute")
    acked = leader.post(f"/incidents/{seen['id']}/ack")
    assert acked.status_code == 200, acked.text
    # Acknowledging twice is harmless and keeps the first time.
    again = leader.post(f"/incidents/{seen['id']}/ack")
    assert again.status_code == 200 and again.json()["acked_at"] == acked.json()["acked_at"]
    assert ignored["escalated_at"] is None

    escalated = wait_for(lambda: alerts(admin, "incident_escalated", ignored["id"]),
                         timeout=ESCALATE_AFTER_SECONDS + 3 * SWEEP_SECONDS + 3,
                         what="the escalation alert")
    assert [a["ref"] for a in escalated] == [{"type": "incident", "id": ignored["id"]}]
    shown = member.get(f"/incidents/{ignored['id']}").json()
    assert shown["escalated_at"] is not None and shown["status"] == "open"
    assert parse_time(shown["escalated_at"]) >= parse_time(shown["reported_at"]) + timedelta(
        seconds=ESCALATE_AFTER_SECONDS)

    # Several sweeps later: still one alert, the same escalation time, and the
    # acknowledged incident never escalated.
    assert nothing_more_arrives(lambda: (len(alerts(admin, "incident_escalated", ignored["id"])),
                                         member.get(f"/incidents/{ignored['id']}").json()["escalated_at"]),
                                seconds=5, interval=0.5, what="the escalation") == (1, shown["escalated_at"])
    assert member.get(f"/incidents/{seen['id']}").json()["escalated_at"] is None
    assert alerts(admin, "incident_escalated", seen["id"]) == []
    # Escalation goes to the office, not to the team.
    assert alerts(leader, "incident_escalated") == [] and alerts(member, "incident_escalated") == []


# -- 3. coverage lapse --------------------------------------------------------------------------

@pytest.mark.slow  # about 16 s; tests/integration/test_patrol_events.py covers an uncovered zone
def test_a_zone_nobody_patrols_alerts_its_leader_once(admin, register):
    leader, leader_profile = register()
    member, member_profile = register()
    zone = make_zone(admin)
    set_team(admin, zone["id"], leader_profile["id"], [member_profile["id"]])
    row = coverage_of(member, zone["id"], days=UNCOVERED_AFTER_DAYS)
    assert row["covered"] is False and row["last_patrol_at"] is None

    uncovered = wait_for(lambda: alerts(leader, "zone_uncovered"), timeout=15,
                         interval=0.25, what="the zone_uncovered alert")
    assert [a["ref"] for a in uncovered] == [{"type": "zone", "id": zone["id"]}]
    row = coverage_of(leader, zone["id"], days=UNCOVERED_AFTER_DAYS)
    assert row["covered"] is False and row["leader_id"] == leader_profile["id"]
    assert coverage_of(leader, zone["id"])["covered"] is False  # the configured default

    assert nothing_more_arrives(lambda: len(alerts(leader, "zone_uncovered")), seconds=2 * SWEEP_SECONDS + 1,
                                interval=0.5, what="the zone_uncovered alerts") == 1
    assert alerts(member) == []


# -- 4. bad input and wrong roles ----------------------------------------------------------------

def test_bad_input_and_wrong_roles_are_refused_and_write_nothing(admin, register):
    leader, leader_profile = register()
    member, member_profile = register()
    viewer, _ = register(roles=["viewer"], party_member=False)
    zone = make_zone(admin)
    set_team(admin, zone["id"], leader_profile["id"], [member_profile["id"]])
    incident = report_ok(member, zone)
    before = counts(admin)

    # Zones: admins only; name and compounds required.
    assert_error(member.post("/zones", {"name": unique("Zone"), "compounds": [unique("C")]}),
                 403, "forbidden")
    assert_error(viewer.post("/zones", {"name": unique("Zone"), "compounds": [unique("C")]}),
                 403, "forbidden")
    assert_error(admin.post("/zones", {}), 400, "invalid_input", ("name", "compounds"))
    assert_error(admin.post("/zones", {"name": unique("Zone"), "compounds": []}),
                 400, "invalid_input", ("compounds",))
    assert_error(admin.post("/zones", {"name": zone["name"], "compounds": [unique("C")]}),
                 409, "conflict", ("name",))

    # Teams: registered members, an existing zone, set by an admin.
    assert_error(put(admin, f"/zones/{zone['id']}/team", {"leader_id": "no-such-member", "member_ids": []}),
                 400, "invalid_input", ("leader_id",))
    assert_error(put(admin, f"/zones/{zone['id']}/team",
                     {"leader_id": leader_profile["id"], "member_ids": ["nobody"]}),
                 400, "invalid_input", ("member_ids",))
    assert_error(put(admin, f"/zones/{zone['id']}/team", {"member_ids": []}),
                 400, "invalid_input", ("leader_id",))
    assert_error(put(admin, "/zones/no-such-zone/team", {"leader_id": leader_profile["id"], "member_ids": []}),
                 404, "not_found")
    assert_error(put(member, f"/zones/{zone['id']}/team", {"leader_id": member_profile["id"], "member_ids": []}),
                 403, "forbidden")
    assert admin.get(f"/zones/{zone['id']}").json()["team"] == {
        "leader_id": leader_profile["id"], "member_ids": [member_profile["id"]]}
    assert_error(admin.get("/zones/no-such-zone"), 404, "not_found")

    # Incidents: a compound of the zone, a known category and severity, an existing zone.
    assert_error(report(member, zone, compound=unique("Elsewhere")), 400, "invalid_input", ("compound",))
    assert_error(report(member, zone, severity="apocalyptic", category="Aliens!"),
                 400, "invalid_input", ("severity", "category"))
    # A code of the right shape that patrol does not have: patrol itself says so.
    assert_error(report(member, zone, category="aliens"), 400, "invalid_input", ("category",))
    assert_error(report(member, {"id": "no-such-zone", "compounds": zone["compounds"]}),
                 400, "invalid_input", ("zone_id",))
    assert_error(member.post("/incidents", {}), 400, "invalid_input",
                 ("zone_id", "compound", "category", "description", "severity"))
    assert_error(report(viewer, zone), 403, "forbidden")
    assert_error(member.get("/incidents", params={"since": "garbage"}), 400, "invalid_input", ("since",))
    assert_error(member.get("/incidents", params={"status": "lost"}), 400, "invalid_input", ("status",))
    assert_error(viewer.get("/incidents"), 403, "forbidden")
    assert_error(member.get("/incidents/no-such-incident"), 404, "not_found")

    # Only the leader (or the office) acknowledges and resolves.
    assert_error(member.post(f"/incidents/{incident['id']}/ack"), 403, "forbidden")
    assert_error(member.post(f"/incidents/{incident['id']}/resolve", {"resolution": "Done, I think."}),
                 403, "forbidden")
    assert_error(leader.post(f"/incidents/{incident['id']}/resolve", {}), 400, "invalid_input", ("resolution",))
    assert_error(leader.post("/incidents/no-such-incident/resolve", {"resolution": "x"}), 404, "not_found")
    after = member.get(f"/incidents/{incident['id']}").json()
    assert after["status"] == "open" and after["acked_at"] is None and after["resolution"] is None

    # Patrols: an existing zone, by its team, a viewer not at all; unknown patrols are not found.
    assert_error(member.post("/patrols", {"zone_id": "no-such-zone"}), 404, "not_found")
    assert_error(member.post("/patrols", {}), 400, "invalid_input", ("zone_id",))
    assert_error(viewer.post("/patrols", {"zone_id": zone["id"]}), 403, "forbidden")
    assert_error(member.post("/patrols/no-such-patrol/finish", {"notes": "x"}), 404, "not_found")
    assert_error(member.get("/zones/coverage", params={"days": "-1"}), 400, "invalid_input", ("days",))

    assert counts(admin) == before


# -- a dashboard screen is not a volunteer ------------------------------------------------------

def test_a_viewer_account_cannot_be_put_on_a_team(admin, register):
    """A team is made of members: a viewer (a dashboard screen) cannot patrol,
    report or acknowledge, so as a leader every incident of the zone would
    escalate unseen."""
    _, viewer_profile = register(roles=["viewer"], party_member=False)
    _, member_profile = register()
    zone = make_zone(admin)
    assert_error(put(admin, f"/zones/{zone['id']}/team", {"leader_id": viewer_profile["id"], "member_ids": []}),
                 400, "invalid_input", ("leader_id",))
    assert_error(put(admin, f"/zones/{zone['id']}/team",
                     {"leader_id": member_profile["id"], "member_ids": [viewer_profile["id"]]}),
                 400, "invalid_input", ("member_ids",))
    assert admin.get(f"/zones/{zone['id']}").json()["team"] == {"leader_id": None, "member_ids": []}


# -- an admin added while the stack runs -----------------------------------------------------------

def test_an_admin_added_on_a_running_stack_hears_of_the_next_urgent_incident(stack, admin, register):
    """`linli admin create` writes the account and its member_registered event to
    the gateway's outbox; the event waits for the relay (grace period, then the
    next 2 s tick). An urgent incident reported meanwhile must still reach the
    new admin, who can already log in."""
    leader, leader_profile = register()
    member, member_profile = register()
    zone = make_zone(admin)
    set_team(admin, zone["id"], leader_profile["id"], [member_profile["id"]])

    username = f"office{uuid.uuid4().hex[:6]}"
    created = linli(stack.env, "--var", str(stack.var_dir), "admin", "create", "--username", username,
                    stdin=ADMIN_PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    new_admin = login(stack.url, username, ADMIN_PASSWORD)
    urgent = report_ok(member, zone, severity="high", category="fire_hazard")

    # The admin who was there already hears of it ...
    wait_for(lambda: alerts(admin, "incident_high_severity", urgent["id"]), timeout=10,
             what="the first admin's high-severity alert")
    # ... and so must the one added a moment ago.
    wait_for(lambda: alerts(new_admin, "incident_high_severity", urgent["id"]), timeout=10,
             what="the new admin's high-severity alert")
