"""Downloads for the office's spreadsheets: a drive's ledger and its summary,
as CSV or XLSX. Rows in, bytes out: one home for how a table becomes a file.

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
    return _csv(header, rows) if fmt == "csv" else _xlsx(header, rows, sheet)


def _csv(header: tuple, rows: list[tuple]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in (header, *rows):
        writer.writerow(["" if cell is None else safe_text(cell) if isinstance(cell, str) else cell for cell in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _xlsx(header: tuple, rows: list[tuple], sheet: str) -> bytes:
    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True})
    worksheet = workbook.add_worksheet(sheet[:31])
    bold, money = workbook.add_format({"bold": True}), workbook.add_format({"num_format": "0.00"})
    for r, row in enumerate((header, *rows)):
        for c, cell in enumerate(row):
            if cell is None or cell == "":
                continue
            if isinstance(cell, str):
                worksheet.write_string(r, c, safe_text(cell), bold if r == 0 else None)
            elif isinstance(cell, Decimal):
                worksheet.write_number(r, c, float(cell), money)
            else:
                worksheet.write_number(r, c, cell)
    worksheet.set_column(0, len(header) - 1, 18)
    workbook.close()
    return out.getvalue()


def filename(*parts: str, fmt: str) -> str:
    """An ASCII file name (a campaign's code, not its Chinese name): every browser saves it as sent."""
    return "-".join(parts) + "." + fmt
