"""The webhook deliveries of one notifications process. They run in green
threads of their own, outside nameko's workers, and hold no database
connection while they wait on a receiver: what to send is read when they are
claimed, and the outcome written in a short session on a connection of their
own. At most `per_receiver` go to one receiver at once and `max_in_flight` in
all; the rest wait, in the database, for the next tick."""
from __future__ import annotations

import logging
import ssl
from collections import Counter
from datetime import datetime, timedelta
from typing import NamedTuple

import eventlet
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from services.common.clock import naive_utcnow
from services.common.db import make_engine
from services.common.errors import InvalidInput
from services.notifications import domain, outbound
from services.notifications.models import Webhook, WebhookDelivery

log = logging.getLogger(__name__)

# Due deliveries looked at per tick, so that one receiver's backlog hides no one else's.
SCAN = 200


class Job(NamedTuple):
    delivery_id: str
    member_id: str
    attempts: int        # this attempt included
    lease: datetime      # the claim: the outcome is written only while it holds
    url: str
    secret: str
    body: str
    receiver: str


def receiver_of(url: str, policy: outbound.Policy) -> str:
    try:
        return outbound.parse_url(url, policy).receiver
    except outbound.Refused:
        return "refused"  # fails at once, without the network; counted together


class Deliveries:
    """Claims due deliveries as far as there is room, sends them, records how they went."""

    def __init__(self, policy: outbound.Policy, engine, resolver: outbound.Resolver = outbound.system_resolver,
                 tls_context: ssl.SSLContext | None = None):
        self.policy = policy
        self.engine = engine
        self.resolver = resolver
        self.tls_context = tls_context
        self.active: Counter[str] = Counter()   # receiver -> deliveries under way
        self._running: dict[str, Job] = {}
        self._threads: set = set()
        self._recording = Semaphore(1)          # one connection for outcomes, whatever is in flight

    # -- at set time ----------------------------------------------------------------------

    def check_url(self, url: str):
        """InvalidInput naming `url` unless a webhook may reach it now."""
        try:
            outbound.check_url(url, self.policy, self.resolver)
        except outbound.Refused as refused:
            raise InvalidInput("The request has invalid fields.", {"fields": {"url": [str(refused)]}})

    # -- each tick ------------------------------------------------------------------------

    @property
    def in_flight(self) -> int:
        return sum(self.active.values())

    def claim(self, session: Session, now: datetime | None = None) -> list[Job]:
        """Lease the due deliveries there is room for (the caller commits),
        oldest first, skipping receivers that have their share already."""
        now = now or naive_utcnow()
        room = self.policy.max_in_flight - self.in_flight
        if room <= 0:
            return []
        full = {receiver for receiver, count in self.active.items() if count >= self.policy.per_receiver}
        waiting_on_full = {job.member_id for job in self._running.values() if job.receiver in full}
        rows = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.member_id, WebhookDelivery.next_attempt_at,
                   WebhookDelivery.attempts, WebhookDelivery.body, Webhook.url, Webhook.secret)
            .outerjoin(Webhook, Webhook.member_id == WebhookDelivery.member_id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                   WebhookDelivery.member_id.not_in(waiting_on_full))
            .order_by(WebhookDelivery.next_attempt_at).limit(SCAN)).all()
        # Long enough for the attempt and its record; after it, another tick (or instance) may retry.
        lease = now + timedelta(seconds=self.policy.deadline_seconds * 2 + 5)
        taken = Counter(self.active)
        jobs = []
        for row in rows:
            if len(jobs) >= room:
                break
            still_due = [WebhookDelivery.id == row.id, WebhookDelivery.status == "pending",
                         WebhookDelivery.next_attempt_at == row.next_attempt_at]
            if row.url is None:  # the webhook went after the alert was written
                session.execute(update(WebhookDelivery).where(*still_due).values(status="cancelled"))
                continue
            receiver = receiver_of(row.url, self.policy)
            if taken[receiver] >= self.policy.per_receiver:
                continue  # its turn comes when one of its deliveries ends
            leased = session.execute(update(WebhookDelivery).where(*still_due).values(
                next_attempt_at=lease, attempts=WebhookDelivery.attempts + 1))
            if leased.rowcount == 1:
                taken[receiver] += 1
                jobs.append(Job(row.id, row.member_id, row.attempts + 1, lease, row.url, row.secret, row.body,
                                receiver))
        return jobs

    def start(self, jobs: list[Job]):
        """Send each in a green thread of its own; not waited for."""
        for job in jobs:
            self.active[job.receiver] += 1
            self._running[job.delivery_id] = job
            self._threads.add(eventlet.spawn(self._run, job))

    def _run(self, job: Job):
        try:
            self.deliver(job)
        except Exception:  # a bug, not a receiver's failure: the lease runs out and it is tried again
            log.exception("webhook delivery %s: not recorded", job.delivery_id)
        finally:
            self.active[job.receiver] -= 1
            if self.active[job.receiver] <= 0:
                del self.active[job.receiver]
            self._running.pop(job.delivery_id, None)
            self._threads.discard(eventlet.getcurrent())

    # -- one delivery ---------------------------------------------------------------------

    def deliver(self, job: Job) -> str | None:
        """One attempt, then its outcome recorded; why it failed, or None."""
        body = job.body.encode()
        headers = outbound.signed_headers(job.secret, job.delivery_id, body)
        error = outbound.attempt(job.url, body, headers, self.policy, self.resolver, self.tls_context)
        self.record(job, error)
        return error

    def record(self, job: Job, error: str | None):
        status, at = domain.after_attempt(job.attempts, error, naive_utcnow())
        values = {"status": status, "last_error": error}
        if status == "delivered":
            values["delivered_at"] = at
        elif status == "pending":
            values["next_attempt_at"] = at
        with self._recording, Session(self.engine) as session:
            # Only while the claim holds: a delivery cancelled, or claimed again after the lease, is left be.
            session.execute(update(WebhookDelivery).where(
                WebhookDelivery.id == job.delivery_id, WebhookDelivery.status == "pending",
                WebhookDelivery.next_attempt_at == job.lease).values(**values))
            session.commit()
        if status == "failed":
            log.warning("webhook delivery %s failed %d times (%s); given up", job.delivery_id, job.attempts, error)

    def stop(self):
        """Deliveries under way are dropped; their leases run out and they are tried again."""
        for thread in list(self._threads):
            thread.kill()


class WebhookDeliveries(DependencyProvider):
    """Gives workers the process's one `Deliveries`, with a database engine
    of its own (one connection), so that deliveries never take a connection
    the inbox or the event handlers need. `resolver`: for tests."""

    def __init__(self, resolver: outbound.Resolver | None = None, **kwargs):
        super().__init__(**kwargs)
        self.resolver = resolver
        self.deliveries: Deliveries | None = None
        self.engine = None

    def setup(self):
        config = self.container.config
        self.engine = make_engine(config["DB_URL"], pool_size=1)
        self.deliveries = Deliveries(outbound.Policy.from_config(config), self.engine,
                                     resolver=self.resolver or outbound.system_resolver)

    def stop(self):
        if self.deliveries is not None:
            self.deliveries.stop()
        if self.engine is not None:
            self.engine.dispose()

    kill = stop

    def get_dependency(self, worker_ctx) -> Deliveries:
        return self.deliveries
