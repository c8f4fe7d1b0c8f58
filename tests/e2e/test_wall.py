"""The office's wall screen (issue 16): a device token the office issues and
revokes, which reads the dashboard and the feed and nothing else, refused
within a second of its revocation with its open feed closed; the public
page's dispatches with their dates, and a receipt that never shows goods sent
before its gift. Through the gateway with every service a real process, then
in Chromium (tests/e2e/wall_browser.py)."""
import json
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import jwt
import pytest
import requests

from tests.e2e.test_office_pages import run_browser
from tests.e2e.conftest import ADMIN_PASSWORD, Client, new_key, ok


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


def delete(client: Client, path: str):
    return requests.delete(client.api + path, headers=client.headers, timeout=15)


def issue(admin: Client, **body) -> dict:
    return ok(admin.post("/devices", {"name": "大厅大屏 Hall screen", **body}), 201)


def read_stream(answer, frames: list, done: threading.Event):
    """Collect an open stream's frames until the server ends it."""
    try:
        for chunk in answer.iter_lines(decode_unicode=True):
            frames.append(chunk)
    except requests.RequestException as exc:
        frames.append(f"! {type(exc).__name__}")
    finally:
        done.set()


def test_a_device_token_reads_the_wall_and_nothing_else_until_it_is_revoked(stack, admin):
    before = datetime.now(timezone.utc)
    device = issue(admin)
    assert device["status"] == "active" and device["token"]
    expires = datetime.fromisoformat(device["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=364) < expires - before < timedelta(days=366)  # a year, not 12 hours
    listed = ok(admin.get("/devices"))["items"]
    mine = next(d for d in listed if d["id"] == device["id"])
    assert "token" not in mine and mine["name"] == "大厅大屏 Hall screen" and mine["revoked_at"] is None
    assert device["token"] not in json.dumps(listed)

    screen = Client(stack.url, device["token"])
    summary = ok(screen.get("/dashboard/summary"))
    assert summary["timezone"] == "Asia/Shanghai" and summary["donations"]["available"]
    # Nothing else, not even what a viewer's login may read.
    for path in ("/me", "/campaigns", "/zones", "/members", "/me/alerts", "/devices", "/cases"):
        answer = screen.get(path)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"]["code"] == "forbidden"
    assert screen.post("/devices", {"name": "another"}).status_code == 403

    # The live feed, with the token in the query as EventSource sends it.
    stream = requests.get(stack.url + "/api/v1/events/stream", params={"access_token": device["token"]},
                          stream=True, timeout=(5, 30))
    assert stream.status_code == 200
    frames, ended = [], threading.Event()
    threading.Thread(target=read_stream, args=(stream, frames, ended), daemon=True).start()
    campaign = ok(admin.post("/campaigns", {"name": "抗震救災 wall", "goal_fen": 100_000,
                                            "starts_on": (date.today() - timedelta(days=1)).isoformat(),
                                            "ends_on": (date.today() + timedelta(days=1)).isoformat()}), 201)
    ok(admin.post(f"/campaigns/{campaign['id']}/donations", {"kind": "cash", "amount_fen": 66_600},
                  key=new_key()), 201)
    deadline = time.monotonic() + 10
    while not any('"donation_received"' in f and '"amount_fen": 66600' in f for f in frames):
        assert time.monotonic() < deadline, frames
        time.sleep(0.05)

    # Revoked: refused within a second, saying why, and the open feed is closed.
    revoked = ok(delete(admin, f"/devices/{device['id']}"))
    started = time.monotonic()
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    while (answer := screen.get("/dashboard/summary")).status_code == 200:
        assert time.monotonic() - started < 1.0, "still served a second after the revocation"
        time.sleep(0.05)
    assert answer.status_code == 401 and answer.json()["error"]["details"]["reason"] == "revoked", answer.text
    assert ended.wait(5), "the revoked device's stream is still open"
    closed = next(f for f in frames if f.startswith("data:") and "revoked" in f)
    assert "event: closed" in frames and "This screen's token was revoked" in closed
    again = requests.get(stack.url + "/api/v1/events/stream", params={"access_token": device["token"]}, timeout=5)
    assert again.status_code == 401

    # Again: the same answer, audited once (who issued it and who revoked it).
    assert ok(delete(admin, f"/devices/{device['id']}"))["revoked_at"] == revoked["revoked_at"]
    admin_id = ok(admin.get("/me"))["id"]
    audit = [(e["action"], e["actor_id"]) for e in ok(admin.get("/audit", params={"source": "accounts"}))["items"]
             if e["filters"].get("device_id") == device["id"]]
    assert audit == [("device_revoked", admin_id), ("device_issued", admin_id)]
    assert next(d for d in ok(admin.get("/devices"))["items"] if d["id"] == device["id"])["status"] == "revoked"


def test_an_expired_device_token_is_refused_saying_so(stack, admin):
    device = issue(admin, days=1)
    now = int(time.time())
    stale = jwt.encode({"sub": device["id"], "kind": "device", "iat": now - 7200, "exp": now - 60},
                       stack.env["LINLI_JWT_SECRET"], algorithm="HS256")
    answer = Client(stack.url, stale).get("/dashboard/summary")
    assert answer.status_code == 401 and answer.json()["error"]["details"]["reason"] == "expired"
    # Made up: a device the office never issued.
    made_up = jwt.encode({"sub": "no-such-device", "kind": "device", "exp": now + 600},
                         stack.env["LINLI_JWT_SECRET"], algorithm="HS256")
    assert Client(stack.url, made_up).get("/dashboard/summary").status_code == 401


def test_a_disabled_accounts_open_feed_is_closed_too(stack, admin, register):
    """The same re-check as a device's: disabling an account ends the streams it holds open."""
    viewer, profile = register(roles=["viewer"], party_member=False)
    stream = requests.get(stack.url + "/api/v1/events/stream", params={"access_token": viewer.token},
                          stream=True, timeout=(5, 30))
    assert stream.status_code == 200
    frames, ended = [], threading.Event()
    threading.Thread(target=read_stream, args=(stream, frames, ended), daemon=True).start()
    disabled = requests.patch(f"{admin.api}/members/{profile['id']}", json={"active": False},
                              headers=admin.headers, timeout=15)
    assert disabled.status_code == 200, disabled.text
    assert ended.wait(5), "a disabled account's stream is still open"
    assert "event: closed" in frames and any("This account is disabled" in f for f in frames)


@pytest.mark.parametrize("body, field", [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"), ({"name": "x" * 101}, "name"),
    ({"name": "Hall", "days": 0}, "days"), ({"name": "Hall", "days": 731}, "days"),
    ({"name": "Hall", "days": "30"}, "days"), ({"name": "Hall", "days": True}, "days"),
    ({"name": "Hall", "days": 1.5}, "days"), ({"name": "Hall", "owner": "me"}, "owner"),
])
def test_bad_input_is_a_400_naming_the_field_and_issues_nothing(stack, admin, body, field):
    count = len(ok(admin.get("/devices", params={"limit": 200}))["items"])
    answer = admin.post("/devices", body)
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["error"]["details"]["fields"], answer.text
    assert len(ok(admin.get("/devices", params={"limit": 200}))["items"]) == count


def test_revoking_an_unknown_device_is_a_404(admin):
    answer = delete(admin, "/devices/no-such-device")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"


def test_the_public_page_lists_dispatches_with_dates_and_a_receipt_only_those_after_its_gift(stack, admin):
    today = date.today()
    campaign = ok(admin.post("/campaigns", {"name": "Winter quilts, public", "goal_fen": 100_000,
                                            "starts_on": (today - timedelta(days=1)).isoformat(),
                                            "ends_on": (today + timedelta(days=1)).isoformat()}), 201)
    gifts, sent = f"/campaigns/{campaign['id']}/donations", f"/campaigns/{campaign['id']}/dispatches"
    early = ok(admin.post(gifts, {"kind": "in_kind", "items": [{"category": "bedding", "quantity": 4}]},
                          key=new_key()), 201)
    ok(admin.post(sent, {"destination": "Shelter 5", "items": [{"category": "bedding", "quantity": 2}]},
                  key=new_key()), 201)
    late = ok(admin.post(gifts, {"kind": "in_kind", "items": [{"category": "bedding", "quantity": 1}]},
                         key=new_key()), 201)

    public = requests.get(stack.url + "/api/v1/public/summary", timeout=10).json()
    shown = next(c for c in public["campaigns"] if c["id"] == campaign["id"])
    assert [(d["to"], d["items"]) for d in shown["dispatches"]] == [
        ("Shelter 5", [{"category": "bedding", "quantity": 2}])]
    local_today = datetime.now(timezone(timedelta(hours=8))).date().isoformat()  # Asia/Shanghai
    assert shown["dispatches"][0]["sent_on"] == local_today

    def receipt(gift):
        return requests.get(f"{stack.url}/api/v1/receipts/{gift['receipt_no']}",
                            params={"code": gift["verification_code"]}, timeout=10).json()
    assert [d["to"] for d in receipt(early)["dispatches"]] == ["Shelter 5"]
    assert receipt(early)["received_on"] == local_today
    late_receipt = receipt(late)
    assert late_receipt["dispatches"] == [] and late_receipt["goods_sent"] == []  # sent before it existed

    # A test drive is the office's own: not on the public page.
    trial = ok(admin.post("/campaigns", {"name": "试用 Trial drive", "goal_fen": 100, "test": True,
                                         "starts_on": today.isoformat(), "ends_on": today.isoformat()}), 201)
    assert trial["test"] is True
    public = requests.get(stack.url + "/api/v1/public/summary", timeout=10).json()
    assert trial["id"] not in {c["id"] for c in public["campaigns"]}
    screen = Client(stack.url, issue(admin)["token"])
    assert next(c for c in ok(screen.get("/dashboard/summary"))["donations"]["campaigns"]
                if c["id"] == trial["id"])["test"] is True


WALL_BROWSER = Path(__file__).with_name("wall_browser.py")


def test_the_office_sets_up_a_wall_screen_which_is_live_and_offline_within_seconds_of_its_revocation(
        stack, admin, tmp_path):
    today = date.today()
    drive = "抗震救災"
    campaign = ok(admin.post("/campaigns", {"name": drive, "goal_fen": 1_000_000,
                                            "starts_on": (today - timedelta(days=1)).isoformat(),
                                            "ends_on": (today + timedelta(days=30)).isoformat()}), 201)
    ok(admin.post("/campaigns", {"name": "试用 Trial", "goal_fen": 100, "test": True,
                                 "starts_on": today.isoformat(), "ends_on": today.isoformat()}), 201)
    screen_name = f"大厅大屏 Hall screen {uuid.uuid4().hex[:4]}"
    found = run_browser(WALL_BROWSER, ["wall", stack.url], tmp_path, {
        "username": "admin", "password": ADMIN_PASSWORD, "screen_name": screen_name,
        "campaign_id": campaign["id"], "drive_name": drive, "key": new_key()})
    device = next(d for d in ok(admin.get("/devices", params={"limit": 200}))["items"] if d["name"] == screen_name)
    assert device["status"] == "revoked" and device["last_seen_at"]
    assert found["alone_before_login"] and found["kept_after_reload"]
    # In words, at the community's time (the browser runs in UTC; Shanghai is 8 hours ahead).
    shanghai = datetime.now(timezone(timedelta(hours=8)))
    stamp, _, words = found["feed_line"].partition(" ")
    assert words == f"收到捐款 Gift ¥666.00 · {drive}", found["feed_line"]
    moment = datetime.strptime(stamp, "%H:%M:%S").replace(year=shanghai.year, month=shanghai.month,
                                                           day=shanghai.day, tzinfo=shanghai.tzinfo)
    assert abs((moment - shanghai).total_seconds() % 86400) < 120 or \
        abs((moment - shanghai).total_seconds() % 86400) > 86400 - 120, (stamp, shanghai)
    assert "Asia/Shanghai" in found["updated"]
    assert drive in found["campaigns"] and "试用 Trial" not in found["campaigns"]
    assert "测试 test · 试用 Trial" in found["other_campaigns"]
    # Revoked: offline, and why, within a few seconds; the token is forgotten, the sign-in shows alone.
    assert found["offline_after_s"] < 5, found
    assert "已被撤销" in found["notice"] and found["forgot_token"]


def test_the_public_page_on_a_phone_shows_dated_dispatches_and_a_receipt_only_what_left_after_it(
        stack, admin, tmp_path):
    today = date.today()
    drive = "冬衣棉被 Winter quilts"
    campaign = ok(admin.post("/campaigns", {"name": drive, "goal_fen": 100_000,
                                            "starts_on": (today - timedelta(days=1)).isoformat(),
                                            "ends_on": (today + timedelta(days=1)).isoformat()}), 201)
    gifts, sent = f"/campaigns/{campaign['id']}/donations", f"/campaigns/{campaign['id']}/dispatches"
    early = ok(admin.post(gifts, {"kind": "in_kind", "items": [{"category": "bedding", "quantity": 4}]},
                          key=new_key()), 201)
    ok(admin.post(sent, {"destination": "Shelter 5", "items": [{"category": "bedding", "quantity": 2}]},
                  key=new_key()), 201)
    late = ok(admin.post(gifts, {"kind": "in_kind", "items": [{"category": "bedding", "quantity": 1}]},
                         key=new_key()), 201)
    found = run_browser(WALL_BROWSER, ["public", stack.url], tmp_path,
                        {"drive_name": drive, "early": early, "late": late})
    local_today = datetime.now(timezone(timedelta(hours=8))).date().isoformat()
    assert local_today in found["dispatch_row"] and "Shelter 5" in found["dispatch_row"], found
    assert found["scroll_width"] <= 360
    assert "Shelter 5" in found["receipts"]["early"] and local_today in found["receipts"]["early"]
    assert "Shelter 5" not in found["receipts"]["late"]
    assert "此后尚未送出此类物资 None sent since this gift." in found["receipts"]["late"]
