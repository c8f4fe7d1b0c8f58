"""The long fault runs (`make fault`): the whole stack as processes on a
private RabbitMQ node (tests/broker_node.py), which they restart; services
SIGKILLed and started again; databases held locked; a large backlog."""
import json
import socket
import sqlite3
import threading
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from services.ops.stack import BACKENDS, Stack
from tests.broker_node import BrokerNode
from tests.e2e.conftest import free_port, running_stack

REPORT_DIR = Path(__file__).resolve().parents[2] / "var"


def _metrics_base() -> int:
    """A first port with those after it free too (one per backend, and linli up's own among them)."""
    for _ in range(50):
        base = free_port()
        ports = [base + offset for offset in range(len(BACKENDS) + 1)]
        try:
            for port in ports:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free metrics ports in a row")


def fault_stack(node: BrokerNode, var: Path, start: bool = True, **env_overrides):
    """tests/e2e's running_stack, on the private node, with each backend's
    metrics on a port of its own (to count deliveries)."""
    return running_stack(node, var, start=start, metrics_port=_metrics_base(), ready_timeout=120, **env_overrides)


def hold_locked(stack: Stack, service: str, seconds: float) -> float:
    """Take SQLite's write lock on a service's database and keep it: every
    writer there waits (or fails after its busy timeout). Returns how long it was held."""
    connection = sqlite3.connect(stack.db_url(service).removeprefix("sqlite:///"), timeout=30,
                                 isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        taken = time.monotonic()
        time.sleep(seconds)
        connection.execute("COMMIT")
        return time.monotonic() - taken
    finally:
        connection.close()


def scrape(stack: Stack, service: str, index: int = 0) -> dict[tuple, float]:
    """One backend process's counters: {(name, label values...): value}."""
    port = stack.metrics_port_of(service, index)
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    counters = {}
    for family in text_string_to_metric_families(text):
        if family.name not in ("linli_events_consumed", "linli_events_published"):
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                counters[(family.name, *sorted(sample.labels.items()))] = sample.value
    return counters


class Counters:
    """Counters summed over every life of every process: a process's are
    banked just before it is killed (a delivery in the last milliseconds may be missed)."""

    def __init__(self):
        self.banked: dict[tuple, float] = {}
        self.lock = threading.Lock()

    def bank(self, stack: Stack, service: str):
        try:
            counters = scrape(stack, service)
        except requests.RequestException:
            return
        with self.lock:
            for key, value in counters.items():
                self.banked[key] = self.banked.get(key, 0) + value

    def total(self, stack: Stack) -> dict[tuple, float]:
        totals = dict(self.banked)
        for service in BACKENDS:
            try:
                counters = scrape(stack, service)
            except requests.RequestException:
                continue
            for key, value in counters.items():
                totals[key] = totals.get(key, 0) + value
        return totals


def consumed(totals: dict, queue: str, outcome: str) -> int:
    return int(totals.get(("linli_events_consumed", ("outcome", outcome), ("queue", queue)), 0))


def published(totals: dict, source: str, event_type: str) -> int:
    return int(totals.get(("linli_events_published", ("source", source), ("type", event_type)), 0))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def save_report(name: str, report: dict) -> Path:
    REPORT_DIR.mkdir(exist_ok=True)
    path = REPORT_DIR / name
    path.write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"\n{name}:\n{json.dumps(report, indent=2, sort_keys=True)}")
    return path
