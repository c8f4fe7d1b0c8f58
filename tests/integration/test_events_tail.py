"""`linli events tail` (pika, outside eventlet) prints the live feed, filtered,
as text or JSON lines, without personal data."""
import json
import os
import subprocess
import sys

from nameko.amqp.publish import Publisher
import pytest
from nameko.standalone.events import get_event_exchange

from services import contracts
from services.common import events
from services.common.envelope import make_envelope

# make test-slow (about 10 s of subprocesses): make test keeps within 10 minutes.
pytestmark = [pytest.mark.slow, pytest.mark.transport]


def start_tail(amqp_uri: str, *args: str) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "services.ops.cli", "events", "tail", *args],
                               env=dict(os.environ, AMQP_URI=amqp_uri), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    ready = process.stderr.readline()  # "linli: tailing ...": its queue is bound from here on
    assert "tailing" in ready, ready + process.stderr.read()
    return process


def publish(amqp_uri: str, source: str, event_type: str, data: dict) -> dict:
    events.declare_topology(amqp_uri, contracts.EVENTS)  # as `linli up` does: every exchange exists
    envelope = make_envelope(source, event_type, data)
    Publisher(amqp_uri).publish(envelope, exchange=get_event_exchange(source, {}), routing_key=event_type)
    return envelope


INCIDENT = {"incident_id": "i1", "zone_id": "z1", "compound": "Heping Li", "category": "dispute",
            "severity": "high", "status": "open", "leader_id": "l1", "reported_by": "m1",
            "description": "Noise between 3-401 and 3-501"}  # a field no contract has: must not show


def test_tail_prints_the_chosen_events_as_json_lines_without_personal_data(vhost):
    tail = start_tail(vhost.amqp_uri, "--service", "patrol", "--type", "incident_reported", "--json",
                      "--count", "1")
    publish(vhost.amqp_uri, "welfare", "case_opened", {"case_id": "c1"})      # another service: not shown
    publish(vhost.amqp_uri, "patrol", "zone_created", {"zone_id": "z1"})      # another type: not shown
    envelope = publish(vhost.amqp_uri, "patrol", "incident_reported", INCIDENT)
    out, _ = tail.communicate(timeout=30)
    assert tail.returncode == 0
    lines = out.splitlines()
    assert len(lines) == 1
    shown = json.loads(lines[0])
    assert (shown["id"], shown["source"], shown["type"]) == (envelope["id"], "patrol", "incident_reported")
    assert shown["data"]["severity"] == "high" and shown["data"]["compound"] == "Heping Li"
    assert "3-401" not in out and "description" not in shown["data"]


def test_tail_as_text_names_the_event_and_its_fields(vhost):
    tail = start_tail(vhost.amqp_uri, "--count", "1")
    publish(vhost.amqp_uri, "patrol", "incident_reported", INCIDENT)
    out, _ = tail.communicate(timeout=30)
    assert "patrol.incident_reported" in out and 'severity="high"' in out and "3-401" not in out


def test_an_unknown_service_is_a_clear_error(vhost):
    result = subprocess.run([sys.executable, "-m", "services.ops.cli", "events", "tail", "--service", "nope"],
                            env=dict(os.environ, AMQP_URI=vhost.amqp_uri), capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2 and "unknown service" in result.stderr
