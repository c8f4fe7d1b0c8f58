"""Alerts that leave the app: a member's webhook receives each alert, signed
with HMAC-SHA256, retried with back-off when the receiver fails, and a slow
receiver holds up no one else's alerts. Real broker, real local HTTP receivers."""
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from nameko.amqp.publish import Publisher
from nameko.standalone.events import get_event_exchange
from nameko.testing.services import entrypoint_waiter

from services.common import events
from services.common.envelope import make_envelope
from services.notifications.service import NotificationsService
from tests.conftest import wait_for
from tests.vouching import vouched_rpc


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
    Publisher(amqp_uri).publish(envelope, exchange=get_event_exchange("welfare", {}), routing_key=envelope["type"])


def test_a_failing_receiver_gets_the_alert_once_it_recovers_signed_and_once(start_service, service_config):
    config = service_config("notifications")
    container = start_service(NotificationsService, config)
    receiver = Receiver(failures=1)
    try:
        with vouched_rpc(config, "notifications") as notifications:
            secret = notifications.set_webhook("m" * 32, {"url": receiver.url})["secret"]
        publish(config["AMQP_URI"], case_opened("c" * 32, "m" * 32))

        wait_for(lambda: len(receiver.requests) == 2, timeout=20, what="the retried delivery")
        (first_headers, first_body, first_at), (headers, body, at) = receiver.requests
        assert at - first_at >= 1.5  # backed off before trying again
        assert first_body == body and first_headers["X-Linli-Delivery"] == headers["X-Linli-Delivery"]
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Linli-Signature"] == f"sha256={expected}"
        alert = json.loads(body)["alert"]
        assert (alert["kind"], alert["ref"]) == ("case_assigned", {"type": "case", "id": "c" * 32})

        # Delivered: later ticks send nothing more.
        for _ in range(3):
            with entrypoint_waiter(container, "deliver_webhooks", timeout=5):
                pass
        assert len(receiver.requests) == 2
    finally:
        receiver.close()


def test_a_slow_receiver_holds_up_no_one_else(start_service, service_config):
    config = service_config("notifications")
    start_service(NotificationsService, config)
    slow, quick = Receiver(delay=4), Receiver()
    try:
        with vouched_rpc(config, "notifications") as notifications:
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
