"""linli_dead_letter_depth against the real broker: the gateway's timer counts
what waits in each dead-letter queue over one connection it keeps (a scrape
opens none), and after losing that connection opens a new one."""
from types import SimpleNamespace

from kombu import Connection
from prometheus_client import REGISTRY

from services import contracts
from services.common import deadletters, events


def depth(queue: str):
    return REGISTRY.get_sample_value("linli_dead_letter_depth", {"queue": queue})


def test_the_dead_letter_depths_are_counted_over_one_kept_connection(vhost):
    events.declare_topology(vhost.amqp_uri, contracts.EVENTS)
    dlq = deadletters.dead_letter_queues(contracts.SUBSCRIPTIONS)[0].name
    with Connection(vhost.amqp_uri) as connection:
        producer = connection.Producer()
        for _ in range(2):
            producer.publish(b"{}", exchange="", routing_key=dlq)
    depths = deadletters.DeadLetterDepths(contracts.SUBSCRIPTIONS)
    depths.container = SimpleNamespace(config={"AMQP_URI": vhost.amqp_uri})
    depths.setup()
    try:
        assert depths.refresh() is True
        assert depth(dlq) == 2
        kept = depths._connection
        assert depths.refresh() is True and depths._connection is kept  # no connection per refresh

        kept.release()  # the broker or the network dropped it
        assert depths.refresh() or depths.refresh()  # a new connection, at the latest on the next refresh
        assert depths._connection is not kept and depth(dlq) == 2
    finally:
        depths.stop()
    assert depths._connection is None
