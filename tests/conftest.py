"""Shared test helpers. Tests run under eventlet's monkey-patching, as nameko
containers need; it is applied here, before anything else is imported."""
import eventlet

eventlet.monkey_patch()  # noqa: E402 -- must precede every other import

import time
import uuid

import pytest
import requests
from kombu import Connection


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


class Vhost:
    """A throwaway RabbitMQ vhost through the management API, so a test's
    queues never meet another's (or a developer's running stack)."""

    def __init__(self, amqp_uri: str, management_url: str):
        self.name = f"linli-test-{uuid.uuid4().hex[:10]}"
        self.management_url = management_url.rstrip("/")
        base = amqp_uri.rstrip("/")
        self.amqp_uri = f"{base}/{self.name}"

    def create(self):
        auth = ("guest", "guest")
        requests.put(f"{self.management_url}/api/vhosts/{self.name}", auth=auth, timeout=10).raise_for_status()
        requests.put(f"{self.management_url}/api/permissions/{self.name}/guest", auth=auth, timeout=10,
                     json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        return self

    def delete(self):
        requests.delete(f"{self.management_url}/api/vhosts/{self.name}", auth=("guest", "guest"), timeout=10)

    def depth(self, queue: str) -> int:
        """Messages ready in a queue, asked of the broker itself (the management
        API's figures lag by seconds)."""
        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            _name, messages, _consumers = channel.queue_declare(queue, passive=True)
            channel.close()
        return messages


def _new_vhost(request) -> Vhost:
    amqp_uri = request.config.getoption("RABBIT_AMQP_URI").replace("pyamqp://", "amqp://")
    management = request.config.getoption("RABBIT_API_URI").replace("guest:guest@", "")
    return Vhost(amqp_uri, management).create()


@pytest.fixture
def vhost(request):
    vhost = _new_vhost(request)
    yield vhost
    vhost.delete()


@pytest.fixture(scope="module")
def module_vhost(request):
    vhost = _new_vhost(request)
    yield vhost
    vhost.delete()
