"""The walking skeleton's story through the gateway: an admin opens a hardship
case; its party member, and only they, is alerted in the inbox and live; and
cases opened at once (in one group commit) each alert their own member."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import wait_for
from tests.e2e.conftest import HOUSEHOLD, EventStream, open_case


@pytest.fixture(scope="module")
def stack(office_stack):
    """The shared stack (tests/e2e/conftest.py): these tests count only their own members and cases."""
    return office_stack


def test_a_new_case_alerts_its_party_member_and_no_one_else(stack, admin, register):
    assignee, assignee_profile = register()
    other, _ = register()
    assignee_stream = EventStream(stack.url + "/api/v1/me/alerts/stream", assignee.token)
    other_stream = EventStream(stack.url + "/api/v1/me/alerts/stream", other.token)
    try:
        case = open_case(admin, assignee_profile["id"])
        assert case["status"] == "open" and case["assignee_id"] == assignee_profile["id"]

        inbox = wait_for(lambda: assignee.get("/me/alerts").json()["items"], timeout=10,
                         what="the alert in the inbox")
        assert [(a["kind"], a["ref"], a["acked_at"]) for a in inbox] == [
            ("case_assigned", {"type": "case", "id": case["id"]}, None)]

        live = wait_for(lambda: assignee_stream.events, timeout=10, what="the live alert")
        assert live[0]["event"] == "alert"
        assert live[0]["data"]["id"] == inbox[0]["id"]
        assert live[0]["data"]["ref"] == {"type": "case", "id": case["id"]}

        assert other.get("/me/alerts").json()["items"] == []
        assert other_stream.events == []
    finally:
        assignee_stream.close()
        other_stream.close()

    # Acknowledged by its owner only; someone else's alert id is simply not found.
    assert other.post(f"/me/alerts/{inbox[0]['id']}/ack").status_code == 404
    acked = assignee.post(f"/me/alerts/{inbox[0]['id']}/ack")
    assert acked.status_code == 200 and acked.json()["acked_at"] is not None
    assert assignee.get("/me/alerts").json()["items"][0]["acked_at"] == acked.json()["acked_at"]


def test_a_reconnecting_stream_first_gets_what_it_missed(stack, admin, register):
    assignee, profile = register()
    url = stack.url + "/api/v1/me/alerts/stream"
    stream = EventStream(url, assignee.token)
    try:
        first = open_case(admin, profile["id"])
        seen = wait_for(lambda: stream.events, timeout=10, what="the first alert")
    finally:
        stream.close()
    assert seen[0]["data"]["ref"]["id"] == first["id"]

    missed = [open_case(admin, profile["id"])["id"] for _ in range(2)]
    wait_for(lambda: len(assignee.get("/me/alerts").json()["items"]) == 3, timeout=10, what="the inbox")

    # As EventSource does, the reconnect names the last event it saw.
    again = EventStream(url, assignee.token, last_event_id=seen[0]["id"])
    try:
        replayed = wait_for(lambda: len(again.events) >= 2 and again.events, timeout=10, what="the backlog")
        assert [e["data"]["ref"]["id"] for e in replayed] == missed  # oldest first, the first one not again
        live = open_case(admin, profile["id"])
        wait_for(lambda: len(again.events) == 3, timeout=10, what="the live alert after the backlog")
        assert again.events[2]["data"]["ref"]["id"] == live["id"]
    finally:
        again.close()
    # Someone else's alert id replays nothing.
    other, _ = register()
    foreign = EventStream(url, other.token, last_event_id=seen[0]["id"])
    try:
        open_case(admin, profile["id"])
        wait_for(lambda: len(assignee.get("/me/alerts").json()["items"]) == 5, timeout=10, what="the inbox")
        assert foreign.events == []
    finally:
        foreign.close()


def test_a_member_sees_only_their_own_cases(admin, register):
    assignee, assignee_profile = register()
    other, _ = register()
    case = open_case(admin, assignee_profile["id"])

    assert assignee.get(f"/cases/{case['id']}").json()["id"] == case["id"]
    assert [c["id"] for c in assignee.get("/cases").json()["items"]] == [case["id"]]
    # Another member's case is a 404, not a 403: ids leak nothing.
    assert other.get(f"/cases/{case['id']}").status_code == 404
    assert other.get("/cases").json()["items"] == []
    assert case["id"] in [c["id"] for c in admin.get("/cases", params={"limit": 200}).json()["items"]]


def test_lists_are_paginated_with_a_cursor(admin, register):
    _, profile = register()
    opened = [open_case(admin, profile["id"])["id"] for _ in range(3)]
    seen, cursor = [], None
    while True:
        page = admin.get("/cases", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(opened) <= set(seen)


def test_health_ready_and_the_openapi_document(stack):
    import requests

    assert requests.get(stack.url + "/api/v1/health", timeout=5).json() == {"status": "ok"}
    ready = requests.get(stack.url + "/api/v1/ready", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    services = requests.get(stack.url + "/api/v1/health/services", timeout=10)
    assert services.status_code == 200
    assert services.json() == {"status": "ok", "services": {"patrol": "ok", "donations": "ok", "welfare": "ok",
                                                            "notifications": "ok", "volunteers": "ok"}}
    spec = requests.get(stack.url + "/api/v1/openapi.json", timeout=5).json()
    for path, method in [("/api/v1/auth/token", "post"), ("/api/v1/members", "post"),
                         ("/api/v1/members/{member_id}", "get"), ("/api/v1/me/alerts", "get"),
                         ("/api/v1/me/alerts/{alert_id}/ack", "post"), ("/api/v1/me/alerts/stream", "get"),
                         ("/api/v1/households", "post"), ("/api/v1/cases", "post"),
                         ("/api/v1/cases/{case_id}", "get")]:
        assert method in spec["paths"][path], (path, method)


def test_cases_opened_at_once_are_all_served_and_each_alerts_its_own_member_live(stack, admin, register):
    # The gateway sends openings made at once as one call_many, welfare commits them together:
    # each still gets its own answer, and each party member exactly their own alert.
    members = [register() for _ in range(12)]
    streams = [EventStream(stack.url + "/api/v1/me/alerts/stream", member.token) for member, _ in members]
    household = admin.post("/households", HOUSEHOLD).json()

    def open_one(profile):
        return requests.post(stack.url + "/api/v1/cases", timeout=30, headers={
            "Authorization": f"Bearer {admin.token}"}, json={
            "household_id": household["id"], "categories": ["elderly"], "summary": "Needs the allowance.",
            "assignee_id": profile["id"]})

    try:
        with ThreadPoolExecutor(len(members)) as pool:
            answers = list(pool.map(open_one, [profile for _, profile in members]))
        assert [answer.status_code for answer in answers] == [201] * len(members), [a.text for a in answers]
        cases = [answer.json() for answer in answers]
        assert [case["assignee_id"] for case in cases] == [profile["id"] for _, profile in members]
        for stream, case in zip(streams, cases, strict=True):
            live = wait_for(lambda stream=stream: stream.events, timeout=15, what="each member's live alert")
            assert [event["data"]["ref"] for event in live] == [{"type": "case", "id": case["id"]}]
    finally:
        for stream in streams:
            stream.close()
