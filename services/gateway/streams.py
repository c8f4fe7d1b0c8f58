"""Live streams over server-sent events: a member's alerts, and the redacted
feed of every event. Each connection has a bounded queue; a client too slow
to read loses its oldest messages, never blocks the others (the inbox keeps
every alert). Each account has a bounded number of streams open at once, and
a heartbeat finds a client that went away."""
from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict

from eventlet.queue import Empty, LightQueue
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.messaging import QueueConsumer
from werkzeug.wrappers import Response

from services.common.errors import NotAuthenticated, TooManyRequests

log = logging.getLogger(__name__)

QUEUE_BOUND = 100
# How often an open stream asks again whether its token still holds (a revoked
# wall screen, a disabled account): its stream ends within about this long.
RECHECK_SECONDS = 1.0


class Hub:
    """Open streams by key (a member's id for alerts, FEED for the event feed)."""

    def __init__(self, slots: StreamSlots):
        self._subscribers: dict[str, set[LightQueue]] = defaultdict(set)
        self.slots = slots

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

    def watched(self, key: str) -> bool:
        return bool(self._subscribers.get(key))

    def connections(self) -> int:
        return sum(len(queues) for queues in self._subscribers.values())


FEED = "feed"


class StreamSlots:
    """How many streams (of both kinds) each account has open in this process.

    Past `per_account`, a new stream is refused with a 429, rather than the
    oldest closed: an EventSource reconnects by itself when its stream is
    closed, so two pages past the bound would close each other in turn for
    ever, and whoever holds a token could silently cut the office's wall
    screen. A stream whose client went away frees its slot within two
    heartbeats, which is the Retry-After."""

    def __init__(self, per_account: int, heartbeat: float):
        self.per_account = per_account
        self.heartbeat = heartbeat
        self._open: Counter[str] = Counter()

    def take(self, account_id: str):
        if self._open[account_id] >= self.per_account:
            raise TooManyRequests(
                f"This account has {self.per_account} streams open already: close one first.",
                {"retry_after": max(1, round(2 * self.heartbeat))})
        self._open[account_id] += 1

    def give_back(self, account_id: str):
        self._open[account_id] -= 1
        if self._open[account_id] <= 0:
            del self._open[account_id]

    def open_streams(self, account_id: str) -> int:
        return self._open[account_id]


class _SharedSlots(SharedExtension):
    """One StreamSlots per gateway process, shared by the alert streams and the feed."""

    def __init__(self):
        super().__init__()
        # Here, not in setup() (nameko sets extensions up all at once); setup() sets its bounds.
        self.slots = StreamSlots(per_account=0, heartbeat=0.0)

    def setup(self):
        config = self.container.config
        self.slots.per_account = int(config["STREAMS_PER_ACCOUNT"])
        self.slots.heartbeat = float(config["STREAM_HEARTBEAT_SECONDS"])


class Streams(DependencyProvider):
    """One hub per gateway process, shared by its workers."""

    shared_slots = _SharedSlots()

    def setup(self):
        self.hub = Hub(self.shared_slots.slots)

    def get_dependency(self, worker_ctx):
        return self.hub


class LiveFeed(Streams):
    """The feed's hub, which fills itself: it consumes `queue` (this process's
    own, bound to every service's events) and hands each event, as `show`
    makes it fit for the feed, to the open feed streams. Through nameko's
    QueueConsumer, as nameko's own reply listener does, so the queue is
    declared again after a broker restart; but with no worker per event, as
    @consume would spawn (its dependencies built, its context set up and torn
    down): every donation makes an event, and that worker was about a sixth
    of what a donation cost the gateway. Nothing here can fail in a way a
    retry would mend, so each message is acknowledged as it comes, and with
    no stream open it is only acknowledged."""

    queue_consumer = QueueConsumer()

    def __init__(self, queue, show):
        super().__init__()
        self.queue = queue
        self.show = show

    def setup(self):
        super().setup()
        self.queue_consumer.register_provider(self)

    def stop(self):
        self.queue_consumer.unregister_provider(self)
        super().stop()

    def handle_message(self, body, message):
        self.queue_consumer.ack_message(message)
        if not (isinstance(body, dict) and self.hub.watched(FEED)):
            return
        try:
            shown = self.show(body)
        except Exception as exc:  # an envelope the contract does not know: not for the feed
            log.warning("the live feed skipped an event it could not read (%s)", type(exc).__name__)
            return
        self.hub.publish(FEED, shown)


class _EventStream:
    """The frames of one stream, and what it holds (its queue, its slot)
    given back when the server closes it, even if it never started."""

    def __init__(self, frames, release):
        self._frames = frames
        self._release = release

    def __iter__(self):
        return self._frames

    def close(self):
        self._frames.close()
        release, self._release = self._release, None
        if release is not None:
            release()


def sse_response(request, hub: Hub, key: str, event: str, missed=None, wanted=None) -> Response:
    """A hub's messages for `key` as server-sent events named `event`: first
    those `missed(last_id)` returns (when the client reconnects with
    Last-Event-ID), then live ones for which `wanted(message)` holds. One of
    the caller's account's streams (TooManyRequests past the bound); a comment
    every heartbeat, so that a client gone away is found by the failed write
    and its stream ends."""
    account_id = request.principal["id"]
    hub.slots.take(account_id)
    # Subscribe before looking up what was missed, so nothing falls between the two.
    queue = hub.subscribe(key)

    def release():
        hub.unsubscribe(key, queue)
        hub.slots.give_back(account_id)

    try:
        last_id = request.headers.get("Last-Event-ID")
        backlog = missed(last_id) if last_id and missed else []
    except BaseException:
        release()
        raise
    # eventlet buffers small writes; an event must leave at once.
    request.environ["eventlet.minimum_write_chunk_size"] = 0
    heartbeat = hub.slots.heartbeat

    def frame(message: dict) -> str:
        return f"id: {message['id']}\nevent: {event}\ndata: {json.dumps(message, ensure_ascii=False)}\n\n"

    recheck = getattr(request, "recheck", None)  # set by the HTTP layer: the caller's token, asked again

    def refused() -> NotAuthenticated | None:
        try:
            recheck()
        except NotAuthenticated as exc:
            return exc
        except Exception as exc:  # the database did not answer: the stream goes on, asked again next time
            log.warning("stream: could not check its token again (%s)", type(exc).__name__)
        return None

    def frames():
        yield ": connected\n\n"
        sent = set()
        for message in backlog:
            sent.add(message["id"])
            yield frame(message)
        written = checked = time.monotonic()
        while True:
            try:
                message = queue.get(timeout=heartbeat if recheck is None else min(heartbeat, RECHECK_SECONDS))
            except Empty:
                message = None
            now = time.monotonic()
            if recheck is not None and now - checked >= RECHECK_SECONDS:
                checked = now
                exc = refused()
                if exc is not None:  # said once, then the stream ends; the client's reconnect gets the 401
                    yield (f"event: closed\ndata: "
                           f"{json.dumps({'message': exc.message, **exc.details}, ensure_ascii=False)}\n\n")
                    return
            if message is None:
                if now - written >= heartbeat:
                    written = now
                    yield ": ping\n\n"
                continue
            # It may have come in the backlog already.
            if message["id"] not in sent and (wanted is None or wanted(message)):
                written = now
                yield frame(message)

    return Response(_EventStream(frames(), release), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
