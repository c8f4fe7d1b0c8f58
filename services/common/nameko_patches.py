"""Where Linli changes nameko 2.14, once, for every service
(`services.common.service` imports this module).

Two places where nameko lets a lost broker connection kill the whole service:

- `QueueConsumer.ack_message` / `requeue_message` catch only amqp's own
  ConnectionError. An ack written to a socket that the broker has reset
  (a restart, or a worker that held the eventlet hub past two heartbeats)
  raises BrokenPipeError or ConnectionResetError, and nameko kills the
  container. The broker redelivers what was not acked, and each consumer
  makes a redelivery do nothing (processed_events, Idempotency-Key).
- `RpcConsumer.handle_result` sends the reply, then acks. A reply that cannot
  be sent (the broker is restarting) raises, with the same result. The caller
  then times out (the gateway answers 503), and the broker redelivers the request.

And RPC replies go without publisher confirms, on a connection kept open (ReplyPublisher).

For a RabbitMQ cluster (AMQP_URI listing its nodes, services/common/broker.py):

- nameko's RPC reply queue is durable (kombu's default), so classic on the
  node the caller first reached: when that node stops, declaring it again on
  another answers `404 ... process is stopped by supervisor`, and the caller's
  whole QueueConsumer (its RPC and event consumers too) fails to reconnect
  until the node is back. Linli's is exclusive (ExclusiveReplyListener): made on
  whichever node the connection reached, gone with the connection.
- nameko's "Error connecting to broker at ..." hides the password of the first
  URI only: every one is hidden.
"""
from __future__ import annotations

import functools
import logging

import nameko.rpc
from kombu import Queue
from nameko.messaging import QueueConsumer
from nameko.rpc import ReplyListener, RpcConsumer
from nameko.utils import sanitize_url

from services.common import broker

log = logging.getLogger(__name__)


def _survive_a_lost_connection(method, what: str, fallback):
    if getattr(method, "_linli_patched", False):
        return method

    @functools.wraps(method)
    def patched(self, message, *args):
        try:
            return method(self, message, *args)
        # broker.CONNECTION_ERRORS, kombu's OperationalError among them: not catching it killed
        # welfare's container after a broker restart under load: the process stayed up, waiting
        # to reconnect, with no consumer on its queues (tests/integration/test_broker_restart.py).
        except broker.CONNECTION_ERRORS as exc:
            log.warning("the broker connection was lost before %s (%s); the broker will redeliver the message",
                        what, type(exc).__name__)
            return fallback(*args)

    patched._linli_patched = True
    return patched


QueueConsumer.ack_message = _survive_a_lost_connection(
    QueueConsumer.ack_message, "a message was acked", lambda: None)
QueueConsumer.requeue_message = _survive_a_lost_connection(
    QueueConsumer.requeue_message, "a message was requeued", lambda: None)
RpcConsumer.handle_result = _survive_a_lost_connection(
    RpcConsumer.handle_result, "an RPC reply was sent", lambda result, exc_info: (result, exc_info))


class ReplyPublisher:
    """RPC replies without publisher confirms, on one connection per process
    kept open (broker.KeptPublisher), in place of nameko's Publisher (a kombu
    Connection, a pooled producer and kombu's publish on every reply). A
    confirm costs the replying service a round trip to the broker on every
    call, and buys nothing here: a reply lost with the broker is a caller's
    timeout (the gateway's 503), and the caller's retry with its
    Idempotency-Key gets the first answer. Requests keep their confirms
    (nameko needs them to raise UnknownService)."""

    _kept: dict[tuple, broker.KeptPublisher] = {}  # by broker and TLS settings: one per process

    def __init__(self, amqp_uri, ssl=None, login_method=None, **_options):
        key = (amqp_uri, repr(ssl), login_method)
        self._publisher = self._kept.get(key) or self._kept.setdefault(
            key, broker.KeptPublisher(amqp_uri, ssl=ssl, login_method=login_method))

    def publish(self, payload, serializer, exchange, routing_key, correlation_id=None):
        """As nameko's Responder calls it."""
        self._publisher.publish(payload, serializer, exchange.name, routing_key, correlation_id=correlation_id)


nameko.rpc.Responder.publisher_cls = ReplyPublisher


class ExclusiveReplyListener(ReplyListener):
    """nameko's reply queue (`rpc.reply-<service>-<uuid>`, one per process), but
    exclusive: declared again, on the node reached, at each reconnection. A
    reply that was on its way when the connection dropped is lost with it: the
    caller times out (the gateway's 503) and retries with its Idempotency-Key."""

    def setup(self):
        super().setup()  # nameko's name, exchange and routing key; registers with the queue consumer
        queue = self.queue
        self.queue = Queue(queue.name, exchange=queue.exchange, routing_key=queue.routing_key,
                           durable=False, exclusive=True, auto_delete=True,
                           queue_arguments=queue.queue_arguments)


nameko.rpc.RpcProxy.rpc_reply_listener = ExclusiveReplyListener()


def _on_connection_error(self, exc, interval):
    log.warning("Error connecting to broker at %s (%s).\nRetrying in %s seconds.",
                broker.each_uri(self.amqp_uri, sanitize_url), exc, interval)


QueueConsumer.on_connection_error = _on_connection_error
