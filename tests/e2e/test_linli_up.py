"""`linli up --demo`, as `make run` calls it: migrates, starts every service,
loads the demo community, prints the URL and logins; Ctrl-C stops it all. A
service that dies is started again; a port something holds is refused."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import requests

from services.ops import demo
from services.ops.stack import SERVICES, Stack, service_env
from tests import databases
from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, free_port, linli, login, new_key
from tests.e2e.test_donations import local_today


def linli_up_env(vhost, var) -> dict:
    return dict(os.environ, AMQP_URI=vhost.amqp_uri, PYTHONUNBUFFERED="1",
                **databases.service_database_env(var, SERVICES))


class Output:
    """What a running `linli up` prints (stdout and stderr), read in the background."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process):
        for line in process.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)


@pytest.mark.slow  # about 20 s: the demo loaded through a whole stack
def test_linli_up_demo_serves_the_demo_world_and_stops_cleanly_on_ctrl_c(module_vhost, tmp_path):
    port = free_port()
    env = dict(os.environ, AMQP_URI=module_vhost.amqp_uri, PYTHONUNBUFFERED="1",
               **databases.service_database_env(tmp_path / "var", SERVICES))
    process = subprocess.Popen(
        [sys.executable, "-m", "services.ops.cli", "--var", str(tmp_path / "var"), "up", "--demo",
         "--port", str(port), "--metrics-port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        for line in process.stdout:
            output.append(line)
            if "Ctrl-C stops everything" in line or process.poll() is not None:
                break
        printed = "".join(output)
        assert f"Linli is ready at http://127.0.0.1:{port}/" in printed, printed
        for username, password, _ in demo.DEMO_LOGINS:
            assert f"{username}" in printed and password in printed

        # The paired party member was alerted about the demo case.
        member = login(f"http://127.0.0.1:{port}", "wangfang", "linli-member-demo")
        alerts = wait_for(lambda: member.get("/me/alerts").json()["items"], timeout=15, what="the demo alert")
        case = member.get(f"/cases/{alerts[0]['ref']['id']}").json()
        assert case["categories"] == ["low_income", "disability", "elderly", "illness"]
        # The community's own category, and the illegal structures found on patrol.
        office = login(f"http://127.0.0.1:{port}", *demo.DEMO_ADMIN)
        assert {**demo.ILLEGAL_STRUCTURE, "retired": False} in office.get("/categories").json()["incident"]
        incidents = office.get("/incidents").json()["items"]
        assert [i["category"] for i in incidents] == ["illegal_structure"] * len(demo.INCIDENTS)
        # Five activity groups under party members, this year's sessions (300 residents took part), and
        # the hours of their leaders and helpers, the tutoring and the blackboard bulletin.
        groups = office.get("/groups").json()["items"]
        assert sorted(g["name"] for g in groups) == sorted(name for name, *_ in demo.GROUPS)
        sessions = office.get("/sessions", params={"limit": 200}).json()["items"]
        assert (len(sessions), sum(s["participants"] for s in sessions)) == (len(demo.SESSIONS), 300)
        records = office.get("/service", params={"source": "other", "limit": 200}).json()["items"]
        assert {r["member_name"] for r in records} == {name for _, name, _ in demo.VOLUNTEER_MEMBERS}
        leader = login(f"http://127.0.0.1:{port}", "liu.yangge", "linli-member-demo")
        assert leader.get("/me/service").json()["total_minutes"] == sum(
            minutes for group, _, _, minutes, *_ in demo.SESSIONS if group == 0)
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)

    assert process.returncode == 0, rest
    assert "stopped" in rest
    try:
        requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
        raise AssertionError("the gateway still answers after Ctrl-C")
    except requests.ConnectionError:
        pass
    logs = (tmp_path / "var" / "log")
    assert sorted(p.name for p in logs.iterdir()) == sorted(f"{service}-0.log" for service in SERVICES)
    # Each service ran as its own broker user, its password kept in var/, which is its owner's only.
    var = tmp_path / "var"
    assert var.stat().st_mode & 0o777 == 0o700
    for path in var.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    passwords = json.loads((var / "broker-passwords.json").read_text())
    assert sorted(passwords) == sorted(f"linli-{service}@{module_vhost.name}" for service in SERVICES)


@pytest.mark.slow  # about 20 s: a whole stack started by linli up
def test_a_killed_service_is_started_again_and_counted_while_linli_up_keeps_running(module_vhost, tmp_path):
    port, metrics_port = free_port(), free_port(6)
    var = tmp_path / "var"
    env = linli_up_env(module_vhost, var)
    created = linli(env, "--var", str(var), "admin", "create", "--username", "admin", stdin=ADMIN_PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "services.ops.cli", "--var", str(var), "up", "--port", str(port),
         "--metrics-port", str(metrics_port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(process)
    try:
        wait_for(lambda: "Ctrl-C stops everything" in output.text or process.poll() is not None, timeout=120,
                 what="linli up ready")
        assert process.poll() is None, output.text
        assert f"restarts (linli up) :{metrics_port + 4}" in output.text
        admin = login(f"http://127.0.0.1:{port}", "admin", ADMIN_PASSWORD)
        today = local_today()
        campaign = admin.post("/campaigns", {"name": "Winter coats", "goal_fen": 100_000,
                                             "starts_on": (today - timedelta(days=1)).isoformat(),
                                             "ends_on": (today + timedelta(days=1)).isoformat()}).json()

        def donate():
            return admin.post(f"/campaigns/{campaign['id']}/donations",
                              {"kind": "cash", "amount_fen": 500, "donor_name": "张伟"}, key=new_key())

        assert donate().status_code == 201
        donations = donations_pid(process.pid)
        os.kill(donations, signal.SIGKILL)
        killed_at = time.monotonic()

        # Back within seconds: the first back-off is 1 s, then nameko starts.
        wait_for(lambda: donate().status_code == 201, timeout=30, interval=0.5, what="a donation taken again")
        print(f"donations answered again {time.monotonic() - killed_at:.1f}s after the kill")
        assert process.poll() is None, output.text  # linli up kept running, and so did the rest
        assert donations_pid(process.pid) != donations
        assert ("linli: donations-0 exited (killed by SIGKILL); restarting in 1s (donations restarts: 1); "
                f"its log: {var / 'log' / 'donations-0.log'}") in output.text
        metrics = requests.get(f"http://127.0.0.1:{metrics_port + 4}/metrics", timeout=5).text
        assert 'linli_service_restarts_total{service="donations"} 1.0' in metrics
        assert 'linli_service_restarts_total{service="patrol"} 0.0' in metrics

        # A second gateway on the same port fails at start, rather than share it (nameko's SO_REUSEPORT).
        second = subprocess.run(
            Stack(var).command("gateway"), env=service_env(var, env) | {"LINLI_HTTP_PORT": str(port)},
            capture_output=True, text=True, timeout=60)
        assert second.returncode != 0 and "Address already in use" in second.stderr, second.stderr[-2000:]
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert process.returncode == 0, output.text
    assert "linli: stopped" in output.text


def donations_pid(linli_up: int) -> int:
    """The donations process `linli up` runs (its child)."""
    found = subprocess.run(["pgrep", "-P", str(linli_up), "-f", "DonationsService"], capture_output=True, text=True)
    pids = found.stdout.split()
    assert len(pids) == 1, found
    return int(pids[0])


def test_linli_up_refuses_a_port_something_holds_and_starts_nothing(module_vhost, tmp_path):
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as nameko's own web server listens
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    var = tmp_path / "var"
    try:
        started = time.monotonic()
        refused = linli(linli_up_env(module_vhost, var), "--var", str(var), "up", "--port", str(port),
                        "--metrics-port", "0")
        took = time.monotonic() - started
    finally:
        holder.close()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert f"linli: port {port} on 127.0.0.1 (gateway-0) is taken by another program, or another Linli." \
        in refused.stderr
    assert "nothing started. Pick other ports: --port N" in refused.stderr
    assert "Linli is ready" not in refused.stdout and "migrating" not in refused.stdout
    assert list((var / "log").iterdir()) == []  # no process ever started
    assert took < 15
