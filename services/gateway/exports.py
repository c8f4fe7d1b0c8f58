"""Downloads for the office's spreadsheets: a drive's ledger and its summary,
as CSV or XLSX, and the monthly report as a workbook. Rows in, bytes out: one home for how a table becomes a file.

A spreadsheet program runs a cell that starts with = + - @ (or a tab or a
carriage return, which some strip first) as a formula: a donor's "name" of
`=HYPERLINK(...)` would run on the office's computer. So every text cell that
starts so gets a leading single quote, in both formats (a CSV saved again from
the XLSX stays safe), and XLSX text is written with write_string, never
guessed at by write(). Numbers stay numbers."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import xlsxwriter

FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
ANONYMOUS = "匿名 Anonymous"
LEDGER_HEADER = ("收据号 receipt", "日期 date", "类型 kind", "金额(元) amount (yuan)", "物资 goods",
                 "捐赠人 donor", "已作废 voided", "作废原因 void reason")
SUMMARY_HEADER = ("项目 item", "类别 category", "去向 to", "数值 value")
SERVICE_HEADER = ("日期 date", "成员 member", "来源 source", "角色 role", "小时 hours", "分钟 minutes",
                  "内容 what")
SOURCE_WORDS = {"patrol": "巡逻 patrol", "session": "活动 session", "other": "其他 other"}
ROLE_WORDS = {"patrol": "巡逻 patrol", "leader": "队长 leader", "helper": "骨干 helper"}


def safe_text(value: str) -> str:
    """Text that no spreadsheet takes for a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def yuan(fen: int | None) -> Decimal | None:
    """Fen as yuan with two decimals (exact: never a float on the way)."""
    return None if fen is None else (Decimal(fen) / 100).quantize(Decimal("0.01"))


def goods(items: list[dict], labels: dict[str, str]) -> str:
    """`衣物 Clothing ×3; 被褥 Bedding ×2`: each category by its label (`labels`: code -> label)."""
    return "; ".join(f"{labels.get(item['category'], item['category'])} ×{item['quantity']}" for item in items)


def ledger_rows(ledger: dict, labels: dict[str, str]) -> list[tuple]:
    """One row per gift, oldest first, as LEDGER_HEADER names the columns."""
    return [(row["receipt_no"], row["recorded_on"], row["kind"], yuan(row["amount_fen"]), goods(row["items"], labels),
             ANONYMOUS if row["anonymous"] or not row["donor_name"] else row["donor_name"],
             "yes" if row["voided"] else "", row["void_reason"] or "")
            for row in ledger["rows"]]


def summary_rows(campaign: dict, labels: dict[str, str]) -> list[tuple]:
    """A drive's public summary (what /public/summary shows), as SUMMARY_HEADER names the columns."""
    totals = campaign["totals"]
    return [
        ("活动 drive", "", "", campaign["name"]),
        ("状态 status", "", "", campaign["status"]),
        ("开始 starts on", "", "", campaign["starts_on"]),
        ("结束 ends on", "", "", campaign["ends_on"]),
        ("目标(元) goal (yuan)", "", "", yuan(campaign["goal_fen"])),
        ("善款(元) cash (yuan)", "", "", yuan(totals["cash_fen"])),
        ("进度 progress %", "", "", campaign["progress_percent"]),
        ("捐赠笔数 donations", "", "", totals["donations"]),
        *(("收到物资 goods received", labels.get(category, category), "", quantity)
          for category, quantity in sorted(totals["items"].items())),
        *(("送出物资 goods sent", labels.get(sent["category"], sent["category"]), sent["to"], sent["quantity"])
          for sent in campaign["goods_sent"]),
    ]


def hours(minutes: int) -> Decimal:
    """Minutes as hours with one decimal, as the pages show them."""
    return (Decimal(minutes) / 60).quantize(Decimal("0.1"))


def service_rows(records: list[dict]) -> list[tuple]:
    """Service records (each with its member_name), as SERVICE_HEADER names the columns."""
    return [(r["served_on"], r["member_name"] or r["member_id"], SOURCE_WORDS.get(r["source"], r["source"]),
             ROLE_WORDS.get(r["role"], r["role"] or ""), hours(r["minutes"]), r["minutes"], r["what"] or "")
            for r in records]


def render(fmt: str, header: tuple, rows: list[tuple], sheet: str) -> bytes:
    """The table as a file: CSV (UTF-8 with a BOM, so spreadsheet programs read
    Chinese) or XLSX (one sheet, `sheet`). Cells: text, int, Decimal or None."""
    return _csv(header, rows) if fmt == "csv" else workbook([(sheet, header, rows)])


def _csv(header: tuple, rows: list[tuple]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in (header, *rows):
        writer.writerow(["" if cell is None else safe_text(cell) if isinstance(cell, str) else cell for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def workbook(sheets: list[tuple[str, tuple, list[tuple]]]) -> bytes:
    """XLSX with one sheet per (name, header, rows). A Decimal with one place
    (hours) shows one decimal, any other (yuan) two."""
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    bold = book.add_format({"bold": True})
    decimals = {-1: book.add_format({"num_format": "0.0"}), -2: book.add_format({"num_format": "0.00"})}
    for sheet, header, rows in sheets:
        worksheet = book.add_worksheet(sheet[:31])
        for r, row in enumerate((header, *rows)):
            for c, cell in enumerate(row):
                if cell is None or cell == "":
                    continue
                if isinstance(cell, str):
                    worksheet.write_string(r, c, safe_text(cell), bold if r == 0 else None)
                elif isinstance(cell, Decimal):
                    worksheet.write_number(r, c, float(cell), decimals.get(cell.as_tuple().exponent, decimals[-2]))
                else:
                    worksheet.write_number(r, c, cell)
        worksheet.set_column(0, len(header) - 1, 18)
    book.close()
    return out.getvalue()


# -- the monthly report (GET /reports/monthly?format=xlsx): counts only, one sheet per service's part --

REPORT_HEADER = ("项目 item", "名称 name", "说明 detail", "数值 value")
SESSION_KINDS = {"rehearsal": "排练 rehearsals", "practice": "练习 practice", "performance": "演出 performances",
                 "match": "比赛 matches"}
GROUP_KINDS = {"dance": "舞蹈 dance", "sport": "体育 sport", "art": "书画 art", "music": "音乐 music",
               "other": "其他 other"}
OUTCOMES = {"helped": "已帮扶 helped", "referred": "已转介 referred", "moved_away": "已搬离 moved away",
            "deceased": "已去世 deceased", "declined": "本人谢绝 declined", "other": "其他 other",
            "unspecified": "未注明 not stated"}
SOURCES = {"patrol": "巡逻 patrols", "session": "文体活动 group sessions", "other": "其他服务 other service"}
DRIVE_STATUS = {"open": "进行中 open", "closed": "已结束 closed"}
TO_A_CASE = "困难家庭 a household in need"


def _label(entry: dict) -> str:
    return f"{entry['label_zh']} {entry['label_en']}"


def monthly_report_sheets(report: dict) -> list[tuple[str, tuple, list[tuple]]]:
    """The report as the workbook's sheets: (name, REPORT_HEADER, rows)."""
    month = ("月份 month", "", "", report["month"])
    patrol, donations, welfare, volunteers = (report[part] for part in ("patrol", "donations", "welfare",
                                                                          "volunteers"))
    incidents = patrol["incidents"]
    patrol_rows = [
        month,
        ("巡逻次数 patrols", "", "", patrol["patrols"]),
        ("巡逻时长(小时) patrol hours", "", "", hours(patrol["patrol_minutes"])),
        ("自动结束的巡逻 patrols closed automatically", "", "", patrol["patrols_closed_automatically"]),
        ("巡逻到的片区 zones patrolled", "", f"共 of {patrol['zones_total']}", patrol["zones_covered"]),
        *(("片区巡逻次数 patrols in a zone", zone["name"], "", zone["patrols"]) for zone in patrol["zones"]),
        ("上报事件 incidents reported", "", "", incidents["reported"]),
        ("解决事件 incidents resolved", "", "", incidents["resolved"]),
        ("月底未解决 reported, unresolved at month end", "", "", incidents["open_at_month_end"]),
        *(row for entry in patrol["incidents_by_category"] for row in (
            ("按类别上报 reported by category", _label(entry), "", entry["reported"]),
            ("按类别解决 resolved by category", _label(entry), "", entry["resolved"]))),
    ]
    donation_rows = [
        month,
        ("善款(元) cash (yuan)", "", "", yuan(donations["cash_fen"])),
        ("捐赠笔数 gifts", "", "", donations["gifts"]),
        ("作废笔数 gifts voided", "", "", donations["voided"]),
        *(("收到物资 goods received", _label(item), "", item["quantity"]) for item in donations["items_received"]),
        *(row for drive in donations["drives"] for row in (
            ("募捐活动善款(元) drive's cash (yuan)", drive["name"], DRIVE_STATUS.get(drive["status"], drive["status"]),
             yuan(drive["cash_fen"])),
            ("募捐活动捐赠笔数 drive's gifts", drive["name"], "", drive["gifts"]))),
        *(("送出物资 goods sent", _label(item),
           f"{dispatch['dispatched_on']} → {TO_A_CASE if dispatch['to_case'] else dispatch['destination'] or ''}",
           item["quantity"])
          for dispatch in donations["dispatches"] for item in dispatch["items"]),
    ]
    welfare_rows = [
        month,
        ("新开个案 cases opened", "", "", welfare["cases_opened"]),
        *(("按类别新开 opened by category", _label(entry), "", entry["count"])
          for entry in welfare["cases_opened_by_category"]),
        ("得到帮扶的个案 cases helped", "", "", welfare["cases_helped"]),
        ("走访次数 visits", "", "", welfare["visits"]),
        ("转介 referrals made", "", "", welfare["referrals_made"]),
        ("转介获批 referrals granted", "", "", welfare["referrals_granted"]),
        ("结案 cases closed", "", "", welfare["cases_closed"]),
        *(("按结果结案 closed by outcome", OUTCOMES.get(kind, kind), "", count)
          for kind, count in welfare["closed_by_outcome"].items()),
        ("月底在办 open at month end", "", "", welfare["open_at_month_end"]),
    ]
    volunteer_rows = [
        month,
        ("活动的文体队伍 groups active", "", "", volunteers["groups_active"]),
        ("活动场次 sessions", "", "", volunteers["sessions"]),
        *(("按类型场次 sessions by kind", SESSION_KINDS.get(kind, kind), "", count)
          for kind, count in volunteers["sessions_by_kind"].items()),
        ("参与人次 participants", "", "", volunteers["participants"]),
        ("志愿服务时长(小时) volunteer hours", "", "", hours(volunteers["minutes"])),
        *(("按来源时长(小时) hours by source", SOURCES.get(source, source), "", hours(minutes))
          for source, minutes in volunteers["minutes_by_source"].items()),
        ("参与服务的成员 members serving", "", "", volunteers["members_serving"]),
        *(row for group in volunteers["groups"] for row in (
            ("队伍场次 group's sessions", group["name"], GROUP_KINDS.get(group["kind"], group["kind"]),
             group["sessions"]),
            ("队伍参与人次 group's participants", group["name"], "", group["participants"]))),
    ]
    return [("巡逻与事件 Patrols", REPORT_HEADER, patrol_rows),
            ("募捐 Donations", REPORT_HEADER, donation_rows),
            ("帮扶个案 Cases", REPORT_HEADER, welfare_rows),
            ("文体与志愿 Volunteers", REPORT_HEADER, volunteer_rows)]


def filename(*parts: str, fmt: str) -> str:
    """An ASCII file name (a campaign's code, not its Chinese name): every browser saves it as sent."""
    return "-".join(parts) + "." + fmt
