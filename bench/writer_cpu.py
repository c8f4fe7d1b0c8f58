"""CPU per donation write in the donations process's own code, without the
broker or the gateway (issue 20): `record_donation` called by concurrent
green threads, each with a worker of its own, through the real group commit
(services/common/groupcommit.py) on a SQLite file, as `nameko run` would run
it but for the RPC around it. Beside it, the reference: the same rows (the
campaign's totals and receipt number, the gift, its outbox row, the key and
its answer) written with the sqlite3 module alone, in batches of the same size
and one commit each: what the database itself costs.

    .venv/bin/python bench/writer_cpu.py                 # 3,000 writes, 64 at once
    .venv/bin/python bench/writer_cpu.py --writes 5000 --concurrency 16

It prints the CPU milliseconds per write of each and their ratio."""
from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import eventlet  # noqa: E402

eventlet.monkey_patch()

from nameko.testing.services import worker_factory  # noqa: E402

from services.common import config as linli_config  # noqa: E402
from services.common import migrations  # noqa: E402
from services.common.db import Database  # noqa: E402
from services.donations.models import kernel  # noqa: E402
from services.donations.service import DonationsService  # noqa: E402

OFFICE = {"id": "bench-office", "roles": ["admin"]}
GIFT = {"kind": "cash", "amount_fen": 100, "anonymous": True}


class Published:
    """The relay without a broker: each committed row counts as confirmed at once."""

    def publish_committed(self, rows, on_sent):
        on_sent([row.id for row in rows])

    def settled(self, ids):
        pass

    def publish_now(self, ids):
        return 0


def linli_writes(folder: Path, writes: int, concurrency: int) -> dict:
    url = f"sqlite:///{folder / 'donations.db'}"
    migrations.upgrade("donations", url)
    provider = Database(kernel)
    provider.container = SimpleNamespace(config={**linli_config.load("donations"), "DB_URL": url},
                                         service_name="donations")
    provider.setup()
    provider.relay = Published()
    workers = [worker_factory(DonationsService, db=provider.get_dependency(object()),
                              config=provider.container.config) for _ in range(concurrency)]
    today = date.today()
    campaign = workers[0].create_campaign({"name": "bench", "goal_fen": 10 ** 10,
                                           "starts_on": (today - timedelta(days=1)).isoformat(),
                                           "ends_on": (today + timedelta(days=1)).isoformat()}, OFFICE)["id"]

    def gifts(index: int, count: int):
        for n in range(count):
            workers[index].record_donation(campaign, GIFT, OFFICE, idempotency_key=f"w{index}-{n}-{uuid.uuid4().hex}")

    pool = eventlet.GreenPool(concurrency)
    list(pool.starmap(gifts, [(i, 10) for i in range(concurrency)]))  # warm up: caches, the writer's connection
    batches_before, calls_before = provider.group().batches, provider.group().calls
    per_worker = writes // concurrency
    wall, cpu = time.perf_counter(), time.process_time()
    list(pool.starmap(gifts, [(i, per_worker) for i in range(concurrency)]))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    done = per_worker * concurrency
    batches = provider.group().batches - batches_before
    provider.stop()
    return {"writes": done, "per_s": done / wall, "cpu_ms": 1000 * cpu / done,
            "batch": (provider.group().calls - calls_before) / max(1, batches)}


def sqlite_writes(folder: Path, writes: int, batch: int) -> dict:
    """The same rows with sqlite3 alone (WAL, synchronous=FULL, as make_engine sets them)."""
    db = sqlite3.connect(folder / "reference.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript("""
        CREATE TABLE campaigns (id TEXT PRIMARY KEY, status TEXT, last_receipt_seq INT, cash_fen INT,
                                donation_count INT, goal_fen INT);
        CREATE TABLE donations (id TEXT PRIMARY KEY, campaign_id TEXT, seq INT, receipt_no TEXT UNIQUE,
                                verification_code TEXT, kind TEXT, amount_fen INT, anonymous INT,
                                recorded_by TEXT, created_at TEXT, UNIQUE (campaign_id, seq));
        CREATE TABLE outbox (id TEXT PRIMARY KEY, source TEXT, event_type TEXT, envelope TEXT, created_at TEXT,
                             sent_at TEXT, request_id TEXT);
        CREATE TABLE idempotent_requests (operation TEXT, key TEXT, fingerprint TEXT, response TEXT,
                                          created_at TEXT, PRIMARY KEY (operation, key));
        INSERT INTO campaigns VALUES ('c', 'open', 0, 0, 0, 1000000000000);
    """)
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, writes, batch):
        db.execute("BEGIN IMMEDIATE")
        for n in range(start, min(writes, start + batch)):
            key = f"k{n}"
            db.execute("SAVEPOINT call")
            db.execute("SELECT fingerprint, response FROM idempotent_requests WHERE operation = ? AND key = ?",
                       ("record_donation", key)).fetchone()
            db.execute("SELECT id, status FROM campaigns WHERE id = 'c'").fetchone()
            seq, cash, count = db.execute(
                "UPDATE campaigns SET last_receipt_seq = last_receipt_seq + 1, cash_fen = cash_fen + 100, "
                "donation_count = donation_count + 1 WHERE id = 'c' AND status = 'open' "
                "RETURNING last_receipt_seq, cash_fen, donation_count").fetchone()
            gift = uuid.uuid4().hex
            db.execute("INSERT INTO donations VALUES (?, 'c', ?, ?, 'ABCDEFGH', 'cash', 100, 1, 'o', ?)",
                       (gift, seq, f"C-{seq:06d}", "2026-12-04 00:00:00"))
            db.execute("INSERT INTO outbox VALUES (?, 'donations', 'donation_received', ?, ?, NULL, NULL)",
                       (uuid.uuid4().hex, json.dumps({"donation_id": gift, "cash_fen_total": cash}),
                        "2026-12-04 00:00:00"))
            db.execute("INSERT INTO idempotent_requests VALUES ('record_donation', ?, 'f', ?, ?)",
                       (key, json.dumps({"id": gift, "receipt_no": f"C-{seq:06d}"}), "2026-12-04 00:00:00"))
            db.execute("RELEASE call")
        db.execute("COMMIT")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"writes": writes, "per_s": writes / wall, "cpu_ms": 1000 * cpu / writes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64, help="green threads writing at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="linli-writer-cpu-") as folder:
        linli = linli_writes(Path(folder), args.writes, args.concurrency)
        bare = sqlite_writes(Path(folder), linli["writes"], max(1, round(linli["batch"])))
    print(f"record_donation through the group commit: {linli['writes']} writes, {linli['per_s']:.0f}/s, "
          f"{linli['cpu_ms']:.2f} ms CPU per write, {linli['batch']:.1f} writes per batch")
    print(f"the same rows with sqlite3 alone, same batches:  {bare['per_s']:.0f}/s, {bare['cpu_ms']:.2f} ms CPU "
          f"per write")
    print(f"ratio: Linli's write costs {linli['cpu_ms'] / bare['cpu_ms']:.1f}× the database's own CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
