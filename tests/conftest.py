"""Shared test helpers. Tests run under eventlet's monkey-patching, as nameko
containers need; it is applied here, before anything else is imported."""
import eventlet

eventlet.monkey_patch()  # noqa: E402 -- must precede every other import

import time
from pathlib import Path

import pytest

from services.ops.vhost import Vhost
from tests import databases
from tests.broker_node import BrokerNode

TESTS = Path(__file__).parent


def pytest_report_header(config):
    return f"databases: {'PostgreSQL at ' + databases.POSTGRES_SERVER if databases.on_postgres() else 'SQLite'}"


def pytest_sessionstart(session):
    if databases.on_postgres():
        databases.drop_stale()


def pytest_sessionfinish(session, exitstatus):
    databases.drop_created()


def pytest_collection_modifyitems(config, items):
    """Mark `database` every test that goes through a service's database, the
    tests `make test-postgres` runs on PostgreSQL: in tests/unit those given a
    service's database (a `*_db` fixture, tests/unit/conftest.py) or marked so;
    in tests/integration and tests/e2e all but those marked `transport`, whose
    subject is the broker, TLS, the proxy or the streams and not the data."""
    for item in items:
        layer = item.path.relative_to(TESTS).parts[0]
        if item.get_closest_marker("database"):
            continue
        if (any(name.endswith("_db") for name in item.fixturenames) if layer == "unit"
                else layer in ("integration", "e2e") and not item.get_closest_marker("transport")):
            item.add_marker(pytest.mark.database)


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


def nothing_more_arrives(probe, seconds: float = 1.0, interval: float = 0.1, what: str = "it"):
    """Watch `probe()` for `seconds` -- time enough for a second copy of an event,
    a second alert or another sweep to have landed -- and fail at the first change
    from what it first returned, which it returns."""
    first = probe()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = probe()
        if now != first:
            pytest.fail(f"{what} changed from {first!r} to {now!r} within {seconds}s")
    return first


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
