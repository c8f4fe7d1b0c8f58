"""Issue 16, through the gateway on the office's shared stack: an alert names
what happened and where (an incident its compound, the category's label and
the severity; a case its compound and categories), in the inbox and on the
member's stream; an incident in a zone without a leader alerts every admin at
once, once each; a webhook gets only the kind, the compound and a link back;
the live feed shows none of the words."""
import json
import uuid

import pytest
import requests
from standardwebhooks import Webhook as StandardWebhook

from tests.conftest import wait_for
from tests.e2e.conftest import HOUSEHOLD, OFFICE_PUBLIC_URL, OFFICE_RECEIVER_HOST, EventStream, new_key, open_case
from tests.e2e.test_patrol import alerts, make_zone, report_ok, set_team
from tests.webhook_receivers import Receiver

WORDS = ("违章建筑", "Illegal structure", "高龄独居", "Elderly", "重病", "Illness", "片区", "New incident",
         "without a leader", "严重 High", "轻微 Low")


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py)."""
    return office_stack


def one_alert(client, ref_id: str) -> dict:
    """The client's one alert about `ref_id`, once it is there (and no second)."""
    [alert] = wait_for(lambda: alerts(client, ref_id=ref_id), timeout=10, what=f"the alert about {ref_id}")
    return alert


def test_alerts_say_what_and_where_and_only_the_kind_compound_and_a_link_leave(stack, admin, register):
    viewer, _ = register(roles=["viewer"], party_member=False)
    feed = EventStream(stack.url + "/api/v1/events/stream", viewer.token)
    # A second admin, registered first: notifications knows it is one before the leaderless incidents.
    other_admin, _ = register(roles=["admin"], party_member=False)
    leader, leader_view = register()
    assignee, assignee_view = register()
    leader_stream = EventStream(stack.url + "/api/v1/me/alerts/stream", leader.token)
    receiver = Receiver(host=OFFICE_RECEIVER_HOST)
    try:
        answer = requests.put(leader.api + "/me/webhook", json={"url": receiver.url}, headers=leader.headers,
                              timeout=15)
        assert answer.status_code == 200, answer.text
        secret = answer.json()["secret"]
        # The community's own category, with its labels.
        code = f"illegal_{uuid.uuid4().hex[:8]}"
        added = admin.post("/categories/incident",
                           {"code": code, "label_zh": "违章建筑", "label_en": "Illegal structure"}, key=new_key())
        assert added.status_code == 201, added.text

        # A zone with a leader: the leader's alert names the compound, the category's label and the severity.
        led = make_zone(admin)
        set_team(admin, led["id"], leader_view["id"], [])
        compound = led["compounds"][0]
        reported = report_ok(admin, led, category=code, severity="high")
        alert = one_alert(leader, reported["id"])
        assert alert["kind"] == "incident_reported" and alert["compound"] == compound
        assert alert["message"] == (f"{compound}：违章建筑 Illegal structure · 严重 High — "
                                    "片区有新上报 New incident in your zone")
        live = wait_for(lambda: [e["data"] for e in leader_stream.events if e["data"]["id"] == alert["id"]],
                        timeout=10, what="the alert on the leader's stream")
        assert (live[0]["message"], live[0]["compound"]) == (alert["message"], compound)

        # What leaves Linli: the kind, the compound and a link back to the alert, nothing more.
        wait_for(lambda: receiver.requests, timeout=15, what="the alert at the leader's webhook")
        [(headers, body)] = receiver.requests
        assert StandardWebhook(secret).verify(body, headers) == {
            "kind": "incident_reported", "compound": compound,
            "link": f"{OFFICE_PUBLIC_URL}/app/#/alerts/{alert['id']}"}
        text = body.decode()
        assert [words for words in WORDS + (leader_view["id"], "Bicycles") if words in text] == []

        # A zone without a leader: every admin at once, one alert each, whatever the severity.
        unled = make_zone(admin)
        for severity, kind in (("low", "incident_reported"), ("high", "incident_high_severity")):
            incident = report_ok(admin, unled, category=code, severity=severity)
            for client in (admin, other_admin):
                alert = one_alert(client, incident["id"])
                assert alert["kind"] == kind and alert["compound"] == unled["compounds"][0]
                assert "片区无负责人" in alert["message"] and "without a leader" in alert["message"]
                assert "违章建筑 Illegal structure" in alert["message"]

        # A case: its assignee's alert names the compound and the categories in words.
        case = open_case(admin, assignee_view["id"])
        alert = one_alert(assignee, case["id"])
        assert (alert["kind"], alert["compound"]) == ("case_assigned", HOUSEHOLD["compound"])
        assert alert["message"] == (f"{HOUSEHOLD['compound']}：高龄独居 Elderly、重病 Illness — "
                                    "新的帮扶个案交给您 A hardship case is now yours")

        # The live feed: the alerts' kinds, refs and compounds, never their words.
        wait_for(lambda: [e for e in feed.events if e["data"]["type"] == "alert_created"
                          and e["data"]["data"]["ref"]["id"] == case["id"]],
                 timeout=10, what="the case's alert on the feed")
        shown = json.dumps(feed.events, ensure_ascii=False)
        assert [words for words in WORDS if words in shown] == []
        assert '"message"' not in shown and "category_label" not in shown
    finally:
        receiver.close()
        leader_stream.close()
        feed.close()
