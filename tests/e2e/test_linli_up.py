"""`linli up --demo`, as `make run` calls it: migrates, starts every service,
loads the demo community, prints the URL and logins; Ctrl-C stops it all."""
import json
import os
import signal
import subprocess
import sys

import requests

from services.ops import demo
from services.ops.stack import SERVICES
from tests import databases
from tests.conftest import wait_for
from tests.e2e.conftest import free_port, login


def test_linli_up_demo_serves_the_demo_world_and_stops_cleanly_on_ctrl_c(module_vhost, tmp_path):
    port = free_port()
    env = dict(os.environ, AMQP_URI=module_vhost.amqp_uri, PYTHONUNBUFFERED="1",
               **databases.service_database_env(tmp_path / "var", SERVICES))
    process = subprocess.Popen(
        [sys.executable, "-m", "services.ops.cli", "--var", str(tmp_path / "var"), "up", "--demo",
         "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
