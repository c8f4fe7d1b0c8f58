"""CPU of the small parts of a gift's path that were cut on 2026-12-06 (issue
20), each against the way before, alternated in one process: on a machine
whose speed moves by a quarter from one second to the next (a shared virtual
CPU), a stack's throughput cannot tell a few per cent, but two ways of one
part timed turn about, block by block, can.

    .venv/bin/python bench/request_parts.py            # 20 blocks of 2,000 each

For each part: the median over the blocks of its microseconds of CPU
(`time.thread_time`) each way, and the saving. The parts:

- a request's header lines (as wrk sends a gift): Python's
  `http.client.parse_headers` against services/gateway/headers.py;
- a log line (`ran donations.record_donation in call_many`, JsonLines to a
  file) with the logging module's lookups of the caller, thread and process,
  and without (services/common/runtime.py);
- a caller's load: ActorSchema's against load_actor's remembered one;
- nameko's check of an RPC's signature (`inspect.getcallargs`, here of a
  `call_many` of gifts), which a vouched RPC no longer makes beside its own
  `Signature.bind`."""
from __future__ import annotations

import argparse
import inspect
import io
import logging
import logging.config
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import http.client  # noqa: E402

from services.common import logs  # noqa: E402
from services.common import runtime  # noqa: E402 -- its log switches are set at import, and under test here
from services.common.schemas import load_or_raise, shared  # noqa: E402
from services.contracts.principal import ActorSchema, load_actor  # noqa: E402
from services.donations.service import DonationsService  # noqa: E402
from services.gateway import headers  # noqa: E402

HEADERS = (b"Host: 127.0.0.1:41234\r\nAuthorization: Bearer " + b"e" * 280 + b"\r\n"
           b"Content-Type: application/json\r\nIdempotency-Key: wrk-5f2c1a-2-donations-c16-0-4711\r\n"
           b"Content-Length: 52\r\n\r\n")
ACTOR = {"id": "0f3c2a9e8b7d4c1a9e8b7d4c1a9e8b7d", "roles": ["admin"]}


def log_switches(on: bool):
    """The logging module's lookups, as Python ships it (on) or as Linli sets it (off)."""
    if not on:
        runtime.lighter_log_records()
        return
    logging._srcfile = os.path.normcase(logging.addLevelName.__code__.co_filename)  # as `logging` sets it
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--each", type=int, default=2000, help="calls of a part per block")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="linli-parts-"))
    logging.config.dictConfig({
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": "services.common.logs.JsonLines", "service": "donations"}},
        "handlers": {"file": {"class": "logging.FileHandler", "formatter": "json",
                              "filename": str(folder / "lines.log")}},
        "loggers": {"parts": {"level": "INFO", "handlers": ["file"], "propagate": False}}})
    line = logging.getLogger("parts")
    logs.bind_request_id("7f1b6bf89bee9b39d4edcb33c7cb2de5")
    calls = [{"args": ["campaign-id", {"kind": "cash", "amount_fen": 100}, ACTOR], "kwargs": {}}] * 16

    def was_logged():
        log_switches(True)
        line.info("ran %s.%s in call_many", "donations", "record_donation")
        log_switches(False)

    parts = {
        "header lines": (lambda: http.client.parse_headers(io.BytesIO(HEADERS)),
                         lambda: headers.parse_headers(io.BytesIO(HEADERS))),
        "a log line": (was_logged,
                       lambda: line.info("ran %s.%s in call_many", "donations", "record_donation")),
        "a caller's load": (lambda: load_or_raise(shared(ActorSchema), ACTOR), lambda: load_actor(ACTOR)),
        "nameko's signature check": (
            lambda: inspect.getcallargs(DonationsService.call_many, None, method="record_donation", calls=calls),
            lambda: None),
    }
    for name, (before, after) in parts.items():
        times = {"before": [], "after": []}
        for _ in range(args.blocks):
            for way, call in (("before", before), ("after", after)):
                started = time.thread_time()
                for _ in range(args.each):
                    call()
                times[way].append((time.thread_time() - started) / args.each * 1e6)
        b, a = statistics.median(times["before"]), statistics.median(times["after"])
        print(f"{name:26} before {b:6.1f} µs  after {a:6.1f} µs  saved {b - a:6.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
