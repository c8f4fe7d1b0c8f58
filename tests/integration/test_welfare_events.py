"""The welfare service's events on the real broker and the alerts they cause;
the follow-up timer with two welfare instances running on one database."""
import json
from datetime import date

from nameko.testing.services import entrypoint_waiter
from sqlalchemy import create_engine, select

from services.notifications.models import Alert
from services.notifications.service import NotificationsService
from services.welfare.service import WelfareService
from tests.conftest import wait_for
from tests.integration.conftest import ADMIN, HOUSEHOLD, EventTap, party_member
from tests.vouching import vouched_rpc

FIRST = {"id": "f" * 32, "roles": ["member"]}
SECOND = {"id": "s" * 32, "roles": ["member"]}
PERSONAL = ("李秀英", "Building 3", "frail", "Needs the allowance", "Mother frail", "Civil affairs",
            "allowance granted")


def alerts(config) -> list[tuple[str, str, str]]:
    engine = create_engine(config["DB_URL"])
    try:
        with engine.connect() as connection:
            return sorted((a.member_id, a.kind, a.ref_id) for a in connection.execute(select(Alert)).all())
    finally:
        engine.dispose()


def test_a_case_life_publishes_each_event_once_without_personal_data(start_service, service_config):
    welfare_config = service_config("welfare", FOLLOWUP_AFTER_DAYS=30)
    notifications_config = service_config("notifications")
    tap = EventTap(welfare_config["AMQP_URI"], "welfare")
    start_service(NotificationsService, notifications_config)
    start_service(WelfareService, welfare_config)
    try:
        with vouched_rpc(welfare_config, "welfare") as welfare:
            household = welfare.create_household(HOUSEHOLD, ADMIN)
            case = welfare.open_case({"household_id": household["id"], "categories": ["elderly", "low_income"],
                                      "summary": "Needs the allowance.", "assignee_id": FIRST["id"]}, ADMIN,
                                      party_member(FIRST["id"]))
            welfare.log_visit(case["id"], {"visited_on": date.today().isoformat(), "notes": "Mother frail."}, FIRST)
            referral = welfare.add_referral(case["id"], {"agency": "Civil affairs bureau",
                                                         "benefit": "Minimum-living allowance"}, FIRST)
            welfare.decide_referral(referral["id"], {"status": "approved"}, FIRST)
            welfare.assign_case(case["id"], {"assignee_id": SECOND["id"]}, ADMIN, party_member(SECOND["id"]))
            welfare.close_case(case["id"], {"outcome": "The allowance granted."}, SECOND)

        expected = ["case_opened", "visit_logged", "referral_updated", "referral_updated", "case_assigned",
                    "case_closed"]
        wait_for(lambda: len(tap.types()) >= len(expected), timeout=15, what="every welfare event")
        assert tap.types() == expected
        text = json.dumps(tap.seen, ensure_ascii=False)
        assert not [word for word in PERSONAL if word in text]
        assert [e["data"]["status"] for e in tap.seen] == [
            "open", "in_progress", "in_progress", "in_progress", "in_progress", "closed"]

        wait_for(lambda: len(alerts(notifications_config)) == 3, timeout=15, what="three alerts")
        assert alerts(notifications_config) == sorted([
            (FIRST["id"], "case_assigned", case["id"]), (FIRST["id"], "case_unassigned", case["id"]),
            (SECOND["id"], "case_assigned", case["id"])])
    finally:
        tap.close()


def test_two_welfare_instances_raise_one_follow_up_per_lapse(start_service, service_config):
    # Due after ~1.7 s; both instances sweep the same database every 2 s. The relay's
    # grace as in production (not 0): a row the writer is still publishing is not the
    # other instance's relay's to take (SQLite has no SKIP LOCKED).
    welfare_config = service_config("welfare", FOLLOWUP_AFTER_DAYS=0.00002, OUTBOX_GRACE_SECONDS=1)
    notifications_config = service_config("notifications")
    tap = EventTap(welfare_config["AMQP_URI"], "welfare")
    start_service(NotificationsService, notifications_config)
    instances = [start_service(WelfareService, welfare_config) for _ in range(2)]
    try:
        with vouched_rpc(welfare_config, "welfare") as welfare:
            household = welfare.create_household(HOUSEHOLD, ADMIN)
            case = welfare.open_case({"household_id": household["id"], "categories": ["elderly"],
                                      "summary": "x", "assignee_id": FIRST["id"]}, ADMIN, party_member(FIRST["id"]))
        wait_for(lambda: "followup_overdue" in tap.types(), timeout=15, what="the follow-up")
        for _ in range(2):  # more sweeps by each instance add nothing for this lapse
            for instance in instances:
                with entrypoint_waiter(instance, "sweep", timeout=10):
                    pass
        assert tap.types().count("followup_overdue") == 1
        wait_for(lambda: (FIRST["id"], "followup_overdue", case["id"]) in alerts(notifications_config),
                 timeout=10, what="the follow-up alert")
        assert [a for a in alerts(notifications_config) if a[1] == "followup_overdue"] == [
            (FIRST["id"], "followup_overdue", case["id"])]
    finally:
        tap.close()
