"""The pages of issue 17 in headless Chromium, as office_browser.py drives the
office's (its Office, launch flags and command line), in a process of its own:
活动 groups and a session recorded, service hours and their export, the
monthly report (on screen, printed on A4, as XLSX), a member's own service
on a phone, and the wall's activities and hours.

    python volunteer_browser.py JOURNEY URL USERNAME PASSWORD OUTDIR [JSON_ARGS]
"""
from __future__ import annotations

import re
import sys

from playwright.sync_api import expect

from office_browser import DESK, PHONE, Office, journey, main  # run as a script, beside it

TV = {"width": 1920, "height": 1080}


def scroll_width(office: Office) -> int:
    office.page.wait_for_timeout(150)
    return office.page.evaluate("document.documentElement.scrollWidth")


@journey
def groups_and_hours(office: Office, args: dict) -> dict:
    """A gateball team created with its leader chosen by name (a party member) and a helper ticked;
    a session with a bad count refused beside its field, then recorded; the leader's hours on the
    service-hours page; the tutor's weekend recorded as other service; the month exported as CSV."""
    page, found = office.page, {"scroll_widths": {}}
    office.open("groups", "文体队伍 Activity groups")
    new = page.get_by_role("form", name="新建文体队伍 New activity group")
    new.get_by_label("名称 Name").fill(args["group"])
    new.get_by_label("类型 Kind").select_option(label="体育 Sport")
    new.get_by_label("队长（党员）Leader").select_option(label=args["leader"])
    new.get_by_role("checkbox", name=args["helper"]).check()
    new.get_by_role("button", name="新建队伍 Create group").click()
    office.shows(f"已新建队伍 Group created: {args['group']}")
    card = page.get_by_role("region", name=args["group"], exact=True)
    expect(card).to_contain_text(args["leader"].split(" (")[0])
    expect(card).to_contain_text(args["helper"].split(" (")[0])

    card.get_by_role("button", name=f"记录活动 Record a session: {args['group']}").click()
    form = card.get_by_role("form", name=f"记录活动 Record a session: {args['group']}")
    form.get_by_label("时长（分钟）Minutes").fill("120")
    form.get_by_label("类型 Kind").select_option(label="比赛 Match")
    form.get_by_label("地点 Place").fill("社区门球场 Gateball court")
    form.get_by_label("参与居民人数").fill("很多 many")
    form.get_by_label("活动内容 What was done").fill("与邻社区的门球友谊赛 A friendly match")
    form.get_by_role("checkbox", name=args["helper"].split(" (")[0], exact=False).check()
    office.refusal_expected(400)
    form.get_by_role("button", name="记录活动 Record session").click()
    expect(form.locator("label", has_text="参与居民人数").get_by_role("alert")).to_be_visible()
    found["participants_error"] = form.locator("label", has_text="参与居民人数").get_by_role("alert").inner_text()
    form.get_by_label("参与居民人数").fill("24")
    form.get_by_role("button", name="记录活动 Record session").click()
    expect(card.get_by_role("status")).to_contain_text("已记录活动 Session recorded")
    sessions = card.get_by_role("table", name=f"本月活动 Sessions this month: {args['group']}")
    expect(sessions).to_contain_text("比赛 Match")
    expect(sessions).to_contain_text("24")
    found["sessions_row"] = sessions.locator("tbody tr").first.inner_text()
    office.screenshot("groups", phone=True)
    page.set_viewport_size(PHONE)
    found["scroll_widths"]["groups"] = scroll_width(office)
    page.set_viewport_size(DESK)

    office.open("hours", "志愿服务时长 Service hours")
    totals = page.get_by_role("table", name="每人时长 Hours per member")
    leader_name = args["leader"].split(" (")[0]
    leader_row = totals.locator("tr", has_text=leader_name)
    expect(leader_row).to_contain_text("2.0")
    other = page.get_by_role("form", name="记录其他服务 Record other service")
    other.get_by_label("成员 Member").select_option(label=args["leader"])
    other.get_by_label("时长（小时）Hours").fill("4")
    other.get_by_label("做了什么 What was done").fill(args["tutoring"])
    other.get_by_role("button", name="记录 Record").click()
    expect(other.get_by_role("status")).to_contain_text(f"已记录 Recorded: {leader_name} 4.0")
    expect(leader_row).to_contain_text("6.0")
    found["leader_row"] = leader_row.inner_text()
    records = page.get_by_role("table", name="服务记录 Service records")
    expect(records).to_contain_text(args["tutoring"])
    with page.expect_download() as csv:
        office.button("导出 Export (CSV)").click()
    found["csv_name"] = csv.value.suggested_filename
    found["csv"] = open(csv.value.path(), encoding="utf-8-sig").read()
    office.screenshot("hours", phone=True)
    page.set_viewport_size(PHONE)
    found["scroll_widths"]["hours"] = scroll_width(office)
    page.set_viewport_size(DESK)
    return found


@journey
def monthly_report(office: Office, args: dict) -> dict:
    """The report opens on last month; the month asked for shows its parts in words and figures;
    printed, it is the report alone on A4; its XLSX is downloaded."""
    page, found = office.page, {}
    office.open("report", "社区月报 Monthly report")
    found["default_month"] = page.get_by_label("月份 Month").input_value()
    page.get_by_label("月份 Month").fill(args["month"])
    office.button("查看 Show").click()
    expect(page.get_by_role("heading", name=re.compile("社区月报 Monthly report"))).to_contain_text(
        args["month_words"])
    volunteers = page.get_by_role("region", name=re.compile("文体活动与志愿服务"))
    expect(volunteers).to_contain_text(args["group"])
    found["url"] = page.url
    found["figures"] = {part: dict(zip(
        page.get_by_role("region", name=re.compile(heading)).locator(".figure span").all_inner_texts(),
        page.get_by_role("region", name=re.compile(heading)).locator(".figure b").all_inner_texts(), strict=True))
        for part, heading in (("patrol", "巡逻与事件"), ("donations", "募捐 Donation"), ("welfare", "帮扶个案"),
                              ("volunteers", "文体活动与志愿服务"))}
    found["said"] = {part: page.get_by_role("region", name=re.compile(heading)).locator(".said").inner_text()
                     for part, heading in (("patrol", "巡逻与事件"), ("volunteers", "文体活动与志愿服务"))}
    found["group_row"] = volunteers.locator("tr", has_text=args["group"]).inner_text()
    found["category_rows"] = page.get_by_role("table", name="事件类别 Incidents by category").locator(
        "tr", has_text="Illegal structure").all_inner_texts()
    found["page_text"] = page.locator("main").inner_text()
    office.screenshot("report", phone=True)
    page.set_viewport_size(PHONE)
    found["phone_scroll_width"] = scroll_width(office)
    page.set_viewport_size(DESK)

    with page.expect_download() as xlsx:
        office.button("下载 XLSX Download XLSX").click()
    found["xlsx_name"] = xlsx.value.suggested_filename

    page.emulate_media(media="print")
    found["print_hides"] = {"menu": page.locator("header.top").is_hidden(),
                            "controls": page.get_by_role("button", name="打印 Print").is_hidden()}
    page.screenshot(path=str(office.outdir / "report-print.png"), full_page=True)
    pdf = page.pdf(prefer_css_page_size=True)
    found["pdf_pages"] = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    found["pdf_media_boxes"] = sorted({box.decode() for box in re.findall(rb"/MediaBox\s*\[([^\]]+)\]", pdf)})
    page.emulate_media(media="screen")

    # A service that does not answer: the gateway's 503 names it (as it would with welfare stopped); the page
    # retries as it does any 503, then says so in words and shows no report with a hole in it.
    silent = {"error": {"code": "unavailable", "message": args["silent_message"], "details": {"services": ["welfare"]}}}
    page.route("**/api/v1/reports/monthly?*", lambda route: route.fulfill(status=503, json=silent))
    for _ in range(6):  # the first try and the page's five retries: Chromium logs each
        office.refusal_expected(503)
    page.get_by_label("月份 Month").fill(args["earlier_month"])
    office.button("查看 Show").click()
    expect(page.get_by_role("alert").filter(has_text="welfare")).to_be_visible(timeout=20_000)
    found["silent_alert"] = page.get_by_role("alert").filter(has_text="welfare").inner_text()
    found["silent_shows_figures"] = page.locator(".figure").count()
    return found


@journey
def my_service(office: Office, args: dict) -> dict:
    """On a phone: my hours this year by month and my latest records; as a group's leader,
    I record a session of my group from the phone."""
    page, found = office.page, {}
    page.set_viewport_size(PHONE)
    office.open("service", "我的服务 My service")
    expect(page.locator(".big-total")).to_have_text(args["total_hours"])
    found["months"] = page.get_by_role("list", name="每月时长 Hours by month").inner_text()
    found["records"] = page.get_by_role("region", name="最近的记录 Latest records").inner_text()
    office.phone_check("service", found)
    page.screenshot(path=str(office.outdir / "my-service-phone.png"), full_page=True)

    office.button(f"记录活动 Record a session: {args['group']}").click()
    form = page.get_by_role("form", name=f"记录活动 Record a session: {args['group']}")
    form.get_by_label("时长（分钟）Minutes").fill("60")
    form.get_by_label("类型 Kind").select_option(label="练习 Practice")
    form.get_by_label("地点 Place").fill("社区门球场 Gateball court")
    form.get_by_label("参与居民人数").fill("12")
    form.get_by_label("活动内容 What was done").fill("周三练习 Wednesday practice")
    office.phone_check("session", found)
    page.screenshot(path=str(office.outdir / "my-service-session-phone.png"), full_page=True)
    form.get_by_role("button", name="记录活动 Record session").click()
    office.shows(f"已记录活动 Session recorded: {args['group']}")
    expect(page.locator(".big-total")).to_have_text(args["total_after"])  # the leader's hour, at once
    page.set_viewport_size(DESK)
    page.screenshot(path=str(office.outdir / "my-service.png"), full_page=True)
    return found


@journey
def wall_volunteers(office: Office, args: dict) -> dict:
    """The wall: this month's sessions, participants and hours beside the rest, at a desk's size and
    a television's; a summary without the volunteers' part shows that part unavailable, the rest stays."""
    page, found = office.page, {}
    page.goto(office.url + "/dashboard")
    expect(page.locator("#status")).to_have_text("实时 live")
    counters = page.locator("#volunteer-counters")
    expect(counters).to_contain_text("本月活动 sessions")
    found["counters"] = counters.inner_text()
    found["sources"] = page.locator("#service-sources").inner_text()
    page.screenshot(path=str(office.outdir / "wall-volunteers.png"), full_page=True)
    page.set_viewport_size(TV)
    page.wait_for_timeout(300)
    page.screenshot(path=str(office.outdir / "wall-volunteers-tv.png"))
    found["tv_counter_px"] = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#volunteer-counters .counter b')).fontSize)")
    page.set_viewport_size(DESK)

    def without_volunteers(route):
        answer = route.fetch()
        body = answer.json()
        body["volunteers"] = {"available": False}
        route.fulfill(response=answer, json=body)
    page.route("**/api/v1/dashboard/summary", without_volunteers)
    page.reload()
    expect(page.locator("#volunteer-counters")).to_contain_text("暂不可用 unavailable")
    found["degraded_patrol"] = page.locator("#patrol-counters").inner_text()
    return found


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
