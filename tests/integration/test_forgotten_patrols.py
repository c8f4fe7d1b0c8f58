"""A forgotten patrol on the real broker (issue 17): with a tiny cap
(PATROL_CAP_HOURS 0.001: 3.6 s) the patrol service's own timer closes a patrol
no one finished and announces patrol_finished once, capped; its member starts
the next one at once."""
from services.patrol.service import PatrolService
from tests.conftest import wait_for
from tests.integration.conftest import ADMIN, EventTap
from tests.vouching import vouched_rpc

VOLUNTEER = {"id": "v" * 32, "roles": ["member"]}


def test_the_timer_closes_a_forgotten_patrol_once_at_the_cap(start_service, service_config):
    config = service_config("patrol", PATROL_CAP_HOURS=0.001)
    tap = EventTap(config["AMQP_URI"], "patrol")
    start_service(PatrolService, config)
    try:
        with vouched_rpc(config, "patrol") as patrol:
            zone = patrol.create_zone({"name": "West", "compounds": ["Heping Li"]}, ADMIN)
            patrol.assign_team(zone["id"], {"leader_id": VOLUNTEER["id"], "member_ids": []}, ADMIN)
            shift = patrol.start_patrol({"zone_id": zone["id"]}, VOLUNTEER)
            wait_for(lambda: "patrol_finished" in tap.types(), timeout=20, what="the forgotten patrol closed")
            finished = [e["data"] for e in tap.seen if e["type"] == "patrol_finished"]
            assert [(d["patrol_id"], d["closed_automatically"], d["duration_minutes"]) for d in finished] == [
                (shift["id"], True, 0)]  # 3.6 s: no whole minute
            shown = patrol.list_patrols(VOLUNTEER, {"member_id": VOLUNTEER["id"]})["items"][0]
            assert shown["closed_automatically"] is True and shown["finished_at"] is not None
            next_one = patrol.start_patrol({"zone_id": zone["id"]}, VOLUNTEER)
            assert next_one["finished_at"] is None
            patrol.finish_patrol(next_one["id"], {}, VOLUNTEER)
        wait_for(lambda: tap.types().count("patrol_finished") == 2, timeout=15, what="the next patrol's finish")
        assert tap.types().count("patrol_finished") == 2  # the forgotten one once, the next once
    finally:
        tap.close()
