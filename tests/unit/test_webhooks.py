"""Alerts that leave the app, without a broker: the rules of quiet hours,
channels per kind and back-off (domain); the webhook RPCs and the delivery
written with each alert (a worker over SQLite); one delivery attempt against
a real local HTTP receiver (`_deliver`)."""
import hashlib
import hmac
import json
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from zoneinfo import ZoneInfo

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.common.clock import naive_utcnow
from services.common.envelope import make_envelope
from services.common.errors import InvalidInput, NotFound
from services.contracts import patrol as patrol_events
from services.notifications import domain
from services.notifications.domain import (
    MAX_WEBHOOK_ATTEMPTS, URGENT_KINDS, first_attempt_at, goes_to_webhook, quiet_until, retry_delay,
)
from services.notifications.models import Alert, Webhook, WebhookDelivery
from services.notifications.service import NotificationsService

SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFIG = {"LOCAL_TIMEZONE": "Asia/Shanghai"}
MEMBER = "member-a"
URL = "https://sms.example.org/linli"


def at(hour: int, minute: int = 0, day: int = 10) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=SHANGHAI)


# -- domain: quiet hours ---------------------------------------------------------

@pytest.mark.parametrize("now, until", [
    (at(13, 0), at(14, 0)),     # the start is inside
    (at(13, 30), at(14, 0)),
    (at(13, 59), at(14, 0)),
    (at(12, 59), None),
    (at(14, 0), None),          # the end is outside
    (at(23, 0), None),
])
def test_quiet_hours_within_a_day(now, until):
    assert quiet_until(now, "13:00", "14:00") == until


@pytest.mark.parametrize("now, until", [
    (at(22, 0), at(7, 0, day=11)),    # evening: until tomorrow morning
    (at(23, 30), at(7, 0, day=11)),
    (at(0, 0), at(7, 0)),             # after midnight: until this morning
    (at(3, 15), at(7, 0)),
    (at(6, 59), at(7, 0)),
    (at(7, 0), None),
    (at(12, 0), None),
    (at(21, 59), None),
])
def test_quiet_hours_past_midnight(now, until):
    assert quiet_until(now, "22:00", "07:00") == until


def test_quiet_until_keeps_the_local_zone_and_drops_seconds():
    now = datetime(2025, 3, 10, 23, 17, 42, 123456, tzinfo=SHANGHAI)
    until = quiet_until(now, "22:00", "07:30")
    assert until == datetime(2025, 3, 11, 7, 30, tzinfo=SHANGHAI)
    assert until.utcoffset() == timedelta(hours=8)
    assert until.astimezone(timezone.utc) == datetime(2025, 3, 10, 23, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("start, end", [("13:00", "13:00"), (None, None), (None, "07:00"), ("22:00", None),
                                        ("", "")])
def test_no_quiet_hours_hold_nothing(start, end):
    for hour in (0, 7, 13, 22):
        assert quiet_until(at(hour), start, end) is None


def test_a_normal_alert_waits_for_the_end_of_quiet_hours():
    assert first_attempt_at(domain.CASE_ASSIGNED, at(23), "22:00", "07:00") == at(7, day=11)
    assert first_attempt_at(domain.FOLLOWUP_OVERDUE, at(13, 30), "13:00", "14:00") == at(14)
    # Outside quiet hours, or with none: now.
    assert first_attempt_at(domain.CASE_ASSIGNED, at(12), "22:00", "07:00") == at(12)
    assert first_attempt_at(domain.CASE_ASSIGNED, at(23), None, None) == at(23)


@pytest.mark.parametrize("kind", [domain.INCIDENT_HIGH_SEVERITY, domain.INCIDENT_ESCALATED])
def test_an_urgent_alert_is_never_held(kind):
    assert kind in URGENT_KINDS
    assert first_attempt_at(kind, at(23), "22:00", "07:00") == at(23)
    assert first_attempt_at(kind, at(13, 30), "13:00", "14:00") == at(13, 30)


def test_only_the_high_severity_and_escalated_kinds_are_urgent():
    assert URGENT_KINDS == {domain.INCIDENT_HIGH_SEVERITY, domain.INCIDENT_ESCALATED}


# -- domain: back-off and channels -------------------------------------------------

def test_retry_delay_doubles_and_stops_at_ten_minutes():
    delays = [retry_delay(n).total_seconds() for n in range(1, 15)]
    assert delays[:4] == [2, 4, 8, 16]
    assert delays == sorted(delays)
    assert max(delays) == 600 and delays[-1] == 600
    assert retry_delay(100) == timedelta(seconds=600)


def test_every_kind_goes_to_the_webhook_unless_turned_off():
    assert goes_to_webhook(domain.CASE_ASSIGNED, {}) is True
    assert goes_to_webhook(domain.CASE_ASSIGNED, {"followup_overdue": False}) is True
    assert goes_to_webhook(domain.CASE_ASSIGNED, {"case_assigned": True}) is True
    assert goes_to_webhook(domain.CASE_ASSIGNED, {"case_assigned": False}) is False


# -- the service: a worker over SQLite ---------------------------------------------

@pytest.fixture
def notifications(notifications_db):
    """Each call makes a new worker, with a session of its own, as in production."""
    workers = []

    def new_worker():
        db = notifications_db.worker()
        workers.append(db)
        return worker_factory(NotificationsService, db=db, config=CONFIG)

    yield new_worker
    for db in workers:
        db.close()


def case_opened(case_id="case-1", assignee_id=MEMBER):
    return make_envelope("welfare", "case_opened", {
        "case_id": case_id, "household_id": "h1", "compound": "Lotus Garden",
        "categories": ["elderly"], "assignee_id": assignee_id, "status": "open",
    })


def high_severity_incident(incident_id="inc-1"):
    return make_envelope("patrol", patrol_events.INCIDENT_REPORTED, {
        "incident_id": incident_id, "zone_id": "zone-north", "compound": "Pine Court",
        "category": "fire_hazard", "severity": "high", "status": "open", "leader_id": None,
        "reported_by": "m1"})


def admin_registered(member_id):
    return make_envelope("gateway", "member_registered", {
        "member_id": member_id, "roles": ["admin"], "party_member": True, "compound": "Lotus Garden"})


def deliveries(db) -> list[WebhookDelivery]:
    with Session(db.engine) as session:
        return session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at)).all()


def delivery(db, delivery_id) -> WebhookDelivery:
    with Session(db.engine) as session:
        return session.get(WebhookDelivery, delivery_id)


def test_the_secret_is_shown_when_first_set_and_never_again(notifications, notifications_db):
    first = notifications().set_webhook(MEMBER, {"url": URL})
    assert first["url"] == URL
    assert isinstance(first["secret"], str) and len(first["secret"]) >= 32
    assert first["kinds"] == {} and first["quiet_hours"] is None

    again = notifications().set_webhook(MEMBER, {"url": URL + "/v2", "kinds": {"goal_reached": False}})
    assert again.get("secret") is None
    assert again["url"] == URL + "/v2" and again["kinds"] == {"goal_reached": False}
    with Session(notifications_db.engine) as session:
        assert session.get(Webhook, MEMBER).secret == first["secret"]  # kept

    shown = notifications().get_webhook(MEMBER)
    assert shown.get("secret") is None
    assert first["secret"] not in json.dumps(shown)
    assert shown == {"url": URL + "/v2", "kinds": {"goal_reached": False}, "quiet_hours": None, "secret": None}


def test_rotating_the_secret_makes_and_shows_a_new_one(notifications, notifications_db):
    first = notifications().set_webhook(MEMBER, {"url": URL})["secret"]
    rotated = notifications().set_webhook(MEMBER, {"url": URL, "rotate_secret": True})["secret"]
    assert rotated and rotated != first
    with Session(notifications_db.engine) as session:
        assert session.get(Webhook, MEMBER).secret == rotated
    assert notifications().get_webhook(MEMBER).get("secret") is None


def test_quiet_hours_are_stored_and_shown(notifications):
    set_ = notifications().set_webhook(MEMBER, {"url": URL, "quiet_hours": {"start": "22:00", "end": "07:00"}})
    assert set_["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    assert notifications().get_webhook(MEMBER)["quiet_hours"] == {"start": "22:00", "end": "07:00"}
    # Set again without them: none any more.
    notifications().set_webhook(MEMBER, {"url": URL})
    assert notifications().get_webhook(MEMBER)["quiet_hours"] is None


@pytest.mark.parametrize("payload, field", [
    ({"url": "ftp://files.example.org/hook"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"url": "http://"}, "url"),
    ({}, "url"),
    ({"url": "https://x.example.org/" + "a" * 500}, "url"),
    ({"url": URL, "quiet_hours": {"start": "25:00", "end": "07:00"}}, "quiet_hours"),
    ({"url": URL, "quiet_hours": {"start": "22:00", "end": "7am"}}, "quiet_hours"),
    ({"url": URL, "quiet_hours": {"start": "22:00"}}, "quiet_hours"),
    ({"url": URL, "kinds": {"birthday_wishes": False}}, "kinds"),
    ({"url": URL, "kinds": {"case_assigned": "sometimes"}}, "kinds"),
])
def test_bad_settings_are_invalid_input_naming_the_field(notifications, notifications_db, payload, field):
    with pytest.raises(InvalidInput) as raised:
        notifications().set_webhook(MEMBER, payload)
    assert field in raised.value.details["fields"]
    assert notifications_db.count(Webhook) == 0


def test_bad_settings_leave_an_existing_webhook_as_it_was(notifications):
    notifications().set_webhook(MEMBER, {"url": URL})
    with pytest.raises(InvalidInput):
        notifications().set_webhook(MEMBER, {"url": "ftp://files.example.org/hook"})
    assert notifications().get_webhook(MEMBER)["url"] == URL


def test_an_alert_for_a_member_with_a_webhook_writes_one_pending_delivery(notifications, notifications_db):
    notifications().set_webhook(MEMBER, {"url": URL})
    before = naive_utcnow()
    notifications().on_case_opened(case_opened("case-7"))
    after = naive_utcnow()

    [row] = deliveries(notifications_db)
    with Session(notifications_db.engine) as session:
        [alert] = session.scalars(select(Alert)).all()
    assert (row.status, row.attempts, row.member_id, row.alert_id) == ("pending", 0, MEMBER, alert.id)
    assert before <= row.next_attempt_at <= after  # due now
    body = json.loads(row.body)
    assert body["alert"]["id"] == alert.id
    assert body["alert"]["kind"] == "case_assigned"
    assert body["alert"]["ref"] == {"type": "case", "id": "case-7"}
    assert body["alert"]["message"] == domain.MESSAGES["case_assigned"]
    # Ids only: nothing of the household travels (the event carried its compound; the body does not).
    assert "Lotus Garden" not in row.body and "h1" not in json.dumps(body["alert"])


def test_a_redelivered_event_writes_no_second_delivery(notifications, notifications_db):
    notifications().set_webhook(MEMBER, {"url": URL})
    envelope = case_opened()
    notifications().on_case_opened(envelope)
    notifications().on_case_opened(json.loads(json.dumps(envelope)))
    assert len(deliveries(notifications_db)) == 1


def test_a_kind_turned_off_goes_to_the_inbox_only(notifications, notifications_db):
    notifications().set_webhook(MEMBER, {"url": URL, "kinds": {"case_assigned": False}})
    notifications().on_case_opened(case_opened())
    assert deliveries(notifications_db) == []
    inbox = notifications().list_alerts(MEMBER)["items"]
    assert [(a["kind"], a["ref"]["id"]) for a in inbox] == [("case_assigned", "case-1")]


def test_other_kinds_still_go_when_one_is_turned_off(notifications, notifications_db):
    notifications().set_webhook(MEMBER, {"url": URL, "kinds": {"goal_reached": False}})
    notifications().on_case_opened(case_opened())
    assert len(deliveries(notifications_db)) == 1


def test_a_member_without_a_webhook_gets_no_delivery(notifications, notifications_db):
    notifications().set_webhook("someone-else", {"url": URL})
    notifications().on_case_opened(case_opened(assignee_id=MEMBER))
    assert deliveries(notifications_db) == []
    assert len(notifications().list_alerts(MEMBER)["items"]) == 1


def quiet_window_around_now() -> tuple[dict, datetime]:
    """Quiet hours from an hour ago to an hour from now, Shanghai time, and
    their end in UTC (naive, as stored)."""
    now = datetime.now(SHANGHAI)
    start, end = now - timedelta(hours=1), (now + timedelta(hours=1)).replace(second=0, microsecond=0)
    quiet = {"start": start.strftime("%H:%M"), "end": end.strftime("%H:%M")}
    return quiet, end.astimezone(timezone.utc).replace(tzinfo=None)


def test_quiet_hours_hold_a_normal_alert_until_they_end(notifications, notifications_db):
    quiet, end_utc = quiet_window_around_now()
    notifications().set_webhook(MEMBER, {"url": URL, "quiet_hours": quiet})
    notifications().on_case_opened(case_opened())

    [row] = deliveries(notifications_db)
    assert row.status == "pending"
    assert row.next_attempt_at > naive_utcnow() + timedelta(minutes=55)
    assert row.next_attempt_at == end_utc
    # Held, not dropped: the inbox has it at once.
    assert len(notifications().list_alerts(MEMBER)["items"]) == 1


def test_quiet_hours_never_hold_an_urgent_alert(notifications, notifications_db):
    quiet, _ = quiet_window_around_now()
    notifications().on_member_registered(admin_registered("admin-1"))
    notifications().set_webhook("admin-1", {"url": URL, "quiet_hours": quiet})
    before = naive_utcnow()
    notifications().on_incident_reported(high_severity_incident())
    after = naive_utcnow()

    [row] = deliveries(notifications_db)
    assert json.loads(row.body)["alert"]["kind"] == "incident_high_severity"
    assert row.status == "pending"
    assert before <= row.next_attempt_at <= after


def test_quiet_hours_outside_now_hold_nothing(notifications, notifications_db):
    now = datetime.now(SHANGHAI)
    quiet = {"start": (now + timedelta(hours=2)).strftime("%H:%M"),
             "end": (now + timedelta(hours=3)).strftime("%H:%M")}
    notifications().set_webhook(MEMBER, {"url": URL, "quiet_hours": quiet})
    notifications().on_case_opened(case_opened())
    [row] = deliveries(notifications_db)
    assert row.next_attempt_at <= naive_utcnow()


def test_deleting_the_webhook_cancels_what_is_pending(notifications, notifications_db):
    notifications().set_webhook(MEMBER, {"url": URL})
    notifications().set_webhook("member-b", {"url": URL})
    notifications().on_case_opened(case_opened("case-1"))
    notifications().on_case_opened(case_opened("case-2"))
    notifications().on_case_opened(case_opened("case-3", assignee_id="member-b"))

    assert notifications().delete_webhook(MEMBER) == {"deleted": True}
    statuses = sorted((row.member_id, row.status) for row in deliveries(notifications_db))
    assert statuses == [("member-a", "cancelled"), ("member-a", "cancelled"), ("member-b", "pending")]
    with pytest.raises(NotFound):
        notifications().get_webhook(MEMBER)
    with pytest.raises(NotFound):
        notifications().delete_webhook(MEMBER)
    # Later alerts stay in the app.
    notifications().on_case_opened(case_opened("case-4"))
    assert len(deliveries(notifications_db)) == 3
    assert notifications().get_webhook("member-b")["url"] == URL


def test_no_webhook_is_not_found(notifications):
    with pytest.raises(NotFound):
        notifications().get_webhook(MEMBER)
    with pytest.raises(NotFound):
        notifications().delete_webhook(MEMBER)


# -- one delivery attempt, to a real local receiver ----------------------------------

class Receiver:
    """A local HTTP endpoint (a green thread under the suite's monkey-patching)
    that answers with the statuses given, in turn (the last one thereafter),
    and records what it got."""

    def __init__(self, *statuses: int):
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(statuses[min(len(receiver.requests), len(statuses)) - 1])
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(*statuses):
        made.append(Receiver(*statuses))
        return made[-1]

    yield make
    for one in made:
        one.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def queued(notifications, notifications_db, url) -> tuple[str, str]:
    """A webhook to `url` and one alert for it: (the secret, the delivery id)."""
    secret = notifications().set_webhook(MEMBER, {"url": url})["secret"]
    notifications().on_case_opened(case_opened())
    [row] = deliveries(notifications_db)
    return secret, row.id


def test_a_receiver_that_answers_200_has_it_delivered_signed(notifications, notifications_db, receiver):
    hook = receiver(200)
    secret, delivery_id = queued(notifications, notifications_db, hook.url)

    NotificationsService._deliver(notifications_db.engine, delivery_id)

    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 1, None)
    assert row.delivered_at is not None
    [(headers, body)] = hook.requests
    assert body == row.body.encode()
    assert headers["X-Linli-Signature"] == "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Linli-Delivery"] == delivery_id
    assert headers["Content-Type"] == "application/json"


def test_a_receiver_that_answers_500_is_retried_after_two_seconds(notifications, notifications_db, receiver):
    hook = receiver(500, 200)
    _, delivery_id = queued(notifications, notifications_db, hook.url)

    before = naive_utcnow()
    NotificationsService._deliver(notifications_db.engine, delivery_id)
    after = naive_utcnow()

    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
    assert before + timedelta(seconds=2) <= row.next_attempt_at <= after + timedelta(seconds=2)
    assert row.delivered_at is None

    NotificationsService._deliver(notifications_db.engine, delivery_id)  # the retry
    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 2, None)
    first, second = hook.requests
    assert first[1] == second[1] and first[0]["X-Linli-Delivery"] == second[0]["X-Linli-Delivery"]


def test_back_off_grows_with_each_failure(notifications, notifications_db, receiver):
    hook = receiver(503)
    _, delivery_id = queued(notifications, notifications_db, hook.url)
    for attempts in (1, 2, 3):
        before = naive_utcnow()
        NotificationsService._deliver(notifications_db.engine, delivery_id)
        row = delivery(notifications_db, delivery_id)
        assert (row.attempts, row.last_error) == (attempts, "HTTP 503")
        assert row.next_attempt_at >= before + timedelta(seconds=2 ** attempts)
        assert row.next_attempt_at <= naive_utcnow() + timedelta(seconds=2 ** attempts)


def test_after_the_last_attempt_it_is_failed(notifications, notifications_db, receiver):
    hook = receiver(500)
    _, delivery_id = queued(notifications, notifications_db, hook.url)

    for _ in range(MAX_WEBHOOK_ATTEMPTS - 1):
        NotificationsService._deliver(notifications_db.engine, delivery_id)
    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts) == ("pending", MAX_WEBHOOK_ATTEMPTS - 1)

    NotificationsService._deliver(notifications_db.engine, delivery_id)
    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", MAX_WEBHOOK_ATTEMPTS, "HTTP 500")
    assert row.delivered_at is None
    assert len(hook.requests) == MAX_WEBHOOK_ATTEMPTS


def test_a_refused_connection_is_a_failed_attempt_not_an_error(notifications, notifications_db):
    _, delivery_id = queued(notifications, notifications_db, closed_port_url())

    before = naive_utcnow()
    NotificationsService._deliver(notifications_db.engine, delivery_id)  # raises nothing

    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "ConnectionError"
    assert row.next_attempt_at >= before + timedelta(seconds=2)


def test_a_delivery_whose_webhook_was_deleted_is_cancelled_unsent(notifications, notifications_db, receiver):
    hook = receiver(200)
    _, delivery_id = queued(notifications, notifications_db, hook.url)
    with Session(notifications_db.engine) as session:  # deleted after the timer claimed the delivery
        session.delete(session.get(Webhook, MEMBER))
        session.commit()

    NotificationsService._deliver(notifications_db.engine, delivery_id)
    assert delivery(notifications_db, delivery_id).status == "cancelled"
    assert hook.requests == []
