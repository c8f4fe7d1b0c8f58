"""Alerts that leave the app, without a broker: the rules of quiet hours,
channels per kind and back-off (domain); the webhook RPCs and the delivery
written with each alert (a worker over SQLite); where a webhook may lead
(public addresses only, in every spelling, resolved once); one delivery
attempt against real local HTTP receivers: signed as Standard Webhooks (checked
with the standardwebhooks library), under a deadline and a size cap, no
redirects, to the very address that was checked."""
import base64
import dataclasses
import hashlib
import hmac
import json
import socket
import ssl
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from services.common.clock import naive_utcnow
from services.common.envelope import make_envelope
from services.common.errors import InvalidInput, NotFound
from services.contracts import patrol as patrol_events
from services.notifications import domain, outbound
from services.notifications.domain import (
    MAX_WEBHOOK_ATTEMPTS, URGENT_KINDS, first_attempt_at, goes_to_webhook, quiet_until, retry_delay,
)
from services.notifications.deliveries import Deliveries
from services.notifications.models import Alert, Webhook, WebhookDelivery
from services.notifications.outbound import Policy
from services.notifications.service import NotificationsService
from tests.conftest import wait_for
from tests.webhook_receivers import Receiver, drip
from tests.unit.conftest import service_config, workers_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
PUBLIC_URL = "https://linli.example.org/"
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

# sms.example.org stands for a receiver on the internet; 127.0.0.1 is allow-listed for the local ones.
PUBLIC_ADDRESS = "93.184.215.14"
def shipped_policy(**changes) -> Policy:
    """The webhook policy notifications.yml ships (its one home), with `changes`."""
    return dataclasses.replace(Policy.from_config(service_config("notifications")), **changes)


POLICY = shipped_policy(allow_http=True, allow_hosts=frozenset({"127.0.0.1"}), deadline_seconds=2,
                max_response_bytes=4096)


def fake_dns(host: str, port: int) -> list[str]:
    if host == "sms.example.org":
        return [PUBLIC_ADDRESS]
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture
def sender(notifications_db):
    """The process's deliveries, over the test's database, with a resolver the test controls."""
    return Deliveries(POLICY, notifications_db.engine, resolver=fake_dns)


@pytest.fixture
def notifications(notifications_db, sender):
    return workers_of(NotificationsService, notifications_db, {"webhooks": sender}, PUBLIC_URL=PUBLIC_URL)


def worker_sending_by(webhooks, notifications_db):
    """One worker whose deliveries are `webhooks`, not the fixture's sender."""
    return workers_of(NotificationsService, notifications_db, {"webhooks": webhooks}, PUBLIC_URL=PUBLIC_URL)()


def case_opened(case_id="case-1", assignee_id=MEMBER):
    return make_envelope("welfare", "case_opened", {
        "case_id": case_id, "household_id": "h1", "compound": "Lotus Garden",
        "categories": ["elderly"], "category_labels": ["高龄独居 Elderly"], "assignee_id": assignee_id,
        "status": "open",
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
    assert first["secret"].startswith("whsec_")  # a Standard Webhooks secret: 32 random bytes
    assert len(base64.b64decode(first["secret"].removeprefix("whsec_"))) == 32
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
    ({"url": "https://user:password@sms.example.org/linli"}, "url"),
    ({"url": "http://[::1/"}, "url"),
    ({"url": "https://bad\udc00name.example.org/"}, "url"),
    ({"url": "https://nowhere.invalid/hook"}, "url"),   # does not resolve
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
    # Issue 16: the kind, the compound and a link back to the alert, nothing more: not the message, which
    # names the case's categories of hardship (the inbox has it), nor the household or the member.
    assert json.loads(row.body) == {"kind": "case_assigned", "compound": "Lotus Garden",
                                    "link": f"https://linli.example.org/app/#/alerts/{alert.id}"}
    assert alert.message == "Lotus Garden：高龄独居 Elderly — 新的帮扶个案交给您 A hardship case is now yours"
    assert "Elderly" not in row.body and "h1" not in row.body and MEMBER not in row.body


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
    assert json.loads(row.body)["kind"] == "incident_high_severity"
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


# -- where a webhook may lead ------------------------------------------------------------

INSIDE = [
    "http://169.254.169.254/latest/meta-data/",      # cloud metadata (link-local)
    "http://localhost:15672/api/definitions",
    "http://127.0.0.1:15672/",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:a00:1]/",
    "http://0x7f000001/", "http://2130706433/", "http://017700000001/", "http://127.1/", "http://0177.0.0.1/",
    "http://0/", "http://0.0.0.0/", "http://[::]/",
    "https://10.0.0.1/", "https://172.16.5.4/", "https://192.168.1.1/", "https://100.64.0.1/",  # private, CGNAT
    "https://[fd00::1]/", "https://[fe80::1]/", "https://[fe80::1%25eth0]/",                    # ULA, link-local
    "https://224.0.0.1/", "https://[ff02::1]/", "https://240.0.0.1/", "https://255.255.255.255/",
    "https://192.0.2.1/", "https://[2001:db8::1]/",                                             # documentation
    "https://[2002:7f00:1::]/", "https://[64:ff9b::a00:1]/",                  # 6to4 and NAT64 of inside ones
]


def strict_policy(**changes) -> Policy:
    return shipped_policy(**{"allow_http": True, **changes})


@pytest.mark.parametrize("url", INSIDE)
def test_a_webhook_may_not_lead_inside_in_any_spelling(url):
    with pytest.raises(outbound.Refused):
        outbound.check_url(url, strict_policy(), outbound.system_resolver)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "::1", "::ffff:10.0.0.1", "fe80::1", "100.64.1.1",
                                     "169.254.169.254", "0.0.0.0", "224.1.1.1", "ff0e::1", "fc00::1"])
def test_a_name_that_resolves_inside_is_refused(address):
    with pytest.raises(outbound.Refused, match="public addresses only"):
        outbound.check_url("https://hooks.example.org/x", shipped_policy(), lambda host, port: [address])


def test_one_inside_address_among_public_ones_is_refused():
    with pytest.raises(outbound.Refused):
        outbound.check_url("https://hooks.example.org/x", shipped_policy(),
                           lambda host, port: [PUBLIC_ADDRESS, "10.0.0.1"])


@pytest.mark.parametrize("address", [PUBLIC_ADDRESS, "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.215.14"])
def test_public_addresses_may_be_reached(address):
    target = outbound.check_url("https://hooks.example.org/x?a=1", shipped_policy(), lambda host, port: [address])
    assert (target.host, target.port, target.path, target.host_header) == ("hooks.example.org", 443, "/x?a=1",
                                                                          "hooks.example.org")


@pytest.mark.parametrize("url, reason", [
    ("http://hooks.example.org/x", "https"),                    # plain http, not allowed by default
    ("https://user:pw@hooks.example.org/x", "credentials"),
    ("https://user@hooks.example.org/x", "credentials"),
    ("ftp://hooks.example.org/x", "https"),
    ("https:///x", "host"),
    ("https://hooks.example.org:99999/x", "port"),
])
def test_urls_that_are_refused_whatever_their_address(url, reason):
    with pytest.raises(outbound.Refused, match=reason):
        outbound.check_url(url, shipped_policy(), lambda host, port: [PUBLIC_ADDRESS])


def test_the_operators_allow_list_opens_named_hosts_only():
    policy = shipped_policy(allow_http=True, allow_hosts=frozenset({"sms.internal", "127.0.0.1:8125"}))
    inside = lambda host, port: ["10.0.0.7"]  # noqa: E731
    assert outbound.check_url("http://sms.internal/x", policy, inside).host == "sms.internal"
    assert outbound.check_url("http://127.0.0.1:8125/x", policy, inside).port == 8125
    for url in ("http://127.0.0.1:8126/x", "http://other.internal/x", "http://0x7f000001:8126/"):
        with pytest.raises(outbound.Refused):
            outbound.check_url(url, policy, inside)


def test_the_allow_list_and_plain_http_come_from_the_configuration():
    policy = Policy.from_config({"WEBHOOK_ALLOW_HTTP": True, "WEBHOOK_ALLOW_HOSTS": "127.0.0.1, SMS.internal:8080",
                                 "WEBHOOK_PER_RECEIVER": 3, "WEBHOOK_MAX_IN_FLIGHT": 9,
                                 "WEBHOOK_DEADLINE_SECONDS": 4, "WEBHOOK_MAX_RESPONSE_BYTES": 100})
    assert policy == Policy(True, frozenset({"127.0.0.1", "sms.internal:8080"}), 3, 9, 4.0, 100)
    # What notifications.yml ships: https only, no host let in.
    assert shipped_policy() == Policy(False, frozenset(), 2, 16, 10.0, 65536)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://10.0.0.1/",
                                 "https://user:pw@sms.example.org/linli", "https://nowhere.invalid/"])
def test_setting_a_webhook_inside_is_invalid_input_naming_the_url(notifications, notifications_db, url):
    with pytest.raises(InvalidInput) as raised:
        worker_sending_by(Deliveries(shipped_policy(allow_http=True), notifications_db.engine, resolver=fake_dns),
                          notifications_db).set_webhook(MEMBER, {"url": url})
    assert "url" in raised.value.details["fields"]
    assert notifications_db.count(Webhook) == 0


def test_writing_an_alert_waits_on_no_webhook_and_touches_no_network(notifications_db):
    asked = []
    sender = Deliveries(POLICY, notifications_db.engine, resolver=lambda host, port: asked.append(host) or
                        [PUBLIC_ADDRESS])
    worker = worker_sending_by(sender, notifications_db)
    worker.set_webhook(MEMBER, {"url": "https://hooks.example.org/x"})
    assert asked == ["hooks.example.org"]  # checked when set
    worker = worker_sending_by(sender, notifications_db)
    worker.on_case_opened(case_opened())
    assert asked == ["hooks.example.org"]  # not again: the alert and its delivery row are written, nothing sent
    assert [row["event_type"] for row in notifications_db.outbox()] == ["alert_created"]
    assert [row.status for row in deliveries(notifications_db)] == ["pending"]


# -- one delivery, to real local receivers ------------------------------------------------

@pytest.fixture
def receiver():
    made = []

    def make(*statuses, **kwargs):
        made.append(Receiver(*statuses, **kwargs))
        return made[-1]

    yield make
    for one in made:
        one.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def queued(notifications, notifications_db, url, member=MEMBER, case_id="case-1") -> tuple[str, str]:
    """A webhook to `url` and one alert for it: (the secret, the delivery id)."""
    secret = notifications().set_webhook(member, {"url": url}).get("secret")
    notifications().on_case_opened(case_opened(case_id, assignee_id=member))
    row = [row for row in deliveries(notifications_db) if row.member_id == member][-1]
    return secret, row.id


def send_due(sender, notifications_db, later: float = 0) -> list[str | None]:
    """One tick of the timer, the sends waited for: what each attempt failed of (None: delivered)."""
    with Session(notifications_db.engine) as session:
        jobs = sender.claim(session, now=naive_utcnow() + timedelta(seconds=later))
        session.commit()
    return [sender.deliver(job) for job in jobs]


def test_a_receiver_that_answers_200_has_it_delivered_signed_as_standard_webhooks(
        notifications, notifications_db, sender, receiver):
    hook = receiver(200)
    secret, delivery_id = queued(notifications, notifications_db, hook.url)

    assert send_due(sender, notifications_db) == [None]

    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 1, None)
    assert row.delivered_at is not None
    [(headers, body)] = hook.requests
    assert body == row.body.encode()
    # What a receiver does with the standardwebhooks library: verify, and get what it says.
    assert StandardWebhook(secret).verify(body, headers)["kind"] == "case_assigned"
    assert headers["webhook-id"] == delivery_id == headers["X-Linli-Delivery"]
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    # The deprecated header, for one more release: HMAC of the body with the same key.
    key = base64.b64decode(secret.removeprefix("whsec_"))
    assert headers["X-Linli-Signature"] == "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    assert headers["Content-Type"] == "application/json"
    assert headers["Host"] == f"127.0.0.1:{hook.port}"


def test_a_tampered_stale_or_foreign_delivery_does_not_verify(notifications, notifications_db, sender, receiver):
    hook = receiver(200)
    secret, _ = queued(notifications, notifications_db, hook.url)
    send_due(sender, notifications_db)
    [(headers, body)] = hook.requests
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(secret).verify(body.replace(b"case_assigned", b"case_drafted"), headers)
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(outbound.new_secret()).verify(body, headers)
    stale = dict(headers, **outbound.signed_headers(secret, headers["webhook-id"], body,
                                                    now=datetime.now(timezone.utc) - timedelta(minutes=10)))
    with pytest.raises(WebhookVerificationError, match="too old"):
        StandardWebhook(secret).verify(body, stale)


def test_a_secret_made_before_standard_webhooks_still_signs_both_ways(notifications, notifications_db, sender,
                                                                      receiver):
    hook = receiver(200)
    _, delivery_id = queued(notifications, notifications_db, hook.url)
    legacy = "Kp3x-old_style_token_urlsafe_secret-0123456789a"  # what secrets.token_urlsafe(32) made
    with Session(notifications_db.engine) as session:
        session.get(Webhook, MEMBER).secret = legacy
        session.commit()
    send_due(sender, notifications_db)
    [(headers, body)] = hook.requests
    # As its receiver always checked it ...
    assert headers["X-Linli-Signature"] == "sha256=" + hmac.new(legacy.encode(), body, hashlib.sha256).hexdigest()
    # ... and with Standard Webhooks: the key is the old secret's bytes, i.e. whsec_ + base64 of it.
    assert StandardWebhook("whsec_" + base64.b64encode(legacy.encode()).decode()).verify(body, headers)
    assert StandardWebhook(legacy.encode()).verify(body, headers)


def test_a_receiver_that_answers_500_is_retried_after_two_seconds(notifications, notifications_db, sender,
                                                                  receiver):
    hook = receiver(500, 200)
    _, delivery_id = queued(notifications, notifications_db, hook.url)

    before = naive_utcnow()
    assert send_due(sender, notifications_db) == ["HTTP 500"]
    after = naive_utcnow()

    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "HTTP 500")
    assert before + timedelta(seconds=2) <= row.next_attempt_at <= after + timedelta(seconds=2)
    assert row.delivered_at is None
    assert send_due(sender, notifications_db) == []  # not before its time

    assert send_due(sender, notifications_db, later=3) == [None]  # the retry
    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 2, None)
    first, second = hook.requests
    assert first[1] == second[1] and first[0]["webhook-id"] == second[0]["webhook-id"]


def test_back_off_grows_with_each_failure(notifications, notifications_db, sender, receiver):
    hook = receiver(503)
    _, delivery_id = queued(notifications, notifications_db, hook.url)
    for attempts in (1, 2, 3):
        before = naive_utcnow()
        send_due(sender, notifications_db, later=600)
        row = delivery(notifications_db, delivery_id)
        assert (row.attempts, row.last_error) == (attempts, "HTTP 503")
        assert row.next_attempt_at >= before + timedelta(seconds=2 ** attempts)
        assert row.next_attempt_at <= naive_utcnow() + timedelta(seconds=2 ** attempts)


def test_after_the_last_attempt_it_is_failed(notifications, notifications_db, sender, receiver):
    hook = receiver(500)
    _, delivery_id = queued(notifications, notifications_db, hook.url)

    for _ in range(MAX_WEBHOOK_ATTEMPTS - 1):
        send_due(sender, notifications_db, later=600)
    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts) == ("pending", MAX_WEBHOOK_ATTEMPTS - 1)

    send_due(sender, notifications_db, later=600)
    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", MAX_WEBHOOK_ATTEMPTS, "HTTP 500")
    assert row.delivered_at is None
    assert len(hook.requests) == MAX_WEBHOOK_ATTEMPTS
    assert send_due(sender, notifications_db, later=6000) == []


def test_a_refused_connection_is_a_failed_attempt_not_an_error(notifications, notifications_db, sender):
    _, delivery_id = queued(notifications, notifications_db, closed_port_url())

    before = naive_utcnow()
    assert send_due(sender, notifications_db) == ["ConnectionRefusedError"]

    row = delivery(notifications_db, delivery_id)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "ConnectionRefusedError")
    assert row.next_attempt_at >= before + timedelta(seconds=2)


def test_a_redirect_is_not_followed(notifications, notifications_db, sender, receiver):
    target = receiver(200)

    def redirect(handler):
        handler.send_response(307)
        handler.send_header("Location", target.url)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    hook = receiver(answer=redirect)
    _, delivery_id = queued(notifications, notifications_db, hook.url)
    assert send_due(sender, notifications_db) == ["HTTP 307"]
    assert len(hook.requests) == 1 and target.requests == []  # neither the body nor its signature sent on
    assert delivery(notifications_db, delivery_id).status == "pending"


def failing_drip(handler):
    """500 and its headers at once, then a byte every 2 s, for as long as the sender listens."""
    drip(handler, status=500)


def slow_headers(handler):
    """Nothing at all for a long while: the status line comes one byte every 0.5 s."""
    for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
        time.sleep(0.5)
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()


@pytest.mark.parametrize("answer, error", [(failing_drip, "HTTP 500"), (slow_headers, "Timeout")])
def test_a_slow_receiver_gets_one_deadline_for_the_whole_request(notifications, notifications_db, sender, receiver,
                                                                 answer, error):
    """Each read is quick, but the request as a whole is over at the deadline (2 s here)."""
    hook = receiver(answer=answer)
    _, delivery_id = queued(notifications, notifications_db, hook.url)
    started = time.monotonic()
    assert send_due(sender, notifications_db) == [error]
    assert time.monotonic() - started < POLICY.deadline_seconds + 1
    assert delivery(notifications_db, delivery_id).last_error == error


def test_a_dripping_200_is_delivered_without_waiting_for_its_body(notifications, notifications_db, sender,
                                                                   receiver):
    hook = receiver(answer=drip)
    _, delivery_id = queued(notifications, notifications_db, hook.url)
    assert send_due(sender, notifications_db) == [None]
    assert delivery(notifications_db, delivery_id).status == "delivered"


def test_a_huge_answer_is_read_no_further_than_the_cap(notifications, notifications_db, sender, receiver):
    sent = []

    def flood(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(400 * 2 ** 20))
        handler.end_headers()
        chunk = b"x" * 65536
        for _ in range(400 * 16):
            handler.wfile.write(chunk)
            sent.append(len(chunk))

    hook = receiver(answer=flood)
    queued(notifications, notifications_db, hook.url)
    assert send_due(sender, notifications_db) == [None]
    wait_for(lambda: hook.open == 0, what="the receiver to see the sender hang up")
    # The cap (4 KiB here) plus what the sockets' buffers took before the sender hung up: far from 400 MB.
    assert sum(sent) < 16 * 2 ** 20


def test_a_delivery_whose_webhook_is_gone_is_cancelled_unsent(notifications, notifications_db, sender, receiver):
    hook = receiver(200)
    _, delivery_id = queued(notifications, notifications_db, hook.url)
    with Session(notifications_db.engine) as session:  # gone without its deliveries being cancelled
        session.delete(session.get(Webhook, MEMBER))
        session.commit()

    assert send_due(sender, notifications_db) == []
    assert delivery(notifications_db, delivery_id).status == "cancelled"
    assert hook.requests == []


def test_a_delivery_cancelled_while_under_way_stays_cancelled(notifications, notifications_db, sender, receiver):
    hook = receiver(500)
    _, delivery_id = queued(notifications, notifications_db, hook.url)
    with Session(notifications_db.engine) as session:
        [job] = sender.claim(session)
        session.commit()
    notifications().delete_webhook(MEMBER)
    sender.deliver(job)
    assert delivery(notifications_db, delivery_id).status == "cancelled"


# -- concurrency: a receiver's share, and the whole ---------------------------------------

def test_a_receiver_gets_its_share_at_once_and_the_rest_wait_without_holding_up_others(
        notifications, notifications_db, sender, receiver):
    slow, quick = receiver(answer=failing_drip), receiver(200)
    notifications().set_webhook("leader", {"url": slow.url})
    for n in range(14):
        notifications().on_case_opened(case_opened(f"case-{n}", assignee_id="leader"))
    queued(notifications, notifications_db, quick.url, member="other", case_id="case-other")

    with Session(notifications_db.engine) as session:
        jobs = sender.claim(session)
        session.commit()
    # The slow receiver's share (2), and the other member's delivery, though it came last.
    assert sorted(job.member_id for job in jobs) == ["leader", "leader", "other"]
    sender.start(jobs)
    wait_for(lambda: quick.requests, timeout=2, what="the other member's delivery")
    wait_for(lambda: slow.open == 2, timeout=2, what="two deliveries under way at the slow receiver")
    assert sender.active == {f"127.0.0.1:{slow.port}": 2}
    with Session(notifications_db.engine) as session:
        assert sender.claim(session) == []  # the slow one has its share; the rest wait in the database
    wait_for(lambda: not sender.active, timeout=POLICY.deadline_seconds + 2, what="the deadline")
    assert slow.most_open == 2
    pending = [row for row in deliveries(notifications_db) if row.member_id == "leader" and row.attempts == 0]
    assert len(pending) == 12


def test_the_total_in_flight_is_bounded():
    policy = shipped_policy(allow_http=True, allow_hosts=frozenset({"127.0.0.1"}), per_receiver=2, max_in_flight=3)
    sender = Deliveries(policy, engine=None)
    sender.active.update({"a:1": 2, "b:2": 1})
    assert sender.claim(session=None) == []  # no room: the database is not even asked


# -- rebinding: the address that was checked is the one connected to -------------------------

def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused(notifications, notifications_db, receiver):
    hook = receiver(200)
    answers = iter([[PUBLIC_ADDRESS], ["127.0.0.1"], ["127.0.0.1"]])
    rebinding = Deliveries(shipped_policy(), notifications_db.engine, resolver=lambda host, port: next(answers))
    worker_sending_by(rebinding, notifications_db).set_webhook(
        MEMBER, {"url": f"https://rebind.example.org:{hook.port}/hook"})
    notifications().on_case_opened(case_opened())
    assert send_due(rebinding, notifications_db) == [
        "refused: A webhook may reach public addresses only, not this one."]
    assert hook.requests == []


def test_a_delivery_connects_to_the_address_it_checked_and_resolves_once(notifications_db, monkeypatch, receiver):
    """The resolver answers a public address, then 127.0.0.1 (where a receiver
    listens) to anyone who asks again: the connection goes to the first."""
    hook = receiver(200)
    asked = []

    def rebinding(host, port):
        asked.append(host)
        return [PUBLIC_ADDRESS] if len(asked) == 1 else ["127.0.0.1"]

    connected = []

    def create_connection(address, *args, **kwargs):
        connected.append(address)
        raise ConnectionRefusedError(111, "refused (test)")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    policy = shipped_policy(allow_http=True)
    error = outbound.attempt(f"http://rebind.example.org:{hook.port}/hook", b"{}", {}, policy, rebinding)
    assert error == "ConnectionRefusedError"
    assert connected == [(PUBLIC_ADDRESS, hook.port)] and asked == ["rebind.example.org"]
    assert hook.requests == []


# -- TLS: the address is pinned, the name still comes from the URL ---------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A CA of the test's own, and a certificate from it for receiver.test."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.now(timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("linli test CA")).issuer_name(name("linli test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now - timedelta(days=1))
          .not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("receiver.test")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("receiver.test")]), critical=False)
            # Python 3.13 checks strictly (VERIFY_X509_STRICT), as real CAs' certificates allow.
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder = tmp_path_factory.mktemp("tls")
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder


def test_https_goes_to_the_checked_address_with_the_urls_name_for_sni_and_host(certificate, receiver):
    server_names = []
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    tls.sni_callback = lambda sock, server_name, context: server_names.append(server_name)
    hook = receiver(200, tls=tls)
    trust = ssl.create_default_context(cafile=str(certificate / "ca.pem"))
    policy = shipped_policy(allow_hosts=frozenset({"receiver.test"}))
    to_loopback = lambda host, port: ["127.0.0.1"]  # noqa: E731

    url = f"https://receiver.test:{hook.port}/hook"
    assert outbound.attempt(url, b"{}", {}, policy, to_loopback, tls_context=trust) is None
    [(headers, _)] = hook.requests
    assert headers["Host"] == f"receiver.test:{hook.port}" and server_names == ["receiver.test"]

    # A certificate for another name is refused, though the address is the same.
    other = shipped_policy(allow_hosts=frozenset({"impostor.test"}))
    error = outbound.attempt(f"https://impostor.test:{hook.port}/hook", b"{}", {}, other, to_loopback,
                             tls_context=trust)
    assert error == "SSLCertVerificationError" and len(hook.requests) == 1


def test_an_international_name_is_resolved_and_sent_in_its_ascii_form():
    asked = []
    target = outbound.check_url("https://bücher.example/hook", shipped_policy(),
                                lambda host, port: asked.append(host) or [PUBLIC_ADDRESS])
    assert asked == ["xn--bcher-kva.example"] and target.host_header == "xn--bcher-kva.example"
