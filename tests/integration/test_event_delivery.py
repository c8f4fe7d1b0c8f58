"""At-least-once delivery with exactly-once effects, and no silent drops,
against the real broker: the outbox relay after a crash, a duplicate
delivery, and a handler that fails until an operator fixes and replays."""
import json
import os
import subprocess
import sys
from datetime import date
from unittest import mock

from kombu import Connection
from nameko.amqp.publish import Publisher
from nameko.standalone.events import get_event_exchange
from nameko.testing.services import entrypoint_waiter

from services import contracts
from services.common import deadletters, events, migrations
from services.common.envelope import make_envelope
from services.common.outbox import Relay
from services.contracts import SUBSCRIPTIONS
from services.contracts import welfare as welfare_events
from services.notifications.models import kernel as notifications_kernel
from services.notifications.service import NotificationsService
from services.welfare.models import kernel as welfare_kernel
from services.welfare.service import WelfareService
from tests import databases
from tests.conftest import wait_for
from tests.integration.conftest import ASSIGNEE, alerts_for, count, open_case, unsent
from tests.vouching import vouched_rpc

CASE_QUEUE = events.queue_name(SUBSCRIPTIONS[0])

def test_event_committed_but_not_published_is_relayed_after_a_crash_exactly_once(
        start_service, service_config, vhost):
    welfare_config = service_config("welfare")
    notifications_config = service_config("notifications")

    # The welfare process "dies" between its commits and their publish: a case opened in its
    # group commit (publish_committed), then a visit logged on its own (publish_now).
    with mock.patch.object(Relay, "publish_now", lambda self, ids: 0), \
            mock.patch.object(Relay, "publish_committed", lambda self, rows, on_sent: None), \
            mock.patch.object(Relay, "publish_pending", lambda self, batch=500: 0):
        crashed = start_service(WelfareService, welfare_config)
        case_id = open_case(welfare_config)
        with vouched_rpc(welfare_config, "welfare") as welfare:
            welfare.log_visit(case_id, {"visited_on": date.today().isoformat(), "notes": "Mother frail."},
                              {"id": ASSIGNEE, "roles": ["member"]})
        crashed.kill()
    assert unsent(welfare_config, welfare_kernel) == 2

    # Restarted, its relay timer publishes what was left; notifications acts on it once.
    start_service(NotificationsService, notifications_config)
    start_service(WelfareService, welfare_config)
    wait_for(lambda: alerts_for(notifications_config, case_id), timeout=15, what="the alert")
    wait_for(lambda: unsent(welfare_config, welfare_kernel) == 0, what="the outbox rows marked sent")

    # A second case after it proves the queue has moved past the first event.
    second_case = open_case(welfare_config)
    wait_for(lambda: alerts_for(notifications_config, second_case), timeout=15, what="the second alert")
    assert len(alerts_for(notifications_config, case_id)) == 1
    assert alerts_for(notifications_config, case_id)[0].member_id == ASSIGNEE
    assert vhost.depth(CASE_QUEUE) == 0


def case_opened_envelope(case_id: str, **data_overrides) -> dict:
    data = {"case_id": case_id, "household_id": "h" * 32, "compound": "Xingfu Garden",
            "categories": ["elderly"], "assignee_id": ASSIGNEE, "status": "open"}
    data.update(data_overrides)
    return make_envelope("welfare", welfare_events.CASE_OPENED, data)


def publish(config, envelope: dict):
    events.declare_topology(config["AMQP_URI"], contracts.EVENTS)
    Publisher(config["AMQP_URI"]).publish(
        envelope, exchange=get_event_exchange("welfare", {}), routing_key=envelope["type"])


def test_the_same_event_delivered_twice_has_one_effect(start_service, service_config):
    config = service_config("notifications")
    container = start_service(NotificationsService, config)
    envelope = case_opened_envelope("c" * 32)

    for _ in range(2):
        with entrypoint_waiter(container, "on_case_opened", timeout=10):
            publish(config, envelope)

    assert len(alerts_for(config, "c" * 32)) == 1
    assert count(config, notifications_kernel.processed_events) == 1
    assert count(config, notifications_kernel.outbox) == 1  # one alert_created, not two


def linli(config, *args) -> str:
    env = dict(os.environ, AMQP_URI=config["AMQP_URI"])
    result = subprocess.run([sys.executable, "-m", "services.ops.cli", *args], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_failing_handler_is_retried_then_dead_lettered_and_replay_brings_it_back(
        start_service, service_config, vhost):
    # The notifications database was never migrated: every attempt fails.
    config = service_config("notifications", migrate=False)
    start_service(NotificationsService, config)
    envelope = case_opened_envelope("d" * 32)
    publish(config, envelope)

    letters = wait_for(lambda: deadletters.list_dead_letters(config["AMQP_URI"], contracts.SUBSCRIPTIONS), timeout=15,
                       what="the dead letter")
    assert [(letter["event_id"], letter["queue"], letter["attempts"]) for letter in letters] == [
        (envelope["id"], CASE_QUEUE, 3)]
    # No such table: SQLite's driver calls it an OperationalError, psycopg2 a ProgrammingError.
    missing_table = "ProgrammingError" if databases.on_postgres() else "OperationalError"
    assert letters[0]["error"] == missing_table
    assert vhost.depth(CASE_QUEUE) == 0  # not stuck, not redelivered forever

    listed = linli(config, "dlq", "list")
    assert envelope["id"] in listed and missing_table in listed
    assert "Xingfu" not in listed  # payloads stay in the broker

    # The operator fixes the database, then replays: the alert arrives, once.
    migrations.upgrade("notifications", config["DB_URL"])
    replayed = linli(config, "dlq", "replay")
    assert "1 dead letter(s) replayed" in replayed
    wait_for(lambda: alerts_for(config, "d" * 32), timeout=15, what="the replayed alert")
    assert len(alerts_for(config, "d" * 32)) == 1
    assert deadletters.list_dead_letters(config["AMQP_URI"], contracts.SUBSCRIPTIONS) == []


def test_a_message_that_breaks_the_contract_is_dead_lettered_not_dropped(
        start_service, service_config):
    config = service_config("notifications")
    start_service(NotificationsService, config)
    broken = case_opened_envelope("e" * 32)
    del broken["data"]["assignee_id"]
    publish(config, broken)

    letters = wait_for(lambda: deadletters.list_dead_letters(config["AMQP_URI"], contracts.SUBSCRIPTIONS), timeout=15,
                       what="the dead letter")
    assert letters[0]["event_id"] == broken["id"]
    assert letters[0]["error"] == "ValidationError"
    assert alerts_for(config, "e" * 32) == []


def test_queues_exist_before_any_consumer_ran(vhost):
    """An event published before its consumer ever started is kept, not dropped."""
    envelope = case_opened_envelope("f" * 32)
    publish({"AMQP_URI": vhost.amqp_uri}, envelope)
    with Connection(vhost.amqp_uri) as connection:
        message = connection.SimpleQueue(events.event_queue(SUBSCRIPTIONS[0])).get(timeout=5)
        assert json.loads(message.body)["id"] == envelope["id"]
        message.ack()


def test_a_service_counts_its_work_for_prometheus(start_service, service_config):
    import socket

    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = service_config("notifications", METRICS_PORT=port)
    container = start_service(NotificationsService, config)
    with entrypoint_waiter(container, "on_case_opened", timeout=10):
        publish(config, case_opened_envelope("m" * 32))
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'linli_worker_calls_total{entrypoint="on_case_opened",outcome="ok",service="notifications"}' in text
    assert f'linli_events_consumed_total{{outcome="ok",queue="{CASE_QUEUE}"}}' in text
    assert 'linli_events_published_total{source="notifications",type="alert_created"}' in text

    # The outbox relay's timer (every 2 s) measures its backlog: the alert_created row went out.
    def outbox_measured():
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        return ('linli_outbox_backlog{service="notifications"} 0.0' in text
                and 'linli_outbox_oldest_unsent_seconds{service="notifications"} 0.0' in text)
    wait_for(outbox_measured, timeout=10, what="the outbox gauges")


def test_a_crash_after_publishing_but_before_marking_sent_is_deduplicated_downstream(
        start_service, service_config, vhost):
    """The relay published a group commit's events, then died before they were
    marked sent (in the next batch's transaction): after restart it publishes
    again, and the consumer's processed_events makes it one alert."""
    welfare_config = service_config("welfare")
    notifications_config = service_config("notifications")
    start_service(NotificationsService, notifications_config)

    def publish_then_die(self, run):
        self.publisher.publish_all([self._message(row) for entry in run for row in entry.rows])
        # killed here: the ids never reach the group commit that would mark them sent

    with mock.patch.object(Relay, "_send_committed", publish_then_die):
        crashed = start_service(WelfareService, welfare_config)
        case_id = open_case(welfare_config)
        wait_for(lambda: alerts_for(notifications_config, case_id), timeout=15, what="the first delivery")
        crashed.kill()
    assert unsent(welfare_config, welfare_kernel) == 1  # it never knew it had published

    start_service(WelfareService, welfare_config)
    wait_for(lambda: unsent(welfare_config, welfare_kernel) == 0, timeout=15, what="the row marked sent")
    second = open_case(welfare_config)
    wait_for(lambda: alerts_for(notifications_config, second), timeout=15, what="a later alert")
    assert len(alerts_for(notifications_config, case_id)) == 1
    assert vhost.depth(CASE_QUEUE) == 0
