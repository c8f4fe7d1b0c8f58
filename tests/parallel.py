"""Run a pytest selection as several pytest processes at once, a test file never
split between two (its module stack starts once), files dealt out by the
seconds they took last time (tests/durations.json) so that the processes end
together. Most of a run is waiting (a stack starting, a broker restarting, a
page loading), so on 2 cores three or four processes finish in about half the
time of one.

    python -m tests.parallel [--processes N] [--store] -- <pytest arguments>

pytest-xdist cannot do this here: its workers talk to the controller over
execnet threads, which eventlet's monkey-patching (tests/conftest.py) stops.
Each process's output is printed whole when it ends, then one line per
process; the exit status is the first failure's (a process that selected no
test counts as passed). `--store` writes the durations just measured back to
tests/durations.json (`make durations`)."""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DURATIONS = ROOT / "tests" / "durations.json"
UNKNOWN_FILE_SECONDS = 10.0  # a file not measured yet: about a small module with a stack of its own
NO_TESTS_COLLECTED = 5  # pytest's exit status when the selection is empty


def selected_files(pytest_args: list[str]) -> list[str]:
    """The test files that hold at least one test the arguments select."""
    listing = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", *pytest_args],
                             cwd=ROOT, capture_output=True, text=True)
    if listing.returncode not in (0, NO_TESTS_COLLECTED):
        sys.stdout.write(listing.stdout + listing.stderr)
        sys.exit(listing.returncode)
    # One node id a line ("path::test"), or with -q given twice one file a line ("path: count").
    return sorted({re.split(r"::|: \d+$", line, maxsplit=1)[0] for line in listing.stdout.splitlines()
                   if re.search(r"::|\.py: \d+$", line)})


def deal(files: list[str], seconds: dict[str, float], processes: int) -> list[list[str]]:
    """The longest file first, each to the process with the least to do so far."""
    groups: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(processes)]
    for name in sorted(files, key=lambda f: -seconds.get(f, UNKNOWN_FILE_SECONDS)):
        index = min(range(processes), key=lambda i: groups[i][0])
        total, members = groups[index]
        groups[index] = (total + seconds.get(name, UNKNOWN_FILE_SECONDS), members + [name])
    return [members for _, members in groups if members]


def file_seconds(junit_xml: Path) -> dict[str, float]:
    """Seconds per test file from a JUnit report (setup and teardown included)."""
    seconds: dict[str, float] = defaultdict(float)
    if not junit_xml.exists():
        return seconds
    for case in ET.parse(junit_xml).iter("testcase"):
        name = case.get("classname", "").split(".")
        # classname is the module's dotted path, then the class if any: keep up to test_*.
        parts = []
        for part in name:
            parts.append(part)
            if part.startswith("test_"):
                break
        seconds["/".join(parts) + ".py"] += float(case.get("time", 0))
    return seconds


def wait_all(runs: list, started: float, outcomes: list, measured: dict):
    """Print each process's output as soon as it ends, whichever ends first."""
    while runs:
        time.sleep(0.5)
        for run in [run for run in runs if run[2].poll() is not None]:
            runs.remove(run)
            number, files, process, log, report = run
            took = time.monotonic() - started
            print(f"\n===== process {number} ({len(files)} files): exit {process.returncode} after {took:.0f} s =====",
                  flush=True)
            sys.stdout.write(log.read_text())
            sys.stdout.flush()
            outcomes.append((number, process.returncode, took))
            measured.update(file_seconds(report))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=int(os.environ.get("TEST_PROCESSES", 3)))
    parser.add_argument("--store", action="store_true", help="write the measured durations to tests/durations.json")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    pytest_args = [arg for arg in options.pytest_args if arg != "--"]

    # The paths select the files; each process is given its own files instead.
    options_only = [arg for arg in pytest_args if arg.startswith("-") or not (ROOT / arg.split("::")[0]).exists()]
    known = json.loads(DURATIONS.read_text()) if DURATIONS.exists() else {}
    groups = deal(selected_files(pytest_args), known, max(1, options.processes))
    if not groups:
        print("parallel: no test selected")
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="linli-parallel-") as folder:
        runs = []
        for number, files in enumerate(groups, 1):
            log = Path(folder) / f"{number}.log"
            report = Path(folder) / f"{number}.xml"
            with open(log, "w") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "pytest", *options_only, f"--junitxml={report}", *files],
                    cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            runs.append((number, files, process, log, report))
        print(f"parallel: {sum(len(files) for _, files, *_ in runs)} test files in {len(runs)} pytest processes",
              flush=True)
        outcomes, measured = [], {}
        try:
            wait_all(runs, started, outcomes, measured)
        finally:  # interrupted: no process outlives the run
            for _, _, process, _, _ in runs:
                process.terminate()
                process.wait()
    print("\nparallel: " + "; ".join(f"process {n}: {'passed' if s in (0, NO_TESTS_COLLECTED) else f'exit {s}'}"
                                     f" by {t:.0f} s" for n, s, t in outcomes))
    if options.store:
        DURATIONS.write_text(json.dumps(dict(sorted((known | {
            name: round(value, 1) for name, value in measured.items()}).items())), indent=0) + "\n")
    failed = [status for _, status, _ in outcomes if status not in (0, NO_TESTS_COLLECTED)]
    return failed[0] if failed else 0


if __name__ == "__main__":
    sys.exit(main())
