"""The donation table, receipts and drives at /app/ in a real Chromium: a queue
recorded with the keyboard alone, a receipt printed, a gift voided, the ledger
downloaded; each journey's findings checked against the API."""
from datetime import date, timedelta
from pathlib import Path

import openpyxl
import pytest

from tests.e2e.conftest import HOUSEHOLD, new_key, open_case
from tests.e2e.test_office_pages import run_journey


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


@pytest.fixture(scope="module")
def drive(admin) -> dict:
    today = date.today()
    answer = admin.post("/campaigns", {"name": "冬衣募捐 Winter clothes", "goal_fen": 1_000_000,
                                       "starts_on": str(today - timedelta(days=1)),
                                       "ends_on": str(today + timedelta(days=30))}, key=new_key())
    assert answer.status_code == 201, answer.text
    return answer.json()


@pytest.fixture(scope="module")
def queue(stack, drive, tmp_path_factory) -> dict:
    """Journey (a): three gifts at the table, keyboard only."""
    return run_journey(stack, "desk_queue", tmp_path_factory.mktemp("desk"), campaign_id=drive["id"],
                       donor="王芳", goods_donor="李娜")


def test_a_queue_of_three_gifts_is_recorded_with_the_keyboard_alone_and_counted_once(admin, drive, queue):
    assert queue["mouse_events"] == 0
    gifts = admin.get(f"/campaigns/{drive['id']}/donations").json()["items"]
    assert len(gifts) == 3  # Record pressed twice on the last: still three
    cash, goods, anonymous = sorted(gifts, key=lambda gift: gift["receipt_no"])
    assert [g["receipt_no"] for g in (cash, goods, anonymous)] == [g["receipt_no"] for g in queue["gifts"]]
    assert (cash["kind"], cash["amount_fen"], cash["donor_name"], cash["anonymous"]) == ("cash", 20000, "王芳", False)
    assert goods["kind"] == "in_kind" and goods["donor_name"] == "李娜"
    assert [(i["category"], i["quantity"]) for i in goods["items"]] == [(queue["goods_category"], 3)]
    assert (anonymous["amount_fen"], anonymous["donor_name"], anonymous["anonymous"]) == (3550, None, True)
    totals = admin.get(f"/campaigns/{drive['id']}").json()["totals"]
    assert totals == {"cash_fen": 23550, "donations": 3, "items": {queue["goods_category"]: 3}}
    for shown in queue["gifts"]:  # the codes on screen are the receipts'
        receipt = admin.get(f"/campaigns/{drive['id']}/donations/{shown['receipt_no']}").json()
        assert receipt["verification_code"] == shown["code"]


def test_a_gift_whose_answer_is_lost_is_retried_by_the_page_with_its_key_and_counted_once(stack, admin, tmp_path):
    today = date.today()
    other = admin.post("/campaigns", {"name": "失联重试 Lost answers", "goal_fen": 100_000,
                                      "starts_on": str(today), "ends_on": str(today + timedelta(days=3))},
                       key=new_key()).json()
    found = run_journey(stack, "desk_lost_answer", tmp_path, campaign_id=other["id"], amount_yuan="12.34")
    assert len(found["keys_sent"]) == 2 and found["keys_sent"][0] == found["keys_sent"][1]  # the same key again
    assert found["answers"] == [201, 201]  # the second is the first's answer, replayed
    assert admin.get(f"/campaigns/{other['id']}").json()["totals"] == {"cash_fen": 1234, "donations": 1, "items": {}}
    assert [g["receipt_no"] for g in admin.get(f"/campaigns/{other['id']}/donations").json()["items"]] == [
        found["receipt_no"]]


def test_b_a_receipt_prints_alone_with_its_code_and_a_qr_code_of_its_public_lookup(stack, drive, queue, tmp_path):
    first = queue["gifts"][0]
    found = run_journey(stack, "receipt_print", tmp_path, campaign_id=drive["id"], **first)
    assert found["lookup"] == f"{stack.url}/public?receipt={first['receipt_no']}&code={first['code']}"
    assert found["qr_src"].startswith("data:image/") and found["qr_width"] > 50
    assert found["pdf_bytes"] > 5000


def test_c_d_a_gift_is_voided_on_the_drive_page_and_the_ledger_shows_it(stack, admin, register, drive, queue,
                                                                        tmp_path):
    cash, goods, _ = queue["gifts"]
    _, member = register()
    # A summary of its own: the page shows cases by summary, and the shared stack holds others' cases.
    case = open_case(admin, member["id"], summary=f"Winter coats for a family of three ({drive['code']}).")
    found = run_journey(stack, "drive_corrections", tmp_path, campaign_id=drive["id"], receipt_no=cash["receipt_no"],
                        goods_receipt=goods["receipt_no"], goods_category=queue["goods_category"],
                        case_summary=case["summary"], case_person=HOUSEHOLD["people"][0]["name"],
                        reason="金额记错 Wrong amount")
    campaign = admin.get(f"/campaigns/{drive['id']}").json()
    assert campaign["totals"]["cash_fen"] == 3550 and campaign["totals"]["donations"] == 2
    assert campaign["stock"] == {queue["goods_category"]: 0}  # 3 in, 3 sent: the goods gift could not be voided
    sent = admin.get(f"/campaigns/{drive['id']}/dispatches").json()["items"]
    assert {(d["destination"], d["case_id"], d["items"][0]["quantity"]) for d in sent} == {
        ("东区安置点 East shelter", None, 2), (None, case["id"], 1)}
    voided = admin.get(f"/campaigns/{drive['id']}/donations/{cash['receipt_no']}").json()
    assert voided["voided"] and voided["void_reason"] == "金额记错 Wrong amount"
    assert found["ledger_name"].endswith(".xlsx")
    sheet = openpyxl.load_workbook(found["ledger"]).active
    header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert len(rows) == 3
    by_receipt = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    voided_column = next(name for name in header if "voided" in name)
    assert {no for no, row in by_receipt.items() if row[voided_column] == "yes"} == {cash["receipt_no"]}
    assert set(by_receipt) == {gift["receipt_no"] for gift in queue["gifts"]}
    summary = Path(found["summary"]).read_text(encoding="utf-8")
    assert summary.startswith("\ufeff") and drive["name"] in summary


def test_e_a_drive_is_opened_edited_and_closed_from_its_pages(stack, admin, tmp_path):
    name = f"春节慰问 New year {new_key()[:6]}"
    run_journey(stack, "drives_manage", tmp_path, drive_name=name, ends_on=str(date.today() + timedelta(days=20)))
    drives = admin.get("/campaigns").json()["items"]
    [opened] = [d for d in drives if d["name"].startswith(name)]
    assert opened["name"] == name + " 二期 II"
    assert opened["goal_fen"] == 400050 and opened["status"] == "closed"
