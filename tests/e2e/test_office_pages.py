"""The office's workspace at /app/ in a real Chromium, from login to result:
each journey is a function of office_browser.py, run as its own process, and
then checked against the API."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import ADMIN_PASSWORD


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


BROWSER_SCRIPT = Path(__file__).with_name("office_browser.py")


def run_journey(stack, name: str, outdir: Path, username: str = "admin", password: str = ADMIN_PASSWORD,
                script: Path = BROWSER_SCRIPT, **args) -> dict:
    """Run one journey of `script` (office_browser.py, or member_browser.py, field_browser.py: the
    same command line) in Chromium, logged in as `username`; its findings, or the test fails."""
    return run_browser(script, [name, stack.url, username, password], outdir, args)


def run_browser(script: Path, argv: list[str], outdir: Path, args: dict) -> dict:
    """Run a browser script (`script *argv OUTDIR JSON_ARGS`): its findings, the JSON line it printed
    last, or the test fails with what the page showed. With LINLI_SCREENSHOTS=DIR its pictures of
    the pages go to DIR (docs/screenshots for the README)."""
    outdir = Path(os.environ.get("LINLI_SCREENSHOTS") or outdir)
    done = subprocess.run([sys.executable, str(script), *argv, str(outdir), json.dumps(args)],
                          capture_output=True, text=True, timeout=240)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the browser journey {argv[0]} printed nothing:\n{done.stdout}\n{done.stderr[-3000:]}"
    found = json.loads(lines[-1])
    assert found["ok"], f"journey {argv[0]} failed (screenshot in {outdir}):\n{found['error']}"
    assert found["console_errors"] == [], found["console_errors"]
    return found


def test_every_page_is_served_with_a_strict_content_security_policy(stack):
    for path in ("/app/", "/", "/dashboard", "/public"):
        page = requests.get(stack.url + path, timeout=10)
        assert page.status_code == 200, path
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["Referrer-Policy"] == "no-referrer"
        # Only scripts and styles from /static/, which the policy allows: none inline.
        assert "<script>" not in page.text and "<style>" not in page.text and "style=" not in page.text, path
    script = requests.get(stack.url + "/static/app/main.js", timeout=10)
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    again = requests.get(stack.url + "/static/app/main.js", headers={"If-None-Match": script.headers["ETag"]},
                         timeout=10)
    assert again.status_code == 304
    for missing in ("/static/../service.py", "/static/app/nothing.js", "/static/vendor"):
        assert requests.get(stack.url + missing, timeout=10).status_code == 404, missing
    assert requests.get(stack.url + "/app", allow_redirects=False, timeout=10).headers["Location"] == "/app/"


def test_an_admin_logs_in_and_every_page_of_the_menu_opens(stack, tmp_path):
    found = run_journey(stack, "smoke", tmp_path)
    assert "捐赠登记 Donation table" in found["menu"] and "成员 Members" in found["menu"]
    assert found["root_leads_to"].endswith("/app/")  # an admin opening `/` is taken to the workspace
