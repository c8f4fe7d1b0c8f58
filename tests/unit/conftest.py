"""Shared fixtures of the unit suite: services' databases in in-memory SQLite,
and a stand-in for the per-worker database a nameko worker is given."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import UnitOfWork, make_engine
from services.gateway import models as gateway_models
from services.notifications import models as notification_models
from services.patrol import models as patrol_models
from services.welfare import models as welfare_models


class SqliteDb:
    """What a worker sees (same interface as services.common.db.WorkerDatabase),
    over an engine the test owns. Build one per simulated worker so that each
    call gets its own session, as in production."""

    def __init__(self, base, kernel, source: str, engine=None):
        self.base = base
        self.kernel = kernel
        self.source = source
        if engine is None:
            engine = make_engine("sqlite://")
            base.metadata.create_all(engine)
        self.engine = engine
        self._sessionmaker = sessionmaker(bind=engine, expire_on_commit=False)
        self._session: Session | None = None
        self.request = None  # set by @idempotent, as on WorkerDatabase

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = self._sessionmaker()
        return self._session

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.session, self.kernel, self.source, relay=None, request=self.request)

    def relay_pending(self) -> int:
        return 0

    def worker(self) -> "SqliteDb":
        """Another worker's view of the same database."""
        return SqliteDb(self.base, self.kernel, self.source, engine=self.engine)

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None

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


@pytest.fixture
def welfare_db():
    db = SqliteDb(welfare_models.Base, welfare_models.kernel, "welfare")
    yield db
    db.close()
    db.engine.dispose()


@pytest.fixture
def notifications_db():
    db = SqliteDb(notification_models.Base, notification_models.kernel, "notifications")
    yield db
    db.close()
    db.engine.dispose()


@pytest.fixture
def gateway_db():
    db = SqliteDb(gateway_models.Base, gateway_models.kernel, "gateway")
    yield db
    db.close()
    db.engine.dispose()



@pytest.fixture
def patrol_db():
    db = SqliteDb(patrol_models.Base, patrol_models.kernel, "patrol")
    yield db
    db.close()
    db.engine.dispose()


@pytest.fixture
def donations_db():
    from services.donations import models as donation_models

    db = SqliteDb(donation_models.Base, donation_models.kernel, "donations")
    yield db
    db.close()
    db.engine.dispose()
