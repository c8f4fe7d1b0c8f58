"""A broker outage while a service is busy: when the broker is back, the
service consumes again. Real services in nameko containers, on a private
RabbitMQ node (tests/broker_node.py) that the test stops; never the shared one.

Found by `make fault`: after a broker restart under load, welfare stayed
alive with no consumer on its RPC queue. An RPC worker that finished while
the broker was down could not send its reply; kombu, after its publish
retries, raises its own OperationalError, which services.common.nameko_patches
did not catch (only amqp's connection errors), so nameko killed the container.
The node is kept down past those retries, so this happens on every run."""
import threading
import time

import eventlet
import pytest

from services import contracts
from services.common import events
from services.common import config as linli_config
from services.common import migrations
from services.common.service import rpc
from services.contracts import welfare as welfare_events
from services.notifications.service import NotificationsService
from services.welfare.service import WelfareService
from tests import databases
from tests.broker_node import BrokerNode
from tests.conftest import wait_for
from tests.integration.conftest import alerts_for
from tests.integration.test_nameko_failure_modes import CASE_QUEUE, case_opened_envelope, publish
from tests.vouching import vouched_rpc, with_caller_keys

# Minutes of broker restarts, alarms, TLS nodes, killed instances or fuzzing: `make test-slow`.
pytestmark = [pytest.mark.slow, pytest.mark.transport]

HANDLER_SECONDS = 0.3     # a green sleep: workers are mid-flight when the connection drops
IN_FLIGHT = 100           # more than max_workers (the prefetch): some held, some waiting
BACK_WITHIN = 30          # seconds after the broker is back
DOWN_SECONDS = 10         # past nameko's reply publish retries (max_retries 3: about 6 s)


@pytest.fixture
def private_config(node, tmp_path):
    def make(service: str, **overrides) -> dict:
        config = linli_config.load(service)
        config.pop("LOGGING", None)
        db_url = databases.database_url(tmp_path, service)
        migrations.upgrade(service, db_url)
        config.update({"AMQP_URI": node.amqp_uri, "DB_URL": db_url, "OUTBOX_GRACE_SECONDS": 0,
                       "EVENT_RETRY_BACKOFF": 0.01, "EVENT_MAX_ATTEMPTS": 3})
        config.update(overrides)
        return with_caller_keys(config)
    return make


class SlowNotifications(NotificationsService):
    """The real notifications service, whose case_opened handler takes a while
    (yielding to the hub), so that workers hold messages when the broker goes."""

    @contracts.subscribed("welfare", welfare_events.CASE_OPENED)
    def on_case_opened(self, envelope: dict):
        eventlet.sleep(HANDLER_SECONDS)
        NotificationsService.on_case_opened(self, envelope)


class SlowWelfare(WelfareService):
    """The real welfare service, with one RPC method that answers only once
    the test lets it (after the broker is gone)."""
    answer = threading.Event()

    @rpc
    def slow_ping(self) -> dict:
        while not SlowWelfare.answer.is_set():
            eventlet.sleep(0.05)
        return {"service": self.name, "ok": True}


def slow_caller(config: dict):
    try:
        with vouched_rpc(config, "welfare", timeout=DOWN_SECONDS + 30) as welfare:
            welfare.slow_ping()
    except Exception:  # the broker went away under this client: not what is tested
        pass


def consumers(node: BrokerNode, queue: str) -> int:
    try:
        return node.queues().get(queue, {}).get("consumers", 0)
    except Exception:  # the app is still starting
        return 0


def ping(config: dict, timeout: float = 5) -> bool:
    try:
        with vouched_rpc(config, "welfare", timeout=timeout) as welfare:
            return welfare.ping()["ok"]
    except Exception:
        return False


def rpc_caller(config: dict, stop: threading.Event, answered: list):
    while not stop.is_set():
        if ping(config, timeout=3):
            answered.append(time.monotonic())
        stop.wait(0.1)


@pytest.mark.parametrize("outage", ["stop_app", "node_down"])
def test_a_busy_service_consumes_again_after_the_broker_comes_back(
        node, private_config, container_factory, outage):
    notifications_config = private_config("notifications")
    welfare_config = private_config("welfare")
    events.declare_topology(node.amqp_uri, contracts.EVENTS)
    SlowWelfare.answer.clear()
    notifications = container_factory(SlowNotifications, notifications_config)
    notifications.start()
    welfare = container_factory(SlowWelfare, welfare_config)
    welfare.start()
    assert ping(welfare_config)

    before = [f"{index:032x}" for index in range(IN_FLIGHT)]
    stop, answered = threading.Event(), []
    callers = [threading.Thread(target=rpc_caller, args=(welfare_config, stop, answered), daemon=True)
               for _ in range(4)]
    for caller in callers:
        caller.start()
    try:
        # Event handlers and RPC workers are mid-flight, and RPC calls flow, when the broker goes.
        slow = [threading.Thread(target=slow_caller, args=(welfare_config,), daemon=True) for _ in range(3)]
        for thread in slow:
            thread.start()
        wait_for(lambda: node.queues()["rpc-welfare"]["messages_unacknowledged"] > 0,
                 timeout=10, what="RPC calls held by welfare's workers")
        # Published once the RPC calls are held, so that events are still waiting when the broker
        # goes: the queue's own answer counts them (list_queues' counts of a quorum queue are
        # sampled every few seconds, and read 0 right after a publish once in CI).
        for case_id in before:
            publish(node.amqp_uri, case_opened_envelope(case_id))
        assert node.depth(CASE_QUEUE) > 0
        if outage == "stop_app":
            SlowWelfare.answer.set()
            node.restart_app()
        else:
            node.stop()
            SlowWelfare.answer.set()  # their replies find no broker, until past their retries
            time.sleep(DOWN_SECONDS)
            node.start()
        back = time.monotonic()

        wait_for(lambda: consumers(node, CASE_QUEUE) >= 1 and consumers(node, "rpc-welfare") >= 1,
                 timeout=BACK_WITHIN, interval=0.5,
                 what="consumers on notifications' event queue and welfare's RPC queue again")
        wait_for(lambda: any(at > back for at in answered), timeout=BACK_WITHIN, what="an RPC answered")
        after = "f" * 32
        publish(node.amqp_uri, case_opened_envelope(after))
        wait_for(lambda: alerts_for(notifications_config, after), timeout=BACK_WITHIN,
                 what="the alert of an event published after the restart")
        # Everything held or queued at the outage is handled too, once.
        wait_for(lambda: all(alerts_for(notifications_config, case_id) for case_id in before),
                 timeout=BACK_WITHIN, what="the alerts of the events published before")
        assert all(len(alerts_for(notifications_config, case_id)) == 1 for case_id in before)
    finally:
        stop.set()
        for caller in callers:
            caller.join(10)
