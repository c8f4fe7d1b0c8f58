"""AMQP_URI may list every node of a RabbitMQ cluster, `;`-separated
(services/common/broker.py): each client Linli makes is given all of them."""
import ssl

from services.common import broker
from services.ops import brokerusers
from services.ops.cli import _safe_uri

CLUSTER = "amqp://ops:s3cret@rabbit-0:5672/office;amqp://ops:s3cret@rabbit-1:5672/office; amqp://ops:s3cret@rabbit-2/office"


def test_the_nodes_of_an_amqp_uri_in_order():
    assert broker.uris(CLUSTER) == ["amqp://ops:s3cret@rabbit-0:5672/office", "amqp://ops:s3cret@rabbit-1:5672/office",
                                    "amqp://ops:s3cret@rabbit-2/office"]
    assert broker.uris("amqp://guest:guest@localhost:5672/") == ["amqp://guest:guest@localhost:5672/"]
    assert broker.first_uri(CLUSTER) == "amqp://ops:s3cret@rabbit-0:5672/office"


def test_kombu_connections_fail_over_to_every_node():
    connection = broker.connection(CLUSTER)
    assert (connection.hostname, connection.port) == ("rabbit-0", 5672)
    assert [uri.strip() for uri in connection.alt] == broker.uris(CLUSTER)
    connection.maybe_switch_next()
    assert (connection.hostname, connection.virtual_host, connection.userid) == ("rabbit-1", "office", "ops")
    assert broker.publisher({"AMQP_URI": CLUSTER, "AMQP_SSL": None}).amqp_uri == CLUSTER


def test_a_services_user_on_every_node():
    uri = brokerusers.with_user(CLUSTER, "linli-patrol@office", "p/w")
    assert uri == ("amqp://linli-patrol%40office:p%2Fw@rabbit-0:5672/office;"
                   "amqp://linli-patrol%40office:p%2Fw@rabbit-1:5672/office;"
                   "amqp://linli-patrol%40office:p%2Fw@rabbit-2/office")
    assert brokerusers.vhost_of(CLUSTER) == "office"
    management = brokerusers.Management(CLUSTER)
    assert (management.url, management.auth) == ("http://rabbit-0:15672", ("ops", "s3cret"))


def test_no_password_of_any_node_is_printed():
    shown = _safe_uri(CLUSTER)
    assert "s3cret" not in shown
    assert shown == "amqp://rabbit-0:5672/office;amqp://rabbit-1:5672/office;amqp://rabbit-2/office"


def test_pika_gets_every_node_each_with_tls_and_its_own_name():
    parameters = broker.pika_parameters({"AMQP_URI": CLUSTER.replace("amqp://", "amqps://"),
                                         "AMQP_SSL": {"cert_reqs": ssl.CERT_REQUIRED}})
    assert [(p.host, p.port, p.virtual_host) for p in parameters] == [
        ("rabbit-0", 5672, "office"), ("rabbit-1", 5672, "office"), ("rabbit-2", 5671, "office")]
    assert [p.ssl_options.server_hostname for p in parameters] == ["rabbit-0", "rabbit-1", "rabbit-2"]
    assert [(p.host, p.ssl_options) for p in broker.pika_parameters("amqp://guest:guest@localhost/")] == [
        ("localhost", None)]
