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
import time
from contextlib import contextmanager

import amqp
import kombu.exceptions
import kombu.serialization
from eventlet.semaphore import Semaphore
from kombu import Connection
from nameko.amqp.publish import Publisher
from nameko.constants import PERSISTENT
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY


SEPARATOR = ";"
# A batch's messages go to the broker's socket in writes of about this size (BatchPublisher).
WRITE_BYTES = 256 * 1024


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


def kept_connection(broker: str | dict, **kwargs) -> Connection:
    """A connection a publisher keeps open, connected now: every node of the
    AMQP_URI tried in turn before it gives up (kombu's OperationalError)."""
    kept = connection(broker, **kwargs)
    kept.ensure_connection(max_retries=len(uris(_config(broker)[AMQP_URI_CONFIG_KEY])),
                           interval_start=0, interval_step=0.5, interval_max=1)
    return kept


def let_go(kept: Connection | None):
    """Drop a kept connection without waiting for a broker that may be gone or blocking."""
    if kept is not None:
        try:
            kept.collect()
        except Exception:
            pass


# A lost broker connection: amqp's ConnectionError and OSError, and kombu's
# OperationalError, which kombu raises when the broker is still down after its
# retries (nameko publishes through them) and which is neither.
CONNECTION_ERRORS = amqp.Connection.connection_errors + (kombu.exceptions.OperationalError,)
# What a publish on a kept connection may raise when that connection is gone (a broker
# restart, a reset socket) or its channel was closed.
PUBLISH_ERRORS = CONNECTION_ERRORS + amqp.Connection.channel_errors


class KeptPublisher:
    """Publishes without confirms on one connection it keeps open: what RPC
    replies go through (services/common/nameko_patches.py ReplyPublisher).
    nameko's Publisher made a kombu Connection (parsing its URL), took a
    producer from kombu's pool and went through kombu's publish, its
    declarations and retry policy on every reply: 383 µs of CPU a reply of
    eight gifts' answers, against 61-69 µs here (a throwaway script). One publish
    at a time. One that fails on the kept connection (the broker restarted
    since, say) goes once more on a new one; if that fails too, it raises."""

    def __init__(self, amqp_uri: str, ssl=None, login_method: str | None = None):
        self.config = {AMQP_URI_CONFIG_KEY: amqp_uri, AMQP_SSL_CONFIG_KEY: ssl}
        self.login_method = login_method
        self._lock = Semaphore()
        self._connection = None
        self._channel = None

    def publish(self, payload, serializer: str, exchange: str, routing_key: str, **properties):
        """`payload` serialised by kombu's `serializer`, as kombu's Producer would."""
        content_type, content_encoding, body = kombu.serialization.dumps(payload, serializer)
        if isinstance(body, str):
            body = body.encode(content_encoding)
        message = amqp.Message(body, content_type=content_type, content_encoding=content_encoding,
                               delivery_mode=PERSISTENT, **properties)
        with self._lock:
            while True:
                fresh = self._connection is None
                try:
                    if fresh:
                        self._open()
                    self._channel.basic_publish(message, exchange=exchange, routing_key=routing_key)
                    return
                except PUBLISH_ERRORS:
                    self._drop()
                    if fresh:
                        raise

    def _open(self):
        self._connection = kept_connection(self.config, login_method=self.login_method)
        self._channel = self._connection.channel()

    def _drop(self):
        let_go(self._connection)
        self._connection = self._channel = None


class NotConfirmed(Exception):
    """The broker refused (nacked) a message of the batch, or its confirms did not come in time."""


class BatchPublisher:
    """Publishes a batch of messages on one channel in confirm mode, then waits
    once for the broker's confirms of them all (RabbitMQ acks cumulatively), in
    place of one round trip per message. All or nothing: when `publish_all`
    returns, every message is confirmed; when it raises, any of them may have
    gone (the outbox publishes them again; consumers deduplicate). One batch at
    a time per publisher; the connection is kept and opened again after an error.

    The messages are JSON already (an outbox row's envelope, as written), and
    go to py-amqp's channel as they are: kombu's Producer serialised each body
    again and checked its arguments on every publish, about a third of what a
    publish cost (66-96 µs of CPU per message against 41-63 µs)."""

    def __init__(self, broker: str | dict, confirm_timeout: float = 30.0):
        self.config = _config(broker)
        self.confirm_timeout = confirm_timeout
        self._lock = Semaphore()
        self._connection = None
        self._channel = None
        self._published = 0          # the channel's delivery tags so far
        self._unconfirmed: set[int] = set()
        self._nacked = False

    def publish_all(self, messages: list[tuple[str, str, str, dict]]):
        """(JSON body, exchange name, routing key, headers) each, in order."""
        with self._lock:
            if not messages:
                return
            try:
                if self._connection is None:
                    self._open()
                self._publish_all(messages)
            except BaseException:
                self._drop()
                raise

    def close(self):
        with self._lock:
            self._drop()

    def _open(self):
        self._connection = kept_connection(self.config)
        channel = self._connection.channel()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        self._channel = channel
        self._published = 0

    def _publish_all(self, messages):
        self._unconfirmed, self._nacked = set(), False
        with self._written_together():
            for body, exchange, routing_key, headers in messages:
                self._channel.basic_publish(amqp.Message(
                    body.encode(), content_type="application/json", content_encoding="utf-8",
                    application_headers=headers, delivery_mode=PERSISTENT), exchange=exchange,
                    routing_key=routing_key)
                self._published += 1
                self._unconfirmed.add(self._published)
        deadline = time.monotonic() + self.confirm_timeout
        while self._unconfirmed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NotConfirmed(f"{len(self._unconfirmed)} message(s) not confirmed in {self.confirm_timeout} s")
            self._connection.drain_events(timeout=remaining)
        if self._nacked:
            raise NotConfirmed("the broker refused a message")

    @contextmanager
    def _written_together(self):
        """The frames of the messages published inside go to the socket in one write
        (or one per WRITE_BYTES), not one each: py-amqp writes every message as it
        is published, and the green socket's send cost the donations process's hub
        more than the rest of a publish (py-spy, a closed loop of 64 writers). The
        frames are copied: py-amqp hands over a view of a buffer it reuses. A write
        that fails raises out of the publish, and the connection is dropped."""
        transport = self._connection.connection.transport
        send, frames, size = transport._write, [], 0  # what TCPTransport.write sends with

        def flush():
            nonlocal size
            if frames:
                send(b"".join(frames))
                frames.clear()
                size = 0

        def gather(frame):
            nonlocal size
            frames.append(bytes(frame))
            size += len(frame)
            if size >= WRITE_BYTES:
                flush()

        transport._write = gather
        try:
            yield
        finally:
            transport._write = send
        flush()

    def _on_ack(self, delivery_tag: int, multiple: bool):
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool):
        self._nacked = True
        self._on_ack(delivery_tag, multiple)

    def _drop(self):
        let_go(self._connection)
        self._connection = self._channel = None


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
