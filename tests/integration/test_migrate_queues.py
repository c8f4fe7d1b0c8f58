"""`linli migrate-queues` against the real broker: a vhost as an installation
from before quorum queues left it (classic durable queues, declared here as
that code declared them, with messages waiting) becomes all quorum queues with
the delivery limit, every message kept once, every binding routing; `linli
prepare` on such a vhost says what to do in one line. And the broker's own
dead-lettering: a message whose consumer keeps dying on it reaches its .dlq,
which `linli dlq list|replay` show and bring back."""
import json
import os
import subprocess
import sys
import uuid

import amqp
import pytest
import requests
from kombu import Connection, Exchange, Queue, binding
from nameko.rpc import get_rpc_exchange
from nameko.standalone.events import get_event_exchange

from services import contracts
from services.common import deadletters, events
from services.ops import queues
from services.ops.stack import SERVICES
from tests.conftest import wait_for

LIMIT = 20  # deploy/config's QUEUE_DELIVERY_LIMIT default, which the processes below read


def linli(vhost, *args: str, var=None, **env) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "services.ops.cli"] + (["--var", str(var)] if var else []) + list(args)
    return subprocess.run(command, env=dict(os.environ, AMQP_URI=vhost.amqp_uri, **env),
                          capture_output=True, text=True, timeout=120)


def declare_as_before_quorum(vhost):
    """Every durable queue exactly as Linli declared it before quorum queues:
    classic, no arguments; the same names and bindings."""
    with Connection(vhost.amqp_uri) as connection:
        channel = connection.channel()
        for sub in contracts.SUBSCRIPTIONS:
            name = events.queue_name(sub)
            redeliveries = Exchange(f"{sub.consumer}.redeliveries", type="direct", durable=True)
            Queue(name, exchange=get_event_exchange(sub.source, {}), routing_key=sub.event_type,
                  durable=True, auto_delete=False, exclusive=False)(channel).declare()
            Queue(f"{name}.dlq", durable=True, auto_delete=False)(channel).declare()
            for queue in (name, f"{name}.dlq"):
                Queue(queue, bindings=[binding(redeliveries, routing_key=queue)],
                      durable=True, auto_delete=False, exclusive=False)(channel).declare()
        for service in SERVICES:  # nameko 2.14's RpcConsumer
            Queue(f"rpc-{service}", exchange=get_rpc_exchange({}), routing_key=f"{service}.*",
                  durable=True)(channel).declare()
        channel.close()


def publish(vhost, exchange: str, routing_key: str, body: bytes, headers=None, **properties):
    with Connection(vhost.amqp_uri) as connection:
        channel = connection.channel()
        channel.confirm_select()
        channel.basic_publish(amqp.Message(body, delivery_mode=2, application_headers=headers or {}, **properties),
                              exchange=exchange,
                              routing_key=routing_key, mandatory=True)
        channel.close()


def drain(vhost, queue: str) -> list[tuple[bytes, dict, dict]]:
    """Every message of `queue`, taken off it: (body, headers, other properties)."""
    taken = []
    with Connection(vhost.amqp_uri) as connection:
        channel = connection.channel()
        while (message := channel.basic_get(queue, no_ack=False)) is not None:
            properties = dict(message.properties)
            headers = {k: v for k, v in (message.headers or {}).items() if k != "x-delivery-count"}
            taken.append((message.body, headers, {k: properties[k] for k in ("reply_to", "correlation_id")
                                                  if properties.get(k)}))
            channel.basic_ack(message.delivery_tag)
        channel.close()
    return taken


def queue_info(vhost, name: str) -> dict:
    response = requests.get(f"{vhost.management_url}/api/queues/{vhost.name}/{name}", auth=vhost.auth, timeout=10)
    response.raise_for_status()
    return response.json()


def waiting_messages():
    """Messages an installation had waiting: events in two queues, a dead letter, an RPC call."""
    case_opened = next(sub for sub in contracts.SUBSCRIPTIONS
                       if (sub.source, sub.event_type) == ("welfare", "case_opened"))
    incident = next(sub for sub in contracts.SUBSCRIPTIONS
                    if (sub.source, sub.event_type, sub.consumer) == ("patrol", "incident_reported", "welfare"))

    def event(sub, n):
        return json.dumps({"id": uuid.uuid4().hex, "type": sub.event_type, "source": sub.source, "n": n}).encode()

    sent = {events.queue_name(case_opened): [(event(case_opened, n), {"x-linli-attempts": n}, {})
                                             for n in range(1, 4)],
            events.queue_name(incident): [(event(incident, 1), {}, {})],
            f"{events.queue_name(incident)}.dlq": [(event(incident, 2), {
                events.ERROR_HEADER: "ValidationError", events.QUEUE_HEADER: events.queue_name(incident),
                events.ATTEMPTS_HEADER: 5}, {})],
            "rpc-welfare": [(b'{"args": [], "kwargs": {}}', {"nameko.call_id_stack": "x"},
                             {"reply_to": "reply-key-1", "correlation_id": "c1"})]}
    return case_opened, incident, sent


def test_migrate_queues_moves_an_installation_to_quorum_queues_keeping_every_message(vhost, tmp_path):
    declare_as_before_quorum(vhost)
    case_opened, incident, sent = waiting_messages()
    for queue, messages in sent.items():
        for body, headers, properties in messages:
            publish(vhost, "", queue, body, headers=headers, **{k: v for k, v in properties.items() if v})
    durable = [queue.name for queue in queues.linli_queues({"QUEUE_DELIVERY_LIMIT": LIMIT}, contracts.EVENTS,
                                                            SERVICES)]
    assert len(durable) >= 29

    # As it stands, prepare (and `linli up`, `linli topology`) refuse in one line.
    refused = linli(vhost, "prepare", "--no-broker-users", var=tmp_path / "var")
    assert refused.returncode == 1
    assert "linli migrate-queues" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    for command in (["topology"], ["dlq", "list"]):
        refused = linli(vhost, *command)
        assert refused.returncode == 1 and "linli migrate-queues" in refused.stderr, (command, refused.stderr)
        assert "Traceback" not in refused.stderr, command
    assert queue_info(vhost, durable[0])["type"] == "classic"  # nothing changed

    # While a service still consumes, it refuses and changes nothing.
    with Connection(vhost.amqp_uri) as connection:
        channel = connection.channel()
        channel.basic_consume("rpc-patrol", callback=lambda message: None)
        busy = linli(vhost, "migrate-queues")
        channel.close()
    assert busy.returncode == 1 and "rpc-patrol (1)" in busy.stderr and "Stop every Linli service" in busy.stderr
    assert all(queue_info(vhost, name)["type"] == "classic" for name in ("rpc-patrol", durable[0]))

    migrated = linli(vhost, "migrate-queues")
    assert migrated.returncode == 0, migrated.stderr
    assert f"linli: {events.queue_name(case_opened)}: quorum, 3 message(s) moved" in migrated.stdout
    assert "linli: rpc-welfare: quorum, 1 message(s) moved" in migrated.stdout
    assert f"{len(durable)} queue(s) migrated, 6 message(s) moved" in migrated.stdout

    for name in durable:
        info = queue_info(vhost, name)
        assert info["type"] == "quorum" and info["arguments"]["x-delivery-limit"] == LIMIT, (name, info)
    names = {queue["name"] for queue in requests.get(f"{vhost.management_url}/api/queues/{vhost.name}",
                                                     auth=vhost.auth, timeout=10).json()}
    assert names == set(durable)  # no temporary queue left
    for queue in durable:
        assert sorted(drain(vhost, queue)) == sorted(sent.get(queue, [])), queue

    # Every binding routes: an event, a retry and a dead letter, an RPC call.
    publish(vhost, "welfare.events", "case_opened", b"new")
    publish(vhost, "notifications.redeliveries", events.queue_name(case_opened), b"retry")
    publish(vhost, "welfare.redeliveries", f"{events.queue_name(incident)}.dlq", b"dead")
    publish(vhost, "nameko-rpc", "welfare.ping", b"call")
    assert [body for body, _h, _p in drain(vhost, events.queue_name(case_opened))] == [b"new", b"retry"]
    assert [body for body, _h, _p in drain(vhost, f"{events.queue_name(incident)}.dlq")] == [b"dead"]
    assert [body for body, _h, _p in drain(vhost, "rpc-welfare")] == [b"call"]

    again = linli(vhost, "migrate-queues")
    assert again.returncode == 0 and "nothing changed" in again.stdout, again.stdout + again.stderr
    assert linli(vhost, "topology").returncode == 0


def test_an_interrupted_migration_carries_on(vhost):
    """A run stopped after the classic queue was emptied into its temporary queue
    and deleted: the next run declares the queue and drains the temporary one back."""
    declare_as_before_quorum(vhost)
    assert linli(vhost, "migrate-queues").returncode == 0
    with Connection(vhost.amqp_uri) as connection:
        channel = connection.channel()
        channel.queue_delete("rpc-volunteers")
        channel.queue_declare("rpc-volunteers.migrating", durable=True, auto_delete=False,
                              arguments={"x-queue-type": "quorum", "x-delivery-limit": LIMIT})
        channel.close()
    publish(vhost, "", "rpc-volunteers.migrating", b"waiting", headers={"h": "1"})

    carried_on = linli(vhost, "migrate-queues")
    assert carried_on.returncode == 0, carried_on.stderr
    assert "rpc-volunteers: quorum" in carried_on.stdout
    assert drain(vhost, "rpc-volunteers") == [(b"waiting", {"h": "1"}, {})]
    with pytest.raises(amqp.exceptions.NotFound):
        with Connection(vhost.amqp_uri) as connection:
            connection.channel().queue_declare("rpc-volunteers.migrating", passive=True)


def test_the_broker_dead_letters_what_keeps_killing_its_consumer_and_dlq_shows_it(vhost):
    config = {"AMQP_URI": vhost.amqp_uri, "QUEUE_DELIVERY_LIMIT": 2}
    events.declare_topology(config, contracts.EVENTS)
    sub = contracts.SUBSCRIPTIONS[0]
    queue = events.queue_name(sub)
    envelope = {"id": uuid.uuid4().hex, "type": sub.event_type, "source": sub.source}
    publish(vhost, f"{sub.source}.events", sub.event_type, json.dumps(envelope).encode(), headers={"k": "v"})

    # A consumer that dies with the message unsettled, again and again.
    for _ in range(3):
        with Connection(vhost.amqp_uri) as connection:
            channel = connection.channel()
            assert channel.basic_get(queue, no_ack=False) is not None
    letters = wait_for(lambda: deadletters.list_dead_letters(config, contracts.SUBSCRIPTIONS), timeout=10,
                       what="the broker's dead letter")
    assert [(letter["event_id"], letter["queue"], letter["error"]) for letter in letters] == [
        (envelope["id"], queue, "delivery_limit")]
    assert vhost.depth(queue) == 0

    # Listing takes nothing away, however often (a get and a return would count as a delivery).
    for _ in range(4):
        assert deadletters.list_dead_letters(config, contracts.SUBSCRIPTIONS) == letters

    replayed = deadletters.replay(config, contracts.SUBSCRIPTIONS)
    assert [letter["event_id"] for letter in replayed] == [envelope["id"]]
    assert drain(vhost, queue) == [(json.dumps(envelope).encode(), {"k": "v"},
                                    {})]
    assert deadletters.list_dead_letters(config, contracts.SUBSCRIPTIONS) == []


@pytest.mark.slow  # the whole stack: 13 s on a quiet machine, 50 on a busy one
def test_after_migrating_the_stack_handles_what_was_waiting(vhost, tmp_path):
    from services.common.envelope import make_envelope
    from tests.e2e.conftest import query, running_stack

    declare_as_before_quorum(vhost)
    assignee = "b" * 32
    envelope = make_envelope("welfare", "case_opened", {
        "case_id": "c" * 32, "household_id": "h" * 32, "compound": "Xingfu Garden", "categories": ["elderly"],
        "assignee_id": assignee, "status": "open"})
    publish(vhost, "welfare.events", "case_opened", json.dumps(envelope).encode(),
            content_type="application/json", content_encoding="utf-8")

    assert linli(vhost, "migrate-queues").returncode == 0
    with running_stack(vhost, tmp_path / "var") as stack:
        alerts = wait_for(lambda: query(stack, "notifications", "SELECT member_id FROM alerts WHERE ref_id = ?",
                                        "c" * 32), timeout=30, what="the waiting case's alert")
    assert alerts == [(assignee,)]
