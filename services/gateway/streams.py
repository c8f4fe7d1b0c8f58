"""Live streams over server-sent events: a member's alerts, and the redacted
feed of every event. Each connection has a bounded queue; a client too slow
to read loses its oldest messages, never blocks the others (the inbox keeps
every alert)."""
from __future__ import annotations

import json
from collections import defaultdict

from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

QUEUE_BOUND = 100
KEEPALIVE_SECONDS = 15


class Hub:
    """Open streams by key (a member's id for alerts, FEED for the event feed)."""

    def __init__(self):
        self._subscribers: dict[str, set[LightQueue]] = defaultdict(set)

    def subscribe(self, key: str) -> LightQueue:
        queue = LightQueue(maxsize=QUEUE_BOUND)
        self._subscribers[key].add(queue)
        return queue

    def unsubscribe(self, key: str, queue: LightQueue):
        queues = self._subscribers.get(key)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[key]

    def publish(self, key: str, message: dict):
        for queue in list(self._subscribers.get(key, ())):
            if queue.full():
                queue.get_nowait()  # drop the oldest for this slow reader
            queue.put_nowait(message)

    def connections(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())


FEED = "feed"


class Streams(DependencyProvider):
    """One hub per gateway process, shared by its workers."""

    def setup(self):
        self.hub = Hub()

    def get_dependency(self, worker_ctx):
        return self.hub


def sse_response(request, hub: Hub, key: str, event: str, missed=None, wanted=None) -> Response:
    """A hub's messages for `key` as server-sent events named `event`: first
    those `missed(last_id)` returns (when the client reconnects with
    Last-Event-ID), then live ones for which `wanted(message)` holds."""
    # Subscribe before looking up what was missed, so nothing falls between the two.
    queue = hub.subscribe(key)
    try:
        last_id = request.headers.get("Last-Event-ID")
        backlog = missed(last_id) if last_id and missed else []
    except BaseException:
        hub.unsubscribe(key, queue)
        raise
    # eventlet buffers small writes; an event must leave at once.
    request.environ["eventlet.minimum_write_chunk_size"] = 0

    def frame(message: dict) -> str:
        return f"id: {message['id']}\nevent: {event}\ndata: {json.dumps(message, ensure_ascii=False)}\n\n"

    def events():
        try:
            yield ": connected\n\n"
            sent = set()
            for message in backlog:
                sent.add(message["id"])
                yield frame(message)
            while True:
                try:
                    message = queue.get(timeout=KEEPALIVE_SECONDS)
                except Empty:
                    yield ": keepalive\n\n"
                    continue
                # It may have come in the backlog already.
                if message["id"] not in sent and (wanted is None or wanted(message)):
                    yield frame(message)
        finally:
            hub.unsubscribe(key, queue)

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
