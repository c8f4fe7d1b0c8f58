"""The field pages (巡逻 Patrol, 事件 Incidents) in headless Chromium on a 360×740
phone, as a patrol volunteer, then the zone's leader, then the office would use
them. Journeys as in office_browser.py (its Office, its main), in a module of
their own:

    python field_browser.py JOURNEY URL USERNAME PASSWORD OUTDIR [JSON_ARGS]
"""
from __future__ import annotations

import sys

from playwright.sync_api import expect

from office_browser import DESK, PHONE, Office, journey, main  # run as a script, beside it

def picture(office: Office, name: str):
    office.page.screenshot(path=str(office.outdir / f"{name}.png"), full_page=True)


def log_in_as(office: Office, username: str, password: str):
    office.page.get_by_role("button", name="退出 Log out").click()
    office.login(username, password)


@journey
def patrol_day(office: Office, args: dict) -> dict:
    """A volunteer starts a patrol in their zone, reports an incident (category by label,
    severity, description; a missing description refused in words first), finishes the
    patrol with notes and sees the report among theirs; the leader acknowledges it in the
    queue and resolves it on its page; the office, at a desk, sees the zone without a
    leader first."""
    page, found = office.page, {}
    zone, compound, category = args["zone_name"], args["compound"], args["category_label"]
    page.set_viewport_size(PHONE)

    # -- the volunteer ---------------------------------------------------------------------------
    office.open("patrol", "巡逻 Patrol")
    office.shows(zone)
    office.phone_check("patrol", found)
    picture(office, "patrol-start-phone")
    office.button(f"开始巡逻 Start patrol: {zone}").click()
    expect(page.get_by_role("heading", name="正在巡逻 On patrol")).to_be_visible()
    expect(office.button("开始巡逻 Start patrol")).to_have_count(0)  # one patrol at a time

    report = page.get_by_role("form", name="报告事件 Report an incident")
    report.get_by_label("小区 Compound").select_option(label=compound)
    report.get_by_label("类别 Category").select_option(label=category)
    report.get_by_text("高 High").click()
    report.get_by_role("button", name="报告 Report").click()
    expect(report.get_by_text("请写下情况。Say what you found.")).to_be_visible()  # by the field, nothing sent
    report.get_by_label("情况描述 Description").fill(args["description"])
    office.phone_check("patrol_running", found)
    picture(office, "patrol-phone")
    report.get_by_role("button", name="报告 Report").click()
    expect(report.get_by_text("已报告")).to_be_visible()
    found["incident_id"] = report.get_by_role("link", name="查看 Open it").get_attribute("href").rsplit("/", 1)[1]

    running = page.get_by_role("form", name="结束巡逻 Finish patrol")
    running.get_by_label("巡逻记录 Notes").fill(args["notes"])
    running.get_by_role("button", name="结束巡逻 Finish patrol").click()
    office.shows("巡逻已结束 Patrol finished")
    expect(office.button(f"开始巡逻 Start patrol: {zone}")).to_be_visible()  # a new one may start

    # One bar of signal, then none: the report is kept on the phone and sent once the network is back.
    page.context.set_offline(True)
    report.get_by_label("小区 Compound").select_option(label=args["offline_compound"])
    report.get_by_label("类别 Category").select_option(label=category)
    report.get_by_text("低 Low").click()
    report.get_by_label("情况描述 Description").fill(args["offline_description"])
    report.get_by_role("button", name="报告 Report").click()
    expect(report.get_by_text("No network: kept on this phone")).to_be_visible(timeout=30_000)
    waiting = page.get_by_text("1 waiting to be sent", exact=False)
    expect(waiting).to_be_visible()
    page.context.set_offline(False)  # the browser's "online": pending.js sends it by itself
    expect(waiting).to_have_count(0)
    office.network_loss_expected()

    office.open("incidents", "事件 Incidents")
    mine = page.get_by_role("region", name="我报告的 My reports")
    expect(mine.get_by_role("article")).to_have_count(2)
    reported = mine.get_by_role("article", name=f"{compound} {category}")
    expect(reported.get_by_text("未解决 Open", exact=True)).to_be_visible()
    expect(reported.get_by_text("未确认 Not yet")).to_be_visible()
    expect(reported.get_by_text(args["description"])).to_be_visible()
    expect(mine.get_by_role("button", name="确认收到 Acknowledge")).to_have_count(0)  # not the leader's
    office.phone_check("incidents_volunteer", found)
    picture(office, "incidents-mine-phone")

    # -- the zone's leader ---------------------------------------------------------------------
    log_in_as(office, args["leader_username"], args["leader_password"])
    office.open("incidents", "事件 Incidents")
    queue = page.get_by_role("region", name="我片区未解决的事件 Open in my zones")
    card = queue.get_by_role("article", name=f"{compound} {category}")
    expect(card).to_be_visible()
    expect(card.get_by_text(args["description"])).to_be_visible()
    expect(card.get_by_text("高 High")).to_be_visible()
    office.phone_check("incidents_leader", found)
    card.get_by_role("button", name=f"确认 Acknowledge: {compound}, {category}").click()
    expect(card.get_by_text("已确认，不会再上报")).to_be_visible()
    expect(card.get_by_text("我 Me")).to_be_visible()  # who acknowledged it
    picture(office, "incidents-phone")

    card.get_by_role("link", name="查看与解决 Open and resolve").click()
    expect(page.get_by_role("heading", name="事件 Incident", exact=True)).to_be_visible()
    resolve = page.get_by_role("form", name="解决 Resolve")
    resolve.get_by_label("处理结果 Resolution").fill(args["resolution"])
    office.phone_check("incident", found)
    picture(office, "incident-phone")
    resolve.get_by_role("button", name="标为已解决 Resolve").click()
    office.shows("已解决。Resolved.")
    expect(page.get_by_text("未解决 Open")).to_have_count(0)
    expect(page.get_by_text("已解决 Resolved", exact=True)).to_be_visible()
    office.shows(args["resolution"])
    office.phone_check("incident_resolved", found)
    found["incident_url"] = page.url

    # -- the office, at a desk: zones without a leader come first ------------------------------
    log_in_as(office, "admin", args["admin_password"])
    page.set_viewport_size(DESK)
    office.open("incidents", "事件 Incidents")
    queue = page.get_by_role("region", name="各片区未解决的事件 Open incidents, every zone")
    first = queue.get_by_role("article").first
    expect(first.get_by_text("无队长 No leader")).to_be_visible()
    leaderless = queue.get_by_role("article", name=f"{args['leaderless_compound']} {category}")
    expect(leaderless.first).to_be_visible()
    found["admin_first_is_leaderless"] = True
    picture(office, "incidents")
    page.set_viewport_size(PHONE)
    office.phone_check("incidents_office", found)
    return found


@journey
def forgotten_patrol(office: Office, args: dict) -> dict:
    """A volunteer whose patrol the service closed sees, on the phone, that it was closed
    automatically after 4 hours; the office, at a desk, finds it among the patrols closed
    automatically and corrects its times (a reason missing refused by the field, times
    the wrong way round refused by the API, in words by the field), then sees it corrected."""
    page, found = office.page, {}
    page.set_viewport_size(PHONE)
    office.open("patrol", "巡逻 Patrol")
    notice = page.locator(".closed-automatically")
    expect(notice).to_contain_text("4 小时后已自动结束，计 4.0 小时")
    expect(notice).to_contain_text("closed automatically after 4 h and counts 4.0 h")
    found["member_notice"] = notice.inner_text()
    office.phone_check("patrol_closed", found)
    picture(office, "patrol-closed-phone")

    log_in_as(office, "admin", args["admin_password"])
    page.set_viewport_size(DESK)
    office.open("zones", "片区与巡逻队 Zones and teams")
    table = page.get_by_role("table", name="自动结束的巡逻 Patrols closed automatically")
    row = table.get_by_role("row").filter(has_text=args["member_name"])
    expect(row.get_by_text("自动结束 Closed automatically")).to_be_visible()
    expect(row).to_contain_text("4.0 小时 h")
    row.get_by_role("button", name="更正时间 Correct times").click()
    form = page.get_by_role("form", name="更正巡逻时间 Correct the times")
    form.get_by_label("开始 Started").fill(args["finished_local"])  # the wrong way round first
    form.get_by_label("结束 Finished").fill(args["started_local"])
    form.get_by_role("button", name="保存更正 Save correction").click()
    expect(form.get_by_text("请写明原因。Say why.")).to_be_visible()  # by the field, nothing sent
    form.get_by_label("原因 Reason").fill(args["reason"])
    office.refusal_expected(400)
    form.get_by_role("button", name="保存更正 Save correction").click()
    expect(form.get_by_text("After started_at.")).to_be_visible()
    form.get_by_label("开始 Started").fill(args["started_local"])
    form.get_by_label("结束 Finished").fill(args["finished_local"])
    form.get_by_role("button", name="保存更正 Save correction").click()
    office.shows("已更正 Times corrected")
    office.shows("2.5 小时 h")
    expect(row.get_by_text("已更正 Corrected")).to_be_visible()
    picture(office, "patrol-correct")
    page.set_viewport_size(PHONE)
    office.phone_check("zones_corrected", found)
    return found


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
