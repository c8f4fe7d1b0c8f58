"""What an operator does with dead letters: list them, and replay them into
the queue they failed in (`linli dlq list|replay`). Shows ids and types only:
the payload may hold personal data and stays in the broker. `subscriptions`:
services.contracts.SUBSCRIPTIONS, handed in by the caller."""
from __future__ import annotations

import json
import logging

import eventlet
from kombu import Queue
from nameko.extensions import DependencyProvider

from services.common import broker
from services.common.metrics import DEAD_LETTERS

from services.common.events import (
    ATTEMPTS_HEADER, ERROR_HEADER, FAILED_AT_HEADER, QUEUE_HEADER,
    Subscription, dead_letter_queue, queue_name,
)


log = logging.getLogger(__name__)

# How long one refresh of the dead-letter depths may take.
DEPTH_TIMEOUT_SECONDS = 3.0


def dead_letter_queues(subscriptions: tuple[Subscription, ...]) -> list[Queue]:
    return [dead_letter_queue(queue_name(sub)) for sub in subscriptions]


class DeadLetterDepths(DependencyProvider):
    """linli_dead_letter_depth of every dead-letter queue, refreshed when the
    service calls it (the gateway, on a timer) over one connection the process
    keeps: a Prometheus scrape only reads the gauge, and opens nothing. After a
    failure the connection is dropped and the next refresh opens a new one."""

    def __init__(self, subscriptions: tuple[Subscription, ...]):
        self.queues = dead_letter_queues(subscriptions)
        self._connection = None
        self._channel = None

    def get_dependency(self, worker_ctx):
        return self.refresh

    def refresh(self) -> bool:
        try:
            with eventlet.Timeout(DEPTH_TIMEOUT_SECONDS):
                if self._channel is None:
                    self._connection = broker.connection(self.container.config)
                    self._channel = self._connection.channel()
                for queue in self.queues:
                    depth = queue(self._channel).queue_declare(passive=True).message_count
                    DEAD_LETTERS.labels(queue.name).set(depth)
            return True
        except (Exception, eventlet.Timeout) as exc:
            log.warning("metrics: dead-letter depths unavailable (%s)", type(exc).__name__)
            self._close()
            return False

    def _close(self):
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:  # already gone with the broker
                pass

    def stop(self):
        self._close()

    def kill(self):
        self._close()


def _describe(message, dlq: str) -> dict:
    headers = message.headers or {}
    try:
        envelope = json.loads(message.body)
    except (ValueError, TypeError):
        envelope = {}
    if not isinstance(envelope, dict):
        envelope = {}
    return {
        "dead_letter_queue": dlq,
        "queue": headers.get(QUEUE_HEADER) or dlq.removesuffix(".dlq"),
        "event_id": envelope.get("id"),
        "source": envelope.get("source"),
        "type": envelope.get("type"),
        "error": headers.get(ERROR_HEADER),
        "attempts": headers.get(ATTEMPTS_HEADER),
        "failed_at": headers.get(FAILED_AT_HEADER),
    }


def list_dead_letters(amqp: str | dict, subscriptions: tuple[Subscription, ...]) -> list[dict]:
    """Every dead letter, without taking it off its queue (`amqp`: config or URI)."""
    found = []
    with broker.connection(amqp) as connection:
        for dlq in dead_letter_queues(subscriptions):
            channel = connection.channel()
            bound = dlq(channel)
            bound.declare()
            while (message := bound.get(no_ack=False)) is not None:
                found.append(_describe(message, dlq.name))
            # Closing the channel returns every unacked message to the queue, in order.
            channel.close()
    return found


def replay(amqp: str | dict, subscriptions: tuple[Subscription, ...], event_id: str | None = None) -> list[dict]:
    """Move dead letters (all, or those of one event id) back to the queue they
    failed in, with a fresh attempt count. Each is acked off the dead-letter
    queue only after the broker confirmed its copy."""
    replayed = []
    with broker.connection(amqp, transport_options={"confirm_publish": True}) as connection:
        for dlq in dead_letter_queues(subscriptions):
            channel = connection.channel()
            bound = dlq(channel)
            bound.declare()
            producer = connection.Producer(channel)
            while (message := bound.get(no_ack=False)) is not None:
                info = _describe(message, dlq.name)
                if event_id is not None and info["event_id"] != event_id:
                    continue  # left unacked: returned to the queue when the channel closes
                headers = {k: v for k, v in (message.headers or {}).items()
                           if k not in (ATTEMPTS_HEADER, ERROR_HEADER, QUEUE_HEADER, FAILED_AT_HEADER)}
                producer.publish(
                    message.body, exchange="", routing_key=info["queue"],
                    headers=headers, content_type=message.content_type,
                    content_encoding=message.content_encoding, mandatory=True,
                    delivery_mode=2,
                )
                message.ack()
                replayed.append(info)
            channel.close()
    return replayed
