"""The volunteers service on the real broker: patrol's patrol_finished,
published to patrol's exchange, counts once however often it arrives, and a
correction recounts it; a session's session_held and service_recorded reach
the broker and keep the contract, with no place or free text in them."""
import json

from nameko.standalone.events import get_event_exchange
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import create_engine, select

from services import contracts
from services.common import events
from nameko.amqp.publish import Publisher
from services.common.envelope import make_envelope
from services.contracts import patrol as patrol_events
from services.volunteers.models import ServiceRecord
from services.volunteers.service import VolunteersService
from tests.conftest import wait_for
from tests.integration.conftest import ADMIN, EventTap
from tests.vouching import vouched_rpc

LEADER = {"id": "l" * 32, "roles": ["member"]}
HELPER = "h" * 32
MEMBER = "m" * 32


def records(config) -> list[tuple]:
    engine = create_engine(config["DB_URL"])
    try:
        with engine.connect() as connection:
            return sorted((r.member_id, r.source, r.source_id, r.minutes, r.served_on.isoformat())
                          for r in connection.execute(select(ServiceRecord)).all())
    finally:
        engine.dispose()


def publish(config, envelope: dict):
    events.declare_topology(config["AMQP_URI"], contracts.EVENTS)
    Publisher(config["AMQP_URI"]).publish(envelope, exchange=get_event_exchange("patrol", {}),
                                          routing_key=envelope["type"])


def patrol_event(event_type: str, **changes) -> dict:
    data = {"patrol_id": "p" * 32, "zone_id": "z" * 32, "member_id": MEMBER,
            "started_at": "2026-05-10T01:00:00.000000Z", "finished_at": "2026-05-10T02:30:00.000000Z",
            "duration_minutes": None, **changes}
    if event_type == patrol_events.PATROL_FINISHED:
        data["closed_automatically"] = False
    return make_envelope("patrol", event_type, data)


def test_a_patrol_finished_twice_and_again_counts_once_and_a_correction_recounts(start_service, service_config):
    config = service_config("volunteers")
    container = start_service(VolunteersService, config)
    finished = patrol_event(patrol_events.PATROL_FINISHED)
    for envelope in (finished, json.loads(json.dumps(finished)), patrol_event(patrol_events.PATROL_FINISHED)):
        with entrypoint_waiter(container, "on_patrol_finished", timeout=10):
            publish(config, envelope)
    assert records(config) == [(MEMBER, "patrol", "p" * 32, 90, "2026-05-10")]

    with entrypoint_waiter(container, "on_patrol_corrected", timeout=10):
        publish(config, patrol_event(patrol_events.PATROL_CORRECTED, finished_at="2026-05-10T01:45:00.000000Z",
                                     duration_minutes=45))
    assert records(config) == [(MEMBER, "patrol", "p" * 32, 45, "2026-05-10")]


def test_a_sessions_events_reach_the_broker_and_keep_the_contract(start_service, service_config):
    config = service_config("volunteers")
    tap = EventTap(config["AMQP_URI"], "volunteers")
    start_service(VolunteersService, config)
    try:
        with vouched_rpc(config, "volunteers") as volunteers:
            group = volunteers.create_group({"name": "门球队 Gateball", "kind": "sport", "leader_id": LEADER["id"],
                                             "helper_ids": [HELPER]}, ADMIN, [
                {"id": LEADER["id"], "party_member": True, "active": True, "roles": ["member"]},
                {"id": HELPER, "party_member": False, "active": True, "roles": ["member"]}])
            session = volunteers.record_session(group["id"], {
                "held_on": "2026-05-12", "starts_at": "08:30", "duration_minutes": 120,
                "place": "东门球场 East gate court", "what": "对阵幸福里 Match against Xingfu Li",
                "kind": "match", "participants": 16, "helper_ids": [HELPER]}, LEADER, idempotency_key="s-1")
        expected = ["group_created", "session_held", "service_recorded", "service_recorded"]
        wait_for(lambda: len(tap.types()) >= len(expected), timeout=15, what="every volunteers event")
        assert tap.types() == expected
        for envelope in tap.seen:
            contracts.validate(envelope, strict=True)
        held = tap.seen[1]["data"]
        assert (held["session_id"], held["participants"], held["helper_ids"]) == (session["id"], 16, [HELPER])
        assert sorted((e["data"]["member_id"], e["data"]["minutes"]) for e in tap.seen[2:]) == [
            (HELPER, 120), (LEADER["id"], 120)]
        text = json.dumps(tap.seen, ensure_ascii=False)
        assert "East gate" not in text and "Xingfu" not in text and "Gateball" not in text
    finally:
        tap.close()
