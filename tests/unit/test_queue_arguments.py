"""Every durable queue Linli declares is a quorum queue with one delivery limit
(deploy/config's QUEUE_DELIVERY_LIMIT), and the dead-letter commands read what
the broker dead-lettered as well as what the handler did."""
from datetime import datetime, timezone
from types import SimpleNamespace

from services import contracts
from services.common import config as linli_config
from services.common import deadletters, events
from services.ops import queues
from services.ops.stack import SERVICES
from tests.unit.conftest import service_config


def test_every_service_file_states_the_same_delivery_limit():
    # It is part of each queue's arguments: two values would make RabbitMQ refuse one side (406).
    stated = {service: service_config(service)["QUEUE_DELIVERY_LIMIT"] for service in SERVICES}
    assert len(set(stated.values())) == 1, stated
    assert linli_config.stated("QUEUE_DELIVERY_LIMIT", {}) == stated["gateway"]
    assert linli_config.broker({})["QUEUE_DELIVERY_LIMIT"] == stated["gateway"]
    assert linli_config.stated("QUEUE_DELIVERY_LIMIT", {"LINLI_QUEUE_DELIVERY_LIMIT": "7"}) == 7


def test_an_event_queue_is_quorum_and_dead_lettered_by_the_broker_to_its_dlq():
    sub = contracts.SUBSCRIPTIONS[0]
    queue = events.event_queue(sub, {"QUEUE_DELIVERY_LIMIT": 9})
    assert queue.durable and not queue.auto_delete and not queue.exclusive
    assert queue.queue_arguments == {
        "x-queue-type": "quorum", "x-delivery-limit": 9,
        "x-dead-letter-exchange": f"{sub.consumer}.redeliveries",
        "x-dead-letter-routing-key": f"{events.queue_name(sub)}.dlq",
        "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish",
    }
    dlq = events.dead_letter_queue(sub, {"QUEUE_DELIVERY_LIMIT": 9})
    assert dlq.name == f"{queue.name}.dlq"
    assert dlq.queue_arguments == {"x-queue-type": "quorum", "x-delivery-limit": 9}
    # The handler's retries go to the same queue: declared with the same arguments.
    assert events.redelivery_queue(queue, sub.consumer).queue_arguments == queue.queue_arguments


def test_the_rpc_queues_and_every_durable_queue_are_known_to_migrate_queues():
    found = {queue.name: queue for queue in queues.linli_queues({"QUEUE_DELIVERY_LIMIT": 20}, contracts.EVENTS,
                                                                  SERVICES)}
    assert len(found) == 2 * len(contracts.SUBSCRIPTIONS) + len(SERVICES)
    assert found["rpc-welfare"].arguments == {"x-queue-type": "quorum", "x-delivery-limit": 20}
    assert [(exchange.name, key) for exchange, key in found["rpc-welfare"].bindings] == [("nameko-rpc", "welfare.*")]
    assert all(queue.arguments["x-queue-type"] == "quorum" for queue in found.values())


def message(headers: dict, body: bytes = b'{"id": "e1", "source": "welfare", "type": "case_opened"}'):
    return SimpleNamespace(headers=headers, body=body)


def test_a_dead_letter_the_broker_made_shows_its_reason_and_queue():
    died = datetime(2026, 12, 3, 23, 0, tzinfo=timezone.utc)
    info = deadletters._describe(message({
        "x-death": [{"count": 1, "reason": "delivery_limit", "queue": "evt-a--b.on_a", "time": died,
                     "exchange": "a.events", "routing-keys": ["a"]}],
        "x-first-death-reason": "delivery_limit", "x-first-death-queue": "evt-a--b.on_a",
        "x-delivery-count": 20,
    }), "evt-a--b.on_a.dlq")
    assert info == {"dead_letter_queue": "evt-a--b.on_a.dlq", "queue": "evt-a--b.on_a", "event_id": "e1",
                    "source": "welfare", "type": "case_opened", "error": "delivery_limit", "attempts": 20,
                    "failed_at": died.isoformat()}


def test_a_dead_letter_the_handler_made_shows_its_error():
    info = deadletters._describe(message({
        events.ERROR_HEADER: "ValidationError", events.QUEUE_HEADER: "evt-a--b.on_a",
        events.ATTEMPTS_HEADER: 5, events.FAILED_AT_HEADER: "2026-12-03T23:00:00+00:00",
    }), "evt-a--b.on_a.dlq")
    assert (info["error"], info["queue"], info["attempts"]) == ("ValidationError", "evt-a--b.on_a", 5)
