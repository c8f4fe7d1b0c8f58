"""A lost broker connection at an ack or an RPC reply is logged, not fatal
(services/common/nameko_patches.py): nameko would kill the whole service."""
from unittest import mock

import pytest
from nameko.messaging import QueueConsumer
from nameko.rpc import RpcConsumer

from services.common import nameko_patches  # noqa: F401 -- applies the patches


class BrokenMessage:
    """A message whose connection the broker has reset."""

    def __init__(self, error):
        self.channel = mock.Mock(connection=True)
        self.error = error

    def ack(self):
        raise self.error

    requeue = ack


@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")])
def test_an_ack_or_requeue_on_a_reset_connection_is_logged_not_raised(error, caplog):
    consumer = QueueConsumer()
    consumer.ack_message(BrokenMessage(error))
    consumer.requeue_message(BrokenMessage(error))
    assert caplog.text.count("the broker will redeliver") == 2


def test_other_errors_still_raise():
    with pytest.raises(ValueError):
        QueueConsumer().ack_message(BrokenMessage(ValueError("a bug")))


def test_an_rpc_reply_that_cannot_be_sent_is_logged_not_raised(caplog):
    consumer = RpcConsumer()
    consumer.container = mock.Mock(config={"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/"})
    message = mock.Mock(properties={"content_type": "application/json", "reply_to": "r", "correlation_id": "c"})
    with mock.patch("nameko.rpc.Responder.send_response", side_effect=ConnectionRefusedError(111, "refused")):
        assert consumer.handle_result(message, {"ok": True}, None) == ({"ok": True}, None)
    assert "an RPC reply was sent" in caplog.text


def test_rpc_reply_queues_are_exclusive_so_a_reconnection_declares_them_on_the_node_reached():
    from services.gateway.service import GatewayService

    listener = GatewayService.donations.rpc_reply_listener
    assert isinstance(listener, nameko_patches.ExclusiveReplyListener)
    listener = nameko_patches.ExclusiveReplyListener()
    listener.container = mock.Mock(service_name="gateway", config={})
    listener.queue_consumer = mock.Mock()
    listener.setup()
    queue = listener.queue
    assert queue.name.startswith("rpc.reply-gateway-") and queue.routing_key in queue.name
    assert (queue.exclusive, queue.durable, queue.auto_delete) == (True, False, True)
    assert "x-expires" in queue.queue_arguments
    listener.queue_consumer.register_provider.assert_called_once_with(listener)


def test_no_nodes_password_is_logged_when_the_broker_cannot_be_reached(caplog):
    consumer = QueueConsumer()
    consumer.container = mock.Mock(config={"AMQP_URI": "amqp://svc:first-pw@rabbit-0/;amqp://svc:second-pw@rabbit-1/"})
    consumer.on_connection_error(ConnectionRefusedError(111, "refused"), 2)
    assert "rabbit-0" in caplog.text and "rabbit-1" in caplog.text
    assert "first-pw" not in caplog.text and "second-pw" not in caplog.text
