"""A party member's phone pages (my cases, alerts) in headless Chromium at
360×740, as office_browser.py drives the office's pages (its Office and
launch flags), in a process of its own:

    python member_browser.py JOURNEY URL USERNAME PASSWORD OUTDIR [JSON_ARGS]

Prints one JSON line ({"ok": true, ...}) with what the journey found.
"""
from __future__ import annotations

import sys

from playwright.sync_api import expect

from office_browser import DESK, PHONE, Office, journey, main  # run as a script, beside it


@journey
def member_phone(office: Office, args: dict) -> dict:
    """Alerts, live: the office opens a case for me while I watch; I open it from its
    alert, see where to go, log a visit, refer the household and record the referral's
    first stage; log a second visit with no network (kept, then sent); my case list;
    then acknowledge the alert."""
    page, found = office.page, {}
    page.set_viewport_size(PHONE)
    office.open("alerts", "提醒 Alerts")
    expect(page.get_by_role("status").filter(has_text="实时 Live")).to_be_visible()
    # The office opens a case for me now (as its own page would): its alert arrives without a reload.
    opened = page.request.post(office.url + "/api/v1/cases", headers={"Authorization": "Bearer " + args["admin_token"]},
                               data={"household_id": args["household_id"], "categories": ["elderly"],
                                     "summary": args["summary"], "assignee_id": args["member_id"]})
    assert opened.status == 201, opened.text()
    case_id = opened.json()["id"]
    found["case_id"] = case_id
    newest = page.locator("li.alert-item").first
    expect(newest.get_by_role("link", name="查看个案 Open case")).to_have_attribute("href", f"#/mine/{case_id}")
    expect(newest.get_by_text("未读 Unread")).to_be_visible()
    found["alert_message"] = newest.locator(".alert-message").inner_text()
    office.phone_check("alerts", found)
    page.screenshot(path=str(office.outdir / "member-alerts-phone.png"), full_page=True)

    newest.get_by_role("link", name="查看个案 Open case").click()
    page.wait_for_url(f"**/app/#/mine/{case_id}")
    office.shows(args["address"])
    expect(page.get_by_role("link", name="拨打 Call")).to_have_attribute("href", "tel:" + args["phone_digits"])
    expect(office.field("日期 Date").first).to_have_value(args["today"])  # the community's today
    office.field("情况 Notes").fill("Mother in bed, son calm; brought rice and oil.")
    office.button("记录走访 Log visit").click()
    office.shows("已记录走访 Visit logged")
    expect(page.get_by_role("region", name="走访 Visits").get_by_text(args["today"], exact=True)).to_be_visible()

    office.field("机构 Agency").fill("民政局 Civil affairs bureau")
    office.field("事项 Benefit").fill("低保 Minimum-living allowance")
    office.button("转介 Refer").click()
    office.shows("已转介 Referred")
    stage_form = page.get_by_role("form", name="记录进度 Record stage: 民政局 Civil affairs bureau")
    expect(stage_form.get_by_role("heading")).to_have_text("下一进度 Next stage: 已递交申请 Application submitted")
    expect(stage_form.get_by_label("日期 Date")).to_have_value(args["today"])
    stage_form.get_by_role("button", name="记录进度 Record stage").click()
    office.shows("已记录进度 Stage recorded")
    expect(page.get_by_role("form", name="记录进度 Record stage: 民政局 Civil affairs bureau")
           .get_by_role("heading")).to_have_text("下一进度 Next stage: 材料已审 Documents checked")
    office.phone_check("case", found)
    page.screenshot(path=str(office.outdir / "member-case-phone.png"), full_page=True)
    page.set_viewport_size(DESK)
    page.screenshot(path=str(office.outdir / "member-case.png"), full_page=True)
    page.set_viewport_size(PHONE)

    # No signal in the stairwell: the visit is kept on the phone, said so, and sent once the network is back.
    page.context.set_offline(True)
    office.field("情况 Notes").fill("Second visit: no signal on the stairs.")
    office.button("记录走访 Log visit").click()
    expect(page.get_by_text("No network: kept on this phone")).to_be_visible(timeout=30_000)  # after one retry
    expect(page.get_by_text("1 waiting to be sent", exact=False)).to_be_visible()
    page.context.set_offline(False)
    expect(page.get_by_text("waiting to be sent", exact=False)).to_have_count(0, timeout=30_000)
    office.network_loss_expected()

    office.open("mine", "我的个案 My cases")
    card = page.locator("a.mine-card", has_text=args["compound"]).first
    expect(card).to_have_attribute("href", f"#/mine/{case_id}")
    expect(card).to_contain_text(f"最近走访 Last visit: {args['today']}")
    office.phone_check("mine", found)
    page.screenshot(path=str(office.outdir / "member-cases-phone.png"), full_page=True)
    page.set_viewport_size(DESK)
    page.screenshot(path=str(office.outdir / "member-cases.png"), full_page=True)
    page.set_viewport_size(PHONE)

    office.open("alerts", "提醒 Alerts")
    item = page.locator("li.alert-item", has=page.locator(f'a[href="#/mine/{case_id}"]')).first
    item.get_by_role("button", name="知道了 Acknowledge").click()
    expect(item.get_by_text("未读 Unread")).to_have_count(0)
    page.set_viewport_size(DESK)
    page.screenshot(path=str(office.outdir / "member-alerts.png"), full_page=True)
    return found


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
