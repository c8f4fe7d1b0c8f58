"""RPC replies' publisher (services/common/broker.py KeptPublisher, which
nameko's Responder uses through nameko_patches.ReplyPublisher) against the real
broker: replies go on one connection kept open, arrive as nameko's caller reads
them, and one published after that connection was lost goes on a new one."""
import json

from kombu import Connection, Exchange

from services.common import broker
from services.common.nameko_patches import ReplyPublisher

EXCHANGE, QUEUE = "test-replies", "test-replies-q"


def declare(amqp_uri: str):
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        channel.exchange_declare(EXCHANGE, "topic", durable=True)
        channel.queue_declare(QUEUE, durable=False, exclusive=False, auto_delete=False)
        channel.queue_bind(QUEUE, EXCHANGE, QUEUE)


def replies(amqp_uri: str) -> list:
    got = []
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        while (message := channel.basic_get(QUEUE, no_ack=True)) is not None:
            got.append(message)
    return got


def reply(amqp_uri: str, n: int):
    """As nameko's Responder sends one: a publisher made per reply."""
    ReplyPublisher(amqp_uri, ssl=None, login_method=None).publish(
        {"result": {"n": n}, "error": None}, serializer="json", exchange=Exchange(EXCHANGE),
        routing_key=QUEUE, correlation_id=f"call-{n}")


def test_replies_go_on_one_kept_connection_and_arrive_as_nameko_reads_them(vhost):
    declare(vhost.amqp_uri)
    for n in range(20):
        reply(vhost.amqp_uri, n)
    kept = ReplyPublisher._kept[(vhost.amqp_uri, "None", None)]
    got = replies(vhost.amqp_uri)
    assert [json.loads(message.body) for message in got] == [{"result": {"n": n}, "error": None} for n in range(20)]
    assert [message.properties["correlation_id"] for message in got] == [f"call-{n}" for n in range(20)]
    assert {message.properties["content_type"] for message in got} == {"application/json"}
    assert ReplyPublisher._kept[(vhost.amqp_uri, "None", None)] is kept  # the same one for every reply
    assert kept._connection is not None and kept._connection.connected


def test_a_reply_after_the_kept_connection_was_lost_goes_on_a_new_one(vhost):
    declare(vhost.amqp_uri)
    publisher = broker.KeptPublisher(vhost.amqp_uri)
    publisher.publish({"n": 1}, "json", EXCHANGE, QUEUE)
    lost = publisher._connection
    lost.connection.transport.sock.close()  # as a broker restart or a reset leaves it
    publisher.publish({"n": 2}, "json", EXCHANGE, QUEUE)
    assert publisher._connection is not lost
    assert [json.loads(message.body) for message in replies(vhost.amqp_uri)] == [{"n": 1}, {"n": 2}]
