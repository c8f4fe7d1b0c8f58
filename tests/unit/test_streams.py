"""Live streams never block: a client too slow to read loses its oldest
messages (within a bound), and the others get everything."""
from services.gateway.streams import QUEUE_BOUND, Hub


def test_a_slow_reader_keeps_only_the_newest_and_holds_up_no_one():
    hub = Hub()
    slow, quick = hub.subscribe("feed"), hub.subscribe("feed")
    received = []
    for number in range(QUEUE_BOUND + 50):
        hub.publish("feed", {"id": str(number)})   # returns at once, however full a queue is
        received.append(quick.get_nowait()["id"])  # the quick reader keeps up
    assert received == [str(n) for n in range(QUEUE_BOUND + 50)]
    kept = [slow.get_nowait()["id"] for _ in range(slow.qsize())]
    assert kept == [str(n) for n in range(50, QUEUE_BOUND + 50)]  # the oldest 50 dropped


def test_messages_go_only_to_their_key_and_a_closed_stream_is_forgotten():
    hub = Hub()
    mine, theirs = hub.subscribe("member-a"), hub.subscribe("member-b")
    hub.publish("member-a", {"id": "1"})
    assert mine.qsize() == 1 and theirs.qsize() == 0
    hub.unsubscribe("member-a", mine)
    hub.publish("member-a", {"id": "2"})
    assert mine.qsize() == 1
    assert hub.connections() == 1
