"""The gateway's live feed against the real RabbitMQ: its queue exists, bound
to every service's events, only while a feed stream is open, so that with
none open the broker delivers the gateway no event; a stream hears every event
published after it opens, also when the feed was closed and opened again."""
import eventlet
import requests
from nameko.amqp.publish import Publisher
from nameko.standalone.events import get_event_exchange
from nameko.testing.utils import get_extension

from services import contracts
from services.common import events
from services.common.envelope import make_envelope
from services.gateway.streams import FEED, LiveFeed, feed_queue
from tests.conftest import wait_for
from tests.integration.test_broker_failover import down_first


QUEUE = feed_queue(contracts.PRODUCERS)  # as the gateway's FEED_QUEUE, with a name of this test's


class FeedOnly:
    """The gateway's feed alone in a container."""
    name = "feed_only"
    feed = LiveFeed(QUEUE, contracts.for_feed)


def queue_exists(vhost) -> bool:
    answer = requests.get(f"{vhost.management_url}/api/queues/{vhost.name}/{QUEUE.name}", auth=vhost.auth,
                          timeout=10)
    assert answer.status_code in (200, 404), answer.text
    return answer.status_code == 200


def started_feed(start_service, vhost, amqp_uri: str, **config):
    """The feed in a container on the vhost, every event exchange declared (as `linli up` does); its hub."""
    events.declare_topology(vhost.amqp_uri, contracts.EVENTS)
    container = start_service(FeedOnly, {"AMQP_URI": amqp_uri, "STREAMS_PER_ACCOUNT": 5,
                                         "STREAM_HEARTBEAT_SECONDS": 15, **config})
    return container, get_extension(container, LiveFeed).hub


def zone_created(publisher: Publisher, zone_id: str):
    envelope = make_envelope("patrol", "zone_created", {"zone_id": zone_id, "name": "Heping Li",
                                                          "compounds": ["Heping Li"]})
    publisher.publish(envelope, exchange=get_event_exchange("patrol", {}), routing_key="zone_created")


def heard(stream, timeout: float = 5) -> list[str]:
    """The zones the stream hears within `timeout` s of quiet."""
    names = []
    while True:
        try:
            names.append(stream.get(timeout=timeout)["data"]["zone_id"])
        except eventlet.queue.Empty:
            return names
        timeout = 0.5


def test_the_feed_queue_lives_only_while_a_feed_stream_is_open(vhost, start_service):
    container, hub = started_feed(start_service, vhost, vhost.amqp_uri)
    publisher = Publisher(vhost.amqp_uri)

    zone_created(publisher, "before-anyone-watched")
    assert not queue_exists(vhost)  # the broker had nowhere to deliver it

    first = hub.subscribe(FEED)  # what a stream does as it opens: returns once the queue is bound
    assert queue_exists(vhost)
    zone_created(publisher, "z1")
    assert heard(first) == ["z1"]
    second = hub.subscribe(FEED)
    zone_created(publisher, "z2")
    assert heard(first) == ["z2"] and heard(second) == ["z2"]

    hub.unsubscribe(FEED, first)
    zone_created(publisher, "one-still-watches")
    assert heard(second) == ["one-still-watches"]
    hub.unsubscribe(FEED, second)
    wait_for(lambda: not queue_exists(vhost), timeout=5, what="the feed's queue gone with its last stream")
    zone_created(publisher, "nobody-watches")

    again = hub.subscribe(FEED)
    zone_created(publisher, "watched-again")
    assert heard(again) == ["watched-again"]
    container.stop()
    assert not queue_exists(vhost)


def test_a_busy_feed_keeps_its_connection_alive(vhost, start_service, caplog):
    """Events without pause for several heartbeats: the consumer, which sends
    the broker nothing back (no acks), still sends its heartbeats, so the broker
    never takes the connection for dead and no event is lost to a reconnection."""
    container, hub = started_feed(start_service, vhost, vhost.amqp_uri, HEARTBEAT=1)
    stream = hub.subscribe(FEED)
    publisher = Publisher(vhost.amqp_uri)
    sent = []
    for number in range(90):  # 6 s (the broker drops a silent client after two heartbeats); a stream holds 100
        zone_created(publisher, f"z{number}")
        sent.append(f"z{number}")
        eventlet.sleep(0.07)
    assert heard(stream) == sent
    assert "Connection to broker lost" not in caplog.text
    container.stop()


def test_the_feed_reaches_the_node_that_answers(vhost, start_service):
    """AMQP_URI naming a node that is down first (docs/broker-cluster.md): the
    feed's own connection goes on to the next, as nameko's do."""
    container, hub = started_feed(start_service, vhost, down_first(vhost.amqp_uri))
    stream = hub.subscribe(FEED)
    assert queue_exists(vhost)
    zone_created(Publisher(vhost.amqp_uri), "through-the-second-node")
    assert heard(stream) == ["through-the-second-node"]
    container.stop()
