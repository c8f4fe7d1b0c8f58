"""Live streams never block: a client too slow to read loses its oldest
messages (within a bound), and the others get everything. An account holds a
bounded number of streams; a quiet stream still writes, so that a client gone
away is found."""
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.common.errors import TooManyRequests
from services.gateway.streams import FEED, QUEUE_BOUND, Hub, LiveFeed, StreamSlots, sse_response


def test_a_slow_reader_keeps_only_the_newest_and_holds_up_no_one():
    hub = Hub(StreamSlots(per_account=5, heartbeat=15))
    slow, quick = hub.subscribe("feed"), hub.subscribe("feed")
    received = []
    for number in range(QUEUE_BOUND + 50):
        hub.publish("feed", {"id": str(number)})   # returns at once, however full a queue is
        received.append(quick.get_nowait()["id"])  # the quick reader keeps up
    assert received == [str(n) for n in range(QUEUE_BOUND + 50)]
    kept = [slow.get_nowait()["id"] for _ in range(slow.qsize())]
    assert kept == [str(n) for n in range(50, QUEUE_BOUND + 50)]  # the oldest 50 dropped


def test_messages_go_only_to_their_key_and_a_closed_stream_is_forgotten():
    hub = Hub(StreamSlots(per_account=5, heartbeat=15))
    mine, theirs = hub.subscribe("member-a"), hub.subscribe("member-b")
    hub.publish("member-a", {"id": "1"})
    assert mine.qsize() == 1 and theirs.qsize() == 0
    hub.unsubscribe("member-a", mine)
    hub.publish("member-a", {"id": "2"})
    assert mine.qsize() == 1
    assert hub.connections() == 1


def _stream_request(account_id: str):
    request = Request(EnvironBuilder(path="/api/v1/me/alerts/stream").get_environ())
    request.principal = {"id": account_id, "roles": ["viewer"]}
    return request


def test_an_account_has_a_bounded_number_of_streams_and_a_closed_one_frees_its_slot():
    hub = Hub(StreamSlots(per_account=2, heartbeat=15))
    first = sse_response(_stream_request("viewer-1"), hub, FEED, "event")
    sse_response(_stream_request("viewer-1"), hub, "viewer-1", "alert")  # both kinds count
    with pytest.raises(TooManyRequests) as refused:
        sse_response(_stream_request("viewer-1"), hub, FEED, "event")
    assert refused.value.details["retry_after"] == 30  # by then a stream whose client left has ended
    assert hub.connections() == 2
    sse_response(_stream_request("viewer-2"), hub, FEED, "event")  # another account is not held up
    first.close()  # the server closes it (its client left), though it never sent a frame
    assert hub.slots.open_streams("viewer-1") == 1 and hub.connections() == 2
    sse_response(_stream_request("viewer-1"), hub, FEED, "event")


def test_a_quiet_stream_sends_a_heartbeat_so_that_a_client_gone_away_is_found():
    hub = Hub(StreamSlots(per_account=5, heartbeat=0.05))
    frames = iter(sse_response(_stream_request("viewer-1"), hub, FEED, "event").response)
    assert next(frames) == ": connected\n\n"
    assert next(frames) == ": ping\n\n"
    hub.publish(FEED, {"id": "e1"})
    assert next(frames).startswith("id: e1\nevent: event\n")


def live_feed(show):
    feed = LiveFeed(queue=None, show=show)
    feed.hub = Hub(StreamSlots(per_account=5, heartbeat=15))
    return feed


def test_the_live_feed_shows_each_event_to_its_open_streams():
    shown = []

    def show(envelope):  # as contracts.for_feed: what the feed may show of an event
        shown.append(envelope["type"])
        return {"type": envelope["type"]}
    feed = live_feed(show)
    feed.handle_event({"type": "nobody.watching"})  # no stream open (its consumer stopping): not read
    stream = feed.hub.subscribe(FEED)
    feed.handle_event({"type": "donation_recorded", "donor_name": "Wang"})
    feed.handle_event(["not", "an", "envelope"])
    assert [stream.get_nowait() for _ in range(stream.qsize())] == [{"type": "donation_recorded"}]
    assert shown == ["donation_recorded"]


def test_an_event_the_feed_cannot_read_is_skipped_and_the_feed_goes_on():
    def show(envelope):
        if "type" not in envelope:
            raise KeyError("type")
        return {"type": envelope["type"]}
    feed = live_feed(show)
    stream = feed.hub.subscribe(FEED)
    feed.handle_event({"no": "type"})
    feed.handle_event({"type": "case_opened"})
    assert [stream.get_nowait() for _ in range(stream.qsize())] == [{"type": "case_opened"}]
