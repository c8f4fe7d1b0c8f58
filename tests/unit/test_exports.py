"""services/gateway/exports.py: a table to CSV or XLSX bytes, read back as a
spreadsheet program would: Chinese intact, money as numbers with two
decimals, and no text cell that could ever become a formula."""
import csv
import io
from decimal import Decimal

import openpyxl
import pytest

from services.gateway import exports

HOSTILE = ["=HYPERLINK(\"http://evil.example\",\"点我\")", "+1+2", "-3+4", "@SUM(A1)", "\tcmd", "\rcmd"]
HEADER = ("name", "amount", "count")


def read_csv(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())  # the BOM: spreadsheet programs then read UTF-8
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def read_xlsx(content: bytes):
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return sheet, [list(row) for row in sheet.iter_rows(values_only=True)]


def test_csv_has_the_header_and_rows_in_utf8_with_a_bom():
    content = exports.render("csv", HEADER, [("张伟", Decimal("123.45"), 3), ("匿名 Anonymous", None, 0)], "x")
    assert read_csv(content) == [["name", "amount", "count"], ["张伟", "123.45", "3"], ["匿名 Anonymous", "", "0"]]


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_a_text_cell_that_starts_like_a_formula_stays_text(fmt):
    rows = [(text, Decimal("-1.50"), -2) for text in HOSTILE]
    content = exports.render(fmt, HEADER, rows, "ledger")
    if fmt == "csv":
        read = read_csv(content)[1:]
        assert [row[0] for row in read] == ["'" + text for text in HOSTILE]
        assert [row[1:] for row in read] == [["-1.50", "-2"]] * len(HOSTILE)  # numbers are not text: kept
        return
    sheet, read = read_xlsx(content)
    for r, text in enumerate(HOSTILE, start=2):
        cell = sheet.cell(row=r, column=1)
        # A string, never a formula ("f"). XlsxWriter stores a carriage return as _x000D_
        # (as Excel does, which reads it back as one); openpyxl leaves it so.
        assert cell.data_type == "s" and cell.value.replace("_x000D_", "\r") == "'" + text
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    assert [row[1:] for row in read[1:]] == [[-1.5, -2]] * len(HOSTILE)


def test_xlsx_keeps_numbers_as_numbers_with_two_decimals_and_text_as_text():
    content = exports.render("xlsx", HEADER, [("李秀英", Decimal("160.00"), 7), ("0123", None, 1)], "ledger")
    sheet, read = read_xlsx(content)
    assert sheet.title == "ledger"
    assert read == [["name", "amount", "count"], ["李秀英", 160.0, 7], ["0123", None, 1]]
    assert sheet.cell(row=2, column=2).number_format == "0.00"
    assert sheet.cell(row=3, column=1).data_type == "s"  # "0123" is not turned into 123


def test_ledger_rows_say_yuan_goods_donor_and_void():
    ledger = {"campaign": {"id": "c1", "code": "K7QW2M", "name": "x"}, "rows": [
        {"receipt_no": "K7QW2M-000001", "recorded_on": "2026-12-03 16:05", "kind": "cash", "amount_fen": 100_001,
         "items": [], "donor_name": "张伟", "anonymous": False, "voided": True, "void_reason": "=typo"},
        {"receipt_no": "K7QW2M-000002", "recorded_on": "2026-12-03 16:06", "kind": "in_kind", "amount_fen": None,
         "items": [{"category": "clothing", "quantity": 3}, {"category": "bedding", "quantity": 2}],
         "donor_name": None, "anonymous": True, "voided": False, "void_reason": None},
    ]}
    rows = exports.ledger_rows(ledger, {"clothing": "衣物 Clothing"})
    assert rows == [
        ("K7QW2M-000001", "2026-12-03 16:05", "cash", Decimal("1000.01"), "", "张伟", "yes", "=typo"),
        # By label; a code the labels do not know (not expected) stays readable as itself.
        ("K7QW2M-000002", "2026-12-03 16:06", "in_kind", None, "衣物 Clothing ×3; bedding ×2", "匿名 Anonymous", "",
         ""),
    ]
    assert read_csv(exports.render("csv", exports.LEDGER_HEADER, rows, "ledger"))[1][7] == "'=typo"


def test_summary_rows_are_the_public_figures():
    campaign = {"id": "c1", "name": "Earthquake relief 地震救灾", "goal_fen": 1_600_000, "starts_on": "2026-12-01",
                "ends_on": "2026-12-31", "status": "open", "progress_percent": 12.5,
                "totals": {"cash_fen": 200_000, "items": {"water": 10, "bedding": 2}, "donations": 3},
                "goods_sent": [{"to": "a household in need (hardship case)", "category": "water", "quantity": 4}]}
    rows = exports.summary_rows(campaign, {"water": "饮用水 Water", "bedding": "被褥 Bedding"})
    assert ("目标(元) goal (yuan)", "", "", Decimal("16000.00")) in rows
    assert ("善款(元) cash (yuan)", "", "", Decimal("2000.00")) in rows
    assert ("捐赠笔数 donations", "", "", 3) in rows
    assert [row[1:] for row in rows if row[0] == "收到物资 goods received"] == [("被褥 Bedding", "", 2),
                                                                                   ("饮用水 Water", "", 10)]
    assert [row[1:] for row in rows if row[0] == "送出物资 goods sent"] == [
        ("饮用水 Water", "a household in need (hardship case)", 4)]
