"""Forgotten patrols through the running stack (issue 17): the patrol
service's own sweep closes a patrol left on past the cap (its start moved 5
hours back in its database, the cap the default 4 hours), its member starts a
new one, and the office corrects the times (members refused, bad times a 400
naming the field, a patrol still on a 409). On the office's shared stack."""
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import create_engine, update
from sqlalchemy.pool import NullPool

from services.patrol.models import Patrol
from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, new_key, ok
from tests.e2e.test_office_pages import run_journey

SCRIPT = Path(__file__).with_name("field_browser.py")


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def move_start_back(stack, patrol_id: str, hours: float):
    """As if the patrol had been started `hours` ago: the sweep's clock is the real one."""
    engine = create_engine(stack.db_url("patrol"), poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(update(Patrol.__table__).where(Patrol.__table__.c.id == patrol_id).values(
                started_at=datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(hours=hours)))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def forgotten(stack, admin, register):
    return leave_a_patrol_on(stack, admin, register, "刘桂芳")


def leave_a_patrol_on(stack, admin, register, name: str) -> dict:
    """A volunteer's patrol left on for 5 hours, closed by the sweep."""
    tag = uuid.uuid4().hex[:6]
    volunteer_client, volunteer = register(name=name, party_member=False)
    zone = ok(admin.post("/zones", {"name": f"北片区 North {tag}", "compounds": [f"Lotus Garden {tag}"]}), 201)
    ok(requests.put(f"{admin.api}/zones/{zone['id']}/team", headers=admin.headers, timeout=15,
                    json={"leader_id": volunteer["id"], "member_ids": []}))
    shift = ok(volunteer_client.post("/patrols", {"zone_id": zone["id"]}, key=new_key()), 201)
    move_start_back(stack, shift["id"], 5)

    def closed():
        mine = ok(volunteer_client.get("/patrols", params={"member_id": volunteer["id"]}))["items"]
        return next((p for p in mine if p["id"] == shift["id"] and p["finished_at"]), None)
    patrol = wait_for(closed, timeout=20, interval=0.3, what="the sweep to close the forgotten patrol")
    return {"zone": zone, "patrol": patrol, "volunteer": volunteer, "volunteer_client": volunteer_client}


def test_the_sweep_closes_a_forgotten_patrol_at_the_cap_and_its_member_patrols_again(forgotten):
    patrol, client = forgotten["patrol"], forgotten["volunteer_client"]
    started, finished = moment(patrol["started_at"]), moment(patrol["finished_at"])
    assert patrol["closed_automatically"] is True and patrol["duration_minutes"] == 240
    assert finished - started == timedelta(hours=4) and patrol["corrected_at"] is None
    assert patrol["notes"] is None

    late = client.post(f"/patrols/{patrol['id']}/finish", {"notes": "Back home."}, key=new_key())
    assert late.status_code == 409 and "closed automatically" in late.json()["error"]["message"]
    again = ok(client.post("/patrols", {"zone_id": forgotten["zone"]["id"]}, key=new_key()), 201)
    done = ok(client.post(f"/patrols/{again['id']}/finish", {"notes": ""}, key=new_key()))
    assert done["closed_automatically"] is False and done["duration_minutes"] == 0


def test_the_office_corrects_the_times_and_members_may_not(admin, forgotten):
    patrol, client = forgotten["patrol"], forgotten["volunteer_client"]
    started = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=5)
    body = {"started_at": iso(started), "finished_at": iso(started + timedelta(hours=2, minutes=30)),
            "reason": "刘桂芳 forgot to tap finish; she walked from 19:00 to 21:30."}

    refused = client.post(f"/patrols/{patrol['id']}/correct", body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert ok(admin.get("/patrols", params={"member_id": forgotten["volunteer"]["id"],
                                            "closed_automatically": "true"}))["items"][0]["corrected_at"] is None

    corrected = ok(admin.post(f"/patrols/{patrol['id']}/correct", body))
    assert moment(corrected["started_at"]) == started
    assert moment(corrected["finished_at"]) == started + timedelta(hours=2, minutes=30)
    assert corrected["duration_minutes"] == 150 and corrected["closed_automatically"] is True
    assert corrected["corrected_at"] and corrected["corrected_by"] == ok(admin.get("/me"))["id"]
    listed = ok(admin.get("/patrols", params={"member_id": forgotten["volunteer"]["id"],
                                              "closed_automatically": "true"}))["items"]
    assert [(p["id"], p["duration_minutes"], p["correction_reason"]) for p in listed] == [
        (patrol["id"], 150, body["reason"])]


@pytest.mark.parametrize("change, field", [
    ({"finished_at": "started"}, "finished_at"),
    ({"finished_at": "+30h"}, "finished_at"),
    ({"finished_at": "future"}, "finished_at"),
    ({"started_at": "not a time"}, "started_at"),
    ({"reason": ""}, "reason"),
    ({"reason": None}, "reason"),
])
def test_times_that_cannot_be_a_patrols_are_a_400_naming_the_field_and_change_nothing(
        admin, forgotten, change, field):
    patrol = forgotten["patrol"]
    before = ok(admin.get("/patrols", params={"member_id": forgotten["volunteer"]["id"],
                                              "closed_automatically": "true"}))["items"]
    started = datetime.now(timezone.utc) - timedelta(hours=40)
    body = {"started_at": iso(started), "finished_at": iso(started + timedelta(hours=3)), "reason": "Checked."}
    words = {"started": iso(started), "+30h": iso(started + timedelta(hours=30)),
             "future": iso(datetime.now(timezone.utc) + timedelta(hours=1))}
    body.update({k: words.get(v, v) for k, v in change.items()})
    answer = admin.post(f"/patrols/{patrol['id']}/correct", body)
    assert answer.status_code == 400, answer.text
    assert field in answer.json()["error"]["details"]["fields"]
    assert ok(admin.get("/patrols", params={"member_id": forgotten["volunteer"]["id"],
                                            "closed_automatically": "true"}))["items"] == before


def test_a_patrol_still_on_is_a_409_and_an_unknown_one_a_404(admin, forgotten):
    client = forgotten["volunteer_client"]
    on = ok(client.post("/patrols", {"zone_id": forgotten["zone"]["id"]}, key=new_key()), 201)
    now = datetime.now(timezone.utc)
    body = {"started_at": iso(now - timedelta(hours=1)), "finished_at": iso(now), "reason": "Checked."}
    assert admin.post(f"/patrols/{on['id']}/correct", body).status_code == 409
    assert admin.post("/patrols/no-such-patrol/correct", body).status_code == 404
    ok(client.post(f"/patrols/{on['id']}/finish", {}, key=new_key()))


def test_the_member_sees_it_closed_automatically_and_the_office_corrects_it_on_its_pages(
        stack, admin, register, tmp_path):
    name = f"王秀兰 {uuid.uuid4().hex[:4]}"
    forgotten = leave_a_patrol_on(stack, admin, register, name)
    shanghai = ZoneInfo("Asia/Shanghai")
    started = (datetime.now(shanghai) - timedelta(hours=6)).replace(second=0, microsecond=0)
    finished = started + timedelta(hours=2, minutes=30)
    found = run_journey(stack, "forgotten_patrol", tmp_path, username=forgotten["volunteer"]["username"],
                password="member-password", script=SCRIPT, admin_password=ADMIN_PASSWORD, member_name=name,
                started_local=started.strftime("%Y-%m-%dT%H:%M"), finished_local=finished.strftime("%Y-%m-%dT%H:%M"),
                reason="She forgot to finish; times checked with her by phone.")
    assert all(width <= 360 for width in found["scroll_widths"].values()), found["scroll_widths"]
    assert found["small_targets"]["patrol_closed"] == []  # the field's page; the zones page is the desk's
    corrected = ok(admin.get("/patrols", params={"member_id": forgotten["volunteer"]["id"]}))["items"][0]
    assert moment(corrected["started_at"]) == started and moment(corrected["finished_at"]) == finished
    assert corrected["duration_minutes"] == 150 and corrected["corrected_at"]
