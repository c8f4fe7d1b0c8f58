"""One service at a time in a nameko container, against the real RabbitMQ
(a throwaway vhost) and a real SQLite file, migrated with Alembic."""
import pytest
from sqlalchemy import create_engine, func, select

from services.common import config as linli_config
from services.common import migrations

ADMIN = {"id": "a" * 32, "roles": ["admin"]}


@pytest.fixture
def service_config(vhost, tmp_path):
    def make(service: str, *, migrate: bool = True, **overrides) -> dict:
        config = linli_config.load(service)
        config.pop("LOGGING", None)
        db_url = f"sqlite:///{tmp_path / service}.db"
        if migrate:
            migrations.upgrade(service, db_url)
        config.update({
            "AMQP_URI": vhost.amqp_uri, "DB_URL": db_url,
            "OUTBOX_GRACE_SECONDS": 0, "EVENT_RETRY_BACKOFF": 0.01, "EVENT_MAX_ATTEMPTS": 3,
        })
        config.update(overrides)
        return config
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
