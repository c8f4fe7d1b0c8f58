"""Benchmark: a campaign's live totals cost the same at 10 thousand and at
1 million donations, because they are running aggregates, not a scan.

    make bench      # or: .venv/bin/python bench/campaign_totals.py --sizes 10000 1000000

For each size: a fresh stack (every service its own process, throwaway vhost),
its donations database filled directly with N donations to one campaign (and
the campaign's aggregates to match), then timed through the gateway:
GET /api/v1/campaigns/{id} and POST .../donations. For contrast, the scan the
aggregates replace (SUM over the campaign's donations) is timed in SQL."""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import requests
from sqlalchemy import func, insert, select

from services.common import config as linli_config
from services.common.clock import naive_utcnow
from services.common.db import make_engine
from services.contracts.donations import ITEM_CATEGORIES
from services.donations.models import Campaign, Donation, Stock
from services.gateway import accounts
from services.ops.stack import Stack
from services.ops.vhost import Vhost

CHUNK = 50_000


def fill(db_url: str, size: int) -> str:
    """One campaign with `size` cash donations of 100 fen each, and its aggregates."""
    engine = make_engine(db_url, pool_size=1)
    campaign_id, code, now = uuid.uuid4().hex, "BENCH1", naive_utcnow()
    with engine.begin() as connection:
        connection.execute(insert(Campaign).values(
            id=campaign_id, code=code, name="Bench drive", goal_fen=10 ** 12, starts_on=date.today() - timedelta(1),
            ends_on=date.today() + timedelta(1), status="open", created_by="bench", created_at=now,
            cash_fen=100 * size, donation_count=size, last_receipt_seq=size))
        connection.execute(insert(Stock), [{"campaign_id": campaign_id, "category": c, "received": 0,
                                            "dispatched": 0} for c in ITEM_CATEGORIES])
    for start in range(0, size, CHUNK):
        rows = [{"id": uuid.uuid4().hex, "campaign_id": campaign_id, "seq": seq, "receipt_no": f"{code}-{seq:06d}",
                 "verification_code": "BENCHCODE", "kind": "cash", "amount_fen": 100, "anonymous": True,
                 "recorded_by": "bench", "created_at": now}
                for seq in range(start + 1, min(start + CHUNK, size) + 1)]
        with engine.begin() as connection:
            connection.execute(insert(Donation), rows)
        print(f"  filled {min(start + CHUNK, size):>9,} of {size:,} donations", flush=True)
    engine.dispose()
    return campaign_id


def timed(call, times: int) -> list[float]:
    seconds = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def ms(seconds: list[float]) -> str:
    ordered = sorted(s * 1000 for s in seconds)
    return f"p50 {statistics.median(ordered):6.1f} ms  p95 {ordered[int(0.95 * (len(ordered) - 1))]:6.1f} ms"


def measure(size: int, reads: int, writes: int) -> dict:
    vhost = Vhost(linli_config.amqp_uri(), prefix="linli-bench").create()
    with tempfile.TemporaryDirectory() as folder:
        stack = Stack(Path(folder) / "var", env=dict(os.environ, AMQP_URI=vhost.amqp_uri), port=18100)
        try:
            stack.prepare()
            campaign_id = fill(stack.db_url("donations"), size)
            accounts.create_admin(stack.db_url("gateway"), "bench-admin", "bench-password", "Bench")
            stack.start()
            if not stack.wait_ready(timeout=120):
                raise SystemExit("the stack did not become ready")
            api = stack.url + "/api/v1"
            token = requests.post(api + "/auth/token", json={"username": "bench-admin", "password": "bench-password"},
                                  timeout=10).json()["access_token"]
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            campaign_url = f"{api}/campaigns/{campaign_id}"
            assert session.get(campaign_url, timeout=10).json()["totals"]["donations"] == size
            read = timed(lambda: session.get(campaign_url, timeout=10).raise_for_status(), reads)
            write = timed(lambda: session.post(campaign_url + "/donations", timeout=10,
                                               json={"kind": "cash", "amount_fen": 100, "anonymous": True},
                                               headers={"Idempotency-Key": uuid.uuid4().hex}).raise_for_status(),
                          writes)
            totals = session.get(campaign_url, timeout=10).json()["totals"]
            assert totals["donations"] == size + writes and totals["cash_fen"] == 100 * (size + writes)
            engine = make_engine(stack.db_url("donations"), pool_size=1)
            with engine.connect() as connection:
                scan = timed(lambda: connection.execute(
                    select(func.sum(Donation.amount_fen), func.count()).where(Donation.campaign_id == campaign_id)
                ).one(), 5)
            engine.dispose()
            return {"read": read, "write": write, "scan": scan}
        finally:
            stack.stop()
            vhost.delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--writes", type=int, default=100)
    args = parser.parse_args()
    results = {}
    for size in args.sizes:
        print(f"{size:,} donations:", flush=True)
        results[size] = measure(size, args.reads, args.writes)
    print(f"\nmachine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"SQLite, one process per service")
    for size, result in results.items():
        print(f"{size:>9,} donations  GET campaign {ms(result['read'])}   POST donation {ms(result['write'])}"
              f"   (a SUM scan instead: {ms(result['scan'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
