"""A throwaway RabbitMQ vhost, made through the management API, so that a test
or benchmark run never meets another's queues (or a developer's stack).
Deleting it deletes the services' broker users made for it too."""
from __future__ import annotations

import uuid
from urllib.parse import urlparse

import requests
from kombu import Connection

from services.ops import brokerusers


class Vhost:
    def __init__(self, amqp_uri: str, management_url: str | None = None, prefix: str = "linli-test"):
        parsed = urlparse(amqp_uri)
        self.auth = (parsed.username or "guest", parsed.password or "guest")
        self.name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.management_url = (management_url or f"http://{parsed.hostname or 'localhost'}:15672").rstrip("/")
        self.amqp_uri = f"{parsed.scheme}://{parsed.netloc}/{self.name}"

    def create(self) -> "Vhost":
        requests.put(f"{self.management_url}/api/vhosts/{self.name}", auth=self.auth, timeout=10).raise_for_status()
        requests.put(f"{self.management_url}/api/permissions/{self.name}/{self.auth[0]}", auth=self.auth,
                     timeout=10, json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
        return self

    def delete(self):
        brokerusers.remove(brokerusers.Management(self.amqp_uri, self.management_url), self.name)
        requests.delete(f"{self.management_url}/api/vhosts/{self.name}", auth=self.auth, timeout=10)

    def depth(self, queue: str) -> int:
        """Messages ready in a queue, asked of the broker itself (the management
        API's figures lag by seconds)."""
        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            _name, messages, _consumers = channel.queue_declare(queue, passive=True)
            channel.close()
        return messages
