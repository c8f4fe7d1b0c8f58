"""The donations service's events on the real broker, and what they cause:
goal_reached alerts the campaign's creator once; goods dispatched to a case
show on the case in the welfare service."""
import json
from datetime import date, timedelta


from services.donations.service import DonationsService
from services.notifications.service import NotificationsService
from services.welfare.service import WelfareService
from tests.conftest import wait_for
from tests.integration.conftest import ADMIN, HOUSEHOLD, EventTap, alerts_for, party_member
from tests.vouching import vouched_rpc

VOLUNTEER = {"id": "v" * 32, "roles": ["member"]}


def test_a_drive_publishes_each_event_once_and_its_effects_follow(start_service, service_config):
    donations_config = service_config("donations")
    notifications_config = service_config("notifications")
    welfare_config = service_config("welfare")
    tap = EventTap(donations_config["AMQP_URI"], "donations")
    for service_cls, config in [(NotificationsService, notifications_config), (WelfareService, welfare_config),
                                (DonationsService, donations_config)]:
        start_service(service_cls, config)
    today = date.today()
    try:
        with vouched_rpc(welfare_config, "welfare") as welfare:
            household = welfare.create_household(HOUSEHOLD, ADMIN)
            case = welfare.open_case({"household_id": household["id"], "categories": ["elderly"],
                                      "summary": "Winter is coming.", "assignee_id": "b" * 32}, ADMIN,
                                      party_member("b" * 32))
        with vouched_rpc(donations_config, "donations") as donations:
            campaign = donations.create_campaign({
                "name": "Earthquake relief", "goal_fen": 10_000,
                "starts_on": (today - timedelta(days=2)).isoformat(),
                "ends_on": (today + timedelta(days=2)).isoformat()}, ADMIN)
            gift = {"kind": "cash", "amount_fen": 6_000, "donor_name": "张伟"}
            first = donations.record_donation(campaign["id"], gift, VOLUNTEER, idempotency_key="key-1")
            again = donations.record_donation(campaign["id"], gift, VOLUNTEER, idempotency_key="key-1")
            for key, amount in (("key-2", 5_000), ("key-3", 1_000)):
                donations.record_donation(campaign["id"], {"kind": "cash", "amount_fen": amount}, VOLUNTEER,
                                          idempotency_key=key)
            donations.record_donation(campaign["id"], {"kind": "in_kind", "items": [
                {"category": "bedding", "quantity": 4, "description": "quilts"}]}, VOLUNTEER, idempotency_key="key-4")
            donations.dispatch(campaign["id"], {"case_id": case["id"], "items": [
                {"category": "bedding", "quantity": 2}]}, ADMIN)
            totals = donations.get_campaign(campaign["id"])["totals"]
        assert again == first
        assert totals == {"cash_fen": 12_000, "items": {"bedding": 4}, "donations": 4}

        expected = ["campaign_created", "donation_received", "donation_received", "goal_reached",
                    "donation_received", "donation_received", "items_dispatched"]
        wait_for(lambda: len(tap.types()) >= len(expected), timeout=15, what="every donations event")
        assert tap.types() == expected
        assert "张伟" not in json.dumps(tap.seen, ensure_ascii=False)  # no donor names leave

        goal_alerts = wait_for(lambda: [a for a in alerts_for(notifications_config, campaign["id"])],
                               timeout=15, what="the goal_reached alert")
        assert [(a.member_id, a.kind) for a in goal_alerts] == [(ADMIN["id"], "goal_reached")]

        def assistance():
            with vouched_rpc(welfare_config, "welfare") as welfare:
                return welfare.get_case(case["id"], ADMIN)["assistance"]

        received = wait_for(assistance, timeout=15, what="the assistance on the case")
        assert [(a["category"], a["quantity"], a["campaign_id"]) for a in received] == [
            ("bedding", 2, campaign["id"])]
    finally:
        tap.close()
