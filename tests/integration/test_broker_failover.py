"""AMQP_URI listing several nodes (services/common/broker.py): with the first
one not answering, every client goes to the next at once. The first here is a
port nothing listens on (a node that is down); the second the real broker."""
import pika

from services.common import broker
from services.notifications.service import NotificationsService
from services.patrol.service import PatrolService
from tests.conftest import wait_for
from tests.integration.conftest import ADMIN, alerts_for
from tests.ports import free_port
from tests.vouching import vouched_rpc

LEADER = {"id": "l" * 32, "roles": ["member"]}


def down_first(amqp_uri: str) -> str:
    vhost = amqp_uri.rpartition("/")[2]
    return f"amqp://guest:guest@127.0.0.1:{free_port()}/{vhost};{amqp_uri}"


def test_services_consume_call_and_publish_through_the_node_that_answers(start_service, service_config):
    patrol = service_config("patrol")
    notifications = service_config("notifications")
    patrol["AMQP_URI"] = notifications["AMQP_URI"] = down_first(patrol["AMQP_URI"])
    start_service(NotificationsService, notifications)
    start_service(PatrolService, patrol)
    with vouched_rpc(patrol, "patrol") as rpc:   # RPC: request, reply queue and reply via the second node
        zone = rpc.create_zone({"name": "East", "compounds": ["Xingfu Garden"]}, ADMIN)
        rpc.assign_team(zone["id"], {"leader_id": LEADER["id"], "member_ids": []}, ADMIN)
        incident = rpc.report_incident({"zone_id": zone["id"], "compound": "Xingfu Garden", "category": "dispute",
                                        "description": "Noise at night.", "severity": "medium"}, ADMIN)
    # The outbox relay published the events, notifications consumed them: the leader's alert.
    alerts = wait_for(lambda: alerts_for(notifications, incident["id"]), timeout=15, what="the incident's alert")
    assert [(a.member_id, a.kind) for a in alerts] == [(LEADER["id"], "incident_reported")]


def test_linli_connections_and_pika_skip_the_node_that_is_down(vhost):
    uri = down_first(vhost.amqp_uri)
    with broker.connection(uri) as connection:
        connection.ensure_connection(max_retries=1)
        assert connection.port != int(uri.split(";")[0].rpartition(":")[2].partition("/")[0])
    connection = pika.BlockingConnection(broker.pika_parameters(uri))
    try:
        assert connection.is_open
    finally:
        connection.close()
