"""A party member's phone pages in a real Chromium at 360×740 (issue 16): the
member watches the alerts page while the office opens a case for them, opens
it from its alert, sees the address, logs a visit, refers the household and
records the first stage, logs another visit with no network (kept on the phone,
sent when it is back, once); the API then holds what the pages said. Each page
fits the phone's width, with touch targets of at least 44 px."""
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.e2e.test_office_pages import run_journey

BROWSER_SCRIPT = Path(__file__).with_name("member_browser.py")
# A long address in Chinese, as a stairwell's directions are: it must wrap, not widen the page.
ADDRESS = "幸福花园北区12号楼3单元401室（电梯停用，请走东侧楼梯，敲门两次后稍等）"


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


def test_a_party_member_works_a_new_case_from_its_alert_on_a_phone(stack, admin, register, tmp_path):
    member, profile = register(name="王芳")
    compound = f"幸福花园 {profile['id'][:4]}"
    household = admin.post("/households", {"compound": compound, "address": ADDRESS, "phone": "010-6543 2100",
                                           "people": [{"name": "李秀英", "relation": "母亲 mother", "birth_year": 1946,
                                                       "conditions": ["卧床 bedridden"]}]})
    assert household.status_code == 201, household.text
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()  # the stack's LINLI_TIMEZONE
    # The page dates its forms by the community's calendar, which it is served with.
    assert '<meta name="linli-timezone" content="Asia/Shanghai">' in requests.get(stack.url + "/app/", timeout=10).text

    found = run_journey(
        stack, "member_phone", tmp_path, profile["username"], "member-password", script=BROWSER_SCRIPT,
        admin_token=admin.token, member_id=profile["id"], household_id=household.json()["id"],
        summary="独居老人，需要低保。Alone; needs the allowance.", address=ADDRESS, phone_digits="01065432100",
        compound=compound, today=today)

    assert all(width <= 360 for width in found["scroll_widths"].values()), found["scroll_widths"]
    assert all(small == [] for small in found["small_targets"].values()), found["small_targets"]
    # The alert says what and where: the compound and the case's category in words.
    assert compound in found["alert_message"] and "高龄独居 Elderly" in found["alert_message"], found
    case = member.get(f"/cases/{found['case_id']}").json()
    # The second was logged with no network, kept on the phone and sent later: once.
    assert sorted((v["visited_on"], v["logged_by"], v["notes"][:6]) for v in case["visits"]) == [
        (today, profile["id"], "Mother"), (today, profile["id"], "Second")]
    assert [(r["agency"], r["stages"]) for r in case["referrals"]] == [
        ("民政局 Civil affairs bureau", [{"stage": "application_submitted", "on": today}])]
    alerts = member.get("/me/alerts").json()["items"]
    assert [a["acked_at"] is not None for a in alerts if a["ref"] == {"type": "case", "id": case["id"]}] == [True]
