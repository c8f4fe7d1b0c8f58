"""The known ways nameko loses or doubles work, against the real broker and
the real services: an event published before its consumer ever ran, a
worker that blocks its eventlet hub so long that the broker drops the
connection and hands the message out again, and a publish whose confirm is
lost with its connection."""
import socket
import struct
import time
from unittest import mock

import amqp
import eventlet
import pytest
from eventlet.greenio import GreenSocket
from nameko.amqp.publish import Publisher
from nameko.standalone.events import get_event_exchange

from services import contracts
from services.common import events
from services.common.envelope import make_envelope
from services.common.events import ReliableEventHandler
from services.contracts import SUBSCRIPTIONS, Subscription
from services.contracts import welfare as welfare_events
from services.notifications.models import Alert
from services.notifications.models import kernel as notifications_kernel
from services.notifications.service import NotificationsService
from services.welfare.models import kernel as welfare_kernel
from services.welfare.service import WelfareService
from tests.conftest import wait_for
from tests.integration.conftest import ASSIGNEE, alerts_for, count, open_case, unsent

# Minutes of broker restarts, alarms, TLS nodes, killed instances or fuzzing: `make test-slow`.
pytestmark = [pytest.mark.slow, pytest.mark.transport]

CASE_OPENED = Subscription("welfare", welfare_events.CASE_OPENED, "notifications", "on_case_opened")
CASE_QUEUE = events.queue_name(CASE_OPENED)
assert CASE_OPENED in SUBSCRIPTIONS

def queue_exists(vhost, name: str) -> bool:
    try:
        vhost.depth(name)
    except Exception:  # NOT_FOUND from a passive declare
        return False
    return True


# -- 1. published before the consumer ever existed ------------------------------------------


def test_an_event_committed_before_its_consumer_ever_started_is_handled_once_when_it_starts(
        start_service, service_config, vhost):
    """A fresh vhost: no queue, no consumer. Welfare commits a case and its
    relay publishes case_opened; notifications starts only afterwards."""
    welfare_config = service_config("welfare")
    notifications_config = service_config("notifications")
    assert not queue_exists(vhost, CASE_QUEUE)  # nothing declared it yet

    start_service(WelfareService, welfare_config)
    case_id = open_case(welfare_config)
    wait_for(lambda: unsent(welfare_config, welfare_kernel) == 0, what="case_opened published and marked sent")
    # Published while nobody consumed: the relay had declared the queue, so the broker kept it.
    assert vhost.depth(CASE_QUEUE) == 1

    start_service(NotificationsService, notifications_config)
    wait_for(lambda: alerts_for(notifications_config, case_id), timeout=15, what="the alert")
    # A later case proves the consumer moved past the first event rather than still holding it.
    second = open_case(welfare_config)
    wait_for(lambda: alerts_for(notifications_config, second), timeout=15, what="the second alert")
    assert [alert.member_id for alert in alerts_for(notifications_config, case_id)] == [ASSIGNEE]
    assert count(notifications_config, notifications_kernel.processed_events) == 2
    assert vhost.depth(CASE_QUEUE) == 0


# -- 2. a worker that blocks the hub past the heartbeat --------------------------------------

HEARTBEAT = 1                        # seconds; RabbitMQ drops the connection after ~2 missed
BLOCK_SECONDS = 5 * HEARTBEAT        # well past two heartbeats
blocking_sleep = eventlet.patcher.original("time").sleep  # not green: the whole hub stops


class Stall:
    """Where the first delivery blocks the hub: before the handler's effect, or
    after it (the effect committed, the ack not yet sent)."""
    calls: list[str] = []
    when = "after"


class StallingNotifications(NotificationsService):
    """The real notifications service, whose case_opened handler (the real one,
    through the kernel's reliable_event_handler and processed_events) blocks
    the eventlet hub the first time it runs."""

    @contracts.subscribed("welfare", welfare_events.CASE_OPENED)
    def on_case_opened(self, envelope: dict):
        Stall.calls.append(envelope["id"])
        first = len(Stall.calls) == 1
        if first and Stall.when == "before":
            blocking_sleep(BLOCK_SECONDS)
        NotificationsService.on_case_opened(self, envelope)
        if first and Stall.when == "after":
            blocking_sleep(BLOCK_SECONDS)


def case_opened_envelope(case_id: str) -> dict:
    return make_envelope("welfare", welfare_events.CASE_OPENED, {
        "case_id": case_id, "household_id": "h" * 32, "compound": "Xingfu Garden",
        "categories": ["elderly"], "assignee_id": ASSIGNEE, "status": "open"})


def publish(amqp_uri: str, envelope: dict):
    Publisher(amqp_uri).publish(envelope, exchange=get_event_exchange("welfare", {}), routing_key=envelope["type"])


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_worker_that_blocks_the_hub_past_the_heartbeat_has_one_effect(
        start_service, service_config, vhost, when):
    config = service_config("notifications", HEARTBEAT=HEARTBEAT)
    events.declare_topology(config["AMQP_URI"], contracts.EVENTS)
    Stall.calls, Stall.when = [], when

    # Watch what the broker hands out: the redelivered flag of every delivery.
    redelivered: list[bool] = []
    real_handle_message = ReliableEventHandler.handle_message

    def spy(self, body, message):
        redelivered.append(message.delivery_info.get("redelivered"))
        return real_handle_message(self, body, message)

    with mock.patch.object(ReliableEventHandler, "handle_message", spy):
        container = start_service(StallingNotifications, config)
        case_id = "c" * 32
        started = time.monotonic()
        publish(config["AMQP_URI"], case_opened_envelope(case_id))
        # The broker noticed the silence, dropped the connection and handed the message out again.
        wait_for(lambda: len(Stall.calls) >= 2, timeout=BLOCK_SECONDS + 10, what="the redelivery")
        assert time.monotonic() - started >= BLOCK_SECONDS
        assert redelivered[:2] == [False, True]
        wait_for(lambda: alerts_for(config, case_id), timeout=10, what="the alert")

        # The consumer is back: a later event is handled, without a stall.
        later = "d" * 32
        publish(config["AMQP_URI"], case_opened_envelope(later))
        wait_for(lambda: alerts_for(config, later), timeout=10, what="the later alert")

    assert len(alerts_for(config, case_id)) == 1
    assert count(config, notifications_kernel.processed_events) == 2
    assert count(config, Alert.__table__) == 2
    # Nothing left unacked: once the consumer is gone, whatever it held would be ready again.
    container.stop()
    assert vhost.depth(CASE_QUEUE) == 0


# -- 3. a publish whose confirm is lost with the connection ----------------------------------


def lose_the_connection(sock):
    """The network goes: what the broker sent (the confirm) is never read, and
    the next read finds the connection closed."""
    raw = getattr(sock, "fd", sock)  # under eventlet, the real socket
    try:
        while raw.recv(65536, socket.MSG_DONTWAIT):
            pass
    except BlockingIOError:
        pass
    raw.shutdown(socket.SHUT_RDWR)


def test_a_publish_unconfirmed_because_the_connection_dropped_is_published_again_and_handled_once(
        start_service, service_config, vhost):
    """Welfare's relay publishes case_opened; the broker routes it, then the
    connection drops before the confirm is read. Unconfirmed is unsent: the
    event goes out again, and notifications makes the two copies one alert."""
    welfare_config = service_config("welfare")
    notifications_config = service_config("notifications")
    events.declare_topology(vhost.amqp_uri, contracts.EVENTS)
    real_sendall = GreenSocket.sendall
    dropped: list[str] = []
    # A basic.publish method frame's class and method, and its routing key (a short string).
    publish = struct.pack(">HH", *amqp.spec.Basic.Publish)
    routed_as_case_opened = bytes([len(CASE_OPENED.event_type)]) + CASE_OPENED.event_type.encode()

    def send_then_drop(self, data, *args):
        result = real_sendall(self, data, *args)
        sent = bytes(data)
        if publish in sent and routed_as_case_opened in sent and not dropped:  # case_opened is published
            wait_for(lambda: vhost.depth(CASE_QUEUE) == 1, what="the first copy in the queue")
            lose_the_connection(self)
            dropped.append(CASE_OPENED.event_type)
        return result

    # What goes to the broker's socket: the relay's publisher (services/common/broker.py
    # BatchPublisher) writes a batch's messages at once, then reads the confirms.
    with mock.patch.object(GreenSocket, "sendall", send_then_drop):
        start_service(WelfareService, welfare_config)
        case_id = open_case(welfare_config)
        wait_for(lambda: unsent(welfare_config, welfare_kernel) == 0, timeout=15, what="the row marked sent")
    assert dropped == [welfare_events.CASE_OPENED]
    assert vhost.depth(CASE_QUEUE) == 2  # at least once: the routed copy and the one published again

    start_service(NotificationsService, notifications_config)
    wait_for(lambda: alerts_for(notifications_config, case_id), timeout=15, what="the alert")
    second = open_case(welfare_config)  # the relay publishes on after the drop
    wait_for(lambda: alerts_for(notifications_config, second), timeout=15, what="the second alert")
    assert len(alerts_for(notifications_config, case_id)) == 1
    assert count(notifications_config, notifications_kernel.processed_events) == 2
    assert vhost.depth(CASE_QUEUE) == 0
