"""The outbox relay: publishes committed outbox rows with publisher confirms
(a batch of them with one wait) and marks them sent. Runs right after each commit and, for what a crash or a
broker outage left behind, on a timer (several instances may sweep at once:
rows are claimed with FOR UPDATE SKIP LOCKED where the database has it)."""
from __future__ import annotations

import itertools
import logging
from collections import Counter
from datetime import timedelta
from typing import Callable, NamedTuple

import eventlet
from eventlet.event import Event
from nameko.standalone.events import get_event_exchange
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from services.common import broker
from services.common import config as linli_config
from services.common import events, logs
from services.common.clock import naive_utcnow
from services.common.metrics import EVENTS_PUBLISHED, OUTBOX_BACKLOG, OUTBOX_OLDEST

log = logging.getLogger(__name__)

PUBLISH_NOW_WAIT_SECONDS = 2.0


class _Read(NamedTuple):
    """Rows a worker has just committed, by id (read back to publish), and its event."""
    ids: list[str]
    done: Event


class _Held(NamedTuple):
    """Rows a group commit has just committed, as it holds them, and what marks them sent."""
    rows: list
    on_sent: Callable[[list[str]], None]


class Relay:
    def __init__(self, engine, kernel, source: str, config: dict):
        self.engine = engine
        self.kernel = kernel
        self.source = source
        self.config = config
        self.grace = timedelta(seconds=float(linli_config.setting(config, "OUTBOX_GRACE_SECONDS")))
        self.publisher = broker.BatchPublisher(config)  # one wait for the confirms of a batch
        self._exchange = get_event_exchange(source, config).name  # nameko's, where its event handlers bind
        self._topology_declared = False
        # Rows this process is publishing now: the timer must not publish them a
        # second time while a worker's post-commit publish is under way.
        self._in_flight: set[str] = set()
        # What has just been committed and waits for the batch publisher, in the order it was
        # committed: _Read from publish_now, _Held from a group commit.
        self._waiting: list[_Read | _Held] = []
        self._batcher = None

    def publish_now(self, ids: list[str], wait: float = PUBLISH_NOW_WAIT_SECONDS) -> int:
        """Publish these just-committed rows; on failure leave them to the timer.

        Rows committed by several workers at about the same time go out in one
        batch: one green thread publishes for all of them (one read of the
        outbox, the publishes, one write marking them sent), and whatever is
        committed meanwhile waits for the next batch. The caller (a worker that
        has committed and must answer) waits `wait` seconds at most: when the
        broker blocks publishers (a memory or disk alarm), the publish goes on
        alone until the broker unblocks, and its rows stay in flight, so the
        timer does not publish them a second time meanwhile."""
        done = Event()
        self._queue(_Read(ids, done))
        try:
            with eventlet.Timeout(wait):
                return done.wait()
        except eventlet.Timeout:
            log.warning("outbox: %d event(s) not confirmed within %.0f s; publishing on in the background",
                        len(ids), wait)
            return 0

    def publish_committed(self, rows: list, on_sent):
        """Rows a group commit has just committed, as it holds them (no read),
        queued at once and published behind what this process committed before
        them, ahead of what it commits after: called before the batch's callers
        are answered, so that a caller's next write never has its event out
        first (a visit logged before its case was opened). Their ids then go to
        `on_sent`, which marks them sent in its next transaction, and stay in
        flight (the timer leaves them) until `settled`. What fails is left to
        the timer."""
        rows = [row for row in rows if row.id not in self._in_flight]
        self._in_flight |= {row.id for row in rows}
        self._queue(_Held(rows, on_sent))

    def _queue(self, entry: _Read | _Held):
        self._waiting.append(entry)
        if self._batcher is None:
            self._batcher = eventlet.spawn(self._publish_batches)

    def _publish_batches(self):
        """What waits, in order: each run of publish_now's ids in one batch (one read),
        each run of a group commit's rows in another."""
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, []
                for kind, run in itertools.groupby(waiting, key=type):
                    run = list(run)
                    if kind is _Held:
                        self._send_committed(run)
                        continue
                    published = self._publish_just_committed([row_id for entry in run for row_id in entry.ids])
                    for entry in run:
                        entry.done.send(len(entry.ids) if published else 0)
        finally:
            self._batcher = None

    def _send_committed(self, run: list[_Held]):
        rows = [row for entry in run for row in entry.rows]
        try:
            self._declare_topology()
            self.publisher.publish_all([self._message(row) for row in rows])
        except Exception as exc:  # the broker is away: the timer will retry
            self.settled([row.id for row in rows])
            log.warning("outbox: %d event(s) left for the relay (%s)", len(rows), type(exc).__name__)
            return
        _count_published(rows)
        for entry in run:
            entry.on_sent([row.id for row in entry.rows])

    def settled(self, ids: list[str]):
        """These rows are marked sent (or left to the timer): no longer in flight."""
        self._in_flight -= set(ids)

    def _message(self, row) -> tuple:
        """(body, exchange, routing key, headers) of an outbox row: its envelope as
        written, to its service's event exchange; the request id as nameko sends
        worker context, so the consumer's lines carry it."""
        headers = {logs.AMQP_HEADER: row.request_id} if row.request_id else {}
        return row.envelope, self._exchange, row.event_type, headers

    def _declare_topology(self):
        if not self._topology_declared:
            # Only its own events' queues: all this service's broker user may declare.
            events.declare_topology(self.config, self.kernel.events, sources=[self.source])
            self._topology_declared = True

    def _publish_just_committed(self, ids: list[str]) -> int:
        outbox = self.kernel.outbox
        query = select(outbox).where(outbox.c.id.in_(ids), outbox.c.sent_at.is_(None))
        try:
            return self._publish(query, order=ids)
        except Exception as exc:  # the broker is away: the timer will retry
            log.warning("outbox: %d event(s) left for the relay (%s)", len(ids), type(exc).__name__)
            return 0

    def publish_pending(self, batch: int = 500) -> int:
        """Publish rows older than the grace period that are still unsent."""
        outbox = self.kernel.outbox
        query = (
            select(outbox)
            .where(outbox.c.sent_at.is_(None), outbox.c.created_at <= naive_utcnow() - self.grace)
            .order_by(outbox.c.created_at, outbox.c.id)
            .limit(batch)
        )
        try:
            published = self._publish(query)
        except Exception as exc:
            log.warning("outbox relay: broker unavailable (%s); will retry", type(exc).__name__)
            published = 0
        if published:
            log.info("outbox relay: published %d pending event(s)", published)
        self.measure_backlog()
        return published

    def measure_backlog(self):
        """linli_outbox_backlog and linli_outbox_oldest_unsent_seconds, from one
        read of the unsent rows (ix_outbox_unsent) on the relay's timer, so a
        scrape reads no database and a broker outage shows as a growing age."""
        outbox = self.kernel.outbox
        try:
            with Session(self.engine) as session:
                count, oldest = session.execute(
                    select(func.count(), func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))).one()
        except Exception as exc:  # the database is away: the gauges keep their last values
            log.warning("outbox relay: backlog not measured (%s)", type(exc).__name__)
            return
        OUTBOX_BACKLOG.labels(self.source).set(count)
        age = (naive_utcnow() - oldest).total_seconds() if oldest is not None else 0.0
        OUTBOX_OLDEST.labels(self.source).set(max(age, 0.0))

    def _publish(self, query, order: list[str] | None = None) -> int:
        """Publish the rows `query` finds, in `order` (ids) if given, else as found."""
        self._declare_topology()
        sent: list[str] = []
        with Session(self.engine) as session:
            # SKIP LOCKED lets two relays share the work on PostgreSQL; SQLite ignores it
            # and holds no lock on a read, so the publishing below blocks no writer.
            rows = session.execute(query.with_for_update(skip_locked=True)).all()
            if order is not None:  # as the unit of work emitted them
                position = {row_id: index for index, row_id in enumerate(order)}
                rows.sort(key=lambda row: position[row.id])
            rows = [row for row in rows if row.id not in self._in_flight]
            claimed = {row.id for row in rows}
            self._in_flight |= claimed
            try:
                self._publish_rows(session, rows, sent)
            finally:
                self._in_flight -= claimed
        return len(sent)

    def _publish_rows(self, session: Session, rows, sent: list[str]):
        outbox = self.kernel.outbox
        try:
            self.publisher.publish_all([self._message(row) for row in rows])  # all confirmed, or it raises
            sent += [row.id for row in rows]
            _count_published(rows)
        finally:
            # Mark in one short write, after the network work, so SQLite's
            # single writer lock is never held across a publish.
            if sent:
                session.execute(update(outbox).where(outbox.c.id.in_(sent)).values(sent_at=naive_utcnow()))
            session.commit()


def _count_published(rows):
    for (source, event_type), published in Counter((row.source, row.event_type) for row in rows).items():
        EVENTS_PUBLISHED.labels(source, event_type).inc(published)
