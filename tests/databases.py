"""Where the tests keep a service's data: a SQLite file by default, or, when
LINLI_TEST_POSTGRES names a PostgreSQL server (`make test-postgres`), a new
database there for each one asked for, dropped when the test session ends."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

# e.g. postgresql://postgres@127.0.0.1:5432 (no database name: the tests make their own)
POSTGRES_SERVER = os.environ.get("LINLI_TEST_POSTGRES", "").rstrip("/")
PREFIX = f"linli_test_{os.getpid()}_"

_created: list[str] = []


def on_postgres() -> bool:
    return bool(POSTGRES_SERVER)


def _server_engine():
    return create_engine(f"{POSTGRES_SERVER}/postgres", poolclass=NullPool, isolation_level="AUTOCOMMIT")


def database_url(folder: Path, name: str) -> str:
    """A new, empty database for `name` (a service, usually)."""
    if not on_postgres():
        return f"sqlite:///{Path(folder).resolve() / name}.db"
    database = f"{PREFIX}{uuid.uuid4().hex[:8]}_{name}"
    engine = _server_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
    finally:
        engine.dispose()
    _created.append(database)
    return f"{POSTGRES_SERVER}/{database}"


def service_database_env(folder: Path, services) -> dict[str, str]:
    """LINLI_<SERVICE>_DB for each service, as `linli up` and `nameko run` read them."""
    return {f"LINLI_{service.upper()}_DB": database_url(folder, service) for service in services}


def drop_stale():
    """Drop databases left by a test session that died before dropping its own."""
    engine = _server_engine()
    try:
        with engine.connect() as connection:
            names = connection.execute(text(
                "SELECT datname FROM pg_database WHERE datname LIKE 'linli\\_test\\_%'")).scalars().all()
            for name in names:
                pid = int(name.split("_")[2])
                if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def drop_created():
    """Drop this session's databases, whoever still holds a connection to them."""
    if not _created:
        return
    engine = _server_engine()
    try:
        with engine.connect() as connection:
            while _created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{_created.pop()}" WITH (FORCE)'))
    finally:
        engine.dispose()
