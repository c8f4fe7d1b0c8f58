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
PHONE = {"width": 360, "height": 740}  # the phones of the people in the field (issue 16)
# Every control a thumb presses; a link in running text is not one.
TOUCH_TARGETS = ("header.top nav a, header.top > button, main button, main a.button, main a.big-link, "
                 "main a.mine-card, main summary, main select, main input, main textarea, main label.choice")
# Every wait of a journey, expect()'s as well as an action's: in CI three test processes and
# their stacks share two cores, and a page may take seconds to answer.
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)

JOURNEYS = {}


def journey(fn):
    JOURNEYS[fn.__name__] = fn
    return fn


class Office:
    """One browser page logged in to the workspace, with what every journey needs."""

    def __init__(self, page: Page, url: str, outdir: Path):
        self.page, self.url, self.outdir = page, url.rstrip("/"), outdir
        self.console_errors: list[str] = []
        self.expected_refusals: list[str] = []
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

    def refusal_expected(self, status: int):
        """The journey provokes an API refusal on purpose (the page shows it in words): Chromium
        logs each refused request as a console error; one of this status is not a fault."""
        self.expected_refusals.append(f"the server responded with a status of {status} ")

    def unexpected_console_errors(self) -> list[str]:
        left, expected = [], list(self.expected_refusals)
        for text in self.console_errors:
            match = next((e for e in expected if text.startswith("Failed to load resource: " + e)), None)
            if match:
                expected.remove(match)
            else:
                left.append(text)
        return left

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

    def phone_check(self, page_name: str, found: dict):
        """What a phone asks of a page: nothing wider than the screen (`found["scroll_widths"]`),
        no control under 44 px (`found["small_targets"]`, each as [what, height])."""
        page = self.page
        page.wait_for_timeout(150)
        found.setdefault("scroll_widths", {})[page_name] = page.evaluate("document.documentElement.scrollWidth")
        small = page.evaluate("""(selector) => [...document.querySelectorAll(selector)]
            .filter((el) => el.offsetParent !== null && !(el.type === 'radio' && el.closest('label.choice')))
            .map((el) => [el.tagName + ' ' + (el.getAttribute('aria-label') || el.name || el.textContent.trim())
                            .slice(0, 40), Math.round(el.getBoundingClientRect().height)])
            .filter(([, h]) => h < 44)""", TOUCH_TARGETS)
        found.setdefault("small_targets", {})[page_name] = small

    def network_loss_expected(self):
        """The journey took the network away on purpose: Chromium logs each request that found
        none as a console error; those were the point, not a fault."""
        self.expected_refusals += ["net::ERR_INTERNET_DISCONNECTED"] * sum(
            "ERR_INTERNET_DISCONNECTED" in text for text in self.console_errors)

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


# -- The donation table, receipts and drives (desk.js, receipt.js, drives.js) --------------------------


def _receipt_rows(office: Office):
    return office.page.get_by_role("region", name="刚登记 Just recorded").locator("tbody tr")


@journey
def desk_queue(office: Office, args: dict) -> dict:
    """A queue at the donation table, with the keyboard alone: cash with a name (after a
    mistyped amount), goods, then anonymous cash with Record pressed twice."""
    keys = office.page.keyboard
    office.open(f"desk/{args['campaign_id']}", "捐赠登记 Donation table")
    kind = office.field("类型 Kind")
    expect(kind).to_be_focused()  # the table opens ready for the first gift
    office.count_mouse_events()
    rows = _receipt_rows(office)

    keys.press("Tab")
    keys.type("abc")
    keys.press("Enter")
    office.shows("Type the amount in yuan")
    expect(office.field("金额（元）Amount")).to_be_focused()
    keys.press("Control+A")
    keys.type("0")
    keys.press("Enter")
    office.shows("The amount must be more than 0")
    keys.press("Control+A")
    keys.type("200")
    keys.press("Tab")
    keys.type(args["donor"])
    keys.press("Enter")
    expect(rows).to_have_count(1)
    expect(kind).to_be_focused()  # cleared, and ready for the next
    expect(office.field("金额（元）Amount")).to_have_value("")

    keys.press("ArrowDown")  # 物品 Goods
    category = office.field("物品类别 Goods category")
    expect(category).to_be_visible()
    keys.press("Tab")
    keys.press("ArrowDown")  # the first category
    goods_category = category.input_value()
    keys.press("Tab")
    keys.type("3")
    keys.press("Tab")
    keys.type(args["goods_donor"])
    keys.press("Enter")
    expect(rows).to_have_count(2)
    expect(kind).to_be_focused()
    expect(kind).to_have_value("in_kind")  # the kind is kept

    keys.press("ArrowUp")  # 现金 Cash
    keys.press("Tab")
    keys.type("35.5")
    keys.press("Tab")  # the donor's name: none
    keys.press("Tab")
    keys.press("Space")  # 匿名 Anonymous
    expect(office.field("捐赠人 Donor name")).to_be_disabled()
    keys.press("Tab")
    expect(office.button("登记 Record")).to_be_focused()
    keys.press("Enter")
    keys.press("Enter")  # pressed twice: still one gift
    expect(rows).to_have_count(3)
    office.shows("已收现金 Cash received: ¥235.50")
    office.shows("共 3 笔 gifts")
    expect(rows.nth(0)).to_contain_text("匿名 Anonymous")
    expect(rows.nth(0)).to_contain_text("¥35.50")
    expect(rows.nth(1)).to_contain_text("× 3")
    expect(rows.nth(2)).to_contain_text(args["donor"])
    mice = office.mouse_events()
    found = [{"receipt_no": rows.nth(i).locator("td").nth(0).inner_text(),
              "code": rows.nth(i).locator("td").nth(3).inner_text()} for i in (2, 1, 0)]
    expect(rows.nth(0).get_by_role("link", name="打印收据 Print receipt")).to_have_attribute(
        "href", f"#/receipt/{args['campaign_id']}/{found[2]['receipt_no']}")
    office.screenshot("desk", phone=True)
    return {"gifts": found, "goods_category": goods_category, "mouse_events": mice}


@journey
def desk_lost_answer(office: Office, args: dict) -> dict:
    """A gift whose first answer is lost: the gateway records it, but the page is told
    503 (Retry-After: 1), as when a proxy or the network drops the answer. The page
    must try again by itself with the same Idempotency-Key and show one gift."""
    keys_sent, answers = [], []

    def lose_the_first_answer(route):
        keys_sent.append(route.request.headers.get("idempotency-key"))
        real = route.fetch()  # the gift reaches the real gateway and is recorded
        answers.append(real.status)
        if len(keys_sent) == 1:
            route.fulfill(status=503, headers={"Retry-After": "1", "Content-Type": "application/json"},
                          body='{"error": {"code": "unavailable", "message": "lost on the way"}}')
        else:
            route.fulfill(response=real)

    office.refusal_expected(503)
    office.page.route("**/api/v1/campaigns/*/donations", lambda route: lose_the_first_answer(route)
                      if route.request.method == "POST" else route.continue_())
    office.open(f"desk/{args['campaign_id']}", "捐赠登记 Donation table")
    expect(office.field("类型 Kind")).to_be_focused()  # the table is ready for a gift
    keys = office.page.keyboard
    keys.press("Tab")
    keys.type(args["amount_yuan"])
    keys.press("Tab")
    keys.type("陈静")
    keys.press("Enter")
    office.shows("Busy: retrying")  # the page says what it is doing
    expect(_receipt_rows(office)).to_have_count(1)
    return {"keys_sent": keys_sent, "answers": answers,
            "receipt_no": _receipt_rows(office).nth(0).locator("td").nth(0).inner_text()}


@journey
def receipt_print(office: Office, args: dict) -> dict:
    """A receipt on screen, its two print layouts, and what a printer gets: the receipt alone."""
    page = office.page
    office.open(f"receipt/{args['campaign_id']}/{args['receipt_no']}", "捐赠收据 Donation receipt")
    office.shows(args["receipt_no"])
    office.shows(args["code"])
    office.shows("¥200.00")
    qr = page.get_by_role("img", name="QR")
    expect(qr).to_be_visible()
    qr_width = qr.evaluate("img => img.naturalWidth")
    lookup = page.locator(".lookup").inner_text()
    page.evaluate("() => { window.__prints = 0; window.print = () => { window.__prints += 1; }; }")
    office.button("打印 Print (receipt printer)").click()
    receipt = page.get_by_role("article", name="收据 Receipt")
    expect(receipt).to_have_class("receipt roll")
    page.wait_for_function("() => window.__prints === 1")
    office.screenshot("receipt-roll")
    office.button("打印 Print (A5)").click()
    expect(receipt).to_have_class("receipt")
    page.wait_for_function("() => window.__prints === 2")
    office.screenshot("receipt", phone=True)
    page.emulate_media(media="print")
    expect(page.get_by_role("navigation")).to_be_hidden()
    expect(office.button("打印 Print (A5)")).to_be_hidden()
    expect(receipt).to_be_visible()
    page.screenshot(path=str(office.outdir / "receipt-print.png"), full_page=True)
    pdf = office.outdir / "receipt-a5.pdf"
    page.pdf(path=str(pdf), format="A5", print_background=True)
    page.emulate_media(media="screen")
    return {"lookup": lookup, "qr_src": qr.get_attribute("src")[:22], "qr_width": qr_width,
            "pdf_bytes": pdf.stat().st_size}


@journey
def drive_corrections(office: Office, args: dict) -> dict:
    """On a drive's page: send goods on, be refused voiding the goods gift (some were sent), void
    a cash gift recorded in error and see the totals go down, then download the ledger."""
    page = office.page
    office.open(f"drives/{args['campaign_id']}", "募捐活动 Drive")
    expect(page.locator(".drive-cash")).to_have_text("¥235.50")
    expect(page.locator(".drive-count")).to_have_text("3")

    office.field("目的地 Destination").fill("东区安置点 East shelter")
    office.field("物品类别 Category").select_option(args["goods_category"])
    office.field("数量 Quantity").fill("2")
    office.button("发出 Send").click()
    office.shows("已发出 Sent")
    expect(page.get_by_role("row").filter(has_text="东区安置点 East shelter")).to_contain_text("× 2")

    office.field("发往 To").select_option("case")  # chosen by compound, categories and summary: no name
    case = office.field("帮扶个案 Hardship case")
    expect(case.locator("option", has_text=args["case_summary"])).to_have_count(1)
    case.select_option(label=case.locator("option", has_text=args["case_summary"]).inner_text())
    office.field("物品类别 Category").select_option(args["goods_category"])
    office.field("数量 Quantity").fill("1")
    office.button("发出 Send").click()
    expect(page.get_by_role("row").filter(has_text="帮扶个案 A hardship case")).to_contain_text("× 1")
    expect(page.get_by_text(args["case_person"])).to_have_count(0)

    goods_row = page.get_by_role("row").filter(has_text=args["goods_receipt"])
    goods_row.get_by_role("button", name="作废 Void").click()
    office.field("作废原因 Reason").fill("登记错了 Wrong entry")
    goods_row.get_by_role("button", name="确认作废 Void").click()
    expect(goods_row.get_by_role("alert")).to_contain_text("dispatched")
    goods_row.get_by_role("button", name="取消 Cancel").click()
    expect(goods_row.get_by_role("button", name="作废 Void")).to_be_focused()
    # Chromium logs the refusal as a failed resource: expected here, and only this one.
    refused = [e for e in office.console_errors if "409" in e]
    assert len(refused) == 1, office.console_errors
    office.console_errors.remove(refused[0])

    row = page.get_by_role("row").filter(has_text=args["receipt_no"])
    row.get_by_role("button", name="作废 Void").click()
    expect(office.field("作废原因 Reason")).to_be_focused()
    row.get_by_role("button", name="确认作废 Void").click()
    office.shows("Say why the gift is voided")  # no reason, nothing sent
    office.field("作废原因 Reason").fill(args["reason"])
    office.page.keyboard.press("Enter")
    expect(row.get_by_text("已作废 Voided")).to_be_visible()
    expect(row.get_by_role("link", name=args["receipt_no"])).to_be_focused()
    expect(page.locator(".drive-cash")).to_have_text("¥35.50")
    expect(page.locator(".drive-count")).to_have_text("2")
    expect(row.get_by_role("button", name="作废 Void")).to_have_count(0)
    office.screenshot("drive-detail", phone=True)

    with page.expect_download() as download:
        office.button("导出台账 Export ledger (XLSX)").click()
    ledger = office.outdir / "ledger.xlsx"
    download.value.save_as(str(ledger))
    with page.expect_download() as summary_download:
        office.button("导出公示 Export summary (CSV)").click()
    summary = office.outdir / "summary.csv"
    summary_download.value.save_as(str(summary))

    row.get_by_role("link", name=args["receipt_no"]).click()
    expect(page.get_by_role("heading", name="捐赠收据 Donation receipt")).to_be_visible()
    office.shows("已作废 VOIDED")
    office.screenshot("receipt-voided")
    return {"ledger": str(ledger), "ledger_name": download.value.suggested_filename, "summary": str(summary)}


@journey
def drives_manage(office: Office, args: dict) -> dict:
    """Open a drive from the list's form (a goal of "abc" first), rename it and lower its goal,
    and close it with a second press."""
    page = office.page
    office.open("drives", "募捐活动 Drives")
    office.field("名称 Name").fill(args["drive_name"])
    office.field("目标（元）Goal").fill("abc")
    office.field("结束日期 Ends on").fill(args["ends_on"])
    office.button("开始 Open").click()
    office.shows("Type the goal in yuan")
    office.field("目标（元）Goal").fill("5000")
    office.button("开始 Open").click()
    office.shows("已开始 Opened")
    expect(page.get_by_role("row").filter(has_text=args["drive_name"])).to_contain_text("¥5,000.00")
    office.screenshot("drives", phone=True)

    page.get_by_role("link", name=args["drive_name"]).first.click()
    expect(page.get_by_role("heading", name=f"募捐活动 Drive: {args['drive_name']}")).to_be_visible()
    office.field("名称 Name").fill(args["drive_name"] + " 二期 II")
    office.field("目标（元）Goal").fill("4000.5")
    office.button("保存 Save").click()
    office.shows("已保存 Saved")
    expect(page.get_by_role("heading", name=f"募捐活动 Drive: {args['drive_name']} 二期 II")).to_be_visible()
    office.shows("目标 Goal ¥4,000.50")

    office.button("结束活动 Close drive").click()
    confirm = office.button("确认结束 Confirm close")
    expect(confirm).to_be_focused()
    confirm.click()
    office.shows("已结束 Closed")
    expect(office.field("目标（元）Goal")).to_be_disabled()
    return {"url": page.url}


# == People pages (members, zones and teams, categories, households and cases, audit) ==========


@journey
def add_category(office: Office, args: dict) -> dict:
    """The office adds an incident category and sees it listed by its labels; retiring
    `hardship` is refused in words."""
    page = office.page
    office.open("categories", "类别 Categories")
    office.field("种类 Kind").select_option(label="事件 Incident")
    office.field("代码 Code").fill(args["code"])
    office.field("中文名称 Chinese label").fill(args["label_zh"])
    office.field("英文名称 English label").fill(args["label_en"])
    office.button("新增类别 Add category").click()
    office.shows(f"已新增 Added: {args['label_zh']} {args['label_en']}")
    incidents_card = page.get_by_role("region", name="事件 Incident")
    incidents = incidents_card.get_by_role("table")
    row = incidents.get_by_role("row").filter(has_text=args["code"])
    expect(row).to_contain_text(args["label_zh"])
    expect(row).to_contain_text(args["label_en"])
    hardship = incidents.get_by_role("row").filter(has_text="hardship")
    hardship.get_by_role("button", name="停用 Retire").click()
    office.refusal_expected(409)
    hardship.get_by_role("button", name="确认停用 Confirm retire").click()
    refusal = incidents_card.get_by_role("alert")
    expect(refusal).to_be_visible()
    office.screenshot("categories", phone=True)
    return {"listed": row.count(), "hardship_refusal": refusal.inner_text()}


@journey
def register_member(office: Office, args: dict) -> dict:
    """Register a member by keyboard alone, find them by phone typed another way, edit
    them; disabling the last admin is refused in words."""
    page = office.page
    office.open("members", "成员 Members")
    office.count_mouse_events()
    office.field("用户名 Username").focus()
    page.keyboard.type(args["account"])
    page.keyboard.press("Tab")
    page.keyboard.type("a-long-initial-password")
    page.keyboard.press("Tab")
    page.keyboard.type(args["full_name"])
    page.keyboard.press("Tab")
    page.keyboard.type(args["phone"])
    page.keyboard.press("Tab")
    page.keyboard.type(args["compound"])
    page.keyboard.press("Enter")
    office.shows(f"已登记 Registered: {args['full_name']}")
    keyboard_only = office.mouse_events() == 0
    # Found by the digits of the phone, typed without its spaces.
    office.field("关键词 Name, phone or username").fill(args["search"])
    office.button("查找 Search").click()
    table = page.get_by_role("table", name="成员 Members")
    expect(table.get_by_role("row")).to_have_count(2)  # the header and the one found
    row = table.get_by_role("row").filter(has_text=args["full_name"])
    expect(row).to_contain_text(args["phone"])
    expect(row).to_contain_text("志愿者 Member")
    # Edit: a party member now.
    row.get_by_role("button", name="编辑 Edit").click()
    panel = page.get_by_role("region", name="编辑成员 Edit member")
    panel.get_by_label("党员 Party member").check()
    panel.get_by_role("button", name="保存 Save").click()
    expect(panel.get_by_role("status")).to_contain_text("已保存 Saved")
    expect(row).to_contain_text("是 Yes")
    office.screenshot("members", phone=True)
    # The only admin cannot be disabled.
    office.field("关键词 Name, phone or username").fill("admin")
    office.field("角色 Role").select_option(label="管理员 Admin")
    office.button("查找 Search").click()
    admin_row = table.get_by_role("row").filter(has_text="admin").first
    office.refusal_expected(409)
    admin_row.get_by_role("button", name="停用 Disable").click()
    refusal = page.get_by_role("alert").filter(has_text="last active admin")
    expect(refusal).to_be_visible()
    return {"keyboard_only": keyboard_only, "last_admin_refusal": refusal.inner_text()}


@journey
def build_team(office: Office, args: dict) -> dict:
    """Create a zone of two compounds and build its team by name: a leader from a list,
    two members ticked after filtering by name."""
    page = office.page
    office.open("zones", "片区与巡逻队 Zones and teams")
    office.field("名称 Name").fill(args["zone"])
    office.field("小区 Compounds").fill("\n".join(args["compounds"]))
    office.button("新建片区 New zone").click()
    office.shows(f"已新建片区 Zone created: {args['zone']}")
    card = page.get_by_role("region", name=args["zone"], exact=True)
    expect(card).to_contain_text(args["compounds"][1])
    card.get_by_role("button", name="编辑巡逻队 Edit team").click()
    team = card.get_by_role("form", name=f"巡逻队 Team: {args['zone']}")
    team.get_by_label("队长 Leader").select_option(label=args["leader"])
    for member in args["members"]:
        team.get_by_label("筛选 Filter").fill(member.split(" ")[0])
        team.get_by_role("checkbox", name=member).check()
    team.get_by_label("筛选 Filter").fill("")
    office.screenshot("zones-team", phone=True)
    team.get_by_role("button", name="保存巡逻队 Save team").click()
    office.shows(f"已保存巡逻队 Team saved: {args['zone']}")
    leader_name = args["leader"].split(" (")[0]
    expect(card).to_contain_text(leader_name)
    for member in args["members"]:
        expect(card).to_contain_text(member.split(" (")[0])
    expect(card).to_contain_text("从未巡逻 Never patrolled")
    office.screenshot("zones", phone=True)
    return {"team_shown": True}


@journey
def household_case(office: Office, args: dict) -> dict:
    """A household registered with two people, a case opened for it with a party member
    chosen by name, assigned to another by name, closed and reopened; the list finds it
    by its assignee, and the audit log shows the reads by name."""
    household_id, typo_error = register_household(office, args)
    case_id = open_case_for_household(office, args)
    work_on_case(office, args)
    find_case_and_audit(office, args)
    confirmed_id = confirm_draft(office, args)
    return {"household_id": household_id, "case_id": case_id, "typo_error": typo_error, "confirmed_id": confirmed_id}


def register_household(office: Office, args: dict) -> tuple[str, str]:
    """A new household of two people, a typo in a birth year first (shown by its field)."""
    page = office.page
    office.open("households", "住户 Households")
    form = page.get_by_role("form", name="新建住户 New household")
    form.get_by_label("小区 Compound").fill(args["compound"])
    form.get_by_label("地址 Address").fill(args["address"])
    form.get_by_label("联系电话 Contact phone").fill(args["phone"])
    first, second = args["people"]
    person = form.get_by_role("group", name="Person 1")
    person.get_by_label("姓名 Name").fill(first["name"])
    person.get_by_label("关系 Relation").fill(first["relation"])
    person.get_by_label("出生年份 Birth year").fill("19x6")  # a typo: the API names the field
    person.get_by_label("状况 Conditions").fill("、".join(first["conditions"]))
    form.get_by_role("button", name="添加一人 Add person").click()
    person = form.get_by_role("group", name="Person 2")
    expect(person.get_by_label("姓名 Name")).to_be_focused()
    person.get_by_label("姓名 Name").fill(second["name"])
    person.get_by_label("关系 Relation").fill(second["relation"])
    person.get_by_label("出生年份 Birth year").fill(str(second["birth_year"]))
    office.refusal_expected(400)
    form.get_by_role("button", name="新建住户 New household").click()
    first_person = form.get_by_role("group", name="Person 1")
    expect(first_person.get_by_role("alert")).to_be_visible()  # the birth year, next to its field
    expect(first_person.get_by_label("出生年份 Birth year")).to_be_focused()
    typo_error = first_person.get_by_role("alert").inner_text()
    first_person.get_by_label("出生年份 Birth year").fill(str(first["birth_year"]))
    form.get_by_role("button", name="新建住户 New household").click()
    expect(page.get_by_role("heading", name=f"住户 Household: {args['compound']} {args['address']}")).to_be_visible()
    expect(page.get_by_role("table", name="家庭成员 People")).to_contain_text(second["name"])
    office.screenshot("household", phone=True)
    return page.url.rsplit("/", 1)[1], typo_error


def open_case_for_household(office: Office, args: dict) -> str:
    """On the household's page: categories by label, the party member by name."""
    page = office.page
    opening = page.get_by_role("form", name="开立个案 Open case")
    for label in args["categories"]:
        opening.get_by_label(label).check()
    opening.get_by_label("概况 Summary").fill(args["summary"])
    opening.get_by_label("负责党员 Assignee").select_option(label=args["first_assignee"])
    opening.get_by_role("button", name="开立个案 Open case").click()
    expect(page.get_by_role("heading", name=f"个案 Case: {args['compound']}")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text(args["first_assignee"].split(" (")[0])
    return page.url.rsplit("/", 1)[1]


def work_on_case(office: Office, args: dict):
    """On the case's page: assigned to another party member by name, closed, reopened."""
    page = office.page
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("待跟进 Open")
    assign = page.get_by_role("form", name="指派 Assign")
    assign.get_by_label("负责党员 Party member").select_option(label=args["second_assignee"])
    assign.get_by_role("button", name="指派 Assign").click()
    office.shows("已指派 Assigned")
    expect(facts).to_contain_text(args["second_assignee"].split(" (")[0])
    closing = page.get_by_role("form", name="结案 Close")
    closing.get_by_label("结果 Outcome").fill(args["outcome"])
    closing.get_by_role("button", name="结案 Close").click()
    office.shows("已结案 Closed: 已结案 Closed")
    expect(facts).to_contain_text(args["outcome"])
    reopening = page.get_by_role("form", name="重新打开 Reopen")
    office.refusal_expected(400)
    reopening.get_by_role("button", name="重新打开 Reopen").click()  # no reason yet
    expect(reopening.get_by_role("alert").first).to_be_visible()
    reopening.get_by_label("原因 Reason").fill(args["reason"])
    reopening.get_by_role("button", name="重新打开 Reopen").click()
    office.shows("已重新打开 Reopened")
    expect(facts).to_contain_text("待跟进 Open")
    office.shows(args["reason"])
    office.screenshot("case", phone=True)


def find_case_and_audit(office: Office, args: dict):
    """The list filtered by the assignee's name finds the case, a person's name finds the
    household; the audit log names the reader."""
    page = office.page
    office.open("cases", "帮扶个案 Cases")
    office.field("负责人 Assignee").select_option(label=args["second_assignee"])
    office.button("查找 Search").click()
    cases = page.get_by_role("table", name="个案 Cases")
    expect(cases.get_by_role("row")).to_have_count(2)
    expect(cases).to_contain_text(args["categories"][0])
    office.screenshot("cases", phone=True)
    office.open("households", "住户 Households")
    office.field("地址或姓名 Address or name").fill(args["people"][1]["name"])
    office.button("查找 Search").click()
    expect(page.get_by_role("table", name="住户 Households")).to_contain_text(args["address"])
    office.screenshot("households", phone=True)
    office.open("audit", "查阅记录 Audit log")
    audit = page.get_by_role("table", name="查阅记录 Audit log")
    expect(audit).to_contain_text("查看个案 Read a case")
    office.screenshot("audit", phone=True)

def confirm_draft(office: Office, args: dict) -> str:
    """A hardship found on patrol is a draft: the office confirms it for the household
    (found in the draft's compound), with a category and a party member by name."""
    page = office.page
    office.open("cases", "帮扶个案 Cases")
    office.field("状态 Status").select_option(label="待确认 Draft")
    office.button("查找 Search").click()
    # Wait for the search's answer: the list shown before it holds other cases, and a row that
    # moves as the answer comes in can take the click on none of its links (once in CI).
    rows = page.get_by_role("table", name="个案 Cases").locator("tbody tr")
    expect(rows.filter(has_not_text="待确认 Draft")).to_have_count(0)
    expect(office.button("查找 Search")).to_be_enabled()
    rows.first.get_by_role("link", name="查看个案 Open case").click()
    expect(page.locator("dl.facts")).to_contain_text("待确认 Draft")
    confirm = page.get_by_role("form", name="确认个案 Confirm case")
    names = "、".join(person["name"] for person in args["people"])
    confirm.get_by_label("住户 Household").select_option(label=f"{args['address']} · {names}")
    confirm.get_by_label(args["categories"][0]).check()
    confirm.get_by_label("概况 Summary").fill(args["summary"])
    confirm.get_by_label("负责党员 Assignee").select_option(label=args["first_assignee"])
    confirm.get_by_role("button", name="确认 Confirm").click()
    office.shows("已确认为个案 Confirmed as a case")
    expect(page.locator("dl.facts")).to_contain_text("待跟进 Open")
    return page.url.rsplit("/", 1)[1]


@journey
def household_privacy(office: Office, args: dict) -> dict:
    """On a household's page: a person's consent recorded, then withdrawn (the table shows the
    latest), everything held downloaded as a file; its case closed with how it ended, refused
    erasure before the retention period (the page says from when), erased after it, and both
    case and household shown erased."""
    page = office.page
    office.open(f"households/{args['household_id']}", "住户 Household")
    consents = page.get_by_role("form", name="记录同意 Record consent")
    for answer in ("同意 Consented", "撤回 Withdrawn"):
        consents.get_by_label("家庭成员 Person").select_option(label=args["person"])
        consents.get_by_label("用途 Purpose").select_option(label="记录健康状况 Recording health conditions")
        consents.get_by_label("同意或撤回 Consent or withdrawal").select_option(label=answer)
        consents.get_by_role("button", name="记录 Record").click()
        office.shows(f"已记录 Recorded: {args['person']} · 记录健康状况 Recording health conditions · {answer}")
    table = page.get_by_role("table", name="知情同意 Consents")
    expect(table.get_by_role("row")).to_have_count(2)  # the header and the one current answer
    expect(table).to_contain_text("撤回 Withdrawn")
    office.screenshot("household-consents", phone=True)
    with page.expect_download() as download:
        office.button("导出全部资料 Export everything held").click()
    exported = office.outdir / "household.json"
    download.value.save_as(str(exported))

    office.open(f"cases/{args['case_id']}", "个案 Case")
    closing = page.get_by_role("form", name="结案 Close")
    closing.get_by_label("结果 Outcome").fill(args["outcome"])
    closing.get_by_label("结案类型 How it ended").select_option(label="已搬走 Moved away")
    closing.get_by_role("button", name="结案 Close").click()
    office.shows("已结案 Closed: 已结案 Closed")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("已搬走 Moved away")
    erasing = page.get_by_role("form", name="删除个人资料 Erase personal details")
    erasing.get_by_label("原因 Reason").fill("保留期满 Retention period over")
    office.refusal_expected(409)
    erasing.get_by_role("button", name="删除个人资料 Erase").click()
    expect(erasing.get_by_role("alert").first).to_contain_text("It may be erased from")
    early = erasing.get_by_role("alert").first.inner_text()
    page.wait_for_timeout(args["retention_seconds"] * 1000 + 500)
    erasing.get_by_label("原因 Reason").fill("保留期满 Retention period over")
    erasing.get_by_role("button", name="删除个人资料 Erase").click()
    office.shows("个人资料已删除 Personal details erased")
    expect(facts).to_contain_text("已删除 Erased")
    expect(page.get_by_role("form", name="重新打开 Reopen")).to_have_count(0)
    office.screenshot("case-erased", phone=True)

    office.open(f"households/{args['household_id']}", "住户 Household")
    office.shows("个人资料已删除 Personal details")
    expect(page.get_by_role("table", name="家庭成员 People")).not_to_contain_text(args["person"])
    expect(page.get_by_role("form", name="开立个案 Open case")).to_have_count(0)
    expect(page.get_by_role("form", name="记录同意 Record consent")).to_have_count(0)
    found: dict = {}
    page.set_viewport_size(PHONE)
    office.phone_check("household-erased", found)
    page.set_viewport_size(DESK)
    office.screenshot("household-erased", phone=True)
    return {"export": str(exported), "export_name": download.value.suggested_filename, "early": early, **found}


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
    print(json.dumps({"ok": True, "console_errors": office.unexpected_console_errors(), **(found or {})}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
