"""The wall screen (/dashboard) and the public page (/public) in headless
Chromium — Debian's, through Playwright — as the office's screen and a
resident's phone would show them. A process of its own (Playwright and
eventlet do not mix), like office_browser.py, whose launch and screenshots it
shares:

    python wall_browser.py JOURNEY URL OUTDIR JSON_ARGS

Prints one JSON line ({"ok": true, ...}) for the test to check; a failed
expectation prints {"ok": false, "error": ...} and saves a screenshot in OUTDIR."""
from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

import requests
from playwright.sync_api import expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.e2e.office_browser import CHROMIUM_FLAGS, DESK, TIMEOUT_MS, Office  # noqa: E402

TV = {"width": 1920, "height": 1080}
PHONE = {"width": 360, "height": 740}
# What Chromium logs when the page meets a refusal it expects (a revoked token's 401 and the
# closed stream): not faults of the page.
EXPECTED_CONSOLE = ("the server responded with a status of 401", "EventSource's response has a MIME type")
ERRORS: list[str] = []  # every tab's script errors and console errors


def watch(page):
    page.on("console", lambda msg: msg.type == "error" and ERRORS.append(msg.text))
    page.on("pageerror", lambda exc: ERRORS.append(str(exc)))

JOURNEYS = {}


def journey(fn):
    JOURNEYS[fn.__name__] = fn
    return fn


@journey
def wall(page, url: str, out: Path, args: dict) -> dict:
    """The office issues a screen's token on 大屏设备 Wall screens (shown once). On the screen, before a
    token: the sign-in alone; pasted: live, times in the community's zone, a feed line in words; a reload
    keeps it. Revoked on the office's page: the screen says 离线 offline and why, within seconds."""
    office = Office(page, url, out)
    office.login(args["username"], args["password"])
    office.open("devices", "大屏设备 Wall screens")
    office.field("大屏名称 Screen name").fill(args["screen_name"])
    office.button("发放令牌 Issue token").click()
    expect(page.get_by_text("只显示这一次").first).to_be_visible()
    token = page.get_by_label("令牌 Token", exact=True).input_value()
    office.button("复制令牌 Copy token").click()  # the clipboard may be refused headless: the page says so
    page.screenshot(path=str(out / "devices.png"), full_page=True)
    office.button("完成 Done").click()
    expect(page.get_by_role("table", name="大屏设备 Wall screens")).to_contain_text(args["screen_name"])

    screen = page.context.new_page()  # the wall screen: another tab, its own session
    watch(screen)
    screen.goto(url + "/dashboard")
    expect(screen.get_by_role("heading", name="连接大屏 Connect this screen")).to_be_visible()
    alone = screen.locator("#board").is_hidden()
    screen.get_by_label("大屏令牌 Screen token").fill(token)
    screen.get_by_role("button", name="连接 Connect").click()
    expect(screen.locator("#status")).to_have_text("实时 live")
    screen.reload()  # a reboot of the screen: the token is kept
    expect(screen.locator("#status")).to_have_text("实时 live")
    kept = screen.locator("#signin").is_hidden()

    admin = {"Authorization": "Bearer " + page.evaluate("() => sessionStorage.getItem('linli-token')")}
    gift = requests.post(f"{url}/api/v1/campaigns/{args['campaign_id']}/donations", json={
        "kind": "cash", "amount_fen": 66_600}, headers={**admin, "Idempotency-Key": args["key"]}, timeout=15)
    assert gift.status_code == 201, gift.text
    feed_line = screen.locator("#feed li", has_text="收到捐款 Gift ¥666.00")
    expect(feed_line.first).to_be_visible()
    expect(screen.locator("#campaigns")).to_contain_text(args["drive_name"])
    screen.wait_for_timeout(500)  # the summary's refresh after the event
    screen.screenshot(path=str(out / "wall.png"), full_page=True)
    screen.set_viewport_size(TV)
    screen.wait_for_timeout(300)
    screen.screenshot(path=str(out / "wall-tv.png"))
    screen.set_viewport_size(DESK)
    shown = {"feed_line": feed_line.first.inner_text(), "updated": screen.locator("#updated").inner_text(),
             "campaigns": screen.locator("#campaigns").inner_text(),
             "other_campaigns": screen.locator("#other-campaigns").inner_text()}

    page.bring_to_front()
    office.button(f"撤销 Revoke {args['screen_name']}").click()
    office.button(f"确认撤销 Confirm revoke {args['screen_name']}").click()
    started = time.monotonic()
    expect(screen.locator("#status")).to_have_text("离线 offline", timeout=10_000)
    offline_after = time.monotonic() - started
    expect(page.get_by_role("table", name="大屏设备 Wall screens")).to_contain_text("已撤销 Revoked")
    expect(screen.locator("#notice")).to_contain_text("此大屏的令牌已被撤销 This screen's token was revoked")
    expect(screen.locator("#board")).to_be_hidden()
    expect(screen.get_by_label("大屏令牌 Screen token")).to_be_visible()
    screen.screenshot(path=str(out / "wall-revoked.png"), full_page=True)
    return {"alone_before_login": alone, "kept_after_reload": kept, "offline_after_s": round(offline_after, 2),
            "notice": screen.locator("#notice").inner_text(),
            "forgot_token": screen.evaluate("() => localStorage.getItem('linli-wall-token')") is None, **shown}


@journey
def public(page, url: str, out: Path, args: dict) -> dict:
    """On a phone: a drive's dispatches with their dates; a receipt shows only what was sent after its gift."""
    page.set_viewport_size(PHONE)
    page.goto(url + "/public")
    drive = page.locator("section", has=page.get_by_role("heading", name=args["drive_name"]))
    expect(drive.locator("table").last).to_contain_text("Shelter 5")
    dispatch_row = drive.locator("tr", has_text="Shelter 5").inner_text()
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    page.screenshot(path=str(out / "public-phone.png"), full_page=True)

    found = {}
    for name in ("early", "late"):
        gift = args[name]
        page.goto(f"{url}/public?receipt={gift['receipt_no']}&code={gift['verification_code']}")
        expect(page.locator("#receipt-result")).to_contain_text(gift["receipt_no"])
        found[name] = page.locator("#receipt-result").inner_text()
    page.screenshot(path=str(out / "public-receipt-phone.png"), full_page=True)
    return {"dispatch_row": dispatch_row, "scroll_width": wide, "receipts": found}


def main(name: str, url: str, outdir: str, raw_args: str) -> int:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport=DESK, locale="zh-CN", timezone_id="UTC")
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        watch(page)
        try:
            found = JOURNEYS[name](page, url.rstrip("/"), out, json.loads(raw_args))
        except Exception as exc:  # the whole failure goes to the test's output
            page.screenshot(path=str(out / f"{name}-failed.png"), full_page=True)
            print(json.dumps({"ok": False, "error": "".join(traceback.format_exception(exc))[-4000:],
                              "console_errors": ERRORS}), flush=True)
            return 1
        finally:
            browser.close()
    unexpected = [e for e in ERRORS if not any(known in e for known in EXPECTED_CONSOLE)]
    print(json.dumps({"ok": True, "console_errors": unexpected, **found}, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
