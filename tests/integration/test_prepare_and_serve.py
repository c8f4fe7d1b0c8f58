"""`linli prepare` and `linli serve SERVICE`, what systemd's units run
(deploy/single-host/), against the real broker: prepare makes everything a
service needs and can run again; serve becomes that service's nameko process,
connected as its own broker user; prepare without a broker says so."""
import pytest
import json
import os
import signal
import stat
import subprocess
import sys

from amqp.exceptions import NotFound
from kombu import Connection
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from services.ops import brokerusers
from services.ops.stack import BROKER_PASSWORDS, SERVICES
from tests import databases
from tests.conftest import wait_for
from tests.e2e.conftest import free_port

# make test-slow (about 10 s of subprocesses and waiting for a broker that is not there).
pytestmark = pytest.mark.slow


def linli(env: dict, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.ops.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def consumers(amqp_uri: str, queue: str) -> int:
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        try:
            return channel.queue_declare(queue, passive=True)[2]
        except NotFound:  # the service has not declared it yet
            return 0
        finally:
            if channel.is_open:
                channel.close()


@pytest.mark.slow  # about 11 s: prepare, then every service served
def test_prepare_then_serve_as_the_units_do(vhost, tmp_path):
    var = tmp_path / "var"
    # What /etc/linli/linli.env gives: the broker as its administrator, the databases; no secrets.
    env = (dict(os.environ, AMQP_URI=vhost.amqp_uri, LINLI_AMQP_MANAGEMENT_URL=vhost.management_url)
           | databases.service_database_env(var, SERVICES))
    for name in ("LINLI_JWT_SECRET", "LINLI_CALLER_SIGNING_KEY", "LINLI_CALLER_PUBLIC_KEY"):
        env.pop(name, None)

    first = linli(env, "--var", str(var), "prepare")
    assert first.returncode == 0, first.stderr
    assert "prepared" in first.stdout and vhost.name in first.stdout
    assert "guest:guest" not in first.stdout + first.stderr  # no password on the console (the journal)
    passwords = json.loads((var / BROKER_PASSWORDS).read_text())
    assert sorted(passwords) == sorted(brokerusers.username(s, vhost.name) for s in SERVICES)
    for path in (var / BROKER_PASSWORDS, var / "jwt-secret", var / "caller-key.pem"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    engine = create_engine(env["LINLI_GATEWAY_DB"], poolclass=NullPool)
    try:
        assert "alembic_version" in inspect(engine).get_table_names()  # migrated
    finally:
        engine.dispose()

    # Again, as at every start of linli.target: nothing changes.
    again = linli(env, "--var", str(var), "prepare")
    assert again.returncode == 0, again.stderr
    assert json.loads((var / BROKER_PASSWORDS).read_text()) == passwords

    process = subprocess.Popen([sys.executable, "-m", "services.ops.cli", "--var", str(var), "serve", "donations",
                                "--metrics-port", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: process.poll() is not None or consumers(vhost.amqp_uri, "rpc-donations") > 0,
                 timeout=60, interval=0.3, what="donations consuming its RPC queue")
        assert process.poll() is None, process.stdout.read().decode(errors="replace")

        # serve became nameko (systemd's main process), as donations' own broker user.
        with open(f"/proc/{process.pid}/environ", "rb") as environ:
            amqp_uri = next(line for line in environ.read().split(b"\0") if line.startswith(b"AMQP_URI="))
        assert amqp_uri.startswith(f"AMQP_URI=amqp://linli-donations%40{vhost.name}:".encode())
        with open(f"/proc/{process.pid}/cmdline", "rb") as cmdline:
            assert b"nameko\0run" in cmdline.read()
    finally:
        process.send_signal(signal.SIGTERM)  # systemctl stop: nameko's own shutdown
        output = process.communicate(timeout=30)[0].decode(errors="replace")
    assert process.returncode is not None
    assert "Traceback" not in output, output


def test_prepare_without_a_broker_says_so_after_waiting(tmp_path):
    env = dict(os.environ, AMQP_URI=f"amqp://operator:s3cret@127.0.0.1:{free_port()}/")
    result = linli(env, "--var", str(tmp_path / "var"), "prepare", "--wait", "1", timeout=60)
    assert result.returncode == 1
    assert "cannot prepare" in result.stderr and "Is the broker running" in result.stderr
    assert "s3cret" not in result.stderr


def test_serve_before_prepare_starts_nothing(tmp_path):
    env = dict(os.environ, AMQP_URI="amqp://operator:s3cret@127.0.0.1:5672/nowhere")
    result = linli(env, "--var", str(tmp_path / "var"), "serve", "gateway", timeout=60)
    assert result.returncode == 1 and "run `linli prepare` first" in result.stderr
