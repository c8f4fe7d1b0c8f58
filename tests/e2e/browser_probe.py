"""Drives the dashboard in headless Chromium (Debian's, through Playwright) as
a person would. A process of its own: Playwright and eventlet do not mix.

    python browser_probe.py URL USERNAME PASSWORD SCREENSHOT MARKER...

Logs in, waits until the page says it is live, prints READY, then waits for a
line on stdin; from that moment it times how long until each MARKER shows on
the page, prints {"seen_ms": {marker: ms}} and saves a screenshot."""
import json
import sys
import time

from playwright.sync_api import sync_playwright

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(url: str, username: str, password: str, screenshot: str, *markers: str) -> int:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("#login button")
        page.wait_for_selector("#status.live", timeout=15_000)
        print("READY", flush=True)
        sys.stdin.readline()
        started, seen = time.monotonic(), {}
        while len(seen) < len(markers) and time.monotonic() - started < 10:
            text = page.inner_text("#board")
            for marker in markers:
                if marker not in seen and marker in text:
                    seen[marker] = round((time.monotonic() - started) * 1000)
            page.wait_for_timeout(50)
        page.wait_for_timeout(500)  # let the summary refresh settle for the picture
        page.screenshot(path=screenshot, full_page=True)
        status = page.inner_text("#status")
        browser.close()
    print(json.dumps({"seen_ms": seen, "status": status}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
