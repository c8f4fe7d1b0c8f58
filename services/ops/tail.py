"""`linli events tail`: the live event feed in a terminal, for operators.

pika, not kombu: this process is not eventlet's. Its queue is its own
(exclusive, gone when it stops), bound to every service's event exchange;
what it prints has personal data removed, as the dashboard feed. It
reconnects when the broker goes away."""
from __future__ import annotations

import json
import sys
import time

import pika
import pika.exceptions

from services import contracts
from services.common import broker


def describe(shown: dict) -> str:
    """One line of text: time, source.type, then the fields."""
    fields = " ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in shown["data"].items())
    return f"{shown['occurred_at']}  {shown['source']}.{shown['type']}  {fields}"


def tail(amqp: str | dict, sources: list[str], types: list[str], as_json: bool, count: int | None = None,
         out=sys.stdout, err=sys.stderr) -> int:
    """Print events until interrupted, or until `count` have been printed (`amqp`: config or URI)."""
    printed = 0
    while True:
        try:
            connection = pika.BlockingConnection(broker.pika_parameters(amqp))
        except pika.exceptions.AMQPConnectionError:
            print("linli: broker unreachable; retrying in 2 s", file=err, flush=True)
            time.sleep(2)
            continue
        try:
            channel = connection.channel()
            queue = channel.queue_declare(queue="", exclusive=True, auto_delete=True).method.queue
            for source in sources:
                # Declared as nameko declares it, so the two never disagree.
                channel.exchange_declare(exchange=f"{source}.events", exchange_type="topic", durable=True)
                for event_type in types or ["#"]:
                    channel.queue_bind(queue=queue, exchange=f"{source}.events", routing_key=event_type)
            print(f"linli: tailing {', '.join(sources)} ({', '.join(types) or 'every type'}); Ctrl-C stops",
                  file=err, flush=True)
            for _method, _properties, body in channel.consume(queue, auto_ack=True):
                try:
                    shown = contracts.for_feed(json.loads(body))
                except (ValueError, TypeError, AttributeError):
                    continue  # not an envelope: nothing to show
                print(json.dumps(shown, ensure_ascii=False) if as_json else describe(shown), file=out, flush=True)
                printed += 1
                if count is not None and printed >= count:
                    return 0
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.ChannelClosedByBroker,
                pika.exceptions.StreamLostError):
            print("linli: lost the broker; reconnecting", file=err, flush=True)
            time.sleep(1)
        finally:
            if connection.is_open:
                connection.close()
