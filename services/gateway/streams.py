"""Live alerts over server-sent events. Each connection has a bounded queue;
a client too slow to read loses its oldest alerts, never blocks the others
(the inbox keeps every alert)."""
from __future__ import annotations

import json
from collections import defaultdict

from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

QUEUE_BOUND = 100
KEEPALIVE_SECONDS = 15


class AlertHub:
    def __init__(self):
        self._subscribers: dict[str, set[LightQueue]] = defaultdict(set)

    def subscribe(self, member_id: str) -> LightQueue:
        queue = LightQueue(maxsize=QUEUE_BOUND)
        self._subscribers[member_id].add(queue)
        return queue

    def unsubscribe(self, member_id: str, queue: LightQueue):
        queues = self._subscribers.get(member_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[member_id]

    def publish(self, member_id: str, alert: dict):
        for queue in list(self._subscribers.get(member_id, ())):
            if queue.full():
                queue.get_nowait()  # drop the oldest for this slow reader
            queue.put_nowait(alert)

    def connections(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())


class AlertStreams(DependencyProvider):
    """One hub per gateway process, shared by its workers."""

    def setup(self):
        self.hub = AlertHub()

    def get_dependency(self, worker_ctx):
        return self.hub


def sse_response(request, hub: AlertHub, member_id: str, missed) -> Response:
    """The member's alerts as server-sent events: first those `missed(last_id)`
    returns (when the client reconnects with Last-Event-ID), then live ones."""
    # Subscribe before looking up what was missed, so nothing falls between the two.
    queue = hub.subscribe(member_id)
    try:
        last_id = request.headers.get("Last-Event-ID")
        backlog = missed(last_id) if last_id else []
    except BaseException:
        hub.unsubscribe(member_id, queue)
        raise
    # eventlet buffers small writes; an event must leave at once.
    request.environ["eventlet.minimum_write_chunk_size"] = 0

    def frame(alert: dict) -> str:
        return f"id: {alert['id']}\nevent: alert\ndata: {json.dumps(alert, ensure_ascii=False)}\n\n"

    def events():
        try:
            yield ": connected\n\n"
            sent = set()
            for alert in backlog:
                sent.add(alert["id"])
                yield frame(alert)
            while True:
                try:
                    alert = queue.get(timeout=KEEPALIVE_SECONDS)
                except Empty:
                    yield ": keepalive\n\n"
                    continue
                if alert["id"] not in sent:  # it may have come in the backlog already
                    yield frame(alert)
        finally:
            hub.unsubscribe(member_id, queue)

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
