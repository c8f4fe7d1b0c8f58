"""Service configuration: one nameko YAML file per service under deploy/config,
with `${ENV_VAR:default}` substitution, so the same file serves `nameko run`,
`linli up` and the tests."""
from __future__ import annotations

import os
from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "deploy" / "config"

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"

# Defaults the kernel falls back to when a config file does not say.
DEFAULTS = {
    "OUTBOX_RELAY_INTERVAL": 2.0,     # seconds between relay sweeps
    "OUTBOX_GRACE_SECONDS": 5.0,      # a row younger than this is left to the worker that wrote it
    "EVENT_MAX_ATTEMPTS": 5,          # handler attempts before a message is dead-lettered
    "EVENT_RETRY_BACKOFF": 0.2,       # seconds, doubled per attempt
    "RPC_TIMEOUT": 10.0,              # the gateway's deadline for one RPC call
    "IDEMPOTENCY_KEEP_HOURS": 24,     # how long a write's Idempotency-Key and answer are kept
}


def config_path(service: str) -> Path:
    return CONFIG_DIR / f"{service}.yml"


def load(service: str) -> dict:
    """The service's nameko config with environment variables substituted."""
    setup_yaml_parser()
    with open(config_path(service)) as f:
        config = yaml.safe_load(f) or {}
    return config


def setting(config: dict, key: str):
    return config.get(key, DEFAULTS[key])


def amqp_uri() -> str:
    return os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)
