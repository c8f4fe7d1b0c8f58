"""`linli migrate-queues`: an installation's durable queues from classic to
quorum (or to another delivery limit), in place, keeping every message waiting.

A queue's type and arguments cannot change: it must be deleted and declared
again. For each Linli queue Q that RabbitMQ refuses to declare as Linli now
does (406 PRECONDITION_FAILED):

1. declare a temporary quorum queue `Q.migrating` with Q's bindings, then take
   them off Q: what is published meanwhile waits there;
2. move Q's messages into it (each acked off Q after the broker confirmed its copy);
3. delete Q (only if empty) and declare it as Linli does, with its bindings;
4. take the bindings off the temporary queue, move its messages back, delete it.

Run again after an interruption, it carries on: a queue missing is declared, a
temporary queue left over is drained back. A message interrupted between its
copy and its ack is there twice, which handlers ignore (processed_events).
While any queue to migrate has a consumer it refuses and changes nothing: the
services must be stopped first. Works over AMQP alone (no management API): the
bindings are Linli's own, known from the contract.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import amqp
from amqp.exceptions import NotFound, PreconditionFailed
from kombu import Exchange
from nameko.rpc import get_rpc_exchange
from nameko.standalone.events import get_event_exchange

from services.common import broker, events

TEMPORARY_SUFFIX = ".migrating"


class LinliQueue(NamedTuple):
    name: str
    arguments: dict
    bindings: tuple[tuple[Exchange, str], ...]   # (exchange, routing key)


class ConsumersAttached(RuntimeError):
    pass


def linli_queues(amqp_config, contract: events.EventContract, services) -> list[LinliQueue]:
    """Every durable queue Linli declares, with its arguments and bindings:
    each subscription's queue and dead-letter queue, each service's RPC queue."""
    found = []
    for sub in contract.subscriptions:
        redeliveries = events.redelivery_exchange(sub.consumer)
        queue = events.event_queue(sub, amqp_config)
        dlq = events.dead_letter_queue(sub, amqp_config)
        found.append(LinliQueue(queue.name, queue.queue_arguments,
                                ((get_event_exchange(sub.source, {}), sub.event_type), (redeliveries, queue.name))))
        found.append(LinliQueue(dlq.name, dlq.queue_arguments, ((redeliveries, dlq.name),)))
    for service in services:
        found.append(LinliQueue(f"rpc-{service}", events.durable_queue_arguments(amqp_config),
                                ((get_rpc_exchange({}), f"{service}.*"),)))
    return found


def _state(connection, name: str) -> tuple[int, int] | None:
    """(messages, consumers) of queue `name`, or None if there is none."""
    channel = connection.channel()
    try:
        _name, messages, consumers = channel.queue_declare(name, passive=True)
    except NotFound:
        return None
    channel.close()
    return messages, consumers


def _as_wanted(connection, queue: LinliQueue) -> bool:
    """Whether `queue` exists with Linli's arguments (declared if missing)."""
    channel = connection.channel()
    try:
        channel.queue_declare(queue.name, durable=True, auto_delete=False, arguments=queue.arguments)
    except PreconditionFailed:
        return False
    channel.close()
    return True


def _declare(connection, name: str, arguments: dict, bindings) -> None:
    channel = connection.channel()
    channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
    for exchange, routing_key in bindings:
        exchange(channel).declare()
        channel.queue_bind(name, exchange.name, routing_key)
    channel.close()


def _unbind(connection, name: str, bindings) -> None:
    channel = connection.channel()
    for exchange, routing_key in bindings:
        channel.queue_unbind(name, exchange.name, routing_key)
    channel.close()


def _move(connection, source: str, target: str) -> int:
    """Every message of `source` into `target`, body and properties as they
    were; each acked off `source` only after the broker confirmed its copy."""
    channel = connection.channel()
    channel.confirm_select()
    moved = 0
    while (message := channel.basic_get(source, no_ack=False)) is not None:
        properties = dict(message.properties)
        # The broker's own count of deliveries starts again in the new queue.
        properties["application_headers"] = {k: v for k, v in (message.headers or {}).items()
                                             if k != "x-delivery-count"}
        channel.basic_publish(amqp.Message(message.body, **properties), exchange="", routing_key=target,
                              mandatory=True)
        channel.basic_ack(message.delivery_tag)
        moved += 1
    channel.close()
    return moved


def _delete_empty(connection, name: str, source: str) -> None:
    """Delete `name`, empty: whatever reached it after the move goes to `source` first.
    (Quorum queues have no if-empty delete; nothing is bound to it any more.)"""
    while _state(connection, name)[0]:
        _move(connection, name, source)
    channel = connection.channel()
    channel.queue_delete(name)
    channel.close()


def migrate(amqp_config, contract: events.EventContract, services,
            progress: Callable[[str], None] = print) -> list[tuple[str, int]]:
    """Bring every Linli queue to Linli's arguments (module docstring). Returns
    (queue, messages moved) for each queue migrated or finished; raises
    ConsumersAttached, changing nothing, while a queue to migrate has consumers."""
    queues = linli_queues(amqp_config, contract, services)
    done = []
    with broker.connection(amqp_config) as connection:
        # The event exchanges and redelivery exchanges exist before anything is bound to them.
        channel = connection.channel()
        for source in contract.producers:
            get_event_exchange(source, {})(channel).declare()
        channel.close()
        to_migrate, busy = [], []
        for queue in queues:
            state = _state(connection, queue.name)
            leftover = _state(connection, queue.name + TEMPORARY_SUFFIX)
            if state is not None and not _as_wanted(connection, queue):
                to_migrate.append(queue)
                if state[1]:
                    busy.append(f"{queue.name} ({state[1]})")
            elif state is None or leftover is not None:
                to_migrate.append(queue)  # an interrupted run: carry on
        if busy:
            raise ConsumersAttached(
                f"{len(busy)} queue(s) to migrate still have consumers: {', '.join(busy[:5])}"
                f"{' ...' if len(busy) > 5 else ''}. Stop every Linli service first; nothing was changed")
        for queue in to_migrate:
            moved = _migrate_one(connection, queue)
            progress(f"{queue.name}: quorum, {moved} message(s) moved")
            done.append((queue.name, moved))
    return done


def _migrate_one(connection, queue: LinliQueue) -> int:
    temporary = queue.name + TEMPORARY_SUFFIX
    # Quorum too (it must survive what Q would), without Q's dead-lettering: nothing consumes it.
    temporary_arguments = {k: queue.arguments[k] for k in ("x-queue-type", "x-delivery-limit")}
    moved = 0
    if _state(connection, queue.name) is not None and not _as_wanted(connection, queue):
        _declare(connection, temporary, temporary_arguments, queue.bindings)
        _unbind(connection, queue.name, queue.bindings)
        moved = _move(connection, queue.name, temporary)
        _delete_empty(connection, queue.name, temporary)
    _declare(connection, queue.name, queue.arguments, queue.bindings)
    if _state(connection, temporary) is not None:
        _unbind(connection, temporary, queue.bindings)
        _move(connection, temporary, queue.name)
        _delete_empty(connection, temporary, queue.name)
    return moved
