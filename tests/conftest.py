"""Shared test helpers. Tests run under eventlet's monkey-patching, as nameko
containers need; it is applied here, before anything else is imported."""
import eventlet

eventlet.monkey_patch()  # noqa: E402 -- must precede every other import

import time

import pytest

from services.ops.vhost import Vhost
from tests import databases
from tests.broker_node import BrokerNode


def pytest_report_header(config):
    return f"databases: {'PostgreSQL at ' + databases.POSTGRES_SERVER if databases.on_postgres() else 'SQLite'}"


def pytest_sessionstart(session):
    if databases.on_postgres():
        databases.drop_stale()


def pytest_sessionfinish(session, exitstatus):
    databases.drop_created()


def wait_for(condition, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll `condition()` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def _new_vhost(request) -> Vhost:
    amqp_uri = request.config.getoption("RABBIT_AMQP_URI").replace("pyamqp://", "amqp://")
    return Vhost(amqp_uri).create()


@pytest.fixture
def vhost(request):
    vhost = _new_vhost(request)
    yield vhost
    vhost.delete()


@pytest.fixture(scope="module")
def node(request):
    """A private RabbitMQ node for this test module (tests/broker_node.py), to
    restart or raise alarms on: never the shared one."""
    node = BrokerNode(request.module.__name__.rpartition(".")[2].removeprefix("test_").replace("_", "-")).start()
    yield node
    node.remove()


@pytest.fixture(scope="module")
def module_vhost(request):
    vhost = _new_vhost(request)
    yield vhost
    vhost.delete()
