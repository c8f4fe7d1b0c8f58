"""Alerts that leave the app, through the gateway: a party member points their
alerts at a URL (a stand-in for an SMS or chat gateway, served here in the
test process), an admin opens a case for them, and the receiver gets the
alert signed as Standard Webhooks do (verified with the standardwebhooks
library) with the secret the member was shown once, and nothing of the
household. A URL that leads inside is refused. A receiver that drips its
answer under a flood of alerts, and one that answers 400 MB, hold up no other
member and do not grow the notifications process."""
import base64
import hashlib
import hmac
import time

import pytest
import requests
from standardwebhooks import Webhook as StandardWebhook

from services import contracts
from services.common import deadletters
from tests.conftest import wait_for
from tests.e2e.conftest import HOUSEHOLD, open_case, running_stack, timed
from tests.e2e.test_patrol import make_zone, report_ok, set_team
from tests.webhook_receivers import Receiver, drip

# make test-slow (about 25 s and a stack of its own; tests/integration/test_webhooks.py stays in make test).
pytestmark = pytest.mark.slow

# The receivers listen on 127.0.0.2, which the operator's allow-list opens (over plain http);
# everything else inside, 127.0.0.1 included, stays refused.
RECEIVER_HOST = "127.0.0.2"


@pytest.fixture(scope="module")
def stack(module_vhost, tmp_path_factory):
    with running_stack(module_vhost, tmp_path_factory.mktemp("linli-webhooks") / "var",
                       LINLI_WEBHOOK_ALLOW_HTTP="true", LINLI_WEBHOOK_ALLOW_HOSTS=RECEIVER_HOST,
                       LINLI_PUBLIC_URL="https://linli.example.org") as stack:
        yield stack


def put(client, path, body):
    return requests.put(client.api + path, json=body, headers=client.headers, timeout=15)


def delete(client, path):
    return requests.delete(client.api + path, headers=client.headers, timeout=15)


INSIDE = ["http://169.254.169.254/latest/meta-data/", "http://localhost:15672/api/definitions",
          "http://guest:guest@127.0.0.1:15672/api/definitions", "http://[::1]/", "http://0x7f000001/",
          "http://2130706433/", "http://017700000001/", "http://[::ffff:127.0.0.1]/", "https://10.0.0.1/",
          "http://127.0.0.1:15672/", "ftp://files.example.org/hook", "not a url"]


def test_a_members_alert_reaches_their_webhook_signed_and_without_personal_data(stack, admin, register):
    member, profile = register()
    receiver = Receiver(host=RECEIVER_HOST)
    try:
        # Set: the secret is shown this once.
        answer = put(member, "/me/webhook", {"url": receiver.url})
        assert answer.status_code == 200, answer.text
        secret = answer.json()["secret"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[len("whsec_"):])) == 32
        shown = member.get("/me/webhook")
        assert shown.status_code == 200, shown.text
        assert shown.json()["url"] == receiver.url
        assert shown.json().get("secret") is None and secret not in shown.text

        # Bad input, and URLs that lead inside: a clear 400 naming the field, and the webhook as it was.
        for bad in INSIDE:
            refused = put(member, "/me/webhook", {"url": bad})
            assert refused.status_code == 400, (bad, refused.text)
            assert "url" in refused.json()["error"]["details"]["fields"], bad
        assert member.get("/me/webhook").json()["url"] == receiver.url
        assert requests.put(member.api + "/me/webhook", json={"url": receiver.url}, timeout=15).status_code == 401

        case = open_case(admin, profile["id"])

        wait_for(lambda: receiver.requests, timeout=15, what="the alert at the webhook")
        [(headers, body)] = receiver.requests
        sent = StandardWebhook(secret).verify(body, headers)  # as a receiver checks it
        key = base64.b64decode(secret[len("whsec_"):])
        assert headers["X-Linli-Signature"] == f"sha256={hmac.new(key, body, hashlib.sha256).hexdigest()}"
        assert headers["webhook-id"] == headers["X-Linli-Delivery"]

        [inbox] = member.get("/me/alerts").json()["items"]
        assert (inbox["kind"], inbox["ref"]) == ("case_assigned", {"type": "case", "id": case["id"]})
        # Issue 16: the kind, the compound and a link back to the alert; its words stay in the inbox.
        assert sent == {"kind": "case_assigned", "compound": HOUSEHOLD["compound"],
                        "link": f"{stack.env['LINLI_PUBLIC_URL']}/app/#/alerts/{inbox['id']}"}

        text = body.decode()
        personal = [person["name"] for person in HOUSEHOLD["people"]]
        personal += [condition for person in HOUSEHOLD["people"] for condition in person["conditions"]]
        personal += [HOUSEHOLD["address"], "Minimum-living allowance", profile.get("name", "张伟"), "139 1234 5678"]
        personal += ["Elderly", "高龄独居", "Illness", "重病", inbox["message"], profile["id"]]
        assert [item for item in personal if item in text] == []

        # Deleted: no webhook any more.
        gone = delete(member, "/me/webhook")
        assert gone.status_code == 200, gone.text
        missing = member.get("/me/webhook")
        assert missing.status_code == 404, missing.text
        assert delete(member, "/me/webhook").status_code == 404
        assert len(receiver.requests) == 1  # delivered once
    finally:
        receiver.close()


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak) of a process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_a_dripping_and_a_flooding_receiver_hold_up_no_one_and_grow_nothing(stack, admin, register):
    """Issue 13: a zone leader's webhook drips its answer while a teammate
    reports 14 incidents, and another member's receiver answers 400 MB."""
    leader, leader_view = register()
    teammate, teammate_view = register()
    zone = make_zone(admin)
    set_team(admin, zone["id"], leader_view["id"], [teammate_view["id"]])
    flooded, flooded_view = register()
    written = []

    def flood(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(400 * 2 ** 20))
        handler.end_headers()
        chunk = b"x" * 2 ** 16
        for _ in range(400 * 2 ** 4):
            handler.wfile.write(chunk)
            written.append(len(chunk))

    dripping, flooding = Receiver(answer=drip, host=RECEIVER_HOST), Receiver(answer=flood, host=RECEIVER_HOST)
    pid = stack.processes[("notifications", 0)].pid
    try:
        assert put(leader, "/me/webhook", {"url": dripping.url}).status_code == 200
        assert put(flooded, "/me/webhook", {"url": flooding.url}).status_code == 200
        resident_before = memory_kib(pid, "VmRSS")

        for _ in range(14):
            report_ok(teammate, zone)
        wait_for(lambda: dripping.open >= 2, timeout=20, what="deliveries under way at the dripping receiver")
        open_case(admin, flooded_view["id"])
        wait_for(lambda: flooding.requests and flooding.open == 0, timeout=30, what="the 400 MB answer cut short")

        lags, reads = [], []
        for _ in range(5):
            member, view = register()
            case = open_case(admin, view["id"])
            opened = time.monotonic()
            wait_for(lambda member=member, case=case: [a for a in member.get("/me/alerts").json()["items"]
                                                       if a["ref"]["id"] == case["id"]],
                     timeout=10, what="another member's alert")
            lags.append(time.monotonic() - opened)
            answer, seconds = timed(lambda member=member: member.get("/me/alerts"))
            assert answer.status_code == 200, answer.text
            reads.append(seconds)
        assert len([a for a in leader.get("/me/alerts").json()["items"] if a["kind"] == "incident_reported"]) == 14

        assert max(lags) < 1.0, lags           # every other member's alert is in their inbox within a second
        assert max(reads) < 1.0, reads         # and GET /me/alerts answers at once
        assert dripping.most_open <= 2         # the dripping receiver has its share at a time, no more
        assert sum(written) < 32 * 2 ** 20     # the 400 MB answer was cut short ...
        grown = memory_kib(pid, "VmHWM") - resident_before
        assert grown < 50 * 1024, f"grew {grown} KiB"  # ... and the process never grew by much
        assert deadletters.list_dead_letters(stack.env["AMQP_URI"], contracts.SUBSCRIPTIONS) == []
    finally:
        dripping.close()
        flooding.close()
