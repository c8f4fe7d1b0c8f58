"""Live streams over server-sent events: a member's alerts, and the redacted
feed of every event. Each connection has a bounded queue; a client too slow
to read loses its oldest messages, never blocks the others (the inbox keeps
every alert). Each account has a bounded number of streams open at once, and
a heartbeat finds a client that went away."""
from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections import Counter, defaultdict

import eventlet
from eventlet.event import Event
from eventlet.queue import Empty, LightQueue
from kombu import Queue, binding
from kombu.mixins import ConsumerMixin
from nameko.constants import DEFAULT_HEARTBEAT, HEARTBEAT_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.extensions import DependencyProvider, SharedExtension
from nameko.standalone.events import get_event_exchange
from werkzeug.wrappers import Response

from services.common import broker
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


# A feed stream that opens waits at most this long for the feed's queue to be bound (the
# broker down: it opens anyway, and hears events once the consumer connects).
FEED_READY_SECONDS = 5.0
# The feed's queue holds at most this many events its consumer has not yet read; past it the
# oldest go (a gateway too busy to keep up loses feed events, as a slow stream does).
FEED_QUEUE_BOUND = 1000


def feed_queue(sources) -> Queue:
    """A gateway process's own feed queue (a new name each call), bound to the event
    exchange of every service in `sources` while a feed stream is open (LiveFeed)."""
    return Queue(f"gateway-feed-{uuid.uuid4().hex}", durable=False, exclusive=True, auto_delete=True,
                 max_length=FEED_QUEUE_BOUND,
                 bindings=[binding(get_event_exchange(source, {}), routing_key="#") for source in sources])


class FeedHub(Hub):
    """The feed's hub: the stream that opens it while no other is open starts
    the feed's consumer and waits until its queue is bound, so that the
    stream hears every event published after it opens."""

    def __init__(self, slots: StreamSlots, start_consuming):
        super().__init__(slots)
        self._start_consuming = start_consuming

    def subscribe(self, key: str) -> LightQueue:
        queue = super().subscribe(key)
        self._start_consuming()
        return queue


class _FeedConsumer(ConsumerMixin):
    """kombu's consumer loop (it reconnects and declares the queue again after a
    broker restart) for as long as a feed stream is open: it stops within a
    second of the last one closing, and its connection and queue go with it."""

    def __init__(self, connection, queue: Queue, accept, deliver, wanted):
        self.connection = connection
        self.queue = queue
        self.accept = accept
        self.deliver = deliver
        self.wanted = wanted
        self.closing = False
        self.ready = Event()  # sent while consuming; a new one whenever consuming ends
        self._connection = None

    @property
    def should_stop(self) -> bool:
        return self.closing or not self.wanted()

    def get_consumers(self, Consumer, channel):
        # no_ack: nothing here fails in a way a redelivery would mend (as with an ack on
        # arrival before), and the broker is spared an ack per event.
        return [Consumer(queues=[self.queue], callbacks=[self._on_message], accept=self.accept, no_ack=True)]

    def _on_message(self, body, message):
        self.deliver(body)

    @contextlib.contextmanager
    def extra_context(self, connection, channel):
        self._connection = connection
        self.ready.send()
        try:
            yield
        finally:
            self.ready = Event()
            self._connection = None

    def on_iteration(self):
        # kombu's loop sends a heartbeat only when a second passes with no message, and this
        # consumer sends nothing else (no acks): under a steady flow of events the broker would
        # take the connection for dead after two heartbeats. A frame goes only when one is due.
        if self._connection is not None:
            self._connection.heartbeat_check()

    def on_connection_error(self, exc, interval):
        if self.should_stop:  # no stream waits for it any more: stop trying
            raise exc
        log.warning("the live feed cannot reach the broker (%s); trying again in %.0f s", type(exc).__name__,
                    interval)


class LiveFeed(Streams):
    """The feed's hub, which fills itself while a feed stream is open: a
    consumer of its own (_FeedConsumer) on `queue` (this process's own, bound
    to every service's events) hands each event, as `show` makes it fit for
    the feed, to the open feed streams. With none open there is no consumer
    and no queue, and the broker drops the events no service subscribes to
    (donation_received, the most frequent, among them) instead of delivering
    each to every gateway process: that delivery and its ack were 12–19 % of
    the gateway's CPU per donation (two stacks alternated, bench/README.md).
    No worker per event, as @consume would spawn, and no ack."""

    def __init__(self, queue: Queue, show):
        super().__init__()
        self.queue = queue
        self.show = show
        self.consumer: _FeedConsumer | None = None
        self._runner = None

    def setup(self):
        config = self.container.config
        self.hub = FeedHub(self.shared_slots.slots, self._start_consuming)
        self.consumer = _FeedConsumer(
            broker.connection(config, heartbeat=config.get(HEARTBEAT_CONFIG_KEY, DEFAULT_HEARTBEAT),
                              login_method=config.get(LOGIN_METHOD_CONFIG_KEY)),
            self.queue, self.container.accept, self.handle_event, lambda: self.hub.watched(FEED))

    def stop(self):
        self.consumer.closing = True
        if self._runner is not None:
            with eventlet.Timeout(3, False):  # the consumer looks every second (kombu's safety interval)
                self._runner.wait()
        super().stop()

    def _start_consuming(self):
        """Called by a stream as it opens: starts the consumer unless it runs, and
        waits for its queue to be bound (at most FEED_READY_SECONDS)."""
        if self._runner is None:
            self._runner = self.container.spawn_managed_thread(self._consume, identifier="live feed")
        with eventlet.Timeout(FEED_READY_SECONDS, False):
            self.consumer.ready.wait()

    def _consume(self):
        try:
            while not self.consumer.should_stop:
                try:
                    self.consumer.run()  # returns once no feed stream is open (or the gateway stops)
                except Exception:
                    log.exception("the live feed's consumer failed; starting it again")
                    eventlet.sleep(1)
        finally:
            # No green thread switch between run() seeing no stream and this: a stream that
            # opens after it starts a new consumer.
            self._runner = None

    def handle_event(self, body):
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
