"""A backlog of 100,000 messages for one consumer, published while it is
stopped: member_registered events for notifications (which keeps a replica of
who the admins are), 1% of them sent twice as a broker would redeliver them.
Started, the service drains them all, each event's effect happens once, and
its memory stays bounded (nameko's prefetch is max_workers, so at most that
many messages are held unacknowledged). Drain time and peak RSS go to
var/fault-backlog.json."""
import os
import random
import threading
import time

import pytest
from kombu import Connection, Producer

from services.common import events
from services.common.envelope import make_envelope
from services.contracts import SUBSCRIPTIONS, gateway
from services.notifications.service import NotificationsService
from tests.conftest import wait_for
from tests.e2e.conftest import query
from tests.fault.conftest import fault_stack, rss_kib, save_report

pytestmark = pytest.mark.fault

MESSAGES = int(os.environ.get("LINLI_FAULT_BACKLOG", 100_000))
DUPLICATES = MESSAGES // 100
DRAIN_LIMIT_SECONDS = float(os.environ.get("LINLI_FAULT_BACKLOG_SECONDS", 1200))
# The consumer's resident memory while it drains: under a ceiling, and growing by less
# than this after the first tenth of the drain (a consumer holding the backlog, or
# leaking per message, would break both).
RSS_CEILING_KIB = 300 * 1024
RSS_GROWTH_BOUND_KIB = 40 * 1024
SUBSCRIPTION = next(s for s in SUBSCRIPTIONS if s.consumer == "notifications" and s.handler == "on_member_registered")


def publish_backlog(amqp_uri: str, envelopes: list[dict]) -> float:
    """Publish as the relay does (the producer's exchange, the event's routing key), persistent."""
    started = time.monotonic()
    exchange = events.get_event_exchange("gateway", {})
    with Connection(amqp_uri) as connection:
        producer = Producer(connection.channel(), exchange=exchange, serializer="json")
        for envelope in envelopes:
            producer.publish(envelope, routing_key=gateway.MEMBER_REGISTERED, delivery_mode=2)
    return time.monotonic() - started


def test_a_backlog_of_100000_messages_drains_once_each_in_bounded_memory(node, tmp_path_factory):
    assert NotificationsService.name == SUBSCRIPTION.consumer
    queue = events.queue_name(SUBSCRIPTION)
    var = tmp_path_factory.mktemp("fault-backlog") / "var"
    with fault_stack(node, var, start=False, LINLI_LOG_LEVEL="WARNING") as stack:
        # `linli admin create` published one member_registered already: the backlog comes after it.
        distinct = [make_envelope("gateway", gateway.MEMBER_REGISTERED, {
            "member_id": f"backlog{n:06d}", "roles": ["admin"] if n % 1000 == 0 else ["member"],
            "party_member": n % 3 == 0, "compound": None}) for n in range(MESSAGES - DUPLICATES)]
        backlog = distinct + random.sample(distinct, DUPLICATES)
        random.shuffle(backlog)
        publish_seconds = publish_backlog(node.amqp_uri, backlog)
        # list_queues' counts of a quorum queue are sampled every few seconds: read 87,228 of
        # 100,001 once right after the publishes. Every message arrives, in a little while.
        wait_for(lambda: node.queues()[queue]["messages"] == MESSAGES + 1, timeout=30, interval=1,
                 what=f"{MESSAGES + 1} messages in {queue}")

        process = stack.start_process("notifications")
        samples, done = [], threading.Event()

        def sample():
            while not done.is_set() and process.poll() is None:
                samples.append((time.monotonic(), rss_kib(process.pid)))
                done.wait(0.2)
        sampler = threading.Thread(target=sample)
        started = time.monotonic()
        sampler.start()
        max_unacked, drained_at = 0, None
        while time.monotonic() - started < DRAIN_LIMIT_SECONDS:
            assert process.poll() is None, stack.log_tail("notifications")
            state = node.queues()[queue]
            max_unacked = max(max_unacked, state["messages_unacknowledged"])
            if state["messages"] == 0:
                drained_at = time.monotonic()
                break
            time.sleep(1)
        done.set()
        sampler.join(timeout=5)
        assert drained_at is not None, f"not drained in {DRAIN_LIMIT_SECONDS}s: {node.queues()[queue]}"
        drain_seconds = drained_at - started

        # Bounded: a fixed ceiling, and no growth with the number handled (the size after the
        # first tenth of the drain against the peak over the whole of it).
        early = max(rss for at, rss in samples if at - started <= drain_seconds / 10)
        peak = max(rss for _, rss in samples)

        # -- every event's effect once -----------------------------------------------------
        ids = {envelope["id"] for envelope in distinct}
        processed = query(stack, "notifications", "SELECT event_id FROM processed_events WHERE consumer = ?",
                          f"notifications.{SUBSCRIPTION.handler}")
        processed_ids = [row[0] for row in processed]
        assert len(processed_ids) == len(set(processed_ids)) == len(ids) + 1   # + the first admin
        assert ids <= set(processed_ids)
        members = dict(query(stack, "notifications", "SELECT id, is_admin FROM members WHERE id LIKE 'backlog%'"))
        assert members == {e["data"]["member_id"]: int("admin" in e["data"]["roles"]) for e in distinct}
        dlq = node.queues()[events.dead_letter_queue_name(queue)]
        assert dlq["messages"] == 0 and node.queues()[queue]["messages_unacknowledged"] == 0

        report = {
            "messages": MESSAGES, "distinct_events": len(ids), "duplicates": DUPLICATES,
            "publish_seconds": round(publish_seconds, 1),
            "drain_seconds": round(drain_seconds, 1),
            "messages_per_second": round(MESSAGES / drain_seconds, 1),
            "rss_first_tenth_mib": round(early / 1024, 1), "rss_peak_mib": round(peak / 1024, 1),
            "rss_ceiling_mib": RSS_CEILING_KIB // 1024, "rss_growth_bound_mib": RSS_GROWTH_BOUND_KIB // 1024,
            "rss_samples": len(samples),
            "max_unacknowledged_seen": max_unacked,
            "processed_events_rows": len(processed_ids), "member_rows": len(members),
            "dead_letters": dlq["messages"],
        }
        save_report("fault-backlog.json", report)
        assert peak < RSS_CEILING_KIB and peak - early < RSS_GROWTH_BOUND_KIB, report
        assert max_unacked <= 10, report                          # max_workers: the prefetch
