"""The monthly report (GET /reports/monthly): the gateway asks the four
services for their own summary of the month at once and puts them side by
side; a service that does not answer leaves no report with a hole in it (503
naming it); a month still to come or badly written is a 400 naming `month`.
As a workbook: one sheet per part, labelled in Chinese and English, numbers
as numbers, no cell a formula."""
import io
from datetime import datetime
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from marshmallow import ValidationError
from nameko.exceptions import RpcTimeout
from nameko.testing.services import worker_factory

from services.common.errors import InvalidInput, Unavailable
from services.gateway import exports
from services.gateway.schemas import MonthlyReportQuerySchema
from services.gateway.service import GatewayService
from tests.unit.conftest import service_config

ADMIN = {"id": "gw-admin", "roles": ["admin"]}
MONTH = "2026-11"

PATROL = {
    "month": MONTH, "patrols": 12, "patrol_minutes": 1530, "patrols_closed_automatically": 1,
    "zones_total": 3, "zones_covered": 2,
    "zones": [{"zone_id": "z1", "name": "东片 East", "patrols": 9},
              {"zone_id": "z2", "name": "西片 West", "patrols": 3},
              {"zone_id": "z3", "name": "北片 North", "patrols": 0}],
    "incidents": {"reported": 4, "resolved": 3, "open_at_month_end": 1},
    "incidents_by_category": [
        {"category": "illegal_structure", "label_zh": "违章建筑", "label_en": "Illegal structure", "reported": 1,
         "resolved": 1},
        {"category": "hazard", "label_zh": "安全隐患", "label_en": "Hazard", "reported": 3, "resolved": 2}],
}
DONATIONS = {
    "month": MONTH, "cash_fen": 1_234_550, "gifts": 17, "voided": 1,
    "items_received": [{"category": "bedding", "label_zh": "被褥", "label_en": "Bedding", "quantity": 20}],
    "drives": [{"campaign_id": "c1", "name": "冬衣募捐 Winter clothes", "status": "open", "goal_fen": 5_000_000,
                "cash_fen": 1_234_550, "gifts": 17}],
    "dispatches": [
        {"dispatched_on": "2026-11-20", "destination": "安置点 Shelter", "to_case": False,
         "items": [{"category": "bedding", "label_zh": "被褥", "label_en": "Bedding", "quantity": 12}]},
        {"dispatched_on": "2026-11-22", "destination": None, "to_case": True,
         "items": [{"category": "bedding", "label_zh": "被褥", "label_en": "Bedding", "quantity": 2}]}],
}
WELFARE = {
    "month": MONTH, "cases_opened": 3,
    "cases_opened_by_category": [{"category": "elderly", "label_zh": "独居老人", "label_en": "Elderly alone",
                                  "count": 2},
                                 {"category": "illness", "label_zh": "疾病", "label_en": "Illness", "count": 1}],
    "cases_helped": 5, "visits": 9, "referrals_made": 2, "referrals_granted": 1, "cases_closed": 2,
    "closed_by_outcome": {"helped": 1, "referred": 0, "moved_away": 0, "deceased": 0, "declined": 0, "other": 0,
                          "unspecified": 1},
    "open_at_month_end": 6,
}
VOLUNTEERS = {
    "month": MONTH, "groups_active": 2, "sessions": 5,
    "sessions_by_kind": {"rehearsal": 1, "practice": 3, "performance": 0, "match": 1},
    "participants": 86, "minutes": 2250, "minutes_by_source": {"patrol": 1530, "session": 600, "other": 120},
    "members_serving": 7,
    "groups": [{"group_id": "g1", "name": "门球队 Gateball team", "kind": "sport", "sessions": 4, "participants": 70},
               {"group_id": "g2", "name": "舞蹈队 Dance troupe", "kind": "dance", "sessions": 1, "participants": 16}],
}
SUMMARIES = {"patrol": PATROL, "donations": DONATIONS, "welfare": WELFARE, "volunteers": VOLUNTEERS}


@pytest.fixture
def gateway():
    worker = worker_factory(GatewayService, config=service_config("gateway"))
    for service, summary in SUMMARIES.items():
        getattr(worker, service).monthly_summary.return_value = summary
    return worker


def report_request(**params):
    return SimpleNamespace(principal=ADMIN, query=MonthlyReportQuerySchema().load(params), query_params=params)


def community_month(months_ahead: int = 0) -> str:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    year, month = divmod(now.year * 12 + now.month - 1 + months_ahead, 12)
    return f"{year}-{month + 1:02d}"


def test_the_report_is_each_service_s_own_summary_of_the_month_side_by_side(gateway):
    report = gateway.monthly_report(report_request(month=MONTH))
    assert {key: report[key] for key in SUMMARIES} == SUMMARIES
    assert report["month"] == MONTH and report["generated_at"].endswith("Z")
    for service in SUMMARIES:
        getattr(gateway, service).monthly_summary.assert_called_once_with(MONTH)


def test_this_month_so_far_may_be_reported(gateway):
    assert gateway.monthly_report(report_request(month=community_month()))["month"] == community_month()


@pytest.mark.parametrize("silent", list(SUMMARIES))
@pytest.mark.parametrize("failure", [Unavailable("The service did not answer in time."), RpcTimeout()])
def test_a_service_that_does_not_answer_leaves_no_report_and_is_named(gateway, silent, failure):
    getattr(gateway, silent).monthly_summary.side_effect = failure
    with pytest.raises(Unavailable) as raised:
        gateway.monthly_report(report_request(month=MONTH))
    assert raised.value.status == 503
    assert raised.value.details["services"] == [silent]
    assert silent in str(raised.value)


def test_two_silent_services_are_both_named(gateway):
    gateway.welfare.monthly_summary.side_effect = Unavailable("late")
    gateway.patrol.monthly_summary.side_effect = RuntimeError("gone")
    with pytest.raises(Unavailable) as raised:
        gateway.monthly_report(report_request(month=MONTH))
    assert raised.value.details["services"] == ["patrol", "welfare"]


def test_a_month_a_service_refuses_is_that_refusal_not_a_silence(gateway):
    refusal = InvalidInput("A month is YYYY-MM, e.g. 2026-11.", {"fields": {"month": ["A month as YYYY-MM."]}})
    gateway.patrol.monthly_summary.side_effect = refusal
    with pytest.raises(InvalidInput) as raised:
        gateway.monthly_report(report_request(month=MONTH))
    assert raised.value.status == 400 and list(raised.value.details["fields"]) == ["month"]


def test_a_month_still_to_come_is_refused_naming_month_and_nobody_is_asked(gateway):
    with pytest.raises(InvalidInput) as raised:
        gateway.monthly_report(report_request(month=community_month(1)))
    assert list(raised.value.details["fields"]) == ["month"]
    for service in SUMMARIES:
        getattr(gateway, service).monthly_summary.assert_not_called()


@pytest.mark.parametrize("params, field", [
    ({}, "month"), ({"month": ""}, "month"), ({"month": "2026-13"}, "month"), ({"month": "2026-1"}, "month"),
    ({"month": "11/2026"}, "month"), ({"month": "2026-11-01"}, "month"), ({"month": "2026-11\n"}, "month"),
    ({"month": "1999-12"}, "month"), ({"month": "2026-11", "format": "csv"}, "format"),
])
def test_a_badly_written_month_or_format_is_named(params, field):
    with pytest.raises(ValidationError) as raised:
        MonthlyReportQuerySchema().load(params)
    assert list(raised.value.messages) == [field]


# -- the workbook -------------------------------------------------------------------------------

def workbook_of(gateway):
    answer = gateway.monthly_report(report_request(month=MONTH, format="xlsx"))
    assert answer.content_type == exports.CONTENT_TYPES["xlsx"]
    assert answer.headers["Content-Disposition"] == 'attachment; filename="linli-report-2026-11.xlsx"'
    return openpyxl.load_workbook(io.BytesIO(answer.get_data()))


def rows_of(sheet) -> list[tuple]:
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


def test_the_workbook_has_a_sheet_per_part_headed_in_chinese_and_english(gateway):
    book = workbook_of(gateway)
    assert book.sheetnames == ["巡逻与事件 Patrols", "募捐 Donations", "帮扶个案 Cases", "文体与志愿 Volunteers"]
    for sheet in book.worksheets:
        rows = rows_of(sheet)
        assert rows[0] == exports.REPORT_HEADER
        assert rows[1] == ("月份 month", None, None, MONTH)
    assert all(cell.data_type != "f" for sheet in book.worksheets for row in sheet.iter_rows() for cell in row)


def test_the_patrol_sheet_counts_patrols_zones_and_incidents_by_category(gateway):
    sheet = workbook_of(gateway)["巡逻与事件 Patrols"]
    rows = rows_of(sheet)
    assert ("巡逻次数 patrols", None, None, 12) in rows
    assert ("巡逻时长(小时) patrol hours", None, None, 25.5) in rows  # 1530 minutes
    assert ("巡逻到的片区 zones patrolled", None, "共 of 3", 2) in rows
    assert ("片区巡逻次数 patrols in a zone", "北片 North", None, 0) in rows
    assert ("按类别上报 reported by category", "违章建筑 Illegal structure", None, 1) in rows
    assert ("按类别解决 resolved by category", "安全隐患 Hazard", None, 2) in rows
    assert ("月底未解决 reported, unresolved at month end", None, None, 1) in rows
    hours_row = next(r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 1).value.startswith("巡逻时长"))
    assert sheet.cell(hours_row, 4).number_format == "0.0"


def test_the_donations_sheet_gives_yuan_and_says_a_case_only_as_a_household_in_need(gateway):
    sheet = workbook_of(gateway)["募捐 Donations"]
    rows = rows_of(sheet)
    assert ("善款(元) cash (yuan)", None, None, 12345.5) in rows
    money_row = next(r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 1).value.startswith("善款"))
    assert sheet.cell(money_row, 4).number_format == "0.00"
    assert ("募捐活动善款(元) drive's cash (yuan)", "冬衣募捐 Winter clothes", "进行中 open", 12345.5) in rows
    assert ("送出物资 goods sent", "被褥 Bedding", "2026-11-20 → 安置点 Shelter", 12) in rows
    assert ("送出物资 goods sent", "被褥 Bedding", "2026-11-22 → 困难家庭 a household in need", 2) in rows


def test_the_cases_sheet_counts_cases_by_outcome_the_volunteers_sheet_hours_and_groups(gateway):
    book = workbook_of(gateway)
    cases = rows_of(book["帮扶个案 Cases"])
    assert ("得到帮扶的个案 cases helped", None, None, 5) in cases
    assert ("按结果结案 closed by outcome", "已帮扶 helped", None, 1) in cases
    assert ("按结果结案 closed by outcome", "未注明 not stated", None, 1) in cases
    assert ("按类别新开 opened by category", "独居老人 Elderly alone", None, 2) in cases
    volunteers = rows_of(book["文体与志愿 Volunteers"])
    assert ("活动场次 sessions", None, None, 5) in volunteers
    assert ("按类型场次 sessions by kind", "比赛 matches", None, 1) in volunteers
    assert ("参与人次 participants", None, None, 86) in volunteers
    assert ("志愿服务时长(小时) volunteer hours", None, None, 37.5) in volunteers
    assert ("按来源时长(小时) hours by source", "其他服务 other service", None, 2) in volunteers
    assert ("队伍场次 group's sessions", "门球队 Gateball team", "体育 sport", 4) in volunteers


def test_a_name_that_starts_like_a_formula_stays_text_in_the_workbook(gateway):
    gateway.volunteers.monthly_summary.return_value = {
        **VOLUNTEERS, "groups": [{**VOLUNTEERS["groups"][0], "name": "=HYPERLINK(\"http://x\")"}]}
    sheet = workbook_of(gateway)["文体与志愿 Volunteers"]
    assert ("队伍场次 group's sessions", "'=HYPERLINK(\"http://x\")", "体育 sport", 4) in rows_of(sheet)
