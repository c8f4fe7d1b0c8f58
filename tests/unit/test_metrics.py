"""The services' own metrics: where they listen comes from the service's
config (deploy/config, the only home of its default), and a worker that
refuses bad input is not counted as failing (what LinliWorkersFailing alerts on)."""
import socket
import urllib.request
from types import SimpleNamespace

import pytest
from marshmallow import ValidationError
from nameko.rpc import Rpc

from services.common import config as linli_config
from services.common.errors import LinliError
from services.common.metrics import Metrics, outcome
from services.common.service import EXPECTED_ERRORS
from services.ops.stack import BACKENDS


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def test_every_backend_reads_its_metrics_address_and_port_from_its_config_file():
    for service in BACKENDS:
        config = linli_config.load(service)
        assert config["METRICS_ADDRESS"] == "127.0.0.1" and config["METRICS_PORT"] == 0, service


def test_metrics_listen_on_the_configured_address_only():
    port = free_port("127.0.0.2")
    metrics = Metrics()
    metrics.container = SimpleNamespace(config={"METRICS_PORT": port, "METRICS_ADDRESS": "127.0.0.2"},
                                        service_name="welfare")
    metrics.setup()
    with urllib.request.urlopen(f"http://127.0.0.2:{port}/metrics", timeout=5) as answer:
        assert b"linli_worker_calls_total" in answer.read()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_a_refusal_the_entrypoint_expects_is_refused_and_anything_else_an_error():
    entrypoint = Rpc(expected_exceptions=EXPECTED_ERRORS)
    assert outcome(entrypoint, None) == "ok"
    assert outcome(entrypoint, (ValidationError, ValidationError("bad"), None)) == "refused"
    assert outcome(entrypoint, (LinliError, LinliError("no"), None)) == "refused"
    assert outcome(entrypoint, (KeyError, KeyError("bug"), None)) == "error"
    assert outcome(SimpleNamespace(), (LinliError, LinliError("no"), None)) == "error"  # a timer expects nothing


def test_linli_up_listens_for_metrics_where_the_services_config_says(tmp_path):
    from services.ops.stack import Stack

    stack = Stack(tmp_path / "default", env={}, metrics_port=9300)
    assert stack.metrics_address == linli_config.load("patrol")["METRICS_ADDRESS"] == "127.0.0.1"
    assert {host for host, port, what in stack.ports() if "metrics" in what} == {"127.0.0.1"}
    stack = Stack(tmp_path / "all", env={"LINLI_METRICS_ADDRESS": "0.0.0.0"}, metrics_port=9300)
    assert {host for host, port, what in stack.ports() if "metrics" in what} == {"0.0.0.0"}
    # Each backend process is told its own port, and reads the address from the same environment.
    assert stack.process_env("welfare")["LINLI_METRICS_ADDRESS"] == "0.0.0.0"
    assert stack.process_env("welfare")["LINLI_METRICS_PORT"] == str(stack.metrics_port_of("welfare"))
