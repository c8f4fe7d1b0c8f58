"""Group commit (services/common/groupcommit.py) with the real donations
service's record_donation, on a real database file (or PostgreSQL under
`make test-postgres`): concurrent writes share one commit, one request's
refusal or failure touches only that request, every answer comes after its
commit, no database call runs on the eventlet hub, and the outbox rows are
marked sent inside a later batch's transaction, with no commit of their own."""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import date, datetime
from types import SimpleNamespace

import eventlet
import pytest
from eventlet import patcher
from nameko.exceptions import deserialize
from nameko.rpc import Rpc
from nameko.testing.services import worker_factory
from sqlalchemy import event, make_url, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.sql.expression import ReleaseSavepointClause, RollbackToSavepointClause, SavepointClause

from services.common import config as linli_config
from services.common import migrations
from services.common.db import Database, as_retryable
from services.common.errors import Conflict, InvalidInput, NotFound, Unavailable
from services.common.groupcommit import InBatch, grouped
from services.donations.models import Campaign, Category, Donation, kernel
from services.common.service import VouchedRpc
from services.gateway.http import error_response
from services.donations.service import _TAKE_RECEIPT_NO, DonationsService
from tests import databases
from tests.unit.test_donations_service import campaign_payload

pytestmark = pytest.mark.database

ADMIN = {"id": "admin-1", "roles": ["admin"]}
CASH = {"kind": "cash", "amount_fen": 500}
real_sleep = patcher.original("time").sleep


class PublishedAtOnce:
    """The relay, without a broker: every row is 'confirmed' at once."""

    def __init__(self):
        self.published: list[str] = []
        self.in_flight: set[str] = set()

    def publish_committed(self, rows, on_sent):
        self.published += [row.id for row in rows]
        self.in_flight |= {row.id for row in rows}
        on_sent([row.id for row in rows])

    def settled(self, ids):
        self.in_flight -= set(ids)

    def publish_now(self, ids):  # a write outside the group (a new campaign): left to the timer
        return 0


@pytest.fixture
def process(tmp_path):
    """One donations process's Database provider, with its group commit."""
    yield from grouped_process(tmp_path, "donations", kernel, lambda _provider: PublishedAtOnce())


def grouped_process(tmp_path, service: str, service_kernel, relay):
    """A service process's Database provider on a migrated database, with its group commit, the
    relay `relay(provider)` makes, and `commits`: when the writer committed."""
    url = databases.database_url(tmp_path, service)
    migrations.upgrade(service, url)
    config = {**linli_config.load(service), "DB_URL": url, "GROUP_COMMIT_GATHER_MS": 5}
    provider = Database(service_kernel)
    provider.container = SimpleNamespace(config=config, service_name=service)
    provider.setup()
    provider.relay = relay(provider)
    provider.commits = []
    event.listen(provider.group().engine, "commit", lambda _connection: provider.commits.append(time.monotonic()))
    yield provider
    for worker_ctx in list(provider._workers):  # each worker's session, as nameko's teardown would
        provider.worker_teardown(worker_ctx)
    provider.stop()


def worker(process, cls=DonationsService):
    return worker_factory(cls, db=process.get_dependency(object()), config=process.container.config)


def new_campaign(process) -> str:
    return worker(process).create_campaign(campaign_payload(), ADMIN)["id"]


def outcome(call, expected=Exception):
    """`call()`'s answer, or the `expected` error it raised."""
    try:
        return call()
    except expected as exc:
        return exc


def donate_at_once(process, calls):
    """Each call (campaign id, payload, key) from a worker of its own, all at once: (answer or error) each."""
    def one(call):
        campaign_id, payload, key = call
        return outcome(lambda: worker(process).record_donation(campaign_id, payload, ADMIN, idempotency_key=key))
    return list(eventlet.GreenPool().imap(one, calls))


def stored(process) -> list:
    with process.engine.connect() as connection:
        return connection.execute(select(Donation.receipt_no, Donation.amount_fen).order_by(Donation.seq)).all()


def test_concurrent_writes_share_commits_and_receipts_stay_gap_free(process):
    campaign_id = new_campaign(process)
    group = process.group()
    answers = donate_at_once(process, [(campaign_id, {**CASH, "amount_fen": 100 + n}, uuid.uuid4().hex)
                                       for n in range(40)])
    assert all(isinstance(answer, dict) for answer in answers), answers
    receipts = sorted(int(answer["receipt_no"].rsplit("-", 1)[1]) for answer in answers)
    assert receipts == list(range(1, 41))
    assert len(stored(process)) == 40
    print(f"\n40 writes in {group.batches} batches")
    assert group.calls == 40 and group.batches < 10
    # One commit per batch (and the marks of the last one's events, alone at the end).
    eventlet.sleep(0.5)
    assert len(process.commits) <= group.batches + 1


class FailsAfterWriting(DonationsService):
    @grouped
    def donate_then_fail(self, campaign_id):
        DonationsService.record_donation(self, campaign_id, CASH, ADMIN)  # committed its unit of work
        raise RuntimeError("the disk is full")


def test_one_refused_or_failing_request_fails_alone_and_leaves_no_trace(process):
    campaign_id = new_campaign(process)

    pool = eventlet.GreenPool()
    failing = pool.spawn(outcome, lambda: worker(process, FailsAfterWriting).donate_then_fail(campaign_id),
                         RuntimeError)  # first in the batch: it takes receipt 1, then is undone
    answers = donate_at_once(process, [
        (campaign_id, CASH, uuid.uuid4().hex),
        (uuid.uuid4().hex, CASH, uuid.uuid4().hex),                       # no such campaign
        (campaign_id, {"kind": "cash", "amount_fen": -5}, uuid.uuid4().hex),  # bad input
        (campaign_id, CASH, uuid.uuid4().hex),
    ])
    assert isinstance(failing.wait(), RuntimeError)
    assert isinstance(answers[0], dict) and isinstance(answers[3], dict)
    assert isinstance(answers[1], NotFound)
    assert isinstance(answers[2], InvalidInput)
    assert process.group().batches == 1
    assert [row.amount_fen for row in stored(process)] == [500, 500]
    assert sorted(answer["receipt_no"][-4:] for answer in (answers[0], answers[3])) == ["0001", "0002"]
    with process.engine.connect() as connection:
        assert connection.execute(select(Campaign.cash_fen)).scalar() == 1000


def test_a_gift_to_a_drive_not_yet_begun_gives_back_its_number_and_fails_alone(process):
    # The receipt number is taken first and the dates checked on the row it returns:
    # refused, the gift's savepoint takes the number and the totals back.
    open_id = new_campaign(process)
    later = worker(process).create_campaign(campaign_payload(starts=2, ends=10), ADMIN)
    answers = donate_at_once(process, [(later["id"], CASH, uuid.uuid4().hex), (open_id, CASH, uuid.uuid4().hex)])
    assert isinstance(answers[0], Conflict) and later["starts_on"] in str(answers[0])
    assert answers[1]["receipt_no"].endswith("0001")
    assert process.group().batches == 1
    with process.engine.connect() as connection:
        totals = dict(connection.execute(select(Campaign.id, Campaign.last_receipt_seq + Campaign.cash_fen)).all())
    assert totals == {later["id"]: 0, open_id: 1 + 500}


@pytest.mark.skipif(databases.on_postgres(), reason="SQLite's trace callback shows the SQL the driver runs")
def test_each_call_runs_in_a_savepoint_whose_sql_is_sqlalchemys_kept_or_rolled_back(process):
    # The call's savepoint runs on the cursor (groupcommit.InBatch), in the text SQLAlchemy writes for it.
    engine = process.group().engine
    seen = []
    event.listen(engine, "connect", lambda dbapi_connection, _record: dbapi_connection.set_trace_callback(seen.append))
    campaign_id = new_campaign(process)
    answers = donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex),
                                       (uuid.uuid4().hex, CASH, uuid.uuid4().hex)])  # a gift kept, one refused
    assert isinstance(answers[0], dict) and isinstance(answers[1], NotFound)
    clauses = {"SAVEPOINT": SavepointClause, "RELEASE": ReleaseSavepointClause, "ROLLBACK": RollbackToSavepointClause}
    savepoints = [statement for statement in seen if "SAVEPOINT" in statement]
    kinds = [statement.split()[0] for statement in savepoints]
    assert kinds[:2] == ["SAVEPOINT", "RELEASE"]  # the gift kept
    assert kinds[2] == "SAVEPOINT" and kinds[-1] == "RELEASE" and set(kinds[3:-1]) == {"ROLLBACK"}  # the refused
    for statement in savepoints:
        expected = clauses[statement.split()[0]](statement.split()[-1]).compile(dialect=engine.dialect)
        assert statement == str(expected)


def test_the_same_key_twice_in_one_batch_counts_once_and_answers_alike(process):
    campaign_id = new_campaign(process)
    key = uuid.uuid4().hex
    first, second = donate_at_once(process, [(campaign_id, CASH, key), (campaign_id, CASH, key)])
    assert first == second and len(stored(process)) == 1


def test_every_answer_comes_after_its_commit_and_the_hub_runs_meanwhile(process):
    """The batch runs in a real thread: a call that holds it 0.3 s (a slow disk)
    blocks no green thread of the process, and no one is answered before the commit."""
    campaign_id = new_campaign(process)

    class SlowDisk(DonationsService):
        @grouped
        def slow_write(self):
            real_sleep(0.3)
            return "written"

    ticks = []

    def tick():
        for _ in range(20):
            ticks.append(time.monotonic())
            eventlet.sleep(0.01)

    ticker = eventlet.spawn(tick)
    answered = {}

    def donate():
        worker(process).record_donation(campaign_id, CASH, ADMIN, idempotency_key=uuid.uuid4().hex)
        answered["donation"] = time.monotonic()

    pool = eventlet.GreenPool()
    pool.spawn(lambda: worker(process, SlowDisk).slow_write())
    pool.spawn(donate)
    pool.waitall()
    ticker.wait()
    assert ticks[-1] - ticks[0] < 0.6  # 20 ticks of 10 ms went on during the 0.3 s the writer was busy
    assert process.commits and min(process.commits) < answered["donation"]


def test_published_rows_are_marked_sent_by_a_later_transaction_not_one_each(process):
    campaign_id = new_campaign(process)
    donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex) for _ in range(10)])
    group, relay = process.group(), process.relay
    assert len(relay.published) == 10
    with process.engine.connect() as connection:
        outbox = kernel.outbox
        before = connection.execute(select(outbox.c.sent_at).where(outbox.c.id.in_(relay.published))).all()
    eventlet.sleep(0.5)  # no write follows: the marks go alone after MARK_DELAY_SECONDS
    with process.engine.connect() as connection:
        after = connection.execute(select(outbox.c.sent_at).where(outbox.c.id.in_(relay.published))).all()
    assert any(row.sent_at is None for row in before)
    assert all(row.sent_at is not None for row in after)
    assert relay.in_flight == set()
    assert len(process.commits) == group.batches + 1



def test_a_process_stopping_while_its_writer_marks_rows_sent_waits_for_it_and_loses_no_mark(process):
    # nameko stops the Database once the workers have ended, but the writer may still be in the
    # transaction that marks the last batch's events sent: closing its session then broke that commit.
    campaign_id = new_campaign(process)
    donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex) for _ in range(3)])
    slow = []
    event.listen(process.group().engine, "commit", lambda _connection: slow and real_sleep(0.5))
    slow.append(True)  # the marks' commit, after MARK_DELAY_SECONDS, takes half a second
    eventlet.sleep(0.3)  # the writer is in it now
    process.stop()
    published = process.relay.published
    assert len(published) == 3
    with process.engine.connect() as connection:
        outbox = kernel.outbox
        marked = connection.execute(select(outbox.c.sent_at).where(outbox.c.id.in_(published))).all()
    assert all(row.sent_at is not None for row in marked)
    assert process.relay.in_flight == set()

class KeepsOneUnitAbandonsAnother(DonationsService):
    @grouped
    def two_units(self, campaign_id):
        DonationsService.record_donation(self, campaign_id, CASH, ADMIN)  # its unit committed
        with self.db.unit_of_work() as uow:  # another, left without a commit: abandoned
            uow.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(name="renamed"))
        return "kept the first"


def test_a_call_that_would_keep_one_unit_and_undo_a_later_one_fails_whole(process):
    """A call runs in one savepoint (not one per unit): undoing a later unit
    while keeping an earlier one cannot be done alone, so the whole call fails
    and nothing of it is written, rather than keeping what should be undone."""
    campaign_id = new_campaign(process)
    with pytest.raises(InBatch.HalfUndone):
        worker(process, KeepsOneUnitAbandonsAnother).two_units(campaign_id)
    assert stored(process) == []
    with process.engine.connect() as connection:
        assert connection.execute(select(Campaign.name)).scalar() != "renamed"
    answers = donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex)])
    assert answers[0]["receipt_no"].endswith("0001")  # the undone call took no receipt number


def test_a_batch_whose_commit_fails_fails_every_call_in_it_and_writes_nothing(process):
    campaign_id = new_campaign(process)
    donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex)])  # the writer's session exists
    group = process.group()
    real_commit = group._session.commit
    failures = []

    def disk_full():
        group._session.commit = real_commit  # once
        failures.append(True)
        raise OSError("the disk is full")

    group._session.commit = disk_full
    answers = donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex) for _ in range(3)])
    assert failures == [True]
    assert all(isinstance(answer, OSError) for answer in answers), answers
    assert len(stored(process)) == 1
    after = donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex)])
    assert after[0]["receipt_no"].endswith("0002")  # the failed batch took no receipt number


@pytest.mark.skipif(databases.on_postgres(),
                    reason="SQLite's write lock (PostgreSQL's 'try again': the test below)")
def test_gifts_that_meet_another_process_holding_the_database_are_answered_503_and_written_by_their_retry(process):
    """Another process holds SQLite's write lock past the busy timeout: each
    gift of the batch comes back from call_many as a 503 with Retry-After (not
    a 500), nothing is written, and the client's retry with its key writes it once."""
    campaign_id = new_campaign(process)
    group = process.group()
    event.listen(group.engine, "connect", lambda connection, _record: connection.execute("PRAGMA busy_timeout = 200"))
    holder = sqlite3.connect(make_url(process.container.config["DB_URL"]).database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write, in progress
    keys = [uuid.uuid4().hex for _ in range(3)]
    calls = [{"args": [campaign_id, CASH, ADMIN], "kwargs": {"idempotency_key": key}, "request_id": None}
             for key in keys]
    try:
        answers = worker(process).call_many(method="record_donation", calls=calls)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    # What the gateway answers each client (services/gateway/http.py).
    responses = [error_response(deserialize(answer["error"])) for answer in answers]
    assert [(response.status_code, response.headers.get("Retry-After")) for response in responses] == [
        (503, "1")] * 3, answers
    assert stored(process) == []
    retried = worker(process).call_many(method="record_donation", calls=calls)
    assert sorted(answer["answer"]["receipt_no"][-4:] for answer in retried) == ["0001", "0002", "0003"]


def test_errors_a_database_says_try_again_become_503_and_others_stay_as_they_are():
    class PostgresError(Exception):
        def __init__(self, pgcode):
            self.pgcode = pgcode

    def wrapped(orig):
        return OperationalError("UPDATE campaigns ...", {}, orig)

    for busy in (wrapped(sqlite3.OperationalError("database is locked")), wrapped(PostgresError("40P01")),
                 wrapped(PostgresError("40001"))):
        assert isinstance(as_retryable(busy), Unavailable)
    for other in (wrapped(sqlite3.OperationalError("disk I/O error")), wrapped(PostgresError("23505")),
                  RuntimeError("a bug"), NotFound("No such campaign.")):
        assert as_retryable(other) is other


def test_every_rpc_answers_a_busy_database_as_503(monkeypatch):
    """VouchedRpc (every RPC entrypoint): what a worker raised goes to nameko's reply as a 503."""
    replies = []
    monkeypatch.setattr(Rpc, "handle_result", lambda _self, _message, _ctx, _result, exc_info: replies.append(exc_info))
    busy = OperationalError("UPDATE campaigns ...", {}, sqlite3.OperationalError("database is locked"))
    entrypoint = object.__new__(VouchedRpc)
    entrypoint.handle_result(None, None, None, (type(busy), busy, None))
    entrypoint.handle_result(None, None, None, (RuntimeError, RuntimeError("a bug"), None))
    entrypoint.handle_result(None, None, {"ok": True}, None)
    assert isinstance(replies[0][1], Unavailable) and replies[0][0] is Unavailable
    assert isinstance(replies[1][1], RuntimeError)
    assert replies[2] is None


class PreparedStatements(DonationsService):
    """The statements a gift runs on the writer's cursor (services/common/prepared.py), run
    in a batch, with what the same statements give through a worker's own session."""

    @grouped
    def take_a_number(self, campaign_id, key):
        return {"receipt": _TAKE_RECEIPT_NO.rows(self.db.session, {"campaign_id": campaign_id, "amount_fen": 300}),
                "answer": kernel.earlier_answer.rows(self.db.session, {"operation": "record_donation", "key": key})}

    @grouped
    def the_same_row_twice(self, row):
        kernel.add_to_outbox.rows(self.db.session, row)
        kernel.add_to_outbox.rows(self.db.session, row)


def test_a_prepared_statement_gives_in_a_batch_what_it_gives_through_a_session(process):
    campaign_id = new_campaign(process)
    key = uuid.uuid4().hex
    donate_at_once(process, [(campaign_id, CASH, key)])
    in_batch = worker(process, PreparedStatements).take_a_number(campaign_id, key)
    plain = worker(process, PreparedStatements)
    session = plain.db.session
    outside = {"receipt": _TAKE_RECEIPT_NO.rows(session, {"campaign_id": campaign_id, "amount_fen": 300}),
               "answer": kernel.earlier_answer.rows(session, {"operation": "record_donation", "key": key})}
    session.rollback()
    assert process.group().batches >= 2  # the first ran in the writer's batch, on its cursor
    (seq, cash_fen, count, _goal, code, starts_on, ends_on), = in_batch["receipt"]
    assert (seq, cash_fen, count) == (2, 800, 2)  # the gift's, and this one's
    # The call committed no unit of work, so its savepoint was rolled back: the writer counted
    # the statement run on its cursor as done since the call began (InBatch), and the number is free again.
    assert [tuple(row) for row in outside["receipt"]] == [(2, 800, 2, _goal, code, starts_on, ends_on)]
    assert isinstance(starts_on, date) and isinstance(ends_on, date)  # the column's type, as SQLAlchemy gives it
    assert [tuple(row) for row in in_batch["answer"]] == [tuple(row) for row in outside["answer"]]
    assert json.loads(in_batch["answer"][0][1])["receipt_no"].endswith("0001")


def test_a_failing_prepared_statement_raises_sqlalchemys_error_without_the_values_and_undoes_its_call(process):
    campaign_id = new_campaign(process)
    row = {"id": uuid.uuid4().hex, "source": "donations", "event_type": "donation_received",
           "envelope": '{"donor_name": "王秀英"}', "created_at": datetime(2026, 12, 5, 8, 0), "request_id": None}

    pool = eventlet.GreenPool()
    failed = pool.spawn(outcome, lambda: worker(process, PreparedStatements).the_same_row_twice(row), IntegrityError)
    answers = donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex)])
    error = failed.wait()
    assert isinstance(error, IntegrityError), error
    assert "王秀英" not in str(error) and "hidden" in str(error)  # as the engine's hide_parameters
    assert answers[0]["receipt_no"].endswith("0001")  # the batch's other call is kept
    with process.engine.connect() as connection:
        assert connection.execute(select(kernel.outbox.c.id).where(kernel.outbox.c.id == row["id"])).all() == []


def test_a_statement_that_needs_a_value_computed_at_execution_is_not_prepared(process):
    campaign_id = new_campaign(process)
    without_its_time = {"id": uuid.uuid4().hex, "source": "donations", "event_type": "donation_received",
                        "envelope": "{}", "request_id": None}  # created_at: the column's default, not preparable

    class NoTime(DonationsService):
        @grouped
        def add(self):
            kernel.add_to_outbox.rows(self.db.session, without_its_time)

    with pytest.raises(TypeError, match="not preparable"):
        worker(process, NoTime).add()
    assert donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex)])[0]["receipt_no"].endswith("0001")


class AddsACategory(DonationsService):
    """Calls that add a goods category with the ORM: declared as such (@grouped), or not."""

    @grouped
    def add_category(self, code, then_fail=False):
        with self.db.unit_of_work() as uow:
            uow.session.add(Category(code=code, label_zh="新", label_en="New", position=99))
            uow.commit()
        if then_fail:
            raise RuntimeError("the disk is full")
        return code

    @grouped(orm=False)
    def add_category_as_core(self, code):
        return AddsACategory.add_category.grouped(self, code)


def test_a_call_that_adds_orm_objects_and_fails_is_undone_with_them_and_the_code_is_free_again(process):
    """The session's nested transaction undoes the call's objects with their rows."""
    def add(code, **options):
        return outcome(lambda: worker(process, AddsACategory).add_category(code, **options), RuntimeError)

    pool = eventlet.GreenPool()
    failing, kept = pool.spawn(add, "test-tents", then_fail=True), pool.spawn(add, "test-stoves")
    assert isinstance(failing.wait(), RuntimeError) and kept.wait() == "test-stoves"
    assert "test-tents" not in stored_categories(process)
    assert add("test-tents") == "test-tents"  # free again, in the writer's session too
    assert {"test-tents", "test-stoves"} <= set(stored_categories(process))


def test_a_call_declared_to_change_no_orm_object_that_adds_one_fails_alone_before_its_flush(process):
    """A @grouped(orm=False) call has its savepoint on the cursor, and no nested transaction
    to keep a failed flush to it: adding an ORM object is refused before the flush, and the
    batch's other calls are kept."""
    campaign_id = new_campaign(process)

    pool = eventlet.GreenPool()
    refused = pool.spawn(outcome, lambda: worker(process, AddsACategory).add_category_as_core("test-lamps"), TypeError)
    answers = donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex)])
    assert "orm=False" in str(refused.wait())
    assert answers[0]["receipt_no"].endswith("0001")
    assert "test-lamps" not in stored_categories(process)
    assert donate_at_once(process, [(campaign_id, CASH, uuid.uuid4().hex)])[0]["receipt_no"].endswith("0002")


def stored_categories(process) -> list:
    with process.engine.connect() as connection:
        return connection.execute(select(Category.code)).scalars().all()
