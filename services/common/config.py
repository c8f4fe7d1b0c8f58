"""Service configuration: one nameko YAML file per service under deploy/config,
with `${ENV_VAR:default}` substitution, so the same file serves `nameko run`,
`linli up` and the tests."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml
from nameko.cli.main import setup_yaml_parser

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "deploy" / "config"

DEFAULT_AMQP_URI = "amqp://guest:guest@localhost:5672/"

# The kernel's settings that no config file states, and their one home. Every
# other setting's default is in deploy/config/<service>.yml, and only there.
DEFAULTS = {
    "IDEMPOTENCY_KEEP_HOURS": 24,     # how long a write's Idempotency-Key and answer are kept
    "DB_POOL_SIZE": 0,                # a process's database connections; 0: max_workers + 2
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
    """A kernel setting: as the service's config file states it (OUTBOX_GRACE_SECONDS,
    EVENT_MAX_ATTEMPTS, RPC_TIMEOUT ...), or, for one no file states, DEFAULTS here."""
    return config.get(key, DEFAULTS[key]) if key in DEFAULTS else config[key]


def stated(key: str, env=None, service: str = "gateway"):
    """A setting as deploy/config/<service>.yml states it (`KEY: ${VAR:default}`),
    for a process that loads no service's file (the operator's commands, `linli
    up`): VAR from `env` (default os.environ), else the file's default. One the
    files state alike (QUEUE_DELIVERY_LIMIT) is read from the gateway's."""
    env = os.environ if env is None else env
    match = re.search(rf"^{key}: \$\{{(\w+):([^}}]*)\}}$", config_path(service).read_text(), re.M)
    if match is None:
        raise KeyError(f"{config_path(service).name} states no {key}")
    return yaml.safe_load(env.get(match[1]) or match[2])


def queue_delivery_limit(config: str | dict | None) -> int:
    """x-delivery-limit of every durable queue: the service's QUEUE_DELIVERY_LIMIT,
    or for a bare URI or the operator's settings, as the files state it."""
    if isinstance(config, dict) and "QUEUE_DELIVERY_LIMIT" in config:
        return int(config["QUEUE_DELIVERY_LIMIT"])
    return int(stated("QUEUE_DELIVERY_LIMIT"))


def amqp_uri() -> str:
    return os.environ.get("AMQP_URI", DEFAULT_AMQP_URI)


def amqp_ssl(env=None):
    """nameko's AMQP_SSL from the environment, as the config files read it:
    LINLI_AMQP_SSL (YAML), or else LINLI_AMQP_CA_FILE, the CA that signed the
    broker's certificate: verified, and its name against the URI's host."""
    env = os.environ if env is None else env
    if env.get("LINLI_AMQP_SSL"):
        return yaml.safe_load(env["LINLI_AMQP_SSL"])
    if env.get("LINLI_AMQP_CA_FILE"):
        # server_hostname None: kombu puts the URI's host there, which turns on the name check.
        return {"ca_certs": env["LINLI_AMQP_CA_FILE"], "cert_reqs": 2, "server_hostname": None}  # 2: CERT_REQUIRED
    return None


def with_amqp_ssl(env: dict) -> dict:
    """`env` with LINLI_AMQP_SSL spelled out for the config files (from LINLI_AMQP_CA_FILE)."""
    options = amqp_ssl(env)
    return env if options is None else {**env, "LINLI_AMQP_SSL": json.dumps(options)}


def broker(env=None) -> dict:
    """The operator's broker settings (`linli` commands): AMQP_URI and AMQP_SSL."""
    env = os.environ if env is None else env
    return {"AMQP_URI": env.get("AMQP_URI", DEFAULT_AMQP_URI), "AMQP_SSL": amqp_ssl(env),
            "QUEUE_DELIVERY_LIMIT": stated("QUEUE_DELIVERY_LIMIT", env)}
