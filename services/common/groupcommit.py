"""Group commit: the concurrent writes of one service process share one
transaction, one commit and one wait for the broker's confirms.

    @rpc
    @grouped
    @idempotent
    def record_donation(self, campaign_id, payload, actor): ...

A @grouped call does not run in its worker's green thread: it is handed to the
process's writer (GroupCommit), which takes every call waiting (up to
GROUP_COMMIT_MAX, gathering GROUP_COMMIT_GATHER_MS more while the last batch
is applied) and runs them one after another in a real OS thread (eventlet's
tpool), so no database call blocks the eventlet hub: BEGIN (IMMEDIATE on
SQLite: the batch holds the write lock from its start), for each call a
savepoint of its own (one call's refusal or failure rolls back only that
call), then one COMMIT, with SQLite's synchronous=FULL or PostgreSQL's
synchronous_commit=on, before any call of the batch is answered. The
batch's outbox rows are then published from memory with one wait for
confirms (services/common/broker.py) while the callers are answered and the
next batch is applied (they are committed in the outbox: the relay's timer
publishes what a crash interrupts), and marked sent inside the next batch's
transaction: no commit of its own per write (when no write follows, a batch
of marks alone goes after MARK_DELAY_SECONDS, well within the relay's grace).

Inside the batch the call sees the worker's database as usual: `self.db.session`
is the batch's session, and its units of work commit through InBatch, the
committer that releases the call's savepoint instead of committing (the seam
of services/common/db.py UnitOfWork). @idempotent works on that same seam: the
key and the answer are written in the call's savepoint.
"""
from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from typing import NamedTuple

import eventlet
from eventlet import tpool
from eventlet.event import Event
from sqlalchemy import event, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ReleaseSavepointClause, RollbackToSavepointClause, SavepointClause

from services.common import logs
from services.common.clock import naive_utcnow
from services.common.prepared import on_cursor

log = logging.getLogger(__name__)

# Published rows wait this long for the next batch to mark them sent; then they go alone.
MARK_DELAY_SECONDS = 0.2


def grouped(method=None, *, orm: bool = True):
    """Run an RPC write in the process's group commit (see the module doc).
    `@grouped(orm=False)`: the call adds, changes and deletes no ORM object
    (it writes with Core statements; it may read), so its savepoint is plain
    SQL on the cursor, not the session's nested transaction (InBatch); a
    flush of ORM changes in such a call is refused (WriterSession.flush)."""
    if method is None:
        return functools.partial(grouped, orm=orm)

    @functools.wraps(method)
    def call(self, *args, **kwargs):
        return self.db.in_group(lambda: method(self, *args, **kwargs), orm=orm)

    call.__signature__ = inspect.signature(method)  # @idempotent's, with its key
    call.grouped = method  # what `call_many` runs, for each call it carries (services/common/service.py)
    call.orm = orm
    return call


class InBatch:
    """The committer of one call inside a batch. The call runs in one savepoint:
    `uow.commit()` only marks what the call has done so far as kept (the batch
    commits later); a rollback undoes what came after that mark. Without a
    savepoint per unit, a rollback that would have to keep an earlier unit of
    the same call and undo a later one fails the whole call instead (no
    @grouped write does that: it writes one unit). `failed()` undoes the call,
    `done()` keeps what it committed and abandons the rest, as CommitNow's close.

    The savepoint is the session's nested transaction, which undoes the ORM
    objects a call added or changed along with their rows, and keeps a failed
    flush to the call. A call that changes no ORM object (`@grouped(orm=False)`,
    a gift) has its savepoint as SQL on the batch connection's cursor
    (`savepoints`, SQLAlchemy's own text for it): the nested transaction's
    bookkeeping cost ~90 µs a gift, a fifth of the writer's CPU
    (bench/README.md). Undone, such a call's session is expired: an ORM-enabled
    UPDATE may have changed a loaded object."""

    class HalfUndone(Exception):
        """A grouped call undid work after committing part of it: all of it is undone."""

    def __init__(self, session: "WriterSession", statements, savepoints: "Savepoints | None" = None):
        self.session = session
        self.statements = statements  # how many statements the writer's connection has run so far
        self.savepoints = savepoints  # None: the session's nested transaction
        session.changes_no_orm_objects = savepoints is not None
        if savepoints is None:
            self.savepoint = session.begin_nested()
        else:
            on_cursor(session.batch_connection, savepoints.begin)
        self.kept_at = statements()    # nothing of the call's own yet
        self.kept_any = False
        self.half_undone = False
        self.rows = []  # the outbox rows of the call's committed units (db.OutboxRow)

    def commit(self, uow):
        self.finish(uow.session, [uow])

    def finish(self, session: Session, units):
        session.flush()
        self.kept_at, self.kept_any = self.statements(), True
        self.rows += [row for uow in units for row in uow.rows]

    def rollback(self, session: Session):
        if not (session.new or session.dirty or session.deleted) and self.statements() == self.kept_at:
            return  # nothing since the last commit (or since the call began)
        if self.kept_any:
            self.half_undone = True
        self._undo()
        if self.savepoints is None:
            self.savepoint = session.begin_nested()
        self.kept_at = self.statements()

    def done(self):
        self.rollback(self.session)
        if self.half_undone:
            raise InBatch.HalfUndone("a grouped call undid part of its work after committing the rest")
        if self.savepoints is None:
            self.savepoint.commit()
        else:
            self._release()

    def failed(self):
        self._undo()
        if self.savepoints is not None:
            self._release()
        self.rows = []

    def _release(self):
        """The end of a savepoint on the cursor, and of its call's refusal of ORM changes."""
        on_cursor(self.session.batch_connection, self.savepoints.release)
        self.session.changes_no_orm_objects = False

    def _undo(self):
        if self.savepoints is None:
            self.savepoint.rollback()
        else:  # back to the savepoint, which stays (as SQL has it), and the session with it
            session = self.session
            on_cursor(session.batch_connection, self.savepoints.rollback_to)
            for obj in [*session.new, *session.deleted]:  # refused at the flush: never written
                session.expunge(obj)
            session.expire_all()


class Savepoints(NamedTuple):
    """The SQL of a call's savepoint, as SQLAlchemy's compiler writes it for the dialect."""
    begin: str
    release: str
    rollback_to: str

    @classmethod
    def of(cls, dialect, name: str = "linli_call") -> "Savepoints":
        return cls(*(str(clause(name).compile(dialect=dialect)) for clause in (
            SavepointClause, ReleaseSavepointClause, RollbackToSavepointClause)))


class WriterSession(Session):
    """The writer's session. Inside a batch, a Core statement (one that names
    no ORM entity) runs on the batch's connection at once: what
    `Session.execute` does with it too (no flush before, no ORM step), less
    looking that connection up and the ORM's dispatch around each statement:
    ~9 % of a grouped donation's CPU in the writer (bench/writer_cpu.py).
    ORM statements, and any call with options, go through the session."""

    batch_connection = None  # set by the writer for the length of one batch's transaction
    on_statement = None  # the writer's count of statements run, told of each prepared one (prepared.py)
    changes_no_orm_objects = False  # the call in progress is @grouped(orm=False) (InBatch)

    def flush(self, objects=None):
        # A failed flush would roll back the whole batch's transaction: only the session's
        # nested transaction keeps it to its call, and a @grouped(orm=False) call has none.
        if self.changes_no_orm_objects and (self.new or self.dirty or self.deleted):
            raise TypeError("a @grouped(orm=False) call may not add, change or delete ORM objects")
        super().flush(objects)

    def begin_nested(self):
        savepoint = super().begin_nested()
        if self.batch_connection is not None:
            # The session emits a SAVEPOINT when a statement of its own first needs the
            # connection; one run on the connection would not, and would fall outside it.
            self.connection()
        return savepoint

    def execute(self, statement, params=None, **kwargs):
        if self.batch_connection is not None and not kwargs \
                and statement._propagate_attrs.get("compile_state_plugin") != "orm":
            return self.batch_connection.execute(statement, params)
        return super().execute(statement, params, **kwargs)


class _Call:
    def __init__(self, worker_db, run, orm: bool):
        self.worker_db = worker_db
        self.run = run
        self.orm = orm  # False: @grouped(orm=False), its savepoint on the cursor
        self.context = contextvars.copy_context()  # the worker's request id, for the lines and rows it makes
        self.done = Event()
        self.answer = None
        self.error: BaseException | None = None
        self.rows = []


class GroupCommit:
    """One per service process (services/common/db.py Database)."""

    def __init__(self, engine, kernel, relay, max_size: int, gather_seconds: float):
        self.engine = engine  # the writer's own engine: one connection, used by the writer thread only
        self.kernel = kernel
        self.relay = relay
        self.max_size = max_size
        self.gather_seconds = gather_seconds
        self._waiting: list[_Call] = []
        self._marks: list[str] = []  # outbox ids published and confirmed, to mark sent
        self._leader = None
        self._arrival: Event | None = None  # the leader waits on it with marks alone
        self._session: Session | None = None
        self._executed = 0  # statements the writer's connection ran (InBatch: was anything done since?)
        self.batches = 0  # batches of writes committed, for the tests
        self.calls = 0

    def run(self, worker_db, run, orm: bool = True):
        """Run `run()` in the next batch; its answer once that batch has committed
        (its events are published meanwhile); its error if it failed."""
        (answer, error), = self.run_many(worker_db, [(None, run)], orm)
        if error is not None:
            raise error
        return answer

    def run_many(self, worker_db, runs: list, orm: bool = True) -> list[tuple]:
        """Several calls of one worker (request id, run) each, queued together and
        run one after another in the writer thread: (answer, error) each."""
        calls = []
        for request_id, run in runs:
            call = _Call(worker_db, run, orm)
            if request_id is not None:
                call.context.run(logs.bind_request_id, request_id)
            calls.append(call)
        self._waiting += calls
        if self._arrival is not None and not self._arrival.ready():
            self._arrival.send()  # the leader waits with marks only: these go now, the marks with them
        self._wake()
        for call in calls:
            call.done.wait()
        return [(call.answer, call.error) for call in calls]

    def stop(self):
        """Mark what was published (the workers have ended: nothing else waits)."""
        leader = self._leader
        if leader is not None:  # its last batch, or marks it holds, finish first: one transaction at a time
            if self._arrival is not None and not self._arrival.ready():
                self._arrival.send()  # marks waiting for a write that will not come: now
            try:
                leader.wait()
            except Exception:  # logged where it failed; what it did not mark is marked below or relayed again
                pass
        if self._marks:
            marks, self._marks = self._marks, []
            try:
                tpool.execute(self._apply, [], marks)
                self.relay.settled(marks)
            except Exception as exc:  # the relay's timer publishes them again; consumers deduplicate
                log.warning("group commit: %d published event(s) not marked sent (%s)", len(marks),
                            type(exc).__name__)
        if self._session is not None:
            tpool.execute(self._session.close)

    def _wake(self):
        if self._leader is None:
            self._leader = eventlet.spawn(self._lead)

    def _lead(self):
        try:
            while self._waiting or self._marks:
                if not self._waiting:  # marks ride with the next writes, if any come within the delay
                    self._arrival = Event()
                    with eventlet.Timeout(MARK_DELAY_SECONDS, False):
                        self._arrival.wait()
                    self._arrival = None
                elif self.gather_seconds and len(self._waiting) < self.max_size:
                    eventlet.sleep(self.gather_seconds)
                else:
                    eventlet.sleep(0)  # the calls whose workers are ready to ask join this batch
                batch, self._waiting = self._waiting[:self.max_size], self._waiting[self.max_size:]
                marks, self._marks = self._marks, []
                try:
                    tpool.execute(self._apply, batch, marks)
                except Exception as exc:  # the commit itself failed: nothing of this batch was written
                    log.warning("group commit: a batch of %d failed to commit (%s)", len(batch), type(exc).__name__)
                    if marks:  # not marked: the relay's timer publishes them again, and consumers deduplicate
                        self.relay.settled(marks)
                    for call in batch:
                        call.error, call.rows = call.error or exc, []
                        call.done.send()
                    continue
                if marks:
                    self.relay.settled(marks)
                if batch:  # not the marks alone
                    self.batches += 1
                    self.calls += len(batch)
                # Committed: the batch's events are queued for the relay's publisher (ahead of what
                # a caller writes next), then each caller is answered; the events are published
                # meanwhile (they are in the outbox already), while the next batch is applied.
                rows = [row for call in batch for row in call.rows]
                if rows and self.relay is not None:
                    self.relay.publish_committed(rows, self._sent)
                for call in batch:
                    call.done.send()
        finally:
            self._leader = None

    def _apply(self, batch: list[_Call], marks: list[str]):
        """In the writer thread: the batch's calls, each in its savepoint, and the marks, in one transaction."""
        if self._session is None:
            event.listen(self.engine, "after_cursor_execute", self._count)
            event.listen(self.engine, "handle_error", self._count)  # a failed statement needs undoing too
            self._session = WriterSession(self.engine, expire_on_commit=False, autoflush=True)
            self._savepoints = Savepoints.of(self.engine.dialect)
            self._session.on_statement = self._count  # a prepared statement, run on the cursor (prepared.py)
        session = self._session
        try:
            session.batch_connection = session.connection()  # the transaction begins
            if marks:
                outbox = self.kernel.outbox
                session.execute(update(outbox).where(outbox.c.id.in_(marks)).values(sent_at=naive_utcnow()))
            for call in batch:
                call.context.run(self._one, session, call)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.batch_connection = None

    def _statements(self) -> int:
        return self._executed

    def _count(self, *_args):
        self._executed += 1

    def _one(self, session: Session, call: _Call):
        worker_db = call.worker_db
        committer = InBatch(session, self._statements, None if call.orm else self._savepoints)
        worker_db.enter_batch(session, committer)
        try:
            call.answer = call.run()
            committer.done()
            call.rows = committer.rows
        except Exception as exc:
            committer.failed()
            call.error = exc
        finally:
            worker_db.leave_batch()

    def _sent(self, ids: list[str]):
        self._marks += ids
        self._wake()
