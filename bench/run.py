"""`make bench`: start the whole stack (every service its own `nameko run`
process, a throwaway vhost, a temporary folder) and, beside it, the bare
nameko reference path; drive both from a separate load-generator process;
print and save a report, and plot it.

    .venv/bin/python bench/run.py            # the full run, about 11 minutes
    .venv/bin/python bench/run.py --quick    # a smoke run, about 4 minutes

What it measures, in order (bench/README.md says how to read it):
  1. closed-loop curve: at each --concurrency N, donation writes, case
     openings (POST /api/v1/cases), incident reports (POST /api/v1/incidents)
     and the bare path: throughput and latency percentiles, CPU per request
     and the rate it would allow (the ceiling), and each case's alert arriving
     on the assignee's SSE stream;
  2. alert latency with the stack otherwise idle: cases opened one at a time;
  3. open-loop steps for donation writes at 50 % and 150 % of the best rate of
     step 1: p99 at half load, alone and again with cases opened one at a time
     beside it (does their alert keep up?), and past the maximum whether the
     gateway sheds (429/503, how fast) or queues, and whether anything hangs;
  4. donation writes with 1, 2 and 3 donations instances;
  5. a campaign's totals read through the gateway at 10 thousand and 1 million
     donations (filled straight into the donations database);
  6. bursts of requests at once;
  wrk (issue 20): the issue's `wrk -t1 -cN -dDs` of donation writes through
     the gateway and of the bare path, alternately at each N (16 32 64).
  For the donation and bare steps of the curve and of wrk: the broker messages
  (publishes and deliveries on the vhost) per answered write / request.

The report goes to bench/results/report.{json,md} (--quick: quick.{json,md})
and the plot to docs/bench.png (--quick: bench/results/quick.png)."""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import resource
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")  # eventlet's notice, via nameko

from bench.bare_reference import BareReference  # noqa: E402
from services.common import config as linli_config  # noqa: E402
from services.gateway.http import STANDING_SECONDS  # noqa: E402
from services.ops.stack import SERVICES, Stack  # noqa: E402
from services.ops.vhost import Vhost  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"
WRK_SCRIPT = REPO_ROOT / "bench" / "wrk_donations.lua"
ADMIN = ("bench-admin", "bench-admin-password")
MEMBER = ("bench-member", "bench-member-password")
HOUSEHOLD = {"compound": "Xingfu Garden", "address": "Building 1", "people": [
    {"name": "Bench", "relation": "self", "birth_year": 1950, "conditions": []}]}
DONATION = json.dumps({"kind": "cash", "amount_fen": 100, "anonymous": True})
ZONE = {"name": "Bench zone", "compounds": ["Xingfu Garden"]}

# The closed-loop curve's paths: the three grouped writes, and the bare reference.
PATHS = ("donations", "cases", "incidents", "bare")

# The open-loop steps: (name, share of the closed-loop maximum, cases opened one at a time beside it).
WITH_ALERTS = "50% with alerts"
OPEN_LOOP_STEPS = (("50%", 0.5, False), (WITH_ALERTS, 0.5, True), ("150%", 1.5, False))


def open_loop_steps(opened: dict) -> list[str]:
    """The names of the open-loop steps a report has, in their order."""
    return [step for step, *_ in OPEN_LOOP_STEPS if step in opened]

# The targets of issue 8, to report against.
TARGETS = {
    "donation_writes_per_s": 1000,
    "ratio_to_bare": 2.0,
    "p99_at_half_max_ms": 50,
    "alert_p99_ms": 100,
    "shed_answer_p99_ms": 50,
    "admitted_p99_over_nominal": 2.0,
    "totals_1m_over_10k": 1.10,
}


def progress(message: str):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def latency_summary(ms: list[float]) -> dict:
    if not ms:
        return {"n": 0}
    return {"n": len(ms), "p50": round(statistics.median(ms), 2), "p95": round(pct(ms, 0.95), 2),
            "p99": round(pct(ms, 0.99), 2), "max": round(max(ms), 2)}


# -- where the CPU goes -----------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def machine_busy_ticks() -> int:
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def broker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


class CpuMeter:
    """CPU shares (of one core) of the stack's processes, the bare reference,
    RabbitMQ and everything else on the machine (others' work: noise) over a step."""

    def __init__(self, named_pids):
        self.named_pids = named_pids  # a callable: {name: pid}

    def __enter__(self):
        self.pids = self.named_pids()
        self.before = {name: process_ticks(pid) for name, pid in self.pids.items()}
        self.busy_before, self.started = machine_busy_ticks(), time.monotonic()
        self.shares: dict[str, float] = {}
        return self

    def __exit__(self, *exc_info):
        seconds = time.monotonic() - self.started
        # a process that ended during the step (another test's broker node, say) reads 0: not negative
        ticks = {name: max(0, process_ticks(pid) - self.before[name]) for name, pid in self.pids.items()}
        self.shares = {name: round(t / CLOCK_TICKS / seconds, 2) for name, t in ticks.items()}
        busy = (machine_busy_ticks() - self.busy_before) / CLOCK_TICKS / seconds
        self.shares["machine_busy"] = round(busy, 2)


# -- broker messages per write -------------------------------------------------------

# The management API's per-vhost counters (cumulative, from the channels of that vhost only):
# publish = messages clients published into exchanges (RPC requests, replies, events);
# deliver_get = messages the broker delivered to consumers (or handed out by basic.get).
MESSAGE_STATS = ("publish", "deliver_get", "redeliver", "confirm", "return_unroutable", "drop_unroutable")


def statistics_interval() -> float:
    """The broker's collect_statistics_interval in seconds (how often each channel
    reports its counters to the management database); 5 by default."""
    try:
        out = subprocess.run(["rabbitmqctl", "eval", "application:get_env(rabbit, collect_statistics_interval)."],
                             capture_output=True, text=True, timeout=30).stdout
        found = re.search(r"\{ok,\s*(\d+)\}", out)
        if found:
            return int(found.group(1)) / 1000
    except (OSError, subprocess.SubprocessError):
        pass
    return 5.0


class BrokerMessages:
    """Messages the broker handled on one vhost, read from the management API's
    per-vhost message_stats (the plugin the bench already needs to make its
    vhosts; nothing is enabled or changed on the broker). Channels report their
    counters every collect_statistics_interval, so a reading is only complete
    once that long (plus a margin) has passed since the vhost's last load:
    read() waits for it."""

    def __init__(self, vhost: Vhost, settle: float):
        self.vhost, self.settle = vhost, settle
        self.busy_until = time.monotonic()

    def touched(self):
        self.busy_until = time.monotonic()

    def read(self) -> tuple[float, dict]:
        time.sleep(max(0.0, self.busy_until + self.settle - time.monotonic()))
        answer = requests.get(f"{self.vhost.management_url}/api/vhosts/{quote(self.vhost.name, safe='')}",
                              auth=self.vhost.auth, timeout=10)
        answer.raise_for_status()
        stats = answer.json().get("message_stats") or {}
        return time.monotonic(), {k: stats.get(k, 0) for k in MESSAGE_STATS}


# -- wrk ----------------------------------------------------------------------------

WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(text: str) -> dict:
    """wrk 4.1's `--latency` output: requests, Requests/sec, the latency distribution,
    "Non-2xx or 3xx responses" (wrk counts status >= 400 there) and socket errors."""
    def ms(value: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()
        return round(float(number) * WRK_UNITS[unit], 2)

    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    per_s = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not total or not per_s:
        raise RuntimeError(f"wrk's output not understood:\n{text[-1500:]}")
    requests_done = int(total.group(1))
    seconds = float(total.group(2)) * WRK_UNITS[total.group(3)] / 1000
    non_2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)) else 0
    errors = {}
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), m.groups(), strict=True)
                  if int(v)}
    latency = {f"p{p}": ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", text, re.MULTILINE)}
    if m := re.search(r"^\s+Latency\s+(\S+)\s+\S+\s+(\S+)", text, re.MULTILINE):
        latency |= {"mean": ms(m.group(1)), "max": ms(m.group(2))}
    requests_per_s = float(per_s.group(1))
    ok_share = (requests_done - non_2xx) / requests_done if requests_done else 0.0
    return {"requests": requests_done, "seconds": round(seconds, 2), "requests_per_s": requests_per_s,
            "non_2xx": non_2xx, "socket_errors": errors, "ok_per_s": round(requests_per_s * ok_share, 1),
            "latency_ms": latency}


# -- the stack and its clients ------------------------------------------------------

class AlertStream(threading.Thread):
    """The assignee's SSE stream; notes when each case's alert arrives (time.monotonic)."""

    def __init__(self, url: str, token: str):
        super().__init__(daemon=True)
        self.arrived: dict[str, float] = {}
        self.response = requests.get(url, headers={"Authorization": f"Bearer {token}"}, stream=True, timeout=60)
        self.response.raise_for_status()

    def run(self):
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    self.arrived[json.loads(line[6:])["ref"]["id"]] = time.monotonic()
        except Exception:  # the stack stopped at the end of the run
            pass

    def close(self):
        connection = getattr(self.response.raw, "connection", None)
        if connection is not None and connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.response.close()

    def wait_for(self, ids, timeout: float) -> int:
        """Wait until every id has arrived; the number still missing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            missing = sum(i not in self.arrived for i in ids)
            if not missing:
                return 0
            time.sleep(0.05)
        return sum(i not in self.arrived for i in ids)


class AlertProbe(threading.Thread):
    """Beside a load step: cases opened one at a time, each waited for on the
    assignee's stream, until finish()."""

    def __init__(self, bench: "Bench"):
        super().__init__(daemon=True)
        self.bench, self.stop = bench, threading.Event()
        self.alerted: list[float | None] = []
        self.refused = 0  # openings answered other than 2xx, or not at all
        self.start()

    def run(self):
        session = self.bench.alert_session()
        while not self.stop.is_set():
            try:
                self.alerted.append(self.bench.open_case_and_wait(session)[1])
            except requests.RequestException:
                self.refused += 1
                self.stop.wait(0.1)

    def finish(self) -> dict:
        self.stop.set()
        self.join(timeout=30)
        return {"alert_ms": latency_summary([a for a in self.alerted if a is not None]),
                "missing": sum(a is None for a in self.alerted), "refused": self.refused}


class Postgres:
    """PostgreSQL mode: a database per service on SERVER, dropped at the end."""

    def __init__(self, server: str):
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.server = server.rstrip("/")
        self.engine = create_engine(f"{self.server}/postgres", poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def env(self) -> dict:
        from sqlalchemy import text

        run = uuid.uuid4().hex[:8]
        env = {}
        with self.engine.connect() as connection:
            for service in SERVICES:
                database = f"bench_linli_{run}_{service}"
                connection.execute(text(f'CREATE DATABASE "{database}"'))
                self.created.append(database)
                env[f"LINLI_{service.upper()}_DB"] = f"{self.server}/{database}"
        return env

    def version(self) -> str:
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return connection.execute(text("SHOW server_version")).scalar()

    def drop(self):
        from sqlalchemy import text

        with self.engine.connect() as connection:
            for database in self.created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        self.engine.dispose()


class Bench:
    def __init__(self, args, folder: Path):
        self.args = args
        self.folder = folder
        self.report: dict = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                             "targets": TARGETS}
        self.vhost = Vhost(linli_config.amqp_uri(), prefix="linli-bench")
        self.bare_vhost = Vhost(linli_config.amqp_uri(), prefix="linli-bench-bare")
        self.postgres = Postgres(args.postgres) if args.postgres else None
        self.stack: Stack | None = None
        self.bare: BareReference | None = None
        self.stream: AlertStream | None = None
        self.run_id = uuid.uuid4().hex[:12]  # wrk's Idempotency-Keys: unique across runs
        self.wrk_steps = 0  # and across the wrk steps of one run: a step again at N must not replay the first
        self.messages: dict[str, BrokerMessages] = {}  # "donations" (the stack's vhost), "bare"

    # -- setting up -----------------------------------------------------------------

    def start(self):
        self.vhost.create()
        self.bare_vhost.create()
        progress(f"vhosts {self.vhost.name} and {self.bare_vhost.name}; starting the bare reference")
        self.bare = BareReference(self.folder, self.bare_vhost.amqp_uri, free_port()).start()
        env = dict(os.environ, AMQP_URI=self.vhost.amqp_uri)
        if self.postgres:
            env.update(self.postgres.env())
        self.stack = Stack(self.folder / "var", env=env, port=free_port())
        progress(f"migrating and starting the stack on {self.stack.url}"
                 f" ({'PostgreSQL' if self.postgres else 'SQLite'})")
        self.stack.prepare()
        created = subprocess.run([sys.executable, "-m", "services.ops.cli", "--var", str(self.stack.var_dir),
                                  "admin", "create", "--username", ADMIN[0]], input=ADMIN[1] + "\n",
                                 env=self.stack.env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
        if created.returncode:
            raise RuntimeError(f"linli admin create: {created.stderr}")
        self.stack.start()
        if not self.stack.wait_ready(timeout=120):
            raise RuntimeError("the stack did not become ready")
        self.api = self.stack.url + "/api/v1"
        self.admin_token = self.token(*ADMIN)
        self.admin = {"Authorization": f"Bearer {self.admin_token}"}
        member = self.post("/members", {"username": MEMBER[0], "password": MEMBER[1], "name": "Bench",
                                        "roles": ["member"], "party_member": True})
        self.member_id = member["id"]
        self.household_id = self.post("/households", HOUSEHOLD)["id"]
        self.campaign_id = self.new_campaign("Bench writes")
        self.zone_id = self.post("/zones", ZONE)["id"]
        self.stream = AlertStream(self.api + "/me/alerts/stream", self.token(*MEMBER))
        self.stream.start()
        self.report["machine"] = self.machine()
        if not self.args.no_broker_count:
            settle = statistics_interval() + 1.5
            self.messages = {"donations": BrokerMessages(self.vhost, settle),
                             "bare": BrokerMessages(self.bare_vhost, settle)}
        progress("the stack is ready: " + ", ".join(f"{k} {v}" for k, v in self.report["machine"].items()
                                                   if k in ("cores", "cpu", "database", "rabbitmq")))

    def stop(self):
        if self.stream:
            self.stream.close()
        if self.stack:
            self.stack.stop()
        if self.bare:
            self.bare.stop()
        for vhost in (self.vhost, self.bare_vhost):
            try:
                vhost.delete()
            except requests.RequestException:
                pass
        if self.postgres:
            self.postgres.drop()

    def token(self, username: str, password: str) -> str:
        answer = requests.post(self.api + "/auth/token", json={"username": username, "password": password},
                               timeout=15)
        answer.raise_for_status()
        return answer.json()["access_token"]

    def post(self, path: str, body: dict) -> dict:
        answer = requests.post(self.api + path, json=body, headers=self.admin, timeout=15)
        if answer.status_code != 201:
            raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    def new_campaign(self, name: str) -> str:
        today = date.today()
        return self.post("/campaigns", {"name": name, "goal_fen": 10 ** 10,
                                        "starts_on": (today - timedelta(days=2)).isoformat(),
                                        "ends_on": (today + timedelta(days=2)).isoformat()})["id"]

    def machine(self) -> dict:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor() or platform.machine())
        try:
            overview = requests.get(f"{self.vhost.management_url}/api/overview", auth=self.vhost.auth,
                                    timeout=10).json()
            rabbitmq = f"{overview['rabbitmq_version']} (Erlang {overview['erlang_version']})"
        except (requests.RequestException, KeyError, ValueError):
            rabbitmq = "unknown"
        database = (f"PostgreSQL {self.postgres.version()}" if self.postgres
                    else f"SQLite {sqlite3.sqlite_version} (WAL), a file per service")
        import nameko
        return {"cores": os.cpu_count(), "cpu": cpu, "memory_gb": round(
                    os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30, 1),
                "os": platform.platform(), "python": platform.python_version(),
                "nameko": getattr(nameko, "__version__", "2.14"), "rabbitmq": rabbitmq, "database": database,
                "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
                "max_workers": f"{os.environ.get('LINLI_MAX_WORKERS', '10')} (the gateway "
                               f"{os.environ.get('LINLI_GATEWAY_MAX_WORKERS', '64')})",
                # Settings of this run that differ from deploy/config's defaults (load shedding, ...).
                "settings": {k: v for k, v in sorted(os.environ.items())
                             if k.startswith("LINLI_") and k not in ("LINLI_BENCH_POSTGRES", "LINLI_MAX_WORKERS",
                                                                     "LINLI_GATEWAY_MAX_WORKERS")}}

    def pids(self) -> dict:
        pids = {f"{service}-{index}": process.pid for (service, index), process in self.stack.processes.items()}
        pids["bare"] = self.bare.process.pid
        for number, pid in enumerate(broker_pids()):
            pids[f"rabbitmq{'' if not number else number}"] = pid
        return pids

    # -- one load step ----------------------------------------------------------------

    def load(self, target: str, **spec) -> dict:
        """Run the load generator (its own process) against a target; its
        result with the CPU shares of every process over the step."""
        if target == "donations":
            spec |= {"url": f"{self.api}/campaigns/{spec.pop('campaign', self.campaign_id)}/donations",
                     "body": DONATION, "headers": self.admin, "key_header": "Idempotency-Key"}
        elif target == "cases":
            spec |= {"url": self.api + "/cases", "headers": self.admin, "key_header": "Idempotency-Key",
                     "record": "id", "body": json.dumps({"household_id": self.household_id,
                                                         "categories": ["elderly"], "summary": "bench",
                                                         "assignee_id": self.member_id})}
        elif target == "incidents":  # reported by the office (an admin may report in any zone)
            spec |= {"url": self.api + "/incidents", "headers": self.admin, "key_header": "Idempotency-Key",
                     "body": json.dumps({"zone_id": self.zone_id, "compound": ZONE["compounds"][0],
                                         "category": "fire_hazard", "severity": "medium",
                                         "description": "Bicycles charging in the stairwell."})}
        elif target == "bare":
            spec |= {"url": self.bare.url + "/bare", "body": DONATION, "key_header": "Idempotency-Key"}
        spec.setdefault("warmup", self.args.warmup)
        spec.setdefault("duration", self.args.duration)
        spec.setdefault("timeout", 10)
        with CpuMeter(self.pids) as meter:
            run = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "loadgen.py")], input=json.dumps(spec),
                                 capture_output=True, text=True, cwd=REPO_ROOT,
                                 timeout=spec["warmup"] + spec["duration"] + spec["timeout"] + 60)
        self.touched(target)
        if run.returncode:
            raise RuntimeError(f"the load generator failed: {run.stderr[-2000:]}")
        result = json.loads(run.stdout)
        result["cpu"] = self.cpu_shares(meter, result["client_cpu_share"])
        records = result.pop("records")
        if target == "cases":
            missing = self.stream.wait_for([case_id for _, case_id in records], timeout=30)
            result["alert_ms"] = latency_summary(
                [(self.stream.arrived[c] - sent) * 1000 for sent, c in records if c in self.stream.arrived])
            result["alert_ms"]["missing"] = missing
        return result

    @staticmethod
    def cpu_shares(meter: CpuMeter, client_share: float) -> dict:
        """Each process's share of one core over the step, and `others` (the rest of the machine)."""
        shares = {name: share for name, share in meter.shares.items() if share >= 0.01}
        shares["others"] = round(max(0.0, meter.shares["machine_busy"] - sum(
            share for name, share in meter.shares.items() if name != "machine_busy") - client_share), 2)
        return shares

    # -- broker messages per write ----------------------------------------------------

    def touched(self, target: str):
        """Load has just run on target's vhost: a count there waits until its counters settle."""
        meter = self.messages.get("bare" if target == "bare" else "donations")
        if meter:
            meter.touched()

    def done(self, target: str) -> int:
        """Writes committed so far (the campaign's donation count), or bare requests recorded."""
        if target == "donations":
            answer = requests.get(f"{self.api}/campaigns/{self.campaign_id}", headers=self.admin, timeout=15)
            answer.raise_for_status()
            return answer.json()["totals"]["donations"]
        answer = requests.get(self.bare.url + "/bare/count", timeout=15)
        answer.raise_for_status()
        return answer.json()["recorded"]

    def idle_messages(self):
        """The broker's messages per second on each vhost with no load at all (the stack's
        own timers and sweeps): the baseline beside each step's count."""
        if not self.messages or "broker_idle" in self.report:
            return
        seconds = 10.0
        progress(f"   broker messages with no load: {seconds:g} s on each vhost (after the counters settle)")
        before = {target: meter.read() for target, meter in self.messages.items()}
        time.sleep(seconds)
        idle = {}
        for target, meter in self.messages.items():
            (t0, a), (t1, b) = before[target], meter.read()
            idle[target] = {"vhost": meter.vhost.name, "seconds": round(t1 - t0, 1),
                            **{k: round((b[k] - a[k]) / (t1 - t0), 2) for k in ("publish", "deliver_get")}}
        self.report["broker_idle"] = idle
        progress("   idle: " + "; ".join(f"{t} {v['publish']}/s published, {v['deliver_get']}/s delivered"
                                         for t, v in idle.items()))

    def counted(self, target: str, step) -> dict:
        """Run step() (a load step on target's vhost; returns its result) and add to
        the result the broker messages on that vhost per committed write (donations:
        the campaign's count went up by that many) or per recorded bare request."""
        meter = self.messages.get(target)
        if meter is None:
            return step()
        done_before = self.done(target)
        t0, before = meter.read()
        result = step()
        meter.touched()
        t1, after = meter.read()
        done = self.done(target) - done_before
        delta = {k: after[k] - before[k] for k in MESSAGE_STATS}
        idle = self.report.get("broker_idle", {}).get(target, {})
        idle_total = (idle.get("publish", 0) + idle.get("deliver_get", 0)) * (t1 - t0)
        total = delta["publish"] + delta["deliver_get"]
        result["broker"] = {"vhost": meter.vhost.name, "writes": done, "seconds": round(t1 - t0, 1), **delta,
                            "publish_per_write": round(delta["publish"] / done, 2) if done else None,
                            "deliver_per_write": round(delta["deliver_get"] / done, 2) if done else None,
                            "total_per_write": round(total / done, 2) if done else None,
                            "idle_expected": round(idle_total, 1),
                            "total_per_write_less_idle": round(max(0.0, total - idle_total) / done, 2)
                            if done else None}
        return result

    @staticmethod
    def broker_line(result: dict) -> str:
        b = result.get("broker")
        if not b or not b["writes"]:
            return ""
        return (f"  broker per write: {b['publish_per_write']} published + {b['deliver_per_write']} delivered"
                f" ({b['writes']} writes)")

    # -- wrk (issue 20) -------------------------------------------------------------------

    def wrk(self, target: str, connections: int) -> dict:
        """The issue's `wrk -t1 -cN -dDs` (with --latency, a 10 s timeout like the load
        generator's, and bench/wrk_donations.lua) against the gateway's donation writes or
        the bare path; wrk's figures with the CPU shares of every process over the step."""
        duration = max(1, round(self.args.wrk_duration))
        if target == "donations":
            url, token = f"{self.api}/campaigns/{self.campaign_id}/donations", self.admin_token
        else:
            url, token = self.bare.url + "/bare", ""
        self.wrk_steps += 1
        prefix = f"{self.run_id}-{self.wrk_steps}-{target}-c{connections}"
        env = dict(os.environ, LINLI_WRK_PREFIX=prefix, LINLI_WRK_TOKEN=token,
                   LINLI_WRK_BODY=DONATION)
        command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s",
                   "-s", str(WRK_SCRIPT), url]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        with CpuMeter(self.pids) as meter:
            run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=duration + 60)
        wall = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.touched(target)
        if run.returncode:
            raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr[-1000:]} {run.stdout[-1000:]}")
        result = parse_wrk(run.stdout)
        result["client_cpu_share"] = round((usage.ru_utime + usage.ru_stime - children.ru_utime - children.ru_stime)
                                           / wall, 3)
        result["cpu"] = self.cpu_shares(meter, result["client_cpu_share"])
        result["connections"] = connections
        result["wrk_output"] = run.stdout
        return result

    @staticmethod
    def wrk_line(result: dict) -> str:
        lat = result["latency_ms"]
        text = (f"{result['ok_per_s']:7.1f} 2xx/s ({result['requests_per_s']:.1f} req/s)  p50 {lat.get('p50', 0):6.1f}"
                f"  p99 {lat.get('p99', 0):6.1f} ms")
        if result["non_2xx"] or result["socket_errors"]:
            text += f"  non-2xx {result['non_2xx']} socket errors {result['socket_errors']}"
        busy = sorted(((v, k) for k, v in result["cpu"].items() if k != "machine_busy"), reverse=True)[:4]
        return (text + "  cpu " + " ".join(f"{k} {v:.2f}" for v, k in busy)
                + f" wrk {result['client_cpu_share']} machine {result['cpu'].get('machine_busy', 0)}")

    def wrk_phase(self):
        levels, rounds = self.args.wrk_connections, self.args.wrk_rounds
        progress(f"wrk (issue 20): donation writes and the bare path at {levels} connections, "
                 f"{max(1, round(self.args.wrk_duration))} s each, {rounds} round(s) in turn")
        self.idle_messages()
        steps = {"donations": [], "bare": []}
        for connections in levels:
            # Linli, bare, then bare, Linli, ...: this machine's speed drifts by a quarter within
            # minutes, and one pair's ratio moved with it; each path's mean over the rounds, taken
            # in both orders, does not favour either path.
            for round_ in range(rounds):
                for target in (("donations", "bare") if round_ % 2 == 0 else ("bare", "donations")):
                    self.quiet()
                    result = self.counted(target, lambda t=target, c=connections: self.wrk(t, c))
                    result["round"] = round_ + 1
                    steps[target].append(result)
                    progress(f"   wrk {target:9} c={connections:<3} round {round_ + 1} {self.wrk_line(result)}"
                             f"{self.broker_line(result)}")
        self.report["wrk"] = {"duration_s": max(1, round(self.args.wrk_duration)), "rounds": rounds,
                              "command": "wrk -t1 -c{N} -d{D}s --latency --timeout 10s -s bench/wrk_donations.lua URL",
                              **steps}

    @staticmethod
    def line(result: dict) -> str:
        ok = result["latency_ok_ms"]
        text = (f"{result['ok_per_s']:7.1f} ok/s  p50 {ok.get('p50', 0):6.1f}  p95 {ok.get('p95', 0):6.1f}"
                f"  p99 {ok.get('p99', 0):6.1f} ms")
        others = {k: v for k, v in result["status"].items() if not k.startswith("2")}
        if others or result["errors"]:
            text += f"  non-2xx {others} errors {result['errors']}"
        if "alert_ms" in result and result["alert_ms"]["n"]:
            text += f"  alert p50 {result['alert_ms']['p50']:.0f} p99 {result['alert_ms']['p99']:.0f} ms"
        busy = sorted(((v, k) for k, v in result["cpu"].items() if k != "machine_busy"), reverse=True)[:4]
        return (text + "  cpu " + " ".join(f"{k} {v:.2f}" for v, k in busy)
                + f" client {result['client_cpu_share']} machine {result['cpu'].get('machine_busy', 0)}")

    # -- the phases ---------------------------------------------------------------------

    def curve(self):
        progress(f"1. closed-loop curve at {self.args.concurrency} connections, {self.args.duration:g} s each")
        curve = {target: [] for target in PATHS if target in self.args.targets}
        if set(curve) & set(self.messages):
            self.idle_messages()
        for connections in self.args.concurrency:
            for target in curve:  # interleaved: the machine's noise falls on all three alike
                self.quiet()
                result = self.counted(target, lambda t=target, c=connections: self.load(t, mode="closed",
                                                                                        connections=c)) \
                    if target in self.messages else self.load(target, mode="closed", connections=connections)
                curve[target].append(result)
                progress(f"   {target:9} c={connections:<3} {self.line(result)}{self.broker_line(result)}")
        self.report["curve"] = curve

    def open_case_and_wait(self, session: requests.Session) -> tuple[float, float | None]:
        """Open one case and wait for its alert on the assignee's stream: (the
        POST's ms, the ms from its send to the alert, None if none came in 10 s)."""
        body = {"household_id": self.household_id, "categories": ["elderly"], "summary": "bench",
                "assignee_id": self.member_id}
        started = time.monotonic()
        answer = session.post(self.api + "/cases", json=body, timeout=15, headers={"Idempotency-Key": uuid.uuid4().hex})
        answer.raise_for_status()
        answered = (time.monotonic() - started) * 1000
        case_id = answer.json()["id"]
        if self.stream.wait_for([case_id], timeout=10):
            return answered, None
        return answered, (self.stream.arrived[case_id] - started) * 1000

    def alert_session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(self.admin)
        return session

    def alert_latency(self):
        count = self.args.alert_cases
        progress(f"2. alert latency: {count} cases opened one at a time")
        session = self.alert_session()
        answered, alerted = zip(*(self.open_case_and_wait(session) for _ in range(count)), strict=True)
        missing = sum(a is None for a in alerted)
        self.report["alert_idle"] = {"post_ms": latency_summary(list(answered)),
                                     "alert_ms": latency_summary([a for a in alerted if a is not None]),
                                     "missing": missing}
        a = self.report["alert_idle"]["alert_ms"]
        progress(f"   POST /cases p50 {statistics.median(answered):.1f} ms; case opened -> alert on SSE "
                 f"p50 {a['p50']:.1f} p99 {a['p99']:.1f} max {a['max']:.1f} ms; missing {missing}")

    def open_loop(self):
        best = max(self.report["curve"]["donations"], key=lambda r: r["ok_per_s"])
        max_rate = best["ok_per_s"]
        progress(f"3. open-loop donation writes; the closed-loop maximum was {max_rate:.0f}/s "
                 f"at {best['connections']} connections")
        steps = {}
        for step, share, with_alerts in OPEN_LOOP_STEPS:
            rate = max(1.0, round(max_rate * share, 1))
            self.quiet()
            # Half load again with cases opened one at a time beside it: does the alert keep up? (issue 20)
            # Their openings and alerts are load of their own (a case costs the stack several
            # donations' CPU): the donation writes' half-load p99 is the step without them.
            probe = AlertProbe(self) if with_alerts else None
            result = self.load("donations", mode="open", rate=rate, max_connections=self.args.max_connections,
                               duration=self.args.duration * 1.5)
            if probe is not None:
                result["alert_probe"] = probe.finish()
                a = result["alert_probe"]["alert_ms"]
                progress(f"   beside it, {a['n']} cases opened one at a time: alert p50 {a.get('p50', 0):.1f} "
                         f"p99 {a.get('p99', 0):.1f} ms, missing {result['alert_probe']['missing']}")
            steps[step] = result
            progress(f"   {step:>16} = {rate:6.0f}/s {self.line(result)}"
                     f"  shed {sum(v for k, v in result['status'].items() if k in ('429', '503'))}"
                     f" (p99 {result['latency_shed_ms'].get('p99', 0)} ms) hung {result['hung']}")
            self.settle()
        self.report["open_loop"] = {"max_rate": max_rate, "max_at_connections": best["connections"], **steps}

    def burst(self):
        progress(f"6. bursts of {self.args.burst} requests at once, none retried; "
                 "donation writes at the default admission deadline, and the bare path")
        bursts = []
        for count in self.args.burst:
            for target in ("donations", "bare"):
                result = self.load(target, mode="burst", count=count, warmup=0, duration=0, timeout=30)
                result["target"] = target
                bursts.append(result)
                shed = result["latency_shed_ms"]
                progress(f"   {target:9} {count:>5} at once: {result['status']} errors {result['errors']}; "
                         f"last 2xx after {result['answer_span_s']:.2f} s, 2xx p50 "
                         f"{result['latency_ok_ms'].get('p50', 0):.0f} ms; shed p50 {shed.get('p50', 0):.0f}"
                         f" max {shed.get('max', 0):.0f} ms")
                self.settle()
        self.report["burst"] = bursts
        self.report["admission_deadline"] = os.environ.get("LINLI_GATEWAY_ADMISSION_DEADLINE", "unset: 5 s")

    def quiet(self, timeout: float = 30):
        """Wait until every process of the stack and the bare reference is idle
        (under 5 % of a core over half a second), before each step: a step's
        work goes on after its last answer (a case's alert on its way, the bare
        path's events queued behind its RPCs), and would fall on the next step."""
        pids = [process.pid for process in self.stack.processes.values()] + [self.bare.process.pid]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            before = sum(process_ticks(pid) for pid in pids)
            time.sleep(0.5)
            if (sum(process_ticks(pid) for pid in pids) - before) / CLOCK_TICKS < 0.05 * 0.5 * len(pids):
                return

    def settle(self, timeout: float = 60):
        """After an overload: wait until the gateway answers a read quickly again."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                requests.get(f"{self.api}/campaigns/{self.campaign_id}", headers=self.admin, timeout=5)
                if time.monotonic() - started < 0.2:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)

    def scaling(self):
        connections = self.args.scale_connections or (
            self.report["open_loop"]["max_at_connections"] if "open_loop" in self.report
            else max(self.report["curve"]["donations"], key=lambda r: r["ok_per_s"])["connections"])
        progress(f"4. donation instances 1, 2, 3 at {connections} connections")
        scaling = []
        for instances in (1, 2, 3):
            for index in range(instances):
                if ("donations", index) not in self.stack.processes:
                    self.stack.start_process("donations", index)
            deadline = time.monotonic() + 60
            while self.stack.already_running().get("donations", 0) < instances:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"donations instance {instances} did not start (see {self.stack.var_dir})")
                time.sleep(0.3)
            self.quiet()
            result = self.load("donations", mode="closed", connections=connections)
            result["instances"] = instances
            scaling.append(result)
            progress(f"   {instances} instance(s) {self.line(result)}")
        for index in (2, 1):  # back to one
            process = self.stack.processes.pop(("donations", index))
            process.terminate()
            process.wait(timeout=20)
        self.report["scaling"] = scaling

    def totals(self):
        sizes = self.args.sizes
        progress(f"5. campaign totals at {' and '.join(f'{s:,}' for s in sizes)} donations")
        campaigns = {}
        for size in sizes:
            campaign_id = self.new_campaign(f"Bench totals {size}")
            started = time.monotonic()
            fill(self.stack.db_url("donations"), campaign_id, size)
            campaigns[size] = campaign_id
            progress(f"   filled {size:,} donations in {time.monotonic() - started:.1f} s")
        session = requests.Session()
        session.headers.update(self.admin)
        for size, campaign_id in campaigns.items():  # also warms the connections
            totals = session.get(f"{self.api}/campaigns/{campaign_id}", timeout=15).json()["totals"]
            assert totals["donations"] == size, totals
        reads = {size: [] for size in sizes}
        writes = {size: [] for size in sizes}
        for number in range(self.args.reads):  # interleaved, so noise falls on every size alike
            for size, campaign_id in campaigns.items():
                started = time.perf_counter()
                session.get(f"{self.api}/campaigns/{campaign_id}", timeout=15).raise_for_status()
                reads[size].append((time.perf_counter() - started) * 1000)
                if number < self.args.reads // 3:
                    started = time.perf_counter()
                    session.post(f"{self.api}/campaigns/{campaign_id}/donations", data=DONATION, timeout=15,
                                 headers={"Idempotency-Key": uuid.uuid4().hex,
                                          "Content-Type": "application/json"}).raise_for_status()
                    writes[size].append((time.perf_counter() - started) * 1000)
        scans = {size: scan_ms(self.stack.db_url("donations"), campaign_id) for size, campaign_id in campaigns.items()}
        self.report["totals"] = {str(size): {"read_ms": latency_summary(reads[size]),
                                             "write_ms": latency_summary(writes[size]), "sum_scan_ms": scans[size]}
                                 for size in sizes}
        for size in sizes:
            r, w = self.report["totals"][str(size)]["read_ms"], self.report["totals"][str(size)]["write_ms"]
            progress(f"   {size:>9,}: GET totals p50 {r['p50']:.1f} p99 {r['p99']:.1f} ms; POST donation p50 "
                     f"{w['p50']:.1f} ms; a SUM scan instead {scans[size]:.1f} ms")


# -- filling a campaign straight into the donations database ----------------------------

def fill(db_url: str, campaign_id: str, size: int, chunk: int = 100_000):
    """`size` cash donations of 100 fen to one (new, empty) campaign, and its
    running aggregates to match, written straight into the donations database
    in bulk (executemany on SQLite, COPY on PostgreSQL)."""
    from services.donations import domain

    now = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    update = ("UPDATE campaigns SET cash_fen = cash_fen + {p}, donation_count = donation_count + {p}, "
              "last_receipt_seq = {p} WHERE id = {p}")
    columns = ("id, campaign_id, seq, receipt_no, verification_code, kind, amount_fen, donor_name, anonymous, "
               "recorded_by, created_at")

    def batches(code):
        rows = ((uuid.uuid4().hex, campaign_id, seq, domain.receipt_no(code, seq), "BENCHCODE", "cash", 100, None,
                 True, "bench", now) for seq in range(1, size + 1))
        while batch := list(itertools.islice(rows, chunk)):
            yield batch

    if db_url.startswith("sqlite"):
        connection = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=60)
        connection.execute("PRAGMA cache_size = -262144")  # 256 MB: the random ids' index stays in memory
        connection.execute("PRAGMA synchronous = OFF")
        try:
            code = connection.execute("SELECT code FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()[0]
            for batch in batches(code):
                with connection:
                    connection.executemany(f"INSERT INTO donations ({columns}) VALUES ({', '.join('?' * 11)})",
                                           batch)
            with connection:
                connection.execute(update.format(p="?"), (100 * size, size, size, campaign_id))
        finally:
            connection.close()
        return
    import io

    import psycopg2

    connection = psycopg2.connect(db_url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT code FROM campaigns WHERE id = %s", (campaign_id,))
            code = cursor.fetchone()[0]
            for batch in batches(code):
                text = io.StringIO("".join("\t".join(r"\N" if v is None else str(v) for v in row) + "\n"
                                           for row in batch))
                cursor.copy_expert(f"COPY donations ({columns}) FROM STDIN", text)
            cursor.execute(update.format(p="%s"), (100 * size, size, size, campaign_id))
    finally:
        connection.close()


def scan_ms(db_url: str, campaign_id: str) -> float:
    """The SUM over a campaign's donations that the running aggregates replace (best of 3)."""
    query = "SELECT sum(amount_fen), count(*) FROM donations WHERE campaign_id = {p}"
    times = []
    if db_url.startswith("sqlite"):
        connection = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=60)
        execute = lambda: connection.execute(query.format(p="?"), (campaign_id,)).fetchone()  # noqa: E731
    else:
        import psycopg2

        connection = psycopg2.connect(db_url)
        cursor = connection.cursor()
        execute = lambda: (cursor.execute(query.format(p="%s"), (campaign_id,)), cursor.fetchone())  # noqa: E731
    try:
        for _ in range(3):
            started = time.perf_counter()
            execute()
            times.append((time.perf_counter() - started) * 1000)
    finally:
        connection.close()
    return round(min(times), 1)


# -- the report ---------------------------------------------------------------------------

def verdicts(report: dict) -> list[tuple[str, str, bool | None]]:
    """Each target of issue 8: (what, measured, met?)."""
    out = []
    curve = report.get("curve")
    if curve and curve.get("donations") and curve.get("bare"):
        best = max(curve["donations"], key=lambda r: r["ok_per_s"])
        bare_best = max(curve["bare"], key=lambda r: r["ok_per_s"])
        out.append(("durable donation writes/s through the gateway (best of the curve)",
                    f"{best['ok_per_s']:.0f}/s at {best['connections']} connections (target ≥ "
                    f"{TARGETS['donation_writes_per_s']:,})", best["ok_per_s"] >= TARGETS["donation_writes_per_s"]))
        ratio = best["ok_per_s"] / bare_best["ok_per_s"] if bare_best["ok_per_s"] else 0
        out.append(("donation writes / bare reference path (best of each curve)",
                    f"{ratio:.2f}× ({best['ok_per_s']:.0f} / {bare_best['ok_per_s']:.0f} per s; target ≥ "
                    f"{TARGETS['ratio_to_bare']:g}×)", ratio >= TARGETS["ratio_to_bare"]))
        at8 = {r["connections"]: r for r in curve["bare"]}.get(8)
        if at8:
            out.append(("bare reference at 8 connections (measured ~370/s when the targets were set)",
                        f"{at8['ok_per_s']:.0f}/s, p99 {at8['latency_ok_ms'].get('p99', 0):.0f} ms", None))
    steps = report.get("open_loop")
    if steps:
        half, over = steps["50%"], steps["150%"]
        nominal = half["latency_ok_ms"].get("p99", 0)
        beside = steps.get(WITH_ALERTS, {}).get("latency_ok_ms", {}).get("p99")
        out.append(("donation writes p99 at half the max rate (open loop)",
                    f"{nominal:.1f} ms at {half['rate']:.0f}/s (target ≤ {TARGETS['p99_at_half_max_ms']} ms)"
                    + (f"; {beside:.1f} ms with cases opened one at a time beside it" if beside else ""),
                    nominal <= TARGETS["p99_at_half_max_ms"]))
        shed = sum(v for k, v in over["status"].items() if k in ("429", "503"))
        shed_p99 = over["latency_shed_ms"].get("p99")
        out.append(("at 150 % of the max: load shed with 429/503 within 50 ms",
                    f"{shed} of {over['sent']} shed" + (f", p99 {shed_p99:.1f} ms" if shed else
                                                         " (no shedding: requests queued)"),
                    bool(shed) and shed_p99 <= TARGETS["shed_answer_p99_ms"]))
        admitted = over["latency_ok_ms"].get("p99", float("inf"))
        out.append(("at 150 %: admitted requests' p99 within 2× nominal",
                    f"{admitted:.0f} ms vs nominal {nominal:.1f} ms ({admitted / nominal if nominal else 0:.1f}×)",
                    admitted <= TARGETS["admitted_p99_over_nominal"] * nominal))
        out.append(("at 150 %: nothing hangs (no request unanswered after 10 s, no connection error)",
                    f"{over['hung']} hung, errors {over['errors'] or 'none'}",
                    not over["hung"] and not over["errors"]))
    alerts = [r["alert_ms"] for r in (curve or {}).get("cases", []) if r.get("alert_ms", {}).get("n")]
    if report.get("alert_idle"):
        idle = report["alert_idle"]["alert_ms"]
        out.append(("case opened → alert on the SSE stream, p99 (one case at a time)",
                    f"{idle['p99']:.1f} ms (p50 {idle['p50']:.1f}; target ≤ {TARGETS['alert_p99_ms']} ms)",
                    idle["p99"] <= TARGETS["alert_p99_ms"]))
    probe = (steps or {}).get(WITH_ALERTS, {}).get("alert_probe")
    if probe and probe["alert_ms"]["n"]:
        a = probe["alert_ms"]
        out.append(("case opened → alert p99 at half load (one case at a time beside the 50 % open loop)",
                    f"{a['p99']:.1f} ms (p50 {a['p50']:.1f}, {a['n']} cases, {probe['missing']} missing, "
                    f"{probe.get('refused', 0)} not opened; target ≤ {TARGETS['alert_p99_ms']} ms)",
                    a["p99"] <= TARGETS["alert_p99_ms"] and not probe["missing"] and not probe.get("refused")))
    if alerts:
        worst = max(a["p99"] for a in alerts)
        out.append(("case opened → alert p99 under the closed-loop case load (worst level)",
                    f"{worst:.0f} ms", worst <= TARGETS["alert_p99_ms"]))
    totals = report.get("totals")
    if totals and len(totals) >= 2:
        small, large = sorted(totals, key=int)[0], sorted(totals, key=int)[-1]
        ratio = totals[large]["read_ms"]["p50"] / totals[small]["read_ms"]["p50"]
        out.append((f"totals read p50 at {int(large):,} vs {int(small):,} donations",
                    f"{totals[large]['read_ms']['p50']:.1f} vs {totals[small]['read_ms']['p50']:.1f} ms "
                    f"({ratio:.2f}×; target ≤ {TARGETS['totals_1m_over_10k']:.2f}×)",
                    ratio <= TARGETS["totals_1m_over_10k"]))
    return out


def noise(report: dict) -> list[str]:
    """The steps that other work on the machine disturbed (others >= 0.3 of a core)."""
    steps = [(f"{target} c={r['connections']}", r) for target, results in report.get("curve", {}).items()
             for r in results]
    steps += [(f"open loop {step}", report["open_loop"][step]) for step in open_loop_steps(report.get("open_loop", {}))]
    steps += [(f"{r['instances']} donations instance(s)", r) for r in report.get("scaling", [])]
    steps += [(f"wrk {target} c={r['connections']} round {r.get('round', 1)}", r) for target in ("donations", "bare")
              for r in report.get("wrk", {}).get(target, [])]
    disturbed = [f"{name} ({r['cpu'].get('others', 0):.2f})" for name, r in steps if r["cpu"].get("others", 0) >= 0.3]
    if not disturbed:
        return ["No step was disturbed by other work on the machine (others < 0.3 of a core throughout).", ""]
    return ["**Disturbed steps** (other work used ≥ 0.3 of a core meanwhile; their figures are pessimistic): "
            + ", ".join(disturbed) + ".", ""]


def other_answers(result: dict) -> dict:
    """What came back neither 2xx nor shed (429/503): statuses and client errors, by count."""
    return {k: v for k, v in result["status"].items() if not k.startswith("2") and k not in ("429", "503")} | \
        result["errors"]


def process_ms(result: dict, rate: float) -> list[tuple[str, float]]:
    """Each of the step's processes (a share of at least 0.02 of a core; not the
    client) with its CPU milliseconds per answered request, the busiest first."""
    if not rate:
        return []
    return sorted(((k, v * 1000 / rate) for k, v in result["cpu"].items()
                   if k not in ("machine_busy", "others") and v >= 0.02), key=lambda kv: -kv[1])


def cpu_ms_per_request(result: dict, rate: float) -> str:
    """Each process's CPU milliseconds per answered request over a step (and the client's)."""
    if not rate:
        return "no answers"
    per = process_ms(result, rate)
    per.append(("client", result["client_cpu_share"] * 1000 / rate))
    return ", ".join(f"{k} {v:.1f}" for k, v in per) + f" (sum {sum(v for _, v in per):.1f})"


def ceiling(result: dict, rate: float, cores: int) -> float:
    """The rate this step's CPU per request would allow with no process ever
    waiting: each process at one core at most (one eventlet hub: a `nameko run`
    process computes on one core), all the stack's processes together at every
    core the machine has (the client's CPU left out)."""
    per = [ms for _process, ms in process_ms(result, rate)]
    if not per:
        return 0.0
    return min(1000 / max(per), cores * 1000 / sum(per))


def wrk_levels(wrk: dict) -> list[tuple[int, float, float]]:
    """Each wrk level's connections with Linli's and the bare path's writes
    (requests) per second, each the mean over the level's rounds."""
    levels: dict[int, list] = {}
    for d, b in zip(wrk["donations"], wrk["bare"], strict=False):
        levels.setdefault(d["connections"], []).append((d["ok_per_s"], b["ok_per_s"]))
    return [(c, statistics.mean(x for x, _ in rates), statistics.mean(y for _, y in rates))
            for c, rates in levels.items()]


def issue20(report: dict) -> list[str]:
    """The report's section for issue 20: wrk, Linli against the bare path; CPU per write;
    broker messages per write; the issue's targets."""
    wrk = report.get("wrk")
    counted = [(f"curve c={r['connections']}", target, r) for target in ("donations", "bare")
               for r in report.get("curve", {}).get(target, []) if r.get("broker")]
    if not wrk and not counted:
        return []
    lines = ["## Issue 20: the write path", ""]
    if wrk:
        pairs = list(zip(wrk["donations"], wrk["bare"], strict=False))
        rounds = wrk.get("rounds", 1)
        lines += [f"`{wrk['command']}` (D = {wrk['duration_s']} s), Linli's gateway "
                  "(`POST /api/v1/campaigns/{id}/donations`, cash, a bearer token, each request its own "
                  "`Idempotency-Key`) and the bare reference (`POST /bare`, its own vhost), "
                  + (f"{rounds} rounds at each N, Linli first in odd rounds and the bare path first in even ones; "
                     "`mean` is each path's mean over the rounds, which the targets are judged on. "
                     if rounds > 1 else "alternately at each N. ")
                  + "Linli writes/s count 2xx answers only (wrk's requests/s times the share that were 2xx).", "",
                  "| connections | round | Linli writes/s | non-2xx | socket errors | p50 / p99 ms | bare req/s | "
                  "bare p50 / p99 ms | Linli / bare |", "|---|---|---|---|---|---|---|---|---|"]
        levels = wrk_levels(wrk)
        means = {c: (linli, bare) for c, linli, bare in levels} if rounds > 1 else {}
        for index, (d, b) in enumerate(pairs):
            ratio = d["ok_per_s"] / b["ok_per_s"] if b["ok_per_s"] else 0
            errors = {k: d["socket_errors"].get(k, 0) + b["socket_errors"].get(k, 0)
                      for k in set(d["socket_errors"]) | set(b["socket_errors"])}
            non_2xx = f"{d['non_2xx'] or ''}" + (f" (bare {b['non_2xx']})" if b["non_2xx"] else "")
            lines.append(f"| {d['connections']} | {d.get('round', 1)} | {d['ok_per_s']:.0f} | {non_2xx} | "
                         f"{errors or ''} | {d['latency_ms'].get('p50', 0):.1f} / "
                         f"{d['latency_ms'].get('p99', 0):.1f} | {b['ok_per_s']:.0f} | "
                         f"{b['latency_ms'].get('p50', 0):.1f} / {b['latency_ms'].get('p99', 0):.1f} | {ratio:.2f}× |")
            last_of_level = index + 1 == len(pairs) or pairs[index + 1][0]["connections"] != d["connections"]
            if last_of_level and d["connections"] in means:
                linli, bare = means[d["connections"]]
                lines.append(f"| {d['connections']} | **mean** | **{linli:.0f}** | | | | **{bare:.0f}** | | "
                             f"**{linli / bare if bare else 0:.2f}×** |")
        cores = report["machine"]["cores"]
        lines += ["", "CPU milliseconds per answered write (Linli) / request (bare) by process during each wrk step "
                  "(`client` is wrk itself; RabbitMQ's figure includes other vhosts' traffic on the shared broker; "
                  "`others` = the rest of the machine, in shares of a core). `ceiling` is the rate that CPU per "
                  "write would allow if no process ever waited: each process at one core at most, the stack's "
                  f"processes together at all {cores} (the client left out). What the ceiling leaves above the "
                  "measured rate is time the processes spent waiting for each other.", "",
                  "| connections | round | path | CPU ms per write / request | ceiling /s | measured /s | others |",
                  "|---|---|---|---|---|---|---|"]
        for d, b in pairs:
            for name, r in (("Linli", d), ("bare", b)):
                lines.append(f"| {r['connections']} | {r.get('round', 1)} | {name} | "
                             f"{cpu_ms_per_request(r, r['ok_per_s'])} | "
                             f"{ceiling(r, r['ok_per_s'], cores):.0f} | {r['ok_per_s']:.0f} | "
                             f"{r['cpu'].get('others', 0):.2f} |")
        lines.append("")
    steps = counted + [(f"wrk c={r['connections']} round {r.get('round', 1)}", target, r)
                       for target in ("donations", "bare")
                       for r in (wrk or {}).get(target, []) if r.get("broker")]
    if steps:
        idle = report.get("broker_idle", {})
        lines += ["Broker messages per answered write (Linli: per donation committed during the step, the "
                  "campaign's count before and after) and per bare request (requests its RPC recorded): publishes "
                  "into exchanges (RPC requests, replies, events) and deliveries to consumers, from the management "
                  "API's per-vhost counters of the stack's and the bare reference's own vhosts, read once the "
                  "channels have reported (collect_statistics_interval + 1.5 s after the step).", ""]
        if idle:
            lines += ["Idle baseline (no load, same vhosts): " + "; ".join(
                f"{'Linli' if t == 'donations' else 'bare'} {v['publish']}/s published, {v['deliver_get']}/s "
                f"delivered" for t, v in idle.items()) + "; `less idle` subtracts that rate over the counted "
                "window.", ""]
        lines += ["| step | path | writes / requests | published per write | delivered per write | total | "
                  "total less idle |", "|---|---|---|---|---|---|---|"]
        for step, target, r in steps:
            b = r["broker"]
            lines.append(f"| {step} | {'Linli' if target == 'donations' else 'bare'} | {b['writes']} | "
                         f"{b['publish_per_write']} | {b['deliver_per_write']} | {b['total_per_write']} | "
                         f"{b['total_per_write_less_idle']} |")
        lines.append("")
    if wrk:
        in_range = [(c, linli, bare) for c, linli, bare in levels if 16 <= c <= 64]
        if in_range:
            rates = ", ".join(f"{c}: {linli:.0f}/s" for c, linli, _ in in_range)
            ratios = ", ".join(f"{c}: {linli / bare if bare else 0:.2f}×" for c, linli, bare in in_range)
            writes_met = all(linli >= TARGETS["donation_writes_per_s"] for _, linli, _ in in_range)
            ratio_met = all(bare and linli / bare >= TARGETS["ratio_to_bare"] for _, linli, bare in in_range)
            mean = ", each path's mean over the rounds" if wrk.get("rounds", 1) > 1 else ""
            lines += [f"Issue 20's targets (wrk, this run{mean}):", "", "| target | measured | met |",
                      "|---|---|---|",
                      f"| ≥ {TARGETS['donation_writes_per_s']:,} durable donation writes/s at 16–64 connections | "
                      f"{rates} | {'yes' if writes_met else '**no**'} |",
                      f"| ≥ {TARGETS['ratio_to_bare']:g}× the bare nameko reference in the same run | {ratios} | "
                      f"{'yes' if ratio_met else '**no**'} |", ""]
    return lines


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# Linli benchmark, {report['started_at']}", "",
             f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB, {m['os']}; Python {m['python']}, "
             f"nameko {m['nameko']}, RabbitMQ {m['rabbitmq']}; {m['database']}; one `nameko run` process per "
             f"service instance, max_workers {m['max_workers']}; settings "
             f"{', '.join(f'{k}={v}' for k, v in m.get('settings', {}).items()) or 'as deploy/config has them'}. "
             f"Load average at the start: "
             f"{m['load_average_at_start']}. Run: `{report['command']}`, {report['elapsed_s']:.0f} s.", "",
             "The load generator (bench/loadgen.py) is its own process on the same 2 cores; the `cpu` columns "
             "say what share of one core each process used during the step, `others` is the rest of the "
             "machine (other people's work: noise).", "", *noise(report), "## Against the targets", "",
             "| target | measured | met |", "|---|---|---|"]
    for what, measured, met in verdicts(report):
        lines.append(f"| {what} | {measured} | {'—' if met is None else ('yes' if met else '**no**')} |")
    lines += ["", *issue20(report)]

    def cpu(result):
        shares = sorted(((k, v) for k, v in result["cpu"].items() if k != "machine_busy" and v >= 0.05),
                        key=lambda kv: -kv[1])
        return (", ".join(f"{k} {v:.2f}" for k, v in shares) + f", client {result['client_cpu_share']:.2f}"
                f" (machine {result['cpu'].get('machine_busy', 0):.2f} of {report['machine']['cores']})")

    def row(result, first):
        ok = result["latency_ok_ms"]
        bad = {k: v for k, v in result["status"].items() if not k.startswith("2")}
        bad.update(result["errors"])
        return (f"| {first} | {result['ok_per_s']:.0f} | {ok.get('p50', 0):.1f} | {ok.get('p95', 0):.1f} | "
                f"{ok.get('p99', 0):.1f} | {bad or ''} | {cpu(result)} |")

    if report.get("curve"):
        lines += ["", "## Where the CPU goes", "",
                  "CPU milliseconds per answered request, by process, at each path's best closed-loop step "
                  "(RabbitMQ's figure includes other vhosts' traffic on the shared broker), and the ceiling: the "
                  "rate that CPU would allow if no process ever waited (each at one core at most, all of them "
                  "at every core):", "",
                  "| path | at | ok/s | CPU ms per request | ceiling /s |", "|---|---|---|---|---|"]
        for target in report["curve"]:
            best = max(report["curve"][target], key=lambda r: r["ok_per_s"])
            if best["ok_per_s"]:
                per = process_ms(best, best["ok_per_s"])
                per.append(("client", best["client_cpu_share"] * 1000 / best["ok_per_s"]))
                lines.append(f"| {target} | {best['connections']} connections | {best['ok_per_s']:.0f} | "
                             + ", ".join(f"{k} {v:.1f}" for k, v in per)
                             + f" | {ceiling(best, best['ok_per_s'], report['machine']['cores']):.0f} |")
        lines += ["", "## Closed loop: N connections, each sending its next request when answered", ""]
        for target, title in (("donations", "Donation writes, `POST /api/v1/campaigns/{id}/donations`"),
                              ("cases", "Case openings, `POST /api/v1/cases` (and the alert each makes)"),
                              ("incidents", "Incident reports, `POST /api/v1/incidents`"),
                              ("bare", "Bare nameko reference, HTTP → RPC → reply + event, no database")):
            if target not in report["curve"]:
                continue
            lines += [f"### {title}", "", "| connections | ok/s | p50 ms | p95 ms | p99 ms | non-2xx | cpu |",
                      "|---|---|---|---|---|---|---|"]
            lines += [row(r, r["connections"]) for r in report["curve"][target]]
            if target == "cases":
                lines += ["", "Case opened → alert on the assignee's SSE stream, under that load:", "",
                          "| connections | alerts | p50 ms | p95 ms | p99 ms | max ms | missing |",
                          "|---|---|---|---|---|---|---|"]
                lines += [f"| {r['connections']} | {a['n']} | {a.get('p50', 0):.1f} | {a.get('p95', 0):.1f} | "
                          f"{a.get('p99', 0):.1f} | {a.get('max', 0):.1f} | {a['missing']} |"
                          for r in report["curve"]["cases"] for a in [r["alert_ms"]]]
            lines.append("")
        lines += ["Ratio of donation writes to the bare path at each level: " + ", ".join(
            f"{d['connections']}: {d['ok_per_s'] / b['ok_per_s']:.2f}×" for d, b in
            zip(report["curve"].get("donations", []), report["curve"].get("bare", []), strict=False)
            if b["ok_per_s"]), ""]
    if report.get("alert_idle"):
        a = report["alert_idle"]
        lines += ["## Alert latency, one case at a time", "",
                  f"{a['alert_ms']['n']} cases: `POST /cases` answered p50 {a['post_ms']['p50']:.1f} ms, p99 "
                  f"{a['post_ms']['p99']:.1f} ms; case opened → alert on SSE p50 {a['alert_ms']['p50']:.1f} ms, "
                  f"p95 {a['alert_ms']['p95']:.1f} ms, p99 {a['alert_ms']['p99']:.1f} ms, max "
                  f"{a['alert_ms']['max']:.1f} ms; {a['missing']} never arrived.", ""]
    if report.get("open_loop"):
        o = report["open_loop"]
        lines += ["## Open loop: donation writes at a fixed rate, whatever the answers", "",
                  f"The closed-loop maximum was {o['max_rate']:.0f}/s (at {o['max_at_connections']} connections). "
                  "Latency counts from each request's scheduled time.", "",
                  "| step | rate/s | ok/s | admitted p50 / p99 ms | shed (429/503) | shed p99 ms | other | hung | "
                  "cpu |", "|---|---|---|---|---|---|---|---|---|"]
        for step in open_loop_steps(o):
            r = o[step]
            shed = sum(v for k, v in r["status"].items() if k in ("429", "503"))
            other = other_answers(r)
            lines.append(f"| {step} | {r['rate']:.0f} | {r['ok_per_s']:.0f} | {r['latency_ok_ms'].get('p50', 0):.1f}"
                         f" / {r['latency_ok_ms'].get('p99', 0):.1f} | {shed} of {r['sent']} | "
                         f"{r['latency_shed_ms'].get('p99', '')} | {other or ''} | {r['hung']} | {cpu(r)} |")
        lines.append("")
        onset = o.get("150%", {}).get("warmup")
        if onset:  # a report made before the onset was recorded has none
            ok, shed = onset["latency_ok_ms"], onset["latency_shed_ms"]
            lines += [f"Each step's first {report['options'].get('warmup') or 1:g} s is not counted above. At 150 % "
                      "it is the overload's onset, which the gateway serves as a burst until its queue has stood "
                      f"{STANDING_SECONDS:g} s (`services/gateway/http.py` `Admission`): there {ok['n']} admitted, "
                      f"p50 / p99 {ok.get('p50', 0):.0f} / {ok.get('p99', 0):.0f} ms; {shed['n']} shed, "
                      f"p99 {shed.get('p99', 0):.0f} ms.", ""]
    if report.get("burst"):
        lines += ["## Bursts: requests at once, each on its own connection, none retried", "",
                  "Donation writes through the gateway at its admission deadline "
                  f"(`LINLI_GATEWAY_ADMISSION_DEADLINE` {report['admission_deadline']}), "
                  "and the bare path beside them.", "",
                  "| path | at once | 2xx | shed (429/503) | other | last 2xx after s | 2xx p50 / p99 ms | "
                  "shed p50 / max ms |", "|---|---|---|---|---|---|---|---|"]
        for r in report["burst"]:
            ok, shed = r["latency_ok_ms"], r["latency_shed_ms"]
            other = other_answers(r)
            lines.append(f"| {r['target']} | {r['count']} | {ok['n']} | {shed['n']} | {other or ''} | "
                         f"{r['answer_span_s']:.2f} | {ok.get('p50', 0):.0f} / {ok.get('p99', 0):.0f} | "
                         f"{shed.get('p50', 0):.0f} / {shed.get('max', 0):.0f} |")
        lines.append("")
    if report.get("scaling"):
        lines += [f"## Donation instances (closed loop, {report['scaling'][0]['connections']} connections)", "",
                  "| instances | ok/s | p50 ms | p95 ms | p99 ms | non-2xx | cpu |", "|---|---|---|---|---|---|---|"]
        lines += [row(r, r["instances"]) for r in report["scaling"]]
        lines.append("")
    if report.get("totals"):
        lines += ["## A campaign's totals (`GET /api/v1/campaigns/{id}`) by its number of donations", "",
                  "Reads and writes alternate between the sizes, one at a time.", "",
                  "| donations | GET p50 / p95 / p99 ms | POST donation p50 / p99 ms | a SUM scan instead, ms |",
                  "|---|---|---|---|"]
        for size, t in sorted(report["totals"].items(), key=lambda kv: int(kv[0])):
            r, w = t["read_ms"], t["write_ms"]
            lines.append(f"| {int(size):,} | {r['p50']:.1f} / {r['p95']:.1f} / {r['p99']:.1f} | "
                         f"{w['p50']:.1f} / {w['p99']:.1f} | {t['sum_scan_ms']:,.1f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(13, 9))
    colours = {"donations": "tab:blue", "cases": "tab:orange", "incidents": "tab:purple", "bare": "tab:grey"}
    names = {"donations": "donation writes", "cases": "case openings", "incidents": "incident reports",
             "bare": "bare nameko path"}
    curve = report.get("curve", {})
    for target, results in curve.items():
        x = [r["connections"] for r in results]
        axes[0][0].plot(x, [r["ok_per_s"] for r in results], "o-", color=colours[target], label=names[target])
        axes[0][1].plot(x, [r["latency_ok_ms"].get("p99", 0) for r in results], "o-", color=colours[target],
                        label=f"{names[target]} p99")
        axes[0][1].plot(x, [r["latency_ok_ms"].get("p50", 0) for r in results], "o--", color=colours[target],
                        alpha=0.5, label=f"{names[target]} p50")
    if curve.get("cases"):
        axes[0][1].plot([r["connections"] for r in curve["cases"]],
                        [r["alert_ms"].get("p99", 0) for r in curve["cases"]], "s:", color="tab:red",
                        label="case opened → SSE alert p99")
    axes[0][0].axhline(TARGETS["donation_writes_per_s"], color="tab:green", linestyle=":", label="target 1,000/s")
    for ax, title, ylabel in ((axes[0][0], "Throughput, closed loop", "answered 2xx per second"),
                              (axes[0][1], "Latency, closed loop", "ms")):
        ax.set_xscale("log", base=2)
        levels = sorted({r["connections"] for results in curve.values() for r in results})
        ax.set_xticks(levels, [str(level) for level in levels])
        ax.set_xlabel("concurrent connections")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][1].set_yscale("log")
    scaling = report.get("scaling", [])
    if scaling:
        ax = axes[1][0]
        x = [r["instances"] for r in scaling]
        ax.bar(x, [r["ok_per_s"] for r in scaling], color="tab:blue", alpha=0.7, label="donation writes/s")
        ax2 = ax.twinx()
        ax2.plot(x, [r["latency_ok_ms"].get("p99", 0) for r in scaling], "o-", color="tab:red", label="p99 ms")
        ax2.set_ylabel("p99 ms")
        ax2.set_ylim(bottom=0)
        ax.set_xticks(x)
        ax.set_xlabel("donations instances")
        ax.set_ylabel("answered 2xx per second")
        ax.set_title(f"Scaling donations, {scaling[0]['connections']} connections")
        ax.legend(loc="upper left", fontsize=8)
        ax2.legend(loc="upper right", fontsize=8)
    ax = axes[1][1]
    opened = report.get("open_loop")
    if opened:
        steps = open_loop_steps(opened)
        ok = [opened[s]["ok_per_s"] for s in steps]
        shed = [sum(v for k, v in opened[s]["status"].items() if k in ("429", "503")) / opened[s]["duration_s"]
                for s in steps]
        labels = [f"{s}\n{opened[s]['rate']:.0f}/s offered" for s in steps]
        ax.bar(labels, ok, color="tab:blue", alpha=0.7, label="admitted 2xx/s")
        ax.bar(labels, shed, bottom=ok, color="tab:orange", alpha=0.7, label="shed 429/503 per s")
        ax2 = ax.twinx()
        ax2.plot(labels, [opened[s]["latency_ok_ms"].get("p99", 0) for s in steps], "o-", color="tab:red",
                 label="admitted p99 ms")
        ax2.set_yscale("log")
        ax2.set_ylabel("ms")
        ax.set_title("Donation writes, open loop (fixed offered rate)")
        ax.set_ylabel("per second")
        ax.legend(loc="upper left", fontsize=8)
        ax2.legend(loc="upper right", fontsize=8)
    m = report["machine"]
    figure.suptitle(f"Linli bench {report['started_at'][:16]}: {m['cores']} cores, {m['database'].split(',')[0]}, "
                    f"RabbitMQ {m['rabbitmq'].split()[0]}, Python {m['python']}", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (about 4 minutes)")
    parser.add_argument("--duration", type=float, help="seconds measured per load step (default 10; quick 3; "
                        "the wrk steps: 8 unless given)")
    parser.add_argument("--warmup", type=float, help="seconds of load before each step's measurement (default 1)")
    parser.add_argument("--concurrency", type=int, nargs="+", help="connections per closed-loop step "
                        "(default 1 2 4 8 16 32 64; quick 1 8 32)")
    parser.add_argument("--sizes", type=int, nargs="+", help="campaign sizes for the totals "
                        "(default 10000 1000000; quick 10000 100000)")
    parser.add_argument("--reads", type=int, help="totals reads per size (default 300; quick 60)")
    parser.add_argument("--alert-cases", type=int, help="cases opened one at a time (default 200; quick 30)")
    parser.add_argument("--scale-connections", type=int,
                        help="connections for the instance-scaling steps (default: the curve's best)")
    parser.add_argument("--max-connections", type=int, default=256, help="open-loop connection cap (256)")
    parser.add_argument("--postgres", default=os.environ.get("LINLI_BENCH_POSTGRES"), metavar="SERVER_URL",
                        help="PostgreSQL mode: a database per service on this server, e.g. "
                             "postgresql://postgres@127.0.0.1:5432 (or LINLI_BENCH_POSTGRES); default SQLite")
    parser.add_argument("--burst", type=int, nargs="+", help="requests sent at once in each burst "
                        "(default 250 1000; quick 250)")
    parser.add_argument("--wrk-connections", type=int, nargs="+", default=[16, 32, 64],
                        help="connections of the wrk steps (issue 20; default 16 32 64)")
    parser.add_argument("--wrk-rounds", type=int, default=2,
                        help="rounds of the wrk steps, Linli and bare in turn, the order reversed each round; "
                             "the targets are judged on each path's mean (default 2)")
    parser.add_argument("--no-broker-count", action="store_true",
                        help="skip counting broker messages per write (saves a few seconds of waiting per step)")
    parser.add_argument("--only", nargs="+",
                        choices=["curve", "wrk", "alerts", "open", "scaling", "totals", "burst"],
                        help="run only these phases (open and scaling need curve)")
    parser.add_argument("--targets", nargs="+", choices=PATHS, default=list(PATHS),
                        help="the closed-loop curve's paths (default all four; tuning runs may skip some)")
    parser.add_argument("--out", type=Path, help="report path without suffix (default bench/results/report; "
                        "quick: bench/results/quick)")
    parser.add_argument("--plot", type=Path, help="the PNG (default docs/bench.png; quick: bench/results/quick.png)")
    args = parser.parse_args()
    quick = args.quick
    args.wrk_duration = args.duration or 8.0
    defaults = {"duration": 3 if quick else 10, "warmup": 1 if quick else 1,
                "concurrency": [1, 8, 32] if quick else [1, 2, 4, 8, 16, 32, 64],
                "sizes": [10_000, 100_000] if quick else [10_000, 1_000_000], "reads": 60 if quick else 300,
                "alert_cases": 30 if quick else 200, "burst": [250] if quick else [250, 1000]}
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    out = args.out or RESULTS / ("quick" if quick else "report")
    plot_path = args.plot or (RESULTS / "quick.png" if quick else REPO_ROOT / "docs" / "bench.png")
    phases = args.only or ["curve", "wrk", "alerts", "open", "scaling", "totals", "burst"]
    if {"open", "scaling"} & set(phases) and "curve" not in phases:
        parser.error("--only open/scaling need the curve's maximum: add curve")
    if args.wrk_rounds < 1:
        parser.error("--wrk-rounds: at least 1")

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as folder:
        bench = Bench(args, Path(folder))
        failed = None
        try:
            bench.start()
            for phase, run in (("curve", bench.curve), ("wrk", bench.wrk_phase), ("alerts", bench.alert_latency),
                               ("open", bench.open_loop), ("scaling", bench.scaling), ("totals", bench.totals),
                               ("burst", bench.burst)):
                if phase in phases:
                    run()
        except (Exception, KeyboardInterrupt) as error:
            failed = error
            progress(f"FAILED: {type(error).__name__}: {error}")
            if bench.stack:
                for service, index in list(bench.stack.processes):
                    tail = bench.stack.log_tail(service, index, lines=8)
                    if "Error" in tail or "Traceback" in tail:
                        progress(f"--- {service}-{index} log ---\n{tail}")
        finally:
            progress("stopping the stack and the bare reference; deleting the vhosts")
            bench.stop()
    report = bench.report
    report["elapsed_s"] = round(time.monotonic() - started, 1)
    report["command"] = " ".join(["bench/run.py", *sys.argv[1:]])
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if failed:
        report["failed"] = f"{type(failed).__name__}: {failed}"
    if "machine" not in report:
        return 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    text = markdown(report)
    out.with_suffix(".md").write_text(text)
    if any(phase in report for phase in ("curve", "scaling", "open_loop")):
        plot(report, plot_path)
    print(text)
    progress(f"report: {out.with_suffix('.md')} and .json; plot: {plot_path}; {report['elapsed_s']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
