"""Durable event consumption: the queue of every subscription and its
dead-letter queue, declared before anything is published; a handler that
retries a failed message a bounded number of times and then dead-letters it,
so nothing is dropped in silence; and the operator's view of dead letters.

The kernel knows no event: which events exist and who subscribes to them is
services.contracts' (EVENTS, SUBSCRIPTIONS), handed in by the caller."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import NamedTuple

import eventlet
from amqp.exceptions import PreconditionFailed
from kombu import Exchange, Queue, binding
from nameko.events import SERVICE_POOL, EventHandler
from nameko.exceptions import ConfigurationError
from nameko.messaging import Consumer
from nameko.standalone.events import get_event_exchange

from services.common import broker
from services.common import config as linli_config
from services.common import nameko_patches  # noqa: F401 -- a lost connection at ack must not kill a service
from services.common.metrics import EVENTS_CONSUMED

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-linli-attempts"
ERROR_HEADER = "x-linli-error"
QUEUE_HEADER = "x-linli-queue"
FAILED_AT_HEADER = "x-linli-failed-at"


class Subscription(NamedTuple):
    source: str        # producing service
    event_type: str
    consumer: str      # consuming service
    handler: str       # method name of the consumer's handler


class EventContract(NamedTuple):
    """What the kernel is told about events by whoever assembles a service or
    a command (services.contracts.EVENTS)."""

    validate: Callable[..., dict]              # validate(envelope, strict=...): the envelope, or ValidationError
    subscriptions: tuple[Subscription, ...]    # every durable consumer
    producers: tuple[str, ...]                 # every service that publishes events


def queue_name(sub: Subscription) -> str:
    # nameko's own name for a SERVICE_POOL handler's queue, so both declare the same queue.
    return f"evt-{sub.source}-{sub.event_type}--{sub.consumer}.{sub.handler}"


def dead_letter_queue_name(queue: str) -> str:
    return f"{queue}.dlq"


def durable_queue_arguments(config: str | dict | None) -> dict:
    """Every durable queue Linli declares is a quorum queue: replicated, so it
    keeps serving while a cluster node is down (a classic queue answers 404
    while its home node is). The delivery limit is stated, not left to the
    broker's default (none in 3.x, 20 in 4.x). Arguments, not policies: they need
    no management API and hold the moment a queue exists; the price is that
    they cannot change in place (`linli migrate-queues`). Transient queues (the
    gateway's exclusive feed, nameko's RPC reply queues) stay classic: quorum
    queues cannot be exclusive or auto-deleted, and nothing there outlives its
    connection."""
    return {"x-queue-type": "quorum", "x-delivery-limit": linli_config.queue_delivery_limit(config)}


def event_queue_arguments(sub: Subscription, config: str | dict | None) -> dict:
    """A subscription queue's: quorum, and a message delivered more than the
    delivery limit times without being settled (a consumer that keeps dying on
    it) is dead-lettered by the broker to the queue's .dlq through the
    consumer's redelivery exchange. at-least-once: the broker keeps the message
    until the .dlq has it (it needs reject-publish overflow; no length limit is set)."""
    return {**durable_queue_arguments(config),
            "x-dead-letter-exchange": redelivery_exchange(sub.consumer).name,
            "x-dead-letter-routing-key": dead_letter_queue_name(queue_name(sub)),
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish"}


def event_queue(sub: Subscription, config: str | dict | None = None) -> Queue:
    """The durable queue of one subscription: nameko's name and binding, Linli's arguments."""
    return Queue(
        queue_name(sub),
        exchange=get_event_exchange(sub.source, config if isinstance(config, dict) else {}),
        routing_key=sub.event_type,
        durable=True, auto_delete=False, exclusive=False,
        queue_arguments=event_queue_arguments(sub, config),
    )


def dead_letter_queue(sub: Subscription, config: str | dict | None = None) -> Queue:
    return Queue(dead_letter_queue_name(queue_name(sub)), durable=True, auto_delete=False,
                 queue_arguments=durable_queue_arguments(config))


def redelivery_exchange(consumer: str) -> Exchange:
    """Where a consumer's retries and dead letters go, each to its queue by name.
    Not the default exchange: a service that may publish there may publish into
    any queue (another's RPC or event queue); this one reaches only its own."""
    return Exchange(f"{consumer}.redeliveries", type="direct", durable=True)


def redelivery_queue(queue: Queue, consumer: str) -> Queue:
    """An event queue (or its dead-letter queue) with its binding to the consumer's redelivery exchange."""
    return Queue(queue.name, bindings=[binding(redelivery_exchange(consumer), routing_key=queue.name)],
                 durable=True, auto_delete=False, exclusive=False, queue_arguments=queue.queue_arguments)


class QueuesNeedMigration(RuntimeError):
    """A queue exists with other arguments than Linli declares (a classic queue
    of an installation from before quorum queues, or another delivery limit):
    RabbitMQ refuses to declare it again (406 PRECONDITION_FAILED)."""

    def __init__(self, queue: str, reply: str):
        super().__init__(
            f"queue {queue} exists with other arguments than Linli declares ({reply}): "
            "stop the services and run `linli migrate-queues`, which moves every queue to quorum "
            "queues in place, keeping its messages")


def declare(queue: Queue, channel):
    """Declare `queue` (and its bindings) on `channel`; QueuesNeedMigration if it exists otherwise."""
    try:
        queue(channel).declare()
    except PreconditionFailed as exc:
        raise QueuesNeedMigration(queue.name, str(getattr(exc, "reply_text", exc))) from None


def declare_topology(amqp: str | dict, events: EventContract, sources=None) -> int:
    """Declare every event exchange, subscription queue and dead-letter queue
    of the contract `events` (or those of `sources`' events: all a service's
    broker user may declare). `amqp`: a service's config, or a bare URI."""
    sources = events.producers if sources is None else sources
    subscriptions = [sub for sub in events.subscriptions if sub.source in sources]
    everything = set(sources) == set(events.producers)
    with broker.connection(amqp) as connection:
        channel = connection.channel()
        for source in sources:
            get_event_exchange(source, {})(channel).declare()
        for sub in subscriptions:
            queues = (event_queue(sub, amqp), dead_letter_queue(sub, amqp))
            if everything:  # the operator's; a producer may not touch a consumer's redelivery exchange
                queues += tuple(redelivery_queue(queue, sub.consumer) for queue in queues)
            for queue in queues:
                declare(queue, channel)
        channel.close()
    return len(subscriptions)


class ReliableEventHandler(EventHandler):
    """A SERVICE_POOL event handler that never acks a failure away.

    A failed message is published again to its own queue with an attempt count
    in a header (after a short back-off); after `EVENT_MAX_ATTEMPTS` it goes to
    the queue's dead-letter queue with the error's type. The original is acked
    only after the copy is confirmed by the broker. A message on which the
    consumer dies before it can settle it is the broker's to dead-letter, past
    the queue's delivery limit (event_queue_arguments). Handlers must be idempotent
    (see UnitOfWork.first_delivery): a message may arrive more than once.
    `subscriptions`: every subscription declared before events are published
    (services.contracts.SUBSCRIPTIONS); this handler's must be among them.
    """

    def __init__(self, source_service: str, event_type: str, subscriptions: tuple[Subscription, ...], **kwargs):
        super().__init__(source_service, event_type, handler_type=SERVICE_POOL,
                         reliable_delivery=True, requeue_on_error=False, **kwargs)
        self.subscriptions = subscriptions

    def setup(self):
        sub = Subscription(self.source_service, self.event_type,
                           self.container.service_name, self.method_name)
        if sub not in self.subscriptions:
            raise ConfigurationError(
                f"{sub} is not in services.contracts.SUBSCRIPTIONS: add it there, "
                "so that its queue is declared before events are published")
        config = self.container.config
        self.queue = event_queue(sub, config)
        self.redeliveries = redelivery_exchange(sub.consumer)
        self.retries = redelivery_queue(self.queue, sub.consumer)
        self.dead_letters = redelivery_queue(dead_letter_queue(sub, config), sub.consumer)
        self.max_attempts = int(linli_config.setting(config, "EVENT_MAX_ATTEMPTS"))
        self.backoff = float(linli_config.setting(config, "EVENT_RETRY_BACKOFF"))
        self.republisher = broker.publisher(config)
        Consumer.setup(self)  # skip EventHandler.setup: it would build the queue again

    def handle_message_processed(self, message, result=None, exc_info=None):
        if exc_info is None:
            EVENTS_CONSUMED.labels(self.queue.name, "ok").inc()
            self.queue_consumer.ack_message(message)
            return
        EVENTS_CONSUMED.labels(self.queue.name, "failed").inc()
        attempts = int((message.headers or {}).get(ATTEMPTS_HEADER, 1))
        error = exc_info[0].__name__
        try:
            if attempts < self.max_attempts:
                log.warning("%s failed with %s (attempt %d of %d); retrying",
                            self.queue.name, error, attempts, self.max_attempts)
                eventlet.sleep(self.backoff * 2 ** (attempts - 1))
                self._publish_copy(message, self.retries, {ATTEMPTS_HEADER: attempts + 1})
            else:
                log.error("%s failed with %s %d times; dead-lettered",
                          self.queue.name, error, attempts)
                EVENTS_CONSUMED.labels(self.queue.name, "dead_lettered").inc()
                self._publish_copy(message, self.dead_letters, {
                    ATTEMPTS_HEADER: attempts, ERROR_HEADER: error,
                    QUEUE_HEADER: self.queue.name,
                    FAILED_AT_HEADER: datetime.now(timezone.utc).isoformat(),
                })
        except Exception as exc:
            # The copy did not reach the broker: leave the original unacked,
            # the broker hands it out again.
            log.error("%s: could not retry or dead-letter (%s); the broker will redeliver",
                      self.queue.name, type(exc).__name__)
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)

    def _publish_copy(self, message, queue: Queue, headers: dict):
        merged = dict(message.headers or {})
        merged.update(headers)
        self.republisher.publish(
            message.body, exchange=self.redeliveries, routing_key=queue.name, declare=[queue],
            headers=merged, content_type=message.content_type,
            content_encoding=message.content_encoding, mandatory=True,
        )


reliable_event_handler = ReliableEventHandler.decorator
