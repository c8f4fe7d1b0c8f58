"""Alembic, per service: each service has `migrations/` beside its models."""
from __future__ import annotations

from importlib import import_module
from pathlib import Path

from alembic import command
from alembic.config import Config


def alembic_config(service: str, db_url: str) -> Config:
    package = import_module(f"services.{service}")
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(package.__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db_url)
    cfg.attributes["service"] = service
    return cfg


def upgrade(service: str, db_url: str):
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(service, db_url), "head")


def run_env(target_metadata):
    """The body of every service's migrations/env.py."""
    from alembic import context
    from sqlalchemy import engine_from_config, pool

    config = context.config
    if context.is_offline_mode():
        context.configure(url=config.get_main_option("sqlalchemy.url"),
                          target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
