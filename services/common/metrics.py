"""Prometheus metrics of every service: workers (RPC calls, event handlers,
timers) and their latency, events published and consumed, handler failures,
dead letters, the outbox's backlog. The gateway adds HTTP requests and serves
its own at /metrics; every other service process serves its own on
METRICS_ADDRESS:METRICS_PORT (deploy/config/<service>.yml; `linli up` gives
each process a port: see the README). deploy/k8s/51-alerts.yaml alerts on them."""
from __future__ import annotations

import logging
import time

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

# outcome: ok, refused (an exception the entrypoint expects: bad input, not found ...
# the caller's doing) or error (anything else: what LinliWorkersFailing alerts on).
WORKERS = Counter("linli_worker_calls_total", "Workers run, by entrypoint and outcome",
                  ["service", "entrypoint", "outcome"])
WORKER_SECONDS = Histogram("linli_worker_seconds", "How long workers take", ["service", "entrypoint"])
EVENTS_PUBLISHED = Counter("linli_events_published_total", "Events the outbox relay published",
                           ["source", "type"])
EVENTS_CONSUMED = Counter("linli_events_consumed_total", "Events a handler took in", ["queue", "outcome"])
HTTP_REQUESTS = Counter("linli_http_requests_total", "HTTP requests to the gateway", ["route", "method", "status"])
# Refreshed by the gateway on a timer (services/common/deadletters.py), not per scrape.
DEAD_LETTERS = Gauge("linli_dead_letter_depth", "Messages waiting in a dead-letter queue", ["queue"])
# Measured by the outbox relay's timer (services/common/outbox.py): every process
# of a service reports its one database's outbox.
OUTBOX_BACKLOG = Gauge("linli_outbox_backlog", "Outbox rows not yet published to the broker", ["service"])
OUTBOX_OLDEST = Gauge("linli_outbox_oldest_unsent_seconds", "Age of the oldest outbox row not yet published "
                      "(0: none waiting)", ["service"])
HTTP_SHED = Counter("linli_http_shed_total", "Requests refused with a 503 because a slot in the gateway "
                    "(scope gateway) or for a service behind it (scope: its name) was not expected within the "
                    "admission deadline", ["scope"])
# Counted by `linli up` (services/ops/stack.py), served on its own port: see the README.
SERVICE_RESTARTS = Counter("linli_service_restarts_total", "Processes of a service that exited and were started "
                           "again by linli up", ["service"])
HTTP_SECONDS = Histogram("linli_http_request_seconds", "How long the gateway takes to answer", ["route"])


class Metrics(DependencyProvider):
    """Counts and times every worker of the service; serves the process's
    metrics on METRICS_ADDRESS:METRICS_PORT when a port is set."""

    def __init__(self):
        self._started: dict = {}

    def setup(self):
        port = int(self.container.config.get("METRICS_PORT") or 0)
        if port:
            address = self.container.config["METRICS_ADDRESS"]
            try:
                start_http_server(port, addr=address)
                log.info("metrics on %s:%d", address, port)
            except OSError as exc:  # a port taken is no reason to stop serving the community
                log.warning("metrics: cannot listen on port %d (%s); serving none", port, exc)

    def get_dependency(self, worker_ctx):
        return None

    def worker_setup(self, worker_ctx):
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        name = worker_ctx.entrypoint.method_name
        service = self.container.service_name
        started = self._started.pop(worker_ctx, None)
        if started is not None:
            WORKER_SECONDS.labels(service, name).observe(time.perf_counter() - started)
        WORKERS.labels(service, name, outcome(worker_ctx.entrypoint, exc_info)).inc()


def outcome(entrypoint, exc_info) -> str:
    if not exc_info:
        return "ok"
    expected = getattr(entrypoint, "expected_exceptions", ())
    return "refused" if expected and issubclass(exc_info[0], expected) else "error"
