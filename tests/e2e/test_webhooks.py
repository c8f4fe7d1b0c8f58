"""Alerts that leave the app, through the gateway: a party member points their
alerts at a URL (a stand-in for an SMS or chat gateway, served here in the
test process), an admin opens a case for them, and the receiver gets the
alert signed with the secret the member was shown once, and nothing of the
household."""
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import requests

from tests.conftest import wait_for
from tests.e2e.conftest import HOUSEHOLD, open_case


class Receiver:
    """A local HTTP endpoint that answers 200 and records every request."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def put(client, path, body):
    return requests.put(client.api + path, json=body, headers=client.headers, timeout=15)


def delete(client, path):
    return requests.delete(client.api + path, headers=client.headers, timeout=15)


def test_a_members_alert_reaches_their_webhook_signed_and_without_personal_data(stack, admin, register):
    member, profile = register()
    receiver = Receiver()
    try:
        # Set: the secret is shown this once.
        answer = put(member, "/me/webhook", {"url": receiver.url})
        assert answer.status_code == 200, answer.text
        secret = answer.json()["secret"]
        assert isinstance(secret, str) and len(secret) >= 32
        shown = member.get("/me/webhook")
        assert shown.status_code == 200, shown.text
        assert shown.json()["url"] == receiver.url
        assert shown.json().get("secret") is None and secret not in shown.text

        # Bad input: a clear 400 naming the field, and the webhook as it was.
        for bad in ("ftp://files.example.org/hook", "not a url"):
            refused = put(member, "/me/webhook", {"url": bad})
            assert refused.status_code == 400, refused.text
            assert "url" in refused.json()["error"]["details"]["fields"]
        assert member.get("/me/webhook").json()["url"] == receiver.url
        assert requests.put(member.api + "/me/webhook", json={"url": receiver.url}, timeout=15).status_code == 401

        case = open_case(admin, profile["id"])

        wait_for(lambda: receiver.requests, timeout=15, what="the alert at the webhook")
        [(headers, body)] = receiver.requests
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Linli-Signature"] == f"sha256={expected}"
        assert headers["X-Linli-Delivery"]
        sent = json.loads(body)["alert"]

        [inbox] = member.get("/me/alerts").json()["items"]
        assert (inbox["kind"], inbox["ref"]) == ("case_assigned", {"type": "case", "id": case["id"]})
        assert {key: sent[key] for key in ("id", "kind", "message", "ref", "created_at")} == \
            {key: inbox[key] for key in ("id", "kind", "message", "ref", "created_at")}

        text = body.decode()
        personal = [person["name"] for person in HOUSEHOLD["people"]]
        personal += [condition for person in HOUSEHOLD["people"] for condition in person["conditions"]]
        personal += [HOUSEHOLD["address"], "Minimum-living allowance", profile.get("name", "张伟"), "139 1234 5678"]
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
