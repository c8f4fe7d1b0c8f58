"""The relay's publisher (services/common/broker.py BatchPublisher) against the
real broker: a batch's messages arrive whole and in order, written to the
socket together (in writes of up to WRITE_BYTES), and the connection is
usable for the next batch."""
import json
from unittest import mock

from eventlet.greenio import GreenSocket
from kombu import Connection

from services.common import broker

EXCHANGE, QUEUE = "test-batch", "test-batch-q"


def declare(amqp_uri: str):
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        channel.exchange_declare(EXCHANGE, "topic", durable=True)
        channel.queue_declare(QUEUE, durable=True)
        channel.queue_bind(QUEUE, EXCHANGE, "#")


def received(amqp_uri: str, expected: int) -> list[dict]:
    bodies = []
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        while len(bodies) < expected:
            message = channel.basic_get(QUEUE, no_ack=True)
            if message is None:
                break
            bodies.append(json.loads(message.body))
    return bodies


def batch(first: int, count: int, size: int) -> list[tuple]:
    return [(json.dumps({"n": n, "pad": "x" * size}), EXCHANGE, "donation_received", {"linli_request_id": str(n)})
            for n in range(first, first + count)]


def test_a_batch_arrives_whole_and_in_order_from_few_socket_writes(vhost):
    declare(vhost.amqp_uri)
    publisher = broker.BatchPublisher(vhost.amqp_uri)
    real_sendall, writes = GreenSocket.sendall, []

    def counted(sock, data, *args):
        writes.append(len(data))
        return real_sendall(sock, data, *args)

    # The transport takes its socket's sendall when it connects: the patch is on before.
    with mock.patch.object(GreenSocket, "sendall", counted):
        try:
            publisher.publish_all(batch(0, 1, 10))  # opens the connection: its handshake is not counted
            before = len(writes)
            publisher.publish_all(batch(1, 64, 500))
            small = len(writes) - before
            # ~600 KB: more than WRITE_BYTES, so it goes in several writes, each about that size
            publisher.publish_all(batch(65, 300, 2000))
            large = writes[before + small:]
        finally:
            publisher.close()

    assert small == 1  # the 64 messages in one write (before: one write each)
    assert 2 <= len(large) <= 4 and max(large) < 2 * broker.WRITE_BYTES
    bodies = received(vhost.amqp_uri, 365)
    assert [body["n"] for body in bodies] == list(range(365))
    assert all(len(body["pad"]) == (10 if body["n"] == 0 else 500 if body["n"] <= 64 else 2000) for body in bodies)
