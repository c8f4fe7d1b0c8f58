"""`linli up` starts again a service that exits, after a back-off, and says
clearly when one cannot start. (The real `linli up`: tests/e2e/test_linli_up.py.)"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client import REGISTRY

import services
from services.ops.stack import CANNOT_START_AFTER, CODE_ROOT, Backoff, Stack
from tests.conftest import wait_for
from tests.e2e.conftest import free_port


def test_the_back_off_doubles_to_its_cap_and_starts_over_after_a_steady_run():
    backoff = Backoff(first=1, cap=30, steady=60)
    assert [backoff.delay(ran_for=2) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.failures == 7
    assert backoff.delay(ran_for=60) == 1  # it had run steadily: this exit is the first of a new run
    assert backoff.delay(ran_for=59) == 2
    assert backoff.failures == 2


class CrashingStack(Stack):
    """Each process exits at once with code 3, as a misconfigured service does."""

    def command(self, service):
        return [sys.executable, "-c", f"import sys; print('{service}: a required setting is missing'); sys.exit(3)"]


def restarts(service: str) -> float:
    return REGISTRY.get_sample_value("linli_service_restarts_total", {"service": service}) or 0


def test_a_process_that_keeps_exiting_is_restarted_then_reported_with_its_log(tmp_path):
    stack = CrashingStack(tmp_path / "var", env={}, broker_users=False)
    stack.backoffs[("welfare", 0)] = Backoff(first=0.01, cap=0.02)  # the schedule, shortened
    before = restarts("welfare")
    said = []

    def exits():
        return [line for line in said if " exited (" in line]

    stack.start_process("welfare")
    wait_for(lambda: stack.supervise_once(said.append) is not None and len(exits()) >= CANNOT_START_AFTER,
             timeout=20, what=f"{CANNOT_START_AFTER} exits")
    assert stack.cannot_start() == ["welfare-0"]
    stack.stop()

    assert exits()[0].startswith("welfare-0 exited (exit code 3); restarting in 0.01s (welfare restarts: 1)")
    assert str(tmp_path / "var" / "log" / "welfare-0.log") in exits()[0]
    assert "(welfare restarts: 5)" in exits()[-1]
    assert restarts("welfare") == before + CANNOT_START_AFTER
    cannot = [line for line in said if "cannot start" in line]
    assert said.index(cannot[0]) == said.index(exits()[-1]) + 1  # said once, after the 5th exit
    assert len(cannot) == 1 and "welfare: a required setting is missing" in cannot[0]


def test_a_killed_process_is_reported_with_its_signal_and_started_again_after_a_second(tmp_path):
    class Sleeping(Stack):
        def command(self, service):
            return [sys.executable, "-c", "import time; time.sleep(60)"]

    stack = Sleeping(tmp_path / "var", env={}, broker_users=False)
    try:
        first = stack.start_process("donations")
        first.kill()
        said = []
        wait_for(lambda: stack.supervise_once(said.append), timeout=5, what="the exit seen")
        assert said[0].startswith("donations-0 exited (killed by SIGKILL); restarting in 1s")
        assert stack.supervise_once(said.append) == 0 and ("donations", 0) not in stack.processes
        time.sleep(1)
        stack.supervise_once(said.append)
        assert stack.processes[("donations", 0)].poll() is None and stack.cannot_start() == []
    finally:
        stack.stop()


def test_busy_ports_names_each_port_something_holds_even_with_so_reuseport(tmp_path):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as nameko's gateway listened
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    try:
        alone = Stack(tmp_path / "var", env={}, port=taken, broker_users=False)
        assert alone.busy_ports() == [("127.0.0.1", taken, "gateway-0")]
        scaled = Stack(tmp_path / "var", env={}, port=taken - 1, scale={"gateway": 2}, broker_users=False)
        assert ("127.0.0.1", taken, "gateway-1") in scaled.busy_ports()
        metrics = Stack(tmp_path / "var", env={}, port=free_port(), metrics_port=taken - 1, broker_users=False)
        assert ("127.0.0.1", taken, "donations-0 metrics") in metrics.busy_ports()
    finally:
        holder.close()
    assert alone.busy_ports() == []


def test_a_stacks_processes_import_the_code_the_stack_was_started_from(tmp_path):
    """They start in the stack's own folder; without the checkout first on their
    path, `services` came from wherever the environment resolved it (a venv's
    editable install names one checkout for every worktree of it)."""
    assert CODE_ROOT == Path(services.__file__).resolve().parents[1]  # a checkout (pyproject.toml beside it)
    stack = Stack(tmp_path / "var", env={"PYTHONPATH": "/somewhere/else"})
    env = stack.process_env("donations")
    assert env["PYTHONPATH"].split(os.pathsep) == [str(CODE_ROOT), "/somewhere/else"]
    imported = subprocess.run([sys.executable, "-c", "import services; print(services.__file__)"], env=env,
                              cwd=tmp_path / "var", capture_output=True, text=True, timeout=60)
    assert Path(imported.stdout.strip()).resolve().parents[1] == CODE_ROOT
