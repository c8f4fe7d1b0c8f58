"""Each service's Alembic migrations build exactly the tables its models
declare: a model changed without a migration fails here."""
from importlib import import_module

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from services.common import migrations
from services.ops.stack import SERVICES
from tests import databases


@pytest.mark.parametrize("service", SERVICES)
def test_the_migrations_match_the_models(service, tmp_path):
    url = databases.database_url(tmp_path, service)
    migrations.upgrade(service, url)
    metadata = import_module(f"services.{service}.models").Base.metadata
    engine = create_engine(url)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()
