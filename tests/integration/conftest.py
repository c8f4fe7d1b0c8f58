"""One service at a time in a nameko container, against the real RabbitMQ
(a throwaway vhost) and a real SQLite file, migrated with Alembic."""
import json

import pytest
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange
from sqlalchemy import create_engine, func, select

from services.common import config as linli_config
from services.common import migrations
from services.notifications.models import Alert
from tests import databases
from tests.vouching import vouched_rpc, with_caller_keys

ADMIN = {"id": "a" * 32, "roles": ["admin"]}
ASSIGNEE = "b" * 32
HOUSEHOLD = {"compound": "Xingfu Garden", "address": "Building 3, Room 401",
             "people": [{"name": "李秀英", "relation": "mother", "birth_year": 1946, "conditions": ["frail"]}]}


def party_member(member_id: str) -> dict:
    """The assignee's account as the gateway vouches for it with the call (welfare.domain.check_assignee)."""
    return {"id": member_id, "party_member": True, "active": True}


def open_case(config) -> str:
    """A household and its case, through welfare's RPC; the case's id."""
    with vouched_rpc(config, "welfare") as welfare:
        household = welfare.create_household(HOUSEHOLD, ADMIN)
        case = welfare.open_case({"household_id": household["id"], "categories": ["elderly"],
                                  "summary": "Needs the minimum-living allowance.",
                                  "assignee_id": ASSIGNEE}, ADMIN, party_member(ASSIGNEE))
    return case["id"]


def alerts_for(config, case_id: str) -> list:
    engine = create_engine(config["DB_URL"])
    try:
        with engine.connect() as connection:
            return connection.execute(select(Alert).where(Alert.ref_id == case_id)).all()
    finally:
        engine.dispose()


def unsent(config, kernel) -> int:
    """Outbox rows not yet published."""
    engine = create_engine(config["DB_URL"])
    try:
        with engine.connect() as connection:
            return len(connection.execute(
                select(kernel.outbox.c.id).where(kernel.outbox.c.sent_at.is_(None))).all())
    finally:
        engine.dispose()


@pytest.fixture
def service_config(vhost, tmp_path):
    def make(service: str, *, migrate: bool = True, **overrides) -> dict:
        config = linli_config.load(service)
        config.pop("LOGGING", None)
        db_url = databases.database_url(tmp_path, service)
        if migrate:
            migrations.upgrade(service, db_url)
        config.update({
            "AMQP_URI": vhost.amqp_uri, "DB_URL": db_url,
            "OUTBOX_GRACE_SECONDS": 0, "EVENT_RETRY_BACKOFF": 0.01, "EVENT_MAX_ATTEMPTS": 3,
        })
        config.update(overrides)
        return with_caller_keys(config)
    return make


@pytest.fixture
def start_service(vhost, container_factory):
    """Start a service container; containers stop before the vhost goes."""
    def start(service_cls, config):
        container = container_factory(service_cls, config)
        container.start()
        return container
    return start


def count(config: dict, table) -> int:
    """Rows in a table of the service's database, read from outside the service."""
    engine = create_engine(config["DB_URL"])
    try:
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(table))
    finally:
        engine.dispose()


class EventTap:
    """A queue of our own on a service's event exchange that hears every event type."""

    def __init__(self, amqp_uri: str, source: str):
        self.connection = Connection(amqp_uri)
        self.queue = Queue(f"test-tap-{source}", exchange=get_event_exchange(source, {}),
                           routing_key="#", auto_delete=True)
        self.simple = self.connection.SimpleQueue(self.queue)
        self.seen: list[dict] = []

    def drain(self) -> list[dict]:
        while True:
            try:
                message = self.simple.get(timeout=0.2)
            except self.simple.Empty:
                return self.seen
            self.seen.append(json.loads(message.body))
            message.ack()

    def types(self) -> list[str]:
        return [envelope["type"] for envelope in self.drain()]

    def close(self):
        self.simple.close()
        self.connection.close()
