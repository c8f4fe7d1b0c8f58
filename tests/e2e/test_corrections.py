"""Corrections to a drive through the gateway, every service a real process:
gifts recorded, one voided (totals, the public receipt, 409s that change
nothing), the drive edited, and both exports downloaded in both formats and
read back as a spreadsheet program would; the ledger export is in the audit."""
import csv
import io
import subprocess
import sys

import openpyxl
import pytest
import requests

from tests.e2e.conftest import new_key
from tests.e2e.test_donations import campaign_of, dispatch, donated, new_campaign, public_receipt


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


# The public page opened from a printed receipt's link, in headless Chromium
# (a process of its own: Playwright and eventlet do not mix): what it shows.
READ_THE_PAGE = """
import sys
from playwright.sync_api import sync_playwright
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_page()
    page.goto(sys.argv[1])
    # (wait_for_function with a string would be an eval, which the page's CSP forbids, rightly)
    page.locator("#receipt-result p").first.wait_for(timeout=15000)
    print(page.inner_text("#receipt-result"))
    browser.close()
"""
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HOSTILE_DONOR = "=HYPERLINK(\"http://evil.example\",\"点我\")"


def void(admin, campaign_id, receipt_no, reason="Typed 1,000 yuan for 100 打错金额", key=None):
    return admin.post(f"/campaigns/{campaign_id}/donations/{receipt_no}/void", {"reason": reason},
                      key=key or new_key())


def download(admin, path, fmt) -> requests.Response:
    answer = admin.get(path, params={"format": fmt})
    assert answer.status_code == 200, answer.text
    return answer


def csv_rows(answer) -> list[list[str]]:
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"), newline="")))


def xlsx_rows(answer) -> list[list]:
    assert answer.headers["Content-Type"] == XLSX
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content)).active
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)
    return [["" if value is None else value for value in row] for row in sheet.iter_rows(values_only=True)]


def test_a_gift_is_voided_and_both_exports_show_the_drive(stack, admin, register):
    drive = new_campaign(admin, goal_fen=50_000)
    cid = drive["id"]
    wrong = donated(admin, cid, {"kind": "cash", "amount_fen": 100_000, "donor_name": "张伟"})
    right = donated(admin, cid, {"kind": "cash", "amount_fen": 10_000, "donor_name": HOSTILE_DONOR})
    clothes = donated(admin, cid, {"kind": "in_kind", "anonymous": True,
                                   "items": [{"category": "clothing", "quantity": 3},
                                             {"category": "bedding", "quantity": 2}]})
    assert wrong["lookup_path"] == f"/public?receipt={wrong['receipt_no']}&code={wrong['verification_code']}"
    assert campaign_of(admin, cid)["goal_reached_at"] is not None
    sent = dispatch(admin, cid, {"destination": "Shelter", "items": [{"category": "clothing", "quantity": 2}]})
    assert sent.status_code == 201, sent.text

    # The wrong gift is voided: totals down, its receipt still there and marked.
    key = new_key()
    voided = void(admin, cid, wrong["receipt_no"], key=key)
    assert voided.status_code == 200, voided.text
    assert voided.json()["voided"] is True and voided.json()["receipt_no"] == wrong["receipt_no"]
    assert void(admin, cid, wrong["receipt_no"], key=key).json() == voided.json()  # a retry: the first answer
    again = void(admin, cid, wrong["receipt_no"])
    assert again.status_code == 409 and "already voided" in again.json()["error"]["message"]
    after = campaign_of(admin, cid)
    assert after["totals"] == {"cash_fen": 10_000, "items": {"clothing": 3, "bedding": 2}, "donations": 2}
    assert after["progress_percent"] == 20.0 and after["goal_reached_at"] is not None
    public = public_receipt(stack, wrong["receipt_no"], wrong["verification_code"])
    assert public.status_code == 200 and public.json()["voided"] is True
    assert "打错" not in public.text and "张伟" not in public.text
    listed = admin.get(f"/campaigns/{cid}/donations").json()["items"]
    assert [g["voided"] for g in listed] == [False, False, True]

    # The clothes went out: voiding that gift would take stock below zero.
    refused = void(admin, cid, clothes["receipt_no"])
    assert refused.status_code == 409, refused.text
    assert "clothing" in refused.json()["error"]["message"]
    assert refused.json()["error"]["details"] == {"stock": {"clothing": "3 in this gift, 1 in stock"}}
    assert campaign_of(admin, cid) == after

    # No reason, no void.
    blank = admin.post(f"/campaigns/{cid}/donations/{right['receipt_no']}/void", {})
    assert blank.status_code == 400 and "reason" in blank.json()["error"]["details"]["fields"]

    # The drive is edited: a rename and a lower goal.
    edited = requests.patch(f"{admin.api}/campaigns/{cid}", json={"name": "Flood relief 洪水救灾", "goal_fen": 20_000},
                            headers=admin.headers, timeout=15)
    assert edited.status_code == 200, edited.text
    assert edited.json()["name"] == "Flood relief 洪水救灾" and edited.json()["progress_percent"] == 50.0
    bad = requests.patch(f"{admin.api}/campaigns/{cid}", json={"ends_on": "2000-01-01"}, headers=admin.headers,
                         timeout=15)
    assert bad.status_code == 400 and "ends_on" in bad.json()["error"]["details"]["fields"]

    # The ledger, in both formats: every gift, oldest first, the void and its reason.
    code = drive["code"]
    as_csv = download(admin, f"/campaigns/{cid}/donations", "csv")
    assert as_csv.headers["Content-Disposition"] == f'attachment; filename="linli-{code}-ledger.csv"'
    header, *rows = csv_rows(as_csv)
    assert header[0] == "收据号 receipt" and len(header) == 8
    assert [row[0] for row in rows] == [wrong["receipt_no"], right["receipt_no"], clothes["receipt_no"]]
    assert rows[0][2:] == ["cash", "1000.00", "", "张伟", "yes", "Typed 1,000 yuan for 100 打错金额"]
    assert rows[1][2:] == ["cash", "100.00", "", "'" + HOSTILE_DONOR, "", ""]
    assert rows[2][2:] == ["in_kind", "", "衣物 Clothing ×3; 被褥 Bedding ×2", "匿名 Anonymous", "", ""]
    as_xlsx = download(admin, f"/campaigns/{cid}/donations", "xlsx")
    assert as_xlsx.headers["Content-Disposition"] == f'attachment; filename="linli-{code}-ledger.xlsx"'
    header, *rows = xlsx_rows(as_xlsx)
    assert [row[0] for row in rows] == [wrong["receipt_no"], right["receipt_no"], clothes["receipt_no"]]
    assert rows[0][3] == 1000.0 and rows[0][6] == "yes" and rows[1][5] == "'" + HOSTILE_DONOR

    # The summary, in both formats: the public figures.
    header, *rows = csv_rows(download(admin, f"/campaigns/{cid}/summary", "csv"))
    assert len(header) == 4
    assert ["善款(元) cash (yuan)", "", "", "100.00"] in rows and ["捐赠笔数 donations", "", "", "2"] in rows
    assert ["收到物资 goods received", "衣物 Clothing", "", "3"] in rows
    assert ["送出物资 goods sent", "衣物 Clothing", "Shelter", "2"] in rows
    as_xlsx = download(admin, f"/campaigns/{cid}/summary", "xlsx")
    assert as_xlsx.headers["Content-Disposition"] == f'attachment; filename="linli-{code}-summary.xlsx"'
    rows = xlsx_rows(as_xlsx)
    assert ["活动 drive", "", "", "Flood relief 洪水救灾"] in rows and ["善款(元) cash (yuan)", "", "", 100.0] in rows
    assert "张伟" not in str(rows)

    # An unknown format: 400 naming it. Without one, the list and the summary answer JSON.
    answer = admin.get(f"/campaigns/{cid}/donations", params={"format": "pdf"})
    assert answer.status_code == 400 and "format" in answer.json()["error"]["details"]["fields"]
    assert [d["receipt_no"] for d in admin.get(f"/campaigns/{cid}/donations").json()["items"]] == [
        clothes["receipt_no"], right["receipt_no"], wrong["receipt_no"]]
    summary = admin.get(f"/campaigns/{cid}/summary").json()
    assert summary["totals"]["cash_fen"] == 10_000 and summary["name"] == "Flood relief 洪水救灾"
    # A member may list the gifts but not export the ledger with the donors' names.
    member, _ = register(party_member=False)
    refused = member.get(f"/campaigns/{cid}/donations", params={"format": "csv"})
    assert refused.status_code == 403, refused.text

    # The two ledger exports are in the audit; the summary, which names no one, is not.
    audit = admin.get("/audit", params={"source": "donations", "campaign_id": cid})
    assert audit.status_code == 200, audit.text
    entries = audit.json()["items"]
    assert [(e["action"], e["campaign_id"], e["rows"]) for e in entries] == [("export_ledger", cid, 3)] * 2
    assert admin.get("/audit", params={"campaign_id": cid}).json()["items"] == entries


def test_the_printed_receipts_link_opens_the_public_page_on_that_receipt(stack, admin):
    drive = new_campaign(admin)
    gift = donated(admin, drive["id"], {"kind": "cash", "amount_fen": 8_800, "donor_name": "张伟"})
    assert void(admin, drive["id"], gift["receipt_no"]).status_code == 200
    shown = subprocess.run([sys.executable, "-c", READ_THE_PAGE, stack.url + gift["lookup_path"]],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert gift["receipt_no"] in shown.stdout and "88.00" in shown.stdout
    assert "Voided" in shown.stdout and "张伟" not in shown.stdout
