"""Each service's own database: engine, the kernel tables (outbox, processed
events), a unit of work, and the nameko DependencyProvider that hands every
worker one session and closes it when the worker ends."""
from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from datetime import timedelta
from typing import NamedTuple

import eventlet.patcher
import psycogreen.eventlet
from nameko.constants import DEFAULT_MAX_WORKERS, MAX_WORKERS_CONFIG_KEY
from nameko.extensions import DependencyProvider
from sqlalchemy import (
    Column, DateTime, Index, MetaData, String, Table, Text, bindparam, cast, create_engine, event, func, insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from services.common import logs
from services.common import config as linli_config
from services.common.clock import naive_utcnow
from services.common.envelope import make_envelope
from services.common.errors import Unavailable
from services.common.events import EventContract
from services.common.groupcommit import GroupCommit
from services.common.outbox import Relay
from services.common.prepared import Prepared
from services.common.schemas import require_id

log = logging.getLogger(__name__)


def new_id() -> str:
    """Ids are opaque to clients: a random hex string, safe with several instances."""
    return uuid.uuid4().hex


def get_by_id(session: Session, model, row_id):
    """The row with this id, or None; an id that is not an id (bad RPC input)
    is InvalidInput rather than a failure in the database."""
    return session.get(model, require_id(row_id, f"{model.__name__.lower()}_id"))


def contains_text(column, text: str):
    """`column` holds `text`, in any case (LIKE's wildcards in `text` are literal).
    On SQLite, lower() folds ASCII only; Chinese has no case to fold."""
    return func.lower(column).contains(text.lower(), autoescape=True)


def json_list_has(column, value: str):
    """A JSON column holding a list of strings has `value` among them: the
    value, quoted as JSON writes it, is in the column's text (SQLite and PostgreSQL alike)."""
    return cast(column, String).contains(json.dumps(value), autoescape=True)


class KernelTables:
    """The outbox and processed-events tables, added to a service's metadata,
    and the contract of the events the outbox takes (`events`: handed in by
    the service, services.contracts.EVENTS; the kernel knows no event)."""

    def __init__(self, metadata: MetaData, events: EventContract):
        self.events = events
        self.outbox = Table(
            "outbox", metadata,
            Column("id", String(32), primary_key=True),          # the envelope id
            Column("source", String(40), nullable=False),
            Column("event_type", String(80), nullable=False),
            Column("envelope", Text, nullable=False),             # JSON
            Column("created_at", DateTime, nullable=False, default=naive_utcnow),
            Column("sent_at", DateTime, nullable=True),
            # The request that caused the event (services/common/logs.py), sent with it as a header.
            Column("request_id", String(64), nullable=True),
            Index("ix_outbox_unsent", "sent_at", "created_at"),
        )
        self.processed_events = Table(
            "processed_events", metadata,
            Column("event_id", String(64), primary_key=True),
            Column("consumer", String(120), primary_key=True),    # "service.handler"
            Column("processed_at", DateTime, nullable=False, default=naive_utcnow),
        )
        # Writes done under an Idempotency-Key (see services/common/idempotency.py).
        self.idempotent_requests = Table(
            "idempotent_requests", metadata,
            Column("operation", String(80), primary_key=True),
            Column("key", String(100), primary_key=True),
            Column("fingerprint", String(64), nullable=False),  # of the call's arguments, caller included
            Column("response", Text, nullable=False),            # JSON: the first call's answer
            Column("created_at", DateTime, nullable=False, default=naive_utcnow),
        )
        # The statements every write runs, built once and prepared (services/common/prepared.py):
        # building, keying and executing a statement through SQLAlchemy costs more CPU than
        # SQLite takes to run it (bench/README.md, issue 20).
        self.add_to_outbox = Prepared(insert(self.outbox))
        self.remember_answer = Prepared(insert(self.idempotent_requests))
        self.earlier_answer = Prepared(
            select(self.idempotent_requests.c.fingerprint, self.idempotent_requests.c.response)
            .where(self.idempotent_requests.c.operation == bindparam("operation"),
                   self.idempotent_requests.c.key == bindparam("key")))


# PostgreSQL's "try again": a transaction ended to break a deadlock, or a serialization conflict.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})


def as_retryable(exc: BaseException) -> BaseException:
    """A database's "busy, try again" as the caller's 503 (Retry-After), not a
    fault of ours: SQLite's write lock held by another process past the
    connection's busy timeout, or PostgreSQL ending this transaction to break a
    deadlock (a batch of gifts to several campaigns, on two instances at once,
    can lock them in opposite orders). Nothing of the call was written; the
    client's retry with its Idempotency-Key writes it once. Any other error as it is."""
    orig = getattr(exc, "orig", None)
    busy = ("locked" in str(orig) if isinstance(orig, sqlite3.OperationalError)
            else getattr(orig, "pgcode", None) in RETRY_SQLSTATES)
    if not busy:
        return exc
    log.warning("the database was busy (%s): the call is answered 503", type(orig).__name__)
    return Unavailable("The database was busy; try again shortly (with the same Idempotency-Key).",
                       {"retry_after": 1})


def make_engine(url: str, pool_size: int = 10, writer: bool = False) -> Engine:
    """A service's engine. Durable means on disk before the answer: SQLite
    commits with synchronous=FULL (WAL), PostgreSQL with synchronous_commit=on,
    whatever the server's default. `writer`: the group commit's own engine
    (services/common/groupcommit.py), one connection used by one OS thread,
    whose transactions on SQLite begin IMMEDIATE (the write lock from the
    start) and whose savepoints are SQLite's own (pysqlite's implicit BEGIN off)."""
    if url.startswith("sqlite"):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            hide_parameters=True,  # values are personal data: keep them out of error messages and logs
            connect_args={"check_same_thread": False, "timeout": 15},
            **({"poolclass": StaticPool} if in_memory or writer else {"pool_size": pool_size, "max_overflow": 0}),
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            if not in_memory:
                # WAL lets readers (the relay, the gateway's lists) run beside a writer.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            if writer:
                dbapi_connection.isolation_level = None  # SQLAlchemy's documented recipe for SAVEPOINT

        if writer:
            @event.listens_for(engine, "begin")
            def _begin_immediate(connection):
                connection.exec_driver_sql("BEGIN IMMEDIATE")

            plain_savepoints(engine)
        return engine
    make_postgres_green()
    options = {"connect_args": {"options": "-c synchronous_commit=on"}}
    if writer:
        return plain_savepoints(
            create_engine(url, poolclass=StaticPool, pool_pre_ping=True, hide_parameters=True, **options))
    # The pool must hold at least one connection per nameko worker.
    return create_engine(url, pool_size=pool_size, max_overflow=5, pool_pre_ping=True, hide_parameters=True,
                         **options)


def plain_savepoints(engine: Engine) -> Engine:
    """The writer's savepoints (one per grouped call) as plain SQL. SQLAlchemy
    builds and compiles a new statement for each SAVEPOINT, RELEASE and
    ROLLBACK TO (each has its own name): 7 % of a donation's CPU in the writer
    (bench/writer_cpu.py). The SQL is what its compiler writes for
    SQLAlchemy's own names (sa_savepoint_N), on SQLite and PostgreSQL alike."""
    dialect = engine.dialect
    dialect.do_savepoint = lambda connection, name: connection.exec_driver_sql(f"SAVEPOINT {name}")
    dialect.do_release_savepoint = lambda connection, name: connection.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
    dialect.do_rollback_to_savepoint = \
        lambda connection, name: connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")
    return engine


def make_postgres_green():
    """psycopg2 waits for PostgreSQL inside C, which would stall every green
    thread of a nameko process; psycogreen makes it wait on eventlet's hub.
    Only where eventlet has patched the process (nameko run, the tests): a
    plain command such as `linli migrate` keeps psycopg2's own blocking wait."""
    if eventlet.patcher.is_monkey_patched("socket"):
        psycogreen.eventlet.patch_psycopg()


class UnitOfWork:
    """One business transaction: domain rows and outbox rows commit together.

    It commits or rolls back, nothing else. `commit()` flushes the work and
    hands it to its *committer*, the seam where "when and how this becomes
    durable" is decided: the default, CommitNow, commits at once and publishes
    what was emitted; @idempotent installs one that holds the work until the
    call's answer is known (services/common/idempotency.py); a later group
    commit (many units of concurrent requests in one transaction, each in a
    savepoint) is another committer on this same seam. When the `with` block
    ends, the session rolls back whatever is not committed, unless a committer
    holds the work open (`held`).
    """

    def __init__(self, session: Session, kernel: KernelTables, source: str, committer: "CommitNow | None" = None):
        self.session = session
        self.kernel = kernel
        self.source = source
        self.committer = committer if committer is not None else CommitNow()
        self.rows: list[OutboxRow] = []  # the outbox rows emitted, in order, as written
        self.held = False             # set by a committer that commits the work later

    def __enter__(self) -> "UnitOfWork":
        return self

    def __exit__(self, *exc_info):
        # Anything not committed by now is abandoned, whether or not an error was raised.
        if not self.held:
            self.committer.rollback(self.session)

    def emit(self, event_type: str, data: dict, version: int = 1) -> dict:
        """Add an event to the outbox, in this transaction. The payload is
        checked against the contract here, not at the consumer."""
        envelope = make_envelope(self.source, event_type, data, version)
        self.kernel.events.validate(envelope, strict=True)
        row = OutboxRow(envelope["id"], self.source, event_type, json.dumps(envelope), logs.current_request_id())
        self.kernel.add_to_outbox.rows(self.session, {
            "id": row.id, "source": row.source, "event_type": row.event_type,
            "envelope": row.envelope, "created_at": naive_utcnow(), "request_id": row.request_id})
        self.rows.append(row)
        return envelope

    def first_delivery(self, envelope_id: str, consumer: str) -> bool:
        """Record that `consumer` handles this event, in this transaction.
        False when it already has: the caller then does nothing."""
        try:
            self.session.execute(insert(self.kernel.processed_events).values(
                event_id=envelope_id, consumer=consumer, processed_at=naive_utcnow()))
            self.session.flush()
        except IntegrityError:
            self.committer.rollback(self.session)
            return False
        return True

    def commit(self):
        """Flush, then hand the work to the committer (see the class doc)."""
        self.session.flush()
        self.committer.commit(self)


class OutboxRow(NamedTuple):
    """An outbox row as its unit of work wrote it."""
    id: str
    source: str
    event_type: str
    envelope: str  # JSON, as in the outbox and on the wire
    request_id: str | None


class CommitNow:
    """The default committer: the transaction commits at once, then what it
    emitted is published (what fails to publish stays in the outbox for the
    relay's timer). Without a relay, everything is left to the relay.

    A committer has three verbs: `commit(uow)` (the unit's `uow.commit()`),
    `finish(session, units)` (commit these held units, as @idempotent does once
    it has written its key) and `rollback(session)` (abandon what is not
    committed: here the transaction; in a group commit only the request's own
    savepoint, services/common/groupcommit.py)."""

    def __init__(self, relay=None):
        self.relay = relay

    def commit(self, uow: UnitOfWork):
        self.finish(uow.session, [uow])

    def finish(self, session: Session, units: list[UnitOfWork]):
        session.commit()
        self.publish([row.id for uow in units for row in uow.rows])

    def rollback(self, session: Session):
        session.rollback()

    def publish(self, envelope_ids: list[str]):
        """After a commit: publish these outbox rows now (another committer's commit too)."""
        if envelope_ids and self.relay is not None:
            self.relay.publish_now(envelope_ids)


class WorkerDatabase:
    """What a worker sees: its own session, made on first use."""

    def __init__(self, provider: "Database"):
        self._provider = provider
        self._session: Session | None = None
        self._batch_session: Session | None = None  # inside a group commit's batch (services/common/groupcommit.py)
        # Who commits this worker's units of work: the hook @idempotent sets for the call it wraps.
        self.committer = CommitNow(provider.relay)

    @property
    def session(self) -> Session:
        if self._batch_session is not None:
            return self._batch_session
        if self._session is None:
            self._session = self._provider.sessionmaker()
        return self._session

    def in_group(self, run, orm: bool = True):
        """`run()` in the process's group commit (@grouped); its answer once committed.
        A grouped call made inside a batch is part of the call that made it."""
        if self._batch_session is not None:
            return run()
        return self._provider.group().run(self, run, orm)

    def in_group_many(self, runs: list, orm: bool = True) -> list[tuple]:
        """(request id, run) each, in the group commit: (answer, error) each (`call_many`)."""
        return self._provider.group().run_many(self, runs, orm)

    def enter_batch(self, session: Session, committer):
        """In the writer thread: this worker's call runs in the batch's session."""
        self._batch_session, self._outside = session, self.committer
        self.committer = committer

    def leave_batch(self):
        self._batch_session, self.committer = None, self._outside

    @property
    def kernel(self) -> KernelTables:
        return self._provider.kernel

    @property
    def engine(self):
        """For work a worker hands to green threads of its own, each with its own session."""
        return self._provider.engine

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session, self._provider.kernel, self._provider.container.service_name, self.committer)

    def relay_pending(self) -> int:
        return self._provider.relay.publish_pending()

    def forget_idempotent_requests(self) -> int:
        """Drop Idempotency-Keys (and their answers) older than IDEMPOTENCY_KEEP_HOURS."""
        hours = float(linli_config.setting(self._provider.container.config, "IDEMPOTENCY_KEEP_HOURS"))
        table = self.kernel.idempotent_requests
        with self._provider.engine.begin() as connection:
            return connection.execute(table.delete().where(
                table.c.created_at < naive_utcnow() - timedelta(hours=hours))).rowcount

    def close(self):
        if self._session is not None:
            self._session.close()


class Database(DependencyProvider):
    """The service's database. Config: `DB_URL`; pool sized to `max_workers`
    (+ 2), or `DB_POOL_SIZE` where the process states one (the gateway)."""

    def __init__(self, kernel: KernelTables):
        self.kernel = kernel
        self.engine = None
        self.sessionmaker = None
        self.relay = None
        self._workers: dict = {}

    def setup(self):
        config = self.container.config
        max_workers = config.get(MAX_WORKERS_CONFIG_KEY, DEFAULT_MAX_WORKERS)  # nameko's setting and its default
        pool_size = int(linli_config.setting(config, "DB_POOL_SIZE")) or max_workers + 2
        self.engine = make_engine(config["DB_URL"], pool_size=pool_size)
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)
        self.relay = Relay(
            self.engine, self.kernel, self.container.service_name, config,
        )
        self._group = None

    def group(self) -> GroupCommit:
        """The process's group commit, with a writer engine of its own, made on first use."""
        if self._group is None:
            config = self.container.config
            self._group = GroupCommit(
                make_engine(config["DB_URL"], pool_size=1, writer=True), self.kernel, self.relay,
                max_size=int(linli_config.setting(config, "GROUP_COMMIT_MAX")),
                gather_seconds=float(linli_config.setting(config, "GROUP_COMMIT_GATHER_MS")) / 1000)
        return self._group

    def stop(self):
        if self._group is not None:
            self._group.stop()
            self._group.engine.dispose()
        if self.engine is not None:
            self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx):
        worker_db = WorkerDatabase(self)
        self._workers[worker_ctx] = worker_db
        return worker_db

    def worker_teardown(self, worker_ctx):
        worker_db = self._workers.pop(worker_ctx, None)
        if worker_db is not None:
            worker_db.close()
