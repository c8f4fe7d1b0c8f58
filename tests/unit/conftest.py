"""Shared fixtures of the unit suite: services' databases (in-memory SQLite,
or PostgreSQL under `make test-postgres`), a stand-in for the per-worker
database a nameko worker is given, workers_of (the one way a test makes a
service's workers), and the workers of welfare, notifications, patrol and
donations that several files share."""
from __future__ import annotations

import copy
import functools
import importlib.util
import json
import os
from pathlib import Path
from unittest import mock

import eventlet
import pytest
from eventlet.event import Event
from nameko.testing.services import worker_factory
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from services.common import config as linli_config
from services.common.db import CommitNow, UnitOfWork, make_engine
from services.donations.service import DonationsService
from services.gateway import models as gateway_models
from services.notifications import models as notification_models
from services.notifications.service import NotificationsService
from services.patrol import models as patrol_models
from services.patrol.service import PatrolService
from services.welfare import models as welfare_models
from services.welfare.service import WelfareService
from tests import databases


_postgres_engines: dict[str, Engine] = {}


def empty_database(base, source: str) -> Engine:
    """A service's tables, empty: a new in-memory SQLite database, or on
    PostgreSQL the session's one database of this service, which release()
    empties after each test (a PostgreSQL database per test would cost more
    than the test)."""
    if not databases.on_postgres():
        engine = make_engine("sqlite://")
        base.metadata.create_all(engine)
        return engine
    engine = _postgres_engines.get(source)
    if engine is None:
        engine = make_engine(databases.database_url(None, f"unit_{source}"), pool_size=5)
        base.metadata.create_all(engine)
        _postgres_engines[source] = engine
    return engine


def _truncate(engine: Engine, base):
    tables = ", ".join(f'"{table.name}"' for table in base.metadata.sorted_tables)
    with engine.begin() as connection:
        # A session left open would make TRUNCATE wait forever: fail instead.
        connection.execute(text("SET LOCAL lock_timeout = '10s'"))
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


class ServiceDb:
    """What a worker sees (same interface as services.common.db.WorkerDatabase),
    over an engine the test owns. Build one per simulated worker so that each
    call gets its own session, as in production."""

    def __init__(self, base, kernel, source: str, engine=None):
        self.base = base
        self.kernel = kernel
        self.source = source
        self._owns_engine = engine is None
        self.engine = empty_database(base, source) if engine is None else engine
        self._views: list[ServiceDb] = [self]  # this one and each worker() made from it
        self._sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)
        self._session: Session | None = None
        self.committer = CommitNow()  # no relay: events stay in the outbox; @idempotent swaps it, as on WorkerDatabase

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self._sessionmaker()
        return self._session

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session, self.kernel, self.source, self.committer)

    def in_group(self, run, orm=True):
        """A @grouped call, here alone in its transaction (tests/unit/test_group_commit.py
        runs the real group commit)."""
        return run()

    def in_group_many(self, runs, orm=True):
        outcomes = []
        for _request_id, run in runs:
            try:
                outcomes.append((run(), None))
            except Exception as exc:
                outcomes.append((None, exc))
        return outcomes

    def relay_pending(self) -> int:
        return 0

    def worker(self) -> "ServiceDb":
        """Another worker's view of the same database."""
        view = ServiceDb(self.base, self.kernel, self.source, engine=self.engine)
        self._views.append(view)
        return view

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None

    def close_workers(self):
        """Close the workers' views made so far and forget them: for a test
        that makes many workers one after another (Hypothesis's examples),
        so that open sessions do not pile up until release()."""
        for view in self._views[1:]:
            view.close()
        del self._views[1:]

    def release(self):
        """Close this view and the workers' views made from it; the database
        goes with them (in memory) or is emptied for the next test (PostgreSQL)."""
        for view in self._views:
            view.close()
        if not self._owns_engine:
            return
        if databases.on_postgres():
            _truncate(self.engine, self.base)
        else:
            self.engine.dispose()

    # -- for assertions, in a session of their own --------------------------------

    def outbox(self, event_type: str | None = None) -> list[dict]:
        """Every outbox row, with its envelope decoded."""
        query = select(self.kernel.outbox)
        if event_type is not None:
            query = query.where(self.kernel.outbox.c.event_type == event_type)
        with Session(self.engine) as session:
            rows = session.execute(query).mappings().all()
        return [{**row, "envelope": json.loads(row["envelope"])} for row in rows]

    def count(self, model) -> int:
        with Session(self.engine) as session:
            return len(session.scalars(select(model)).all())


def category_seed(service: str) -> tuple:
    """(code, label_zh, label_en) of the categories the service's migration
    seeds: the unit databases are made from the models, and get the same."""
    path, = (Path(__file__).parents[2] / "services" / service / "migrations" / "versions").glob("*_categories.py")
    spec = importlib.util.spec_from_file_location(f"{service}_categories_migration", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SEED


def seed_categories(db: "ServiceDb") -> "ServiceDb":
    with db.engine.begin() as connection:
        connection.execute(insert(db.base.metadata.tables["categories"]), [
            {"code": code, "label_zh": zh, "label_en": en, "retired": False, "position": i}
            for i, (code, zh, en) in enumerate(category_seed(db.source))])
    return db


@pytest.fixture
def welfare_db():
    db = seed_categories(ServiceDb(welfare_models.Base, welfare_models.kernel, "welfare"))
    yield db
    db.release()


@pytest.fixture
def notifications_db():
    db = ServiceDb(notification_models.Base, notification_models.kernel, "notifications")
    yield db
    db.release()


@pytest.fixture
def gateway_db():
    db = ServiceDb(gateway_models.Base, gateway_models.kernel, "gateway")
    yield db
    db.release()



@pytest.fixture
def patrol_db():
    db = seed_categories(ServiceDb(patrol_models.Base, patrol_models.kernel, "patrol"))
    yield db
    db.release()


@pytest.fixture
def volunteers_db():
    from services.volunteers import models as volunteer_models

    db = ServiceDb(volunteer_models.Base, volunteer_models.kernel, "volunteers")
    yield db
    db.release()


@pytest.fixture
def donations_db():
    from services.donations import models as donation_models

    db = seed_categories(ServiceDb(donation_models.Base, donation_models.kernel, "donations"))
    yield db
    db.release()


@functools.cache
def _shipped_config(service: str) -> dict:
    with mock.patch.dict(os.environ, clear=True):
        config = linli_config.load(service)
    config.pop("LOGGING", None)
    return config


def service_config(service: str, **overrides) -> dict:
    """deploy/config/<service>.yml as it reads with no environment (the
    defaults it ships with, their one home), with `overrides`: a worker built
    in a test gets every setting the service really has."""
    return {**copy.deepcopy(_shipped_config(service)), **overrides}


def workers_of(service_cls, db: ServiceDb, dependencies: dict | None = None, **settings):
    """new_worker(**more): a new worker of service_cls per call, as nameko
    makes one per call: another view of `db` with a session of its own, the
    service's shipped settings (service_config) with `settings` and then
    `more` over them, and `dependencies` (e.g. webhooks=sender) besides db;
    what is not given is a mock, as worker_factory makes it. The views
    close with db.release(), so a fixture needs no teardown of its own."""
    def new_worker(**more):
        config = service_config(service_cls.name, **{**settings, **more})
        return worker_factory(service_cls, db=db.worker(), config=config, **(dependencies or {}))

    return new_worker


# The follow-up rule's days in the welfare tests, stated here rather than
# trusted to welfare.yml: the tests reckon their dates from it.
FOLLOWUP_AFTER_DAYS = 30


@pytest.fixture
def welfare(welfare_db):
    return workers_of(WelfareService, welfare_db, FOLLOWUP_AFTER_DAYS=FOLLOWUP_AFTER_DAYS)


@pytest.fixture
def notifications(notifications_db):
    return workers_of(NotificationsService, notifications_db)


@pytest.fixture
def patrol(patrol_db):
    """With the settings as shipped, the forgotten-patrol cap (4 hours) among them."""
    return workers_of(PatrolService, patrol_db)


@pytest.fixture
def donations(donations_db):
    return workers_of(DonationsService, donations_db)


def served_in_turn(slot) -> list[str]:
    """Who gets a bound's one slot first (`slot()`: a context manager holding
    it): a request that waited for it, or a newcomer that asks the moment the
    slot is given back, before the waiter has run. ["waited", "newcomer"] when
    slots go in the order asked."""
    release, served = Event(), []

    def hold_then_ask_again():
        with slot():
            release.wait()
        with slot():  # at once, before anything else has run
            served.append("newcomer")

    def wait_in_line():
        with slot():
            served.append("waited")

    holder = eventlet.spawn(hold_then_ask_again)
    eventlet.sleep(0)
    waiter = eventlet.spawn(wait_in_line)
    eventlet.sleep(0)
    release.send()
    holder.wait()
    waiter.wait()
    return served
