"""The patrol service's events on the real broker, and the alerts they cause
in the notifications service: each event published once, each alert once."""
import json

from nameko.amqp.publish import Publisher
from nameko.standalone.events import get_event_exchange
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import create_engine, select

from services import contracts
from services.common import events
from services.common.envelope import make_envelope
from services.contracts import gateway as gateway_events
from services.notifications.models import Alert
from services.notifications.service import NotificationsService
from services.patrol.service import PatrolService
from tests.conftest import wait_for
from tests.integration.conftest import ADMIN, EventTap
from tests.vouching import vouched_rpc

LEADER = {"id": "l" * 32, "roles": ["member"]}
VOLUNTEER = {"id": "v" * 32, "roles": ["member"]}


def alerts(config, **where) -> list:
    engine = create_engine(config["DB_URL"])
    try:
        with engine.connect() as connection:
            query = select(Alert)
            for column, value in where.items():
                query = query.where(getattr(Alert, column) == value)
            return connection.execute(query).all()
    finally:
        engine.dispose()


def register_admin(amqp_uri: str, admin_id: str):
    """As the gateway announces a new admin account."""
    events.declare_topology(amqp_uri, contracts.EVENTS)
    envelope = make_envelope("gateway", gateway_events.MEMBER_REGISTERED, {
        "member_id": admin_id, "roles": ["admin"], "party_member": False, "compound": None})
    Publisher(amqp_uri).publish(envelope, exchange=get_event_exchange("gateway", {}),
                                routing_key=envelope["type"])


def test_a_patrol_day_publishes_each_event_once_and_alerts_the_right_people(start_service, service_config):
    patrol_config = service_config("patrol", ESCALATE_AFTER_MINUTES=60, UNCOVERED_AFTER_DAYS=7)
    notifications_config = service_config("notifications")
    tap = EventTap(patrol_config["AMQP_URI"], "patrol")
    start_service(NotificationsService, notifications_config)
    start_service(PatrolService, patrol_config)
    register_admin(patrol_config["AMQP_URI"], ADMIN["id"])
    try:
        with vouched_rpc(patrol_config, "patrol") as patrol:
            zone = patrol.create_zone({"name": "East", "compounds": ["Xingfu Garden", "Heping Li"]}, ADMIN)
            patrol.assign_team(zone["id"], {"leader_id": LEADER["id"], "member_ids": [VOLUNTEER["id"]]}, ADMIN)
            shift = patrol.start_patrol({"zone_id": zone["id"]}, VOLUNTEER)
            medium = patrol.report_incident({"zone_id": zone["id"], "compound": "Heping Li", "category": "dispute",
                                             "description": "Noise between 3-401 and 3-501", "severity": "medium"},
                                            VOLUNTEER)
            high = patrol.report_incident({"zone_id": zone["id"], "compound": "Xingfu Garden",
                                           "category": "fire_hazard", "description": "E-bikes charging in the hall",
                                           "severity": "high"}, VOLUNTEER)
            patrol.resolve_incident(medium["id"], {"resolution": "Talked it over"}, LEADER)
            patrol.finish_patrol(shift["id"], {"notes": "Quiet night"}, VOLUNTEER)

        expected = ["zone_created", "team_assigned", "patrol_started", "incident_reported", "incident_reported",
                    "incident_resolved", "patrol_finished"]
        wait_for(lambda: len(tap.types()) >= len(expected), timeout=15, what="every patrol event")
        assert tap.types() == expected
        for envelope in tap.seen:  # what leaves for dashboards carries no descriptions, notes or resolutions
            text = json.dumps(envelope, ensure_ascii=False)
            assert "3-401" not in text and "E-bikes" not in text and "Quiet" not in text and "Talked" not in text

        wait_for(lambda: len(alerts(notifications_config, member_id=LEADER["id"])) == 2, timeout=15,
                 what="the leader's two alerts")
        wait_for(lambda: alerts(notifications_config, member_id=ADMIN["id"]), timeout=15, what="the admin's alert")
        leader_alerts = alerts(notifications_config, member_id=LEADER["id"])
        assert sorted(a.ref_id for a in leader_alerts) == sorted([medium["id"], high["id"]])
        assert {a.kind for a in leader_alerts} == {"incident_reported"}
        admin_alerts = alerts(notifications_config, member_id=ADMIN["id"])
        assert [(a.kind, a.ref_id) for a in admin_alerts] == [("incident_high_severity", high["id"])]
        assert alerts(notifications_config, member_id=VOLUNTEER["id"]) == []
    finally:
        tap.close()


def test_escalation_and_an_uncovered_zone_each_alert_once(start_service, service_config):
    # Tiny limits so that the sweep timer (every 2 s) acts within the test.
    patrol_config = service_config("patrol", ESCALATE_AFTER_MINUTES=0.02, UNCOVERED_AFTER_DAYS=0.00003)
    notifications_config = service_config("notifications")
    tap = EventTap(patrol_config["AMQP_URI"], "patrol")
    start_service(NotificationsService, notifications_config)
    register_admin(patrol_config["AMQP_URI"], ADMIN["id"])
    patrol_container = start_service(PatrolService, patrol_config)
    try:
        with vouched_rpc(patrol_config, "patrol") as patrol:
            zone = patrol.create_zone({"name": "North", "compounds": ["Youyi Li"]}, ADMIN)
            patrol.assign_team(zone["id"], {"leader_id": LEADER["id"], "member_ids": []}, ADMIN)
            ignored = patrol.report_incident({"zone_id": zone["id"], "compound": "Youyi Li", "category": "stranger",
                                              "description": "Someone trying doors", "severity": "low"}, LEADER)
            seen = patrol.report_incident({"zone_id": zone["id"], "compound": "Youyi Li", "category": "other",
                                           "description": "Broken lamp", "severity": "low"}, LEADER)
            patrol.acknowledge_incident(seen["id"], LEADER)

        wait_for(lambda: alerts(notifications_config, kind="incident_escalated"), timeout=20, what="the escalation")
        wait_for(lambda: alerts(notifications_config, kind="zone_uncovered"), timeout=20, what="the coverage alert")
        # Two more sweeps must add nothing: once per incident, once per lapse.
        published_before = len(tap.drain())
        for _ in range(2):
            with entrypoint_waiter(patrol_container, "sweep", timeout=10):
                pass
        assert len(tap.drain()) == published_before
        escalated = alerts(notifications_config, kind="incident_escalated")
        assert [(a.member_id, a.ref_id) for a in escalated] == [(ADMIN["id"], ignored["id"])]
        uncovered = alerts(notifications_config, kind="zone_uncovered")
        assert [(a.member_id, a.ref_type, a.ref_id) for a in uncovered] == [(LEADER["id"], "zone", zone["id"])]
        assert tap.types().count("incident_escalated") == 1 and tap.types().count("zone_uncovered") == 1
        with vouched_rpc(patrol_config, "patrol") as patrol:
            assert patrol.get_incident(ignored["id"], LEADER)["escalated_at"] is not None
            assert patrol.get_incident(seen["id"], LEADER)["escalated_at"] is None
    finally:
        tap.close()
