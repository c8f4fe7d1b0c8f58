"""How Linli reaches the broker: one place that turns a service's config (its
AMQP_URI and nameko's AMQP_SSL) into a connection, so that every connection
Linli opens itself uses the same TLS settings as nameko's own.

AMQP_URI may name several nodes of one RabbitMQ cluster, separated by `;`
(`amqp://u:p@rabbit-0/office;amqp://u:p@rabbit-1/office;...`), the form kombu
(and so nameko) takes as failover URLs: a connection goes to the first that
answers, and when it drops, the reconnection tries the next one at once
(round-robin), pausing only after a whole round has failed. Every URI names the
same user and vhost; AMQP_SSL applies to each of them."""
from __future__ import annotations

import copy
import ssl

from kombu import Connection
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY


SEPARATOR = ";"


def uris(amqp_uri: str) -> list[str]:
    """The node URIs of an AMQP_URI, in order."""
    return [uri.strip() for uri in amqp_uri.split(SEPARATOR) if uri.strip()]


def each_uri(amqp_uri: str, change) -> str:
    """The same AMQP_URI with `change(uri)` applied to each node's URI (another user, say)."""
    return SEPARATOR.join(change(uri) for uri in uris(amqp_uri))


def first_uri(amqp_uri: str) -> str:
    """The first node's URI: where the vhost, the user and the management API are read from."""
    return uris(amqp_uri)[0]


def _config(broker: str | dict) -> dict:
    # A bare URI is a broker without TLS options (tests, the operator's tools).
    return {AMQP_URI_CONFIG_KEY: broker} if isinstance(broker, str) else broker


def ssl_options(broker: str | dict):
    """nameko's AMQP_SSL: None, True, or py-amqp's options (ca_certs, certfile,
    keyfile, cert_reqs, server_hostname). A copy: kombu fills in server_hostname."""
    return copy.deepcopy(_config(broker).get(AMQP_SSL_CONFIG_KEY))


def connection(broker: str | dict, **kwargs) -> Connection:
    """A kombu Connection from a service's config (or a bare URI)."""
    config = _config(broker)
    return Connection(config[AMQP_URI_CONFIG_KEY], ssl=ssl_options(config), **kwargs)


def publisher(broker: str | dict, **kwargs) -> Publisher:
    """nameko's Publisher (confirms on) from a service's config."""
    config = _config(broker)
    return Publisher(config[AMQP_URI_CONFIG_KEY], ssl=ssl_options(config), **kwargs)


def ssl_context(options) -> ssl.SSLContext:
    """The same TLS settings as an SSLContext, for clients that take one (pika)."""
    options = options if isinstance(options, dict) else {}
    context = ssl.create_default_context(cafile=options.get("ca_certs"))
    if options.get("cert_reqs") == ssl.CERT_NONE:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if options.get("certfile"):
        context.load_cert_chain(options["certfile"], options.get("keyfile"))
    return context


def pika_parameters(broker: str | dict) -> list:
    """pika's connection parameters from a service's config (or a bare URI):
    one per node, which pika's connections try in turn."""
    import pika
    from urllib.parse import urlparse

    config = _config(broker)
    options = config.get(AMQP_SSL_CONFIG_KEY)
    every = []
    for uri in uris(config[AMQP_URI_CONFIG_KEY]):
        parameters = pika.URLParameters(uri)
        if options or urlparse(uri).scheme == "amqps":
            parameters.ssl_options = pika.SSLOptions(ssl_context(options), server_hostname=urlparse(uri).hostname)
            if urlparse(uri).port is None:
                parameters.port = 5671
        every.append(parameters)
    return every
