"""Alerts that leave the app: a member's webhook receives each alert, signed
as Standard Webhooks do, retried with back-off when the receiver fails, and a
slow receiver holds up no one else's alerts: with one that drips its answer
taking a flood of alerts, every other member's alert is in their inbox within
a second, the inbox answers at once, and nothing is dead-lettered. Real
broker, real local HTTP receivers (allow-listed: webhooks reach public
addresses only)."""
import base64
import hashlib
import hmac
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

from nameko.amqp.publish import Publisher
from nameko.standalone.events import get_event_exchange
from nameko.testing.services import entrypoint_waiter
from standardwebhooks import Webhook as StandardWebhook

from services.common import deadletters, events
from services.common.envelope import make_envelope
from services.contracts import patrol as patrol_events
from services.notifications.service import NotificationsService
from tests.conftest import wait_for
from tests.vouching import vouched_rpc

# The receivers here are local: the operator's allow-list lets them in, over plain http.
LOCAL_RECEIVERS = {"WEBHOOK_ALLOW_HTTP": True, "WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}


def notifications_rpc(config: dict):
    """Every direct RPC call of this module, vouched for as the gateway would."""
    return vouched_rpc(config, "notifications")


class Receiver:
    """A local HTTP endpoint that answers the first `failures` requests with
    500, after `delay` seconds each, and records everything it got."""

    def __init__(self, failures: int = 0, delay: float = 0.0):
        self.requests: list[tuple[dict, bytes, float]] = []
        self.started: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                receiver.started.append(time.monotonic())
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)  # the receiver is slow; this is its behaviour, not a wait
                receiver.requests.append((dict(self.headers), body, time.monotonic()))
                self.send_response(500 if len(receiver.requests) <= failures else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def case_opened(case_id: str, assignee_id: str) -> dict:
    return make_envelope("welfare", "case_opened", {
        "case_id": case_id, "household_id": "h" * 32, "compound": "Xingfu Garden",
        "categories": ["elderly"], "assignee_id": assignee_id, "status": "open"})


def publish(amqp_uri: str, envelope: dict):
    events.declare_topology(amqp_uri)
    Publisher(amqp_uri).publish(envelope, exchange=get_event_exchange(envelope["source"], {}),
                                routing_key=envelope["type"])


def test_a_failing_receiver_gets_the_alert_once_it_recovers_signed_and_once(start_service, service_config):
    config = service_config("notifications", **LOCAL_RECEIVERS)
    container = start_service(NotificationsService, config)
    receiver = Receiver(failures=1)
    try:
        with notifications_rpc(config) as notifications:
            secret = notifications.set_webhook("m" * 32, {"url": receiver.url})["secret"]
        publish(config["AMQP_URI"], case_opened("c" * 32, "m" * 32))

        wait_for(lambda: len(receiver.requests) == 2, timeout=20, what="the retried delivery")
        (first_headers, first_body, first_at), (headers, body, at) = receiver.requests
        assert at - first_at >= 1.5  # backed off before trying again
        assert first_body == body and first_headers["webhook-id"] == headers["webhook-id"]
        alert = StandardWebhook(secret).verify(body, headers)["alert"]
        expected = hmac.new(base64.b64decode(secret.removeprefix("whsec_")), body, hashlib.sha256).hexdigest()
        assert headers["X-Linli-Signature"] == f"sha256={expected}"  # deprecated, still sent
        assert (alert["kind"], alert["ref"]) == ("case_assigned", {"type": "case", "id": "c" * 32})

        # Delivered: later ticks send nothing more.
        for _ in range(3):
            with entrypoint_waiter(container, "deliver_webhooks", timeout=5):
                pass
        assert len(receiver.requests) == 2
    finally:
        receiver.close()


def test_a_slow_receiver_holds_up_no_one_else(start_service, service_config):
    config = service_config("notifications", **LOCAL_RECEIVERS)
    start_service(NotificationsService, config)
    slow, quick = Receiver(delay=4), Receiver()
    try:
        with notifications_rpc(config) as notifications:
            notifications.set_webhook("s" * 32, {"url": slow.url})
            notifications.set_webhook("q" * 32, {"url": quick.url})
        publish(config["AMQP_URI"], case_opened("1" * 32, "s" * 32))
        wait_for(lambda: slow.started, timeout=10, what="the slow delivery to be under way")
        sent = time.monotonic()
        publish(config["AMQP_URI"], case_opened("2" * 32, "q" * 32))
        wait_for(lambda: quick.requests, timeout=10, what="the quick receiver's alert")
        assert quick.requests[0][2] - sent < 3  # not behind the slow receiver's 4 s
        wait_for(lambda: slow.requests, timeout=10, what="the slow receiver's alert")
    finally:
        slow.close()
        quick.close()


def hung_up(connection, wait: float) -> bool:
    """Whether the sender closed the connection, within `wait` seconds (a receiver's pause)."""
    readable, _, _ = select.select([connection], [], [], wait)
    return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""


class DripReceiver:
    """Answers 200 and its headers at once, then its body one byte every 2 s,
    for as long as the sender listens; counts the deliveries it holds at once."""

    def __init__(self):
        self.open = 0
        self.most_open = 0
        self.started = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                receiver.started += 1
                receiver.open += 1
                receiver.most_open = max(receiver.most_open, receiver.open)
                try:
                    self.rfile.read(int(self.headers["Content-Length"]))
                    self.send_response(200)
                    self.send_header("Content-Length", str(10 ** 9))
                    self.end_headers()
                    while not hung_up(self.connection, 2):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                except OSError:
                    pass  # the sender hung up
                finally:
                    receiver.open -= 1

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def incident_reported(incident_id: str, leader_id: str) -> dict:
    return make_envelope("patrol", patrol_events.INCIDENT_REPORTED, {
        "incident_id": incident_id, "zone_id": "z" * 32, "compound": "Xingfu Garden", "category": "hardship",
        "severity": "medium", "status": "open", "leader_id": leader_id, "reported_by": "t" * 32})


def test_a_dripping_receiver_under_a_flood_stalls_no_one_else_and_loses_nothing(start_service, service_config):
    """Issue 13: a zone leader's webhook drips its answer while a teammate
    reports 14 incidents. Before, each delivery held a database connection for
    the whole drip, and other members' alerts and inboxes stalled."""
    config = service_config("notifications", **LOCAL_RECEIVERS)
    start_service(NotificationsService, config)
    drip, quick = DripReceiver(), Receiver()
    leader = "l" * 32
    try:
        with notifications_rpc(config) as notifications:
            notifications.set_webhook(leader, {"url": drip.url})
            notifications.set_webhook("q" * 32, {"url": quick.url})
        for n in range(14):
            publish(config["AMQP_URI"], incident_reported(f"{n:032d}", leader))
        wait_for(lambda: drip.open >= 2, timeout=10, what="deliveries to the dripping receiver")

        lags, inbox_reads = [], []
        with notifications_rpc(config) as notifications:
            for n in range(8):  # about 25 s, past two deadlines of the drip's deliveries
                member = f"{n:x}" * 32
                case_id = f"c{n:031d}"
                sent = time.monotonic()
                publish(config["AMQP_URI"], case_opened(case_id, member))
                wait_for(lambda member=member: notifications.list_alerts(member)["items"], timeout=10,
                         what=f"member {n}'s alert")
                lags.append(time.monotonic() - sent)
                started = time.monotonic()
                notifications.list_alerts(leader)
                inbox_reads.append(time.monotonic() - started)
                time.sleep(2)
            sent = time.monotonic()
            publish(config["AMQP_URI"], case_opened("9" * 32, "q" * 32))
            wait_for(lambda: quick.requests, timeout=5, what="the quick receiver's delivery")
            quick_lag = quick.requests[0][2] - sent
            leader_inbox = notifications.list_alerts(leader, {"limit": 50})["items"]

        assert max(lags) < 1.0, lags                   # every other member's alert in their inbox within 1 s
        assert max(inbox_reads) < 0.5, inbox_reads     # and the inbox answers at once
        assert quick_lag < 2.5, quick_lag              # a quick receiver is not behind the slow one
        assert len(leader_inbox) == 14                 # the leader's alerts are all in the inbox too
        assert drip.most_open <= 2                     # the dripping receiver had its share, no more
        assert drip.started >= 4                       # and its deliveries went on, two at a time
        assert deadletters.list_dead_letters(config["AMQP_URI"]) == []
    finally:
        drip.close()
        quick.close()
