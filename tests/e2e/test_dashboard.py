"""The dashboard's data through the gateway: the summary from every service
(and what it says with one of them stopped), the live redacted event feed, and
the feed going on after the broker restarts."""
import subprocess
import uuid

import pytest
import requests

from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, EventStream, login, new_key, ok, open_case, running_stack

# make test-slow (about 25 s, a stack of its own: one of its services is stopped); the wall's tests in make test
# read the same summary and feed.
pytestmark = pytest.mark.slow


def test_the_summary_gathers_every_service(admin, register):
    viewer, _ = register(roles=["viewer"], party_member=False)
    _, profile = register()
    open_case(admin, profile["id"])
    summary = viewer.get("/dashboard/summary")
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert {part: body[part]["available"] for part in ("patrol", "donations", "welfare", "volunteers")} == {
        "patrol": True, "donations": True, "welfare": True, "volunteers": True}
    assert body["welfare"]["open_cases_by_status"]["open"] >= 1
    assert body["welfare"]["open_cases_by_category"]["elderly"] >= 1
    assert set(body["patrol"]["open_incidents_by_severity"]) == {"low", "medium", "high"}
    assert "campaigns" in body["donations"]


def test_the_summary_answers_with_one_service_stopped(stack, admin):
    stack.kill("donations")
    try:
        summary = admin.get("/dashboard/summary")
        assert summary.status_code == 200, summary.text
        body = summary.json()
        assert body["donations"] == {"available": False}
        assert body["patrol"]["available"] and body["welfare"]["available"]
    finally:
        stack.start_process("donations")
        wait_for(lambda: requests.get(stack.url + "/api/v1/health/services", timeout=10).status_code == 200,
                 timeout=30, what="donations back")


def feed_types(stream: EventStream) -> list[str]:
    return [event["data"]["type"] for event in stream.events]


def test_the_live_feed_shows_every_event_without_personal_data(stack, admin, register):
    viewer, _ = register(roles=["viewer"], party_member=False)
    stream = EventStream(stack.url + "/api/v1/events/stream", viewer.token)
    try:
        _, profile = register(name="王秀英", phone="139 9999 0000")
        case = open_case(admin, profile["id"])
        wait_for(lambda: "case_opened" in feed_types(stream) and "member_registered" in feed_types(stream),
                 timeout=15, what="the events on the feed")
        text = repr(stream.events)
        for personal in ("王秀英", "139 9999 0000", "李秀英", "Building 3", "severe mental illness",
                         "Minimum-living allowance"):
            assert personal not in text
        opened = next(e["data"] for e in stream.events if e["data"]["type"] == "case_opened")
        assert opened["data"]["case_id"] == case["id"] and opened["data"]["categories"] == ["elderly", "illness"]
        # Which household lives with which hardship is no one's business on a wall screen.
        assert "household_id" not in opened["data"] and case["household_id"] not in text
    finally:
        stream.close()
    # Narrowed to one service.
    only_patrol = EventStream(stack.url + "/api/v1/events/stream?source=patrol", viewer.token)
    try:
        open_case(admin, profile["id"])
        admin.post("/zones", {"name": f"Feed {case['id'][:6]}", "compounds": [f"Feed {case['id'][:6]}"]})
        wait_for(lambda: "zone_created" in feed_types(only_patrol), timeout=15, what="the patrol event")
        assert {e["data"]["source"] for e in only_patrol.events} == {"patrol"}
    finally:
        only_patrol.close()
    assert requests.get(stack.url + "/api/v1/events/stream", timeout=5).status_code == 401


def test_the_feed_goes_on_after_the_broker_restarts(node, tmp_path):
    """On a private node (tests/broker_node.py): restarting the shared broker would
    cut every other stack a parallel test run has on it."""
    with running_stack(node, tmp_path / "var") as stack:
        admin = login(stack.url, "admin", ADMIN_PASSWORD)
        viewer_name = f"v{uuid.uuid4().hex[:10]}"
        ok(admin.post("/members", {"username": viewer_name, "password": "viewer-password", "name": "屏幕",
                                   "phone": "139 1234 5678", "roles": ["viewer"], "party_member": False,
                                   "compound": None}), 201)
        viewer = login(stack.url, viewer_name, "viewer-password")
        stream = EventStream(stack.url + "/api/v1/events/stream", viewer.token)
        try:
            node.restart_app()
            wait_for(lambda: _ready(stack), timeout=60, interval=0.5, what="the stack back after the restart")

            def zone_after_restart():
                # A new zone each try: an event published before the feed's consumer is back is
                # not the feed's to hear, and the same name again is only refused (409, no event).
                name = f"After {uuid.uuid4().hex[:8]}"
                ok(admin.post("/zones", {"name": name, "compounds": [name]}), 201)
                return "zone_created" in feed_types(stream)

            # The gateway's feed consumer reconnects on its own; the open stream hears it.
            wait_for(zone_after_restart, timeout=60, interval=2, what="an event on the feed after the restart")
        finally:
            stream.close()


def _ready(stack) -> bool:
    """The gateway ready, and every service answering it."""
    try:
        return all(requests.get(stack.url + path, timeout=5).status_code == 200
                   for path in ("/api/v1/ready", "/api/v1/health/services"))
    except requests.RequestException:
        return False


def test_the_pages_are_served_without_a_build_step(stack):
    dashboard = requests.get(stack.url + "/", timeout=10)
    assert dashboard.status_code == 200 and dashboard.headers["Content-Type"].startswith("text/html")
    assert "社区看板" in dashboard.text and '<script src="/static/dashboard.js">' in dashboard.text
    script = requests.get(stack.url + "/static/dashboard.js", timeout=10).text
    assert "EventSource" in script and "reconnecting" in script
    public = requests.get(stack.url + "/public", timeout=10)
    assert public.status_code == 200 and "收据" in public.text
    assert "/api/v1/public/summary" in requests.get(stack.url + "/static/public.js", timeout=10).text


def test_the_public_figures_carry_no_one_personal(stack, admin, register):
    import datetime

    _, profile = register()
    case = open_case(admin, profile["id"])
    today = datetime.date.today()
    campaign = admin.post("/campaigns", {"name": "Winter clothes", "goal_fen": 100_000,
                                         "starts_on": (today - datetime.timedelta(days=1)).isoformat(),
                                         "ends_on": (today + datetime.timedelta(days=1)).isoformat()}).json()
    gifts = f"/campaigns/{campaign['id']}/donations"
    admin.post(gifts, {"kind": "in_kind", "donor_name": "赵明", "items": [{"category": "clothing", "quantity": 5}]},
               key=new_key())
    admin.post(gifts, {"kind": "cash", "amount_fen": 12_345, "donor_name": "赵明"}, key=new_key())
    sent = f"/campaigns/{campaign['id']}/dispatches"
    admin.post(sent, {"destination": "Shelter 3", "items": [{"category": "clothing", "quantity": 2}]}, key=new_key())
    admin.post(sent, {"case_id": case["id"], "items": [{"category": "clothing", "quantity": 1}]}, key=new_key())
    answer = requests.get(stack.url + "/api/v1/public/summary", timeout=10)  # no login
    assert answer.status_code == 200
    shown = next(c for c in answer.json()["campaigns"] if c["id"] == campaign["id"])
    assert shown["totals"] == {"cash_fen": 12_345, "items": {"clothing": 5}, "donations": 2}
    assert shown["goods_sent"] == [
        {"to": "Shelter 3", "category": "clothing", "quantity": 2},
        {"to": "a household in need (hardship case)", "category": "clothing", "quantity": 1}]
    assert "赵明" not in answer.text and case["id"] not in answer.text and "created_by" not in answer.text


def test_the_dashboard_shows_a_new_case_and_a_donation_within_two_seconds(stack, admin, register, tmp_path):
    """In headless Chromium, logged in as a viewer, as the office's wall screen would be."""
    import datetime
    import json
    import sys
    from pathlib import Path

    viewer_username = f"wall{stack.port}"
    admin.post("/members", {"username": viewer_username, "password": "wall-screen-1", "name": "Wall",
                            "roles": ["viewer"]})
    _, profile = register()
    today = datetime.date.today()
    campaign = admin.post("/campaigns", {"name": "Browser drive", "goal_fen": 50_000,
                                         "starts_on": (today - datetime.timedelta(days=1)).isoformat(),
                                         "ends_on": (today + datetime.timedelta(days=1)).isoformat()}).json()
    screenshot = tmp_path / "dashboard.png"
    probe = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("browser_probe.py")), stack.url + "/", viewer_username,
         "wall-screen-1", str(screenshot), "新帮扶个案 Case opened", "收到捐款 Gift ¥88.00 · Browser drive",
         "高龄独居 Elderly"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert probe.stdout.readline().strip() == "READY", probe.stderr.read()
        probe.stdin.write("go\n")
        probe.stdin.flush()
        open_case(admin, profile["id"])
        admin.post(f"/campaigns/{campaign['id']}/donations", {"kind": "cash", "amount_fen": 8_800}, key=new_key())
        result = json.loads(probe.stdout.readline())
    finally:
        probe.kill() if probe.poll() is None else None
        probe.wait()
    # The feed in words; a category shows as its labels (the case's on the feed and in the counts), never as its code.
    assert set(result["seen_ms"]) == {"新帮扶个案 Case opened", "收到捐款 Gift ¥88.00 · Browser drive",
                                      "高龄独居 Elderly"}, result
    assert max(result["seen_ms"].values()) <= 2000, result
    assert result["status"] == "实时 live"
    assert screenshot.stat().st_size > 10_000


def test_metrics_for_prometheus(stack, admin):
    admin.get("/cases")
    answer = requests.get(stack.url + "/api/v1/metrics", timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    text = answer.text
    assert 'linli_http_requests_total{method="GET",route="/api/v1/cases",status="200"}' in text
    assert "linli_http_request_seconds_bucket" in text
    assert 'linli_dead_letter_depth{queue="evt-welfare-case_opened--notifications.on_case_opened.dlq"} 0.0' in text
    assert 'linli_worker_calls_total{entrypoint="list_cases",outcome="ok",service="gateway"}' in text
