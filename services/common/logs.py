"""Service logs as JSON lines (python-json-logger), each with the request id
of what caused it.

A request id is born at the gateway per HTTP request (the caller's
X-Request-Id if it is a short safe token, else a new one). It travels in the
nameko worker context under REQUEST_ID_KEY, which nameko sends with every RPC
call as the AMQP header `nameko.request_id`; the outbox keeps it with each row
and the relay publishes the event with that header, so the consumer's worker
has it too. RequestIds (a dependency of every service) makes it the current
one for the worker's green thread; JsonLines writes it into every line.

A contextvar, not a global: each eventlet green thread (each nameko worker,
each HTTP connection) has its own context, and a new one starts empty."""
from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import re
from datetime import datetime, timezone

from nameko.extensions import DependencyProvider
from pythonjsonlogger.json import JsonFormatter

REQUEST_ID_KEY = "request_id"  # in nameko's worker context data; on the wire `nameko.request_id`
AMQP_HEADER = f"nameko.{REQUEST_ID_KEY}"
HTTP_HEADER = "X-Request-Id"
# A caller's id is taken as it is only when it cannot forge a log line or carry much: a short token.
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,63}")

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("linli_request_id", default=None)


def new_request_id() -> str:
    # 32 random hex digits, as uuid4().hex gives, without building a UUID (its checks were
    # ~1 % of the gateway's CPU when it refuses most requests)
    return os.urandom(16).hex()


def request_id_from(sent: str | None) -> str:
    """The caller's id if it is a short safe token, else a new one."""
    if sent and SAFE_REQUEST_ID.fullmatch(sent):
        return sent
    return new_request_id()


def current_request_id() -> str | None:
    return _current.get()


def bind_request_id(request_id: str | None):
    """Make `request_id` the current one for this green thread (None: none)."""
    return _current.set(request_id if isinstance(request_id, str) and request_id else None)


@contextlib.contextmanager
def request_id_bound(request_id: str | None):
    """`request_id` the current one within the block (None: leave the current one)."""
    if not request_id:
        yield
        return
    token = bind_request_id(request_id)
    try:
        yield
    finally:
        _current.reset(token)


class RequestIds(DependencyProvider):
    """Each worker's request id (from its context data: an HTTP request's, an
    RPC call's or an event's) is the current one while the worker runs."""

    def worker_setup(self, worker_ctx):
        # Only an id as the gateway makes them: a header is anyone's who can publish, and the
        # id is stored with each outbox row the worker writes (64 characters at most).
        sent = worker_ctx.data.get(REQUEST_ID_KEY)
        bind_request_id(sent if isinstance(sent, str) and SAFE_REQUEST_ID.fullmatch(sent) else None)

    def worker_teardown(self, worker_ctx):
        bind_request_id(None)


class JsonLines(JsonFormatter):
    """One JSON object per line: time (UTC, ISO 8601), level, service, logger,
    message, request_id (when there is one), error (the exception's type, when
    there is one), traceback (only when the record still carries one: expected
    refusals have theirs removed), and whatever `extra` the call gave."""

    def __init__(self, service: str = "", **kwargs):
        super().__init__(**kwargs)
        self.service = service

    def add_fields(self, log_data: dict, record: logging.LogRecord, message_dict: dict) -> None:
        log_data["time"] = (datetime.fromtimestamp(record.created, tz=timezone.utc)
                            .isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        log_data["level"] = record.levelname
        log_data["service"] = self.service
        log_data["logger"] = record.name
        log_data["message"] = record.message
        request_id = getattr(record, REQUEST_ID_KEY, None) or current_request_id()
        if request_id:
            log_data[REQUEST_ID_KEY] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            log_data["error"] = record.exc_info[0].__name__
        traceback = message_dict.pop("exc_info", None)
        for key, value in message_dict.items():
            log_data.setdefault(key, value)
        for key, value in record.__dict__.items():
            if key not in self._skip_fields and not key.startswith("_") and key != REQUEST_ID_KEY:
                log_data.setdefault(key, value)
        if traceback:
            log_data["traceback"] = traceback
