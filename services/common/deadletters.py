"""What an operator does with dead letters: list them, and replay them into
the queue they failed in (`linli dlq list|replay`). Shows ids and types only:
the payload may hold personal data and stays in the broker. `subscriptions`:
services.contracts.SUBSCRIPTIONS, handed in by the caller.

A dead letter comes from one of two places: the handler's own retries gave up
(Linli's x-linli-* headers name the error, the queue, the attempts), or the
broker dead-lettered a message delivered more than the queue's delivery limit
times without being settled (its x-death header: the reason, `delivery_limit`,
and the queue).

Both commands go through a dead-letter queue once, taking each message and
acking it only after the broker confirmed its copy: listed letters (and those
`replay --id` leaves) are put back at the queue's end, so after the pass the
queue holds the same letters in the same order. Not a get and a return: a
quorum queue counts a returned message as one more delivery, and would drop it
at its delivery limit."""
from __future__ import annotations

import json

import amqp
from kombu import Queue

from services.common import broker

from services.common.events import (
    ATTEMPTS_HEADER, ERROR_HEADER, FAILED_AT_HEADER, QUEUE_HEADER,
    Subscription, dead_letter_queue, declare,
)

LINLI_HEADERS = (ATTEMPTS_HEADER, ERROR_HEADER, QUEUE_HEADER, FAILED_AT_HEADER)
# The broker's: why and where it dead-lettered a message, and its delivery count.
BROKER_HEADERS = ("x-death", "x-first-death-reason", "x-first-death-queue", "x-first-death-exchange",
                  "x-last-death-reason", "x-last-death-queue", "x-last-death-exchange", "x-delivery-count")


def dead_letter_queues(subscriptions: tuple[Subscription, ...], amqp_config=None) -> list[Queue]:
    return [dead_letter_queue(sub, amqp_config) for sub in subscriptions]


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _describe(message, dlq: str) -> dict:
    headers = message.headers or {}
    try:
        envelope = json.loads(message.body)
    except (ValueError, TypeError):
        envelope = {}
    if not isinstance(envelope, dict):
        envelope = {}
    deaths = headers.get("x-death") or [{}]
    death = deaths[0] if isinstance(deaths, list) and isinstance(deaths[0], dict) else {}
    failed_at = headers.get(FAILED_AT_HEADER) or death.get("time")
    return {
        "dead_letter_queue": dlq,
        "queue": headers.get(QUEUE_HEADER) or _text(headers.get("x-first-death-queue")) or dlq.removesuffix(".dlq"),
        "event_id": envelope.get("id"),
        "source": envelope.get("source"),
        "type": envelope.get("type"),
        "error": headers.get(ERROR_HEADER) or _text(headers.get("x-first-death-reason")),
        "attempts": headers.get(ATTEMPTS_HEADER) or headers.get("x-delivery-count"),
        "failed_at": failed_at.isoformat() if hasattr(failed_at, "isoformat") else failed_at,
    }


def _copy(message, routing_key: str, channel, drop: tuple[str, ...] = ()):
    """Publish `message` again (body and properties) to `routing_key`'s queue,
    waiting for the broker's confirm; `drop`: headers left out."""
    properties = dict(message.properties)
    properties["application_headers"] = {k: v for k, v in (message.headers or {}).items()
                                         if k not in drop and k != "x-delivery-count"}
    properties["delivery_mode"] = 2
    # mandatory: a copy no queue takes raises (basic.return) before the original is acked.
    channel.basic_publish(amqp.Message(message.body, **properties), exchange="", routing_key=routing_key,
                          mandatory=True)


def _each(amqp_config, subscriptions, visit):
    """Take every dead letter once, hand it to `visit(message, info, channel)`,
    which copies it somewhere, then ack it."""
    with broker.connection(amqp_config) as connection:
        for dlq in dead_letter_queues(subscriptions, amqp_config):
            channel = connection.channel()
            declare(dlq, channel)
            _name, waiting, _consumers = channel.queue_declare(dlq.name, passive=True)
            channel.confirm_select()  # basic_publish now waits for the broker's confirm
            for _ in range(waiting):
                message = channel.basic_get(dlq.name, no_ack=False)
                if message is None:
                    break
                visit(message, _describe(message, dlq.name), channel)
                channel.basic_ack(message.delivery_tag)
            channel.close()


def list_dead_letters(amqp_config: str | dict, subscriptions: tuple[Subscription, ...]) -> list[dict]:
    """Every dead letter, each left on its queue (`amqp_config`: config or URI)."""
    found = []

    def keep(message, info, channel):
        _copy(message, info["dead_letter_queue"], channel)
        found.append(info)

    _each(amqp_config, subscriptions, keep)
    return found


def replay(amqp_config: str | dict, subscriptions: tuple[Subscription, ...], event_id: str | None = None) -> list[dict]:
    """Move dead letters (all, or those of one event id) back to the queue they
    failed in, with a fresh attempt count and no record of their deaths. Each is
    acked off the dead-letter queue only after the broker confirmed its copy."""
    replayed = []

    def send_back(message, info, channel):
        if event_id is not None and info["event_id"] != event_id:
            _copy(message, info["dead_letter_queue"], channel)
            return
        _copy(message, info["queue"], channel, drop=LINLI_HEADERS + BROKER_HEADERS)
        replayed.append(info)

    _each(amqp_config, subscriptions, send_back)
    return replayed
