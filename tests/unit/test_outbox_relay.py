"""The outbox relay without a broker: the timer's sweep publishes what a crash
left behind, oldest first, and marks it sent; just-committed rows of several
workers at once, and a group commit's, go out in batches, each row once, in the
order committed."""
import json
from datetime import timedelta

import eventlet
from sqlalchemy import insert, select

from services.common.clock import naive_utcnow
from services.common.db import make_engine
from services.common.outbox import Relay
from services.donations.models import Base, kernel


class RecordingPublisher:
    def __init__(self):
        self.published: list[str] = []
        self.headers: dict[str, dict] = {}
        self.calls = 0

    def publish_all(self, messages):
        eventlet.sleep(0.01)  # a broker round trip: others commit meanwhile
        for body, _exchange, _routing_key, headers in messages:
            event_id = json.loads(body)["id"]
            self.published.append(event_id)
            self.headers[event_id] = headers


def relay_with_rows(count: int, age_seconds: float, request_ids: dict | None = None):
    engine = make_engine("sqlite://")
    Base.metadata.create_all(engine)
    relay = Relay(engine, kernel, "donations", {"AMQP_URI": "memory://", "OUTBOX_GRACE_SECONDS": 1})
    relay.publisher = RecordingPublisher()
    relay._topology_declared = True
    ids = [f"event-{n:03d}" for n in range(count)]
    with engine.begin() as connection:
        for n, row_id in enumerate(ids):
            connection.execute(insert(kernel.outbox).values(
                id=row_id, source="donations", event_type="donation_received",
                envelope=json.dumps({"id": row_id}), request_id=(request_ids or {}).get(row_id),
                created_at=naive_utcnow() - timedelta(seconds=age_seconds) + timedelta(milliseconds=n)))
    return relay, ids


def unsent(relay) -> list[str]:
    with relay.engine.connect() as connection:
        return [row.id for row in connection.execute(
            select(kernel.outbox.c.id).where(kernel.outbox.c.sent_at.is_(None)))]


def test_the_timer_publishes_what_was_left_behind_oldest_first_and_marks_it_sent():
    relay, ids = relay_with_rows(5, age_seconds=60)
    assert relay.publish_pending() == 5
    assert relay.publisher.published == ids
    assert unsent(relay) == []
    assert relay.publish_pending() == 0  # nothing twice


def test_the_timer_leaves_rows_within_their_grace_to_the_worker_that_wrote_them():
    relay, _ids = relay_with_rows(3, age_seconds=0)
    assert relay.publish_pending() == 0
    assert len(unsent(relay)) == 3


def test_rows_committed_at_once_by_several_workers_go_out_in_batches_each_once_in_order():
    relay, ids = relay_with_rows(12, age_seconds=0)
    pool = eventlet.GreenPool()
    answers = list(pool.imap(lambda pair: relay.publish_now(list(pair)), zip(ids[::2], ids[1::2], strict=True)))
    assert answers == [2] * 6
    assert sorted(relay.publisher.published) == ids and len(set(relay.publisher.published)) == 12
    assert relay.publisher.published == ids  # in the order the workers committed
    assert unsent(relay) == []
    assert relay._batcher is None and relay._waiting == []



def test_a_group_commits_rows_go_out_in_the_order_committed_among_the_workers_rows():
    # A case opened in a batch, then a visit logged by its caller: the case's event first,
    # though the visit's worker asks to publish while the batch's rows still wait their turn.
    relay, ids = relay_with_rows(6, age_seconds=0)
    rows = {row.id: row for row in relay.engine.connect().execute(select(kernel.outbox)).all()}
    marked = []
    answers = []
    pool = eventlet.GreenPool()

    def worker_commits(these):
        pool.spawn(lambda: answers.append(relay.publish_now(these)))
        eventlet.sleep(0)  # the worker runs up to its wait for the publisher

    worker_commits(ids[0:1])  # being published while the rest commit
    relay.publish_committed([rows[ids[1]], rows[ids[2]]], marked.extend)  # a batch, before its callers' answers
    worker_commits(ids[3:4])  # a caller's next write
    relay.publish_committed([rows[ids[4]]], marked.extend)
    worker_commits(ids[5:6])
    pool.waitall()
    while relay._batcher is not None:
        eventlet.sleep(0.01)
    assert relay.publisher.published == ids
    assert answers == [1, 1, 1]
    assert marked == [ids[1], ids[2], ids[4]]  # the batch's marks ride its next transaction
    assert unsent(relay) == [ids[1], ids[2], ids[4]]

class BrokerAway(RecordingPublisher):
    def publish_all(self, messages):
        raise ConnectionRefusedError("broker away")


def gauges() -> tuple[float, float]:
    from prometheus_client import REGISTRY
    return (REGISTRY.get_sample_value("linli_outbox_backlog", {"service": "donations"}),
            REGISTRY.get_sample_value("linli_outbox_oldest_unsent_seconds", {"service": "donations"}))


def test_the_timer_measures_the_backlog_and_its_oldest_row_and_both_fall_to_zero_once_published():
    relay, _ids = relay_with_rows(4, age_seconds=90)
    relay.publisher = BrokerAway()
    assert relay.publish_pending() == 0  # the broker is away: all four wait
    backlog, oldest = gauges()
    assert backlog == 4
    assert 90 <= oldest < 100
    relay.publisher = RecordingPublisher()
    assert relay.publish_pending() == 4
    assert gauges() == (0, 0)


def test_rows_within_their_grace_count_in_the_backlog_but_are_young():
    relay, _ids = relay_with_rows(2, age_seconds=0)
    assert relay.publish_pending() == 0
    backlog, oldest = gauges()
    assert backlog == 2 and oldest < 1


def test_an_event_goes_out_with_the_request_id_of_its_row_as_nameko_sends_worker_context():
    relay, ids = relay_with_rows(2, age_seconds=60, request_ids={"event-000": "req-0123456789"})
    assert relay.publish_pending() == 2
    # nameko's consumers read `nameko.<key>` headers into the worker's context data.
    assert relay.publisher.headers == {"event-000": {"nameko.request_id": "req-0123456789"}, "event-001": {}}
