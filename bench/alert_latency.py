"""Benchmark: how long from `POST /api/v1/cases` until the assignee has the
alert, live on the SSE stream, with every service as its own process.

    make bench          # or: .venv/bin/python bench/alert_latency.py --cases 200 --burst 200

Starts a stack in a throwaway vhost and a temporary folder, opens cases one
by one (latency), then a burst from several client threads (throughput), and
prints the figures with the machine they were measured on."""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from services.common import config as linli_config
from services.gateway import accounts
from services.ops.stack import Stack
from services.ops.vhost import Vhost

HOUSEHOLD = {"compound": "Xingfu Garden", "address": "Building 1", "people": [
    {"name": "Bench", "relation": "self", "birth_year": 1950, "conditions": []}]}


class AlertStream(threading.Thread):
    """Notes the arrival time of each alert, by case id."""

    def __init__(self, url: str, token: str):
        super().__init__(daemon=True)
        self.arrived: dict[str, float] = {}
        self.response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=60)
        self.response.raise_for_status()

    def run(self):
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("data: "):
                    self.arrived[json.loads(line[6:])["ref"]["id"]] = time.perf_counter()
        except requests.RequestException:
            pass  # the stack stopped at the end of the run


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (f"{name:32} n={len(ms):4}  p50 {statistics.median(ms):7.1f} ms  p95 {percentile(ms, 0.95):7.1f} ms"
            f"  max {max(ms):7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=200, help="cases opened one by one")
    parser.add_argument("--burst", type=int, default=200, help="cases opened at once, from --clients threads")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    vhost = Vhost(linli_config.amqp_uri(), prefix="linli-bench").create()
    with tempfile.TemporaryDirectory() as folder:
        stack = Stack(Path(folder) / "var", env=dict(os.environ, AMQP_URI=vhost.amqp_uri), port=18000)
        try:
            stack.prepare()
            accounts.create_admin(stack.db_url("gateway"), "bench-admin", "bench-password", "Bench")
            stack.start()
            if not stack.wait_ready(timeout=90):
                print("the stack did not become ready", file=sys.stderr)
                return 1
            return run(stack, args)
        finally:
            stack.stop()
            vhost.delete()


def run(stack: Stack, args) -> int:
    api = stack.url + "/api/v1"

    def token(username, password):
        return requests.post(api + "/auth/token", json={"username": username, "password": password},
                             timeout=10).json()["access_token"]

    admin = {"Authorization": f"Bearer {token('bench-admin', 'bench-password')}"}
    member = requests.post(api + "/members", headers=admin, timeout=10, json={
        "username": "bench-member", "password": "bench-password", "name": "Bench",
        "roles": ["member"], "party_member": True}).json()
    household_id = requests.post(api + "/households", json=HOUSEHOLD, headers=admin, timeout=10).json()["id"]
    stream = AlertStream(api + "/me/alerts/stream", token("bench-member", "bench-password"))
    stream.start()
    session = requests.Session()
    session.headers.update(admin)

    def open_case() -> tuple[str, float, float]:
        started = time.perf_counter()
        answer = session.post(api + "/cases", timeout=30, json={
            "household_id": household_id, "categories": ["elderly"], "summary": "bench",
            "assignee_id": member["id"]})
        answer.raise_for_status()
        return answer.json()["id"], started, time.perf_counter()

    def wait_alerts(case_ids, timeout=120):
        deadline = time.monotonic() + timeout
        while not all(c in stream.arrived for c in case_ids):
            if time.monotonic() > deadline:
                raise SystemExit(f"{sum(c not in stream.arrived for c in case_ids)} alert(s) never arrived")
            time.sleep(0.01)

    open_case()  # warm up connections and caches
    http, alert = [], []
    for _ in range(args.cases):
        case_id, started, answered = open_case()
        wait_alerts([case_id])
        http.append(answered - started)
        alert.append(stream.arrived[case_id] - started)

    burst_started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        opened = list(pool.map(lambda _: open_case(), range(args.burst)))
    all_answered = time.perf_counter()
    wait_alerts([case_id for case_id, _, _ in opened])
    all_alerted = max(stream.arrived[case_id] for case_id, _, _ in opened)

    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, {platform.platform()}")
    print(f"one at a time ({args.cases} cases, each waited for):")
    print("  " + summary("POST /cases answered", http))
    print("  " + summary("case opened -> alert on SSE", alert))
    print(f"burst ({args.burst} cases from {args.clients} clients):")
    print(f"  all answered in {all_answered - burst_started:.2f} s "
          f"({args.burst / (all_answered - burst_started):.0f} cases/s); "
          f"all alerted in {all_alerted - burst_started:.2f} s")
    print("  " + summary("case opened -> alert on SSE", [stream.arrived[c] - s for c, s, _ in opened]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
