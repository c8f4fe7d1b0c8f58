"""Drives the office workspace (/app/) in headless Chromium — Debian's, through
Playwright — as a person at the office's desk would. A process of its own:
Playwright and eventlet do not mix.

    python office_browser.py JOURNEY URL USERNAME PASSWORD OUTDIR [JSON_ARGS]

Runs one journey (a function in JOURNEYS) after logging in, at a desk's window
size and then (where the journey says) at a phone's. Each step checks what the
person sees with Playwright's `expect`; the journey's findings are printed as
one JSON line ({"ok": true, ...}) for the test to check against the API. A
failed expectation prints {"ok": false, "error": ...}, saves a screenshot in
OUTDIR and exits 1. Screenshots of each page are saved in OUTDIR.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESK = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000

JOURNEYS = {}


def journey(fn):
    JOURNEYS[fn.__name__] = fn
    return fn


class Office:
    """One browser page logged in to the workspace, with what every journey needs."""

    def __init__(self, page: Page, url: str, outdir: Path):
        self.page, self.url, self.outdir = page, url.rstrip("/"), outdir
        self.console_errors: list[str] = []
        page.on("console", lambda msg: msg.type == "error" and self.console_errors.append(msg.text))
        page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    def login(self, username: str, password: str):
        page = self.page
        page.goto(self.url + "/app/")
        page.get_by_label("用户名 Username").fill(username)
        page.get_by_label("密码 Password").fill(password)
        page.get_by_role("button", name="登录 Log in").click()
        expect(page.get_by_role("button", name="退出 Log out")).to_be_visible()

    def open(self, hash_path: str, heading: str):
        """Go to `#/hash_path` and wait for the page's heading."""
        self.page.goto(f"{self.url}/app/#/{hash_path}")
        expect(self.page.get_by_role("heading", name=heading, exact=False).first).to_be_visible()

    def field(self, label: str):
        return self.page.get_by_label(label, exact=False)

    def button(self, name: str):
        return self.page.get_by_role("button", name=name, exact=False)

    def shows(self, text: str):
        expect(self.page.get_by_text(text, exact=False).first).to_be_visible()

    def count_mouse_events(self):
        """From now on, count every mouse event the page sees (keyboard-only checks)."""
        self.page.evaluate("""() => { window.__mice = 0;
            for (const type of ['mousedown', 'mouseup', 'click', 'pointerdown'])
                addEventListener(type, (e) => { if (e.isTrusted && e.detail !== 0) window.__mice += 1; }, true); }""")

    def mouse_events(self) -> int:
        return self.page.evaluate("() => window.__mice")

    def screenshot(self, name: str, phone: bool = False):
        """A picture of the page as it is now, at the desk's size and, with `phone`, at a phone's too."""
        self.page.screenshot(path=str(self.outdir / f"{name}.png"), full_page=True)
        if phone:
            self.page.set_viewport_size(PHONE)
            self.page.wait_for_timeout(200)
            self.page.screenshot(path=str(self.outdir / f"{name}-phone.png"), full_page=True)
            self.page.set_viewport_size(DESK)


@journey
def smoke(office: Office, args: dict) -> dict:
    """Log in and see every page of the menu open without a script error."""
    names = []
    for link in office.page.get_by_role("navigation").get_by_role("link").all():
        names.append(link.inner_text())
    office.page.goto(office.url + "/")
    office.page.wait_for_url("**/app/**")
    expect(office.page.get_by_role("button", name="退出 Log out")).to_be_visible()
    return {"menu": names, "root_leads_to": office.page.url.split("#")[0]}


def main(name: str, url: str, username: str, password: str, outdir: str, raw_args: str = "{}") -> int:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport=DESK, locale="zh-CN", accept_downloads=True)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        office = Office(page, url, out)
        try:
            office.login(username, password)
            found = JOURNEYS[name](office, json.loads(raw_args))
        except Exception as exc:  # the whole failure goes to the test's output
            page.screenshot(path=str(out / f"{name}-failed.png"), full_page=True)
            print(json.dumps({"ok": False, "error": "".join(traceback.format_exception(exc))[-4000:],
                              "console_errors": office.console_errors}), flush=True)
            return 1
        finally:
            browser.close()
    print(json.dumps({"ok": True, "console_errors": office.console_errors, **(found or {})}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
