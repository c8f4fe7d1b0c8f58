"""The bare reference path for the benchmark: HTTP entrypoint -> RPC -> reply,
plus an event, with no database, no authentication, no validation, nameko's
default settings (max_workers 10, ...). Two toy services run in ONE
`nameko run` process, on their own vhost and port:

    nameko run --config CONFIG bench.bare_reference:BareFront bench.bare_reference:BareBack

`POST /bare` with any JSON body: BareFront's HTTP worker calls BareBack.record
over RPC; BareBack dispatches a `recorded` event and replies; BareFront answers
201 with the reply, and its event handler takes the event. `GET /bare/count`
says how many requests BareBack has recorded (no RPC: for the bench's count
of broker messages per request). This is the cost of
nameko's own plumbing, which any Linli request pays too, so the gateway's
figures are reported as a ratio to it.

`bench/run.py` writes the config and starts it (BareReference below)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from nameko.events import EventDispatcher, event_handler
from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http

REPO_ROOT = Path(__file__).resolve().parents[1]


class BareBack:
    name = "bare_back"
    dispatch = EventDispatcher()
    recorded = 0  # requests that reached the RPC (bench/run.py's denominator for messages per request)

    @rpc
    def record(self, payload):
        BareBack.recorded += 1
        receipt = {"id": uuid.uuid4().hex, "amount_fen": payload.get("amount_fen")}
        self.dispatch("recorded", receipt)
        return receipt


class BareFront:
    name = "bare_front"
    back = RpcProxy("bare_back")
    seen = 0

    @http("POST", "/bare")
    def record(self, request):
        receipt = self.back.record(json.loads(request.get_data(as_text=True) or "{}"))
        return 201, {"Content-Type": "application/json"}, json.dumps(receipt)

    @http("GET", "/bare/count")
    def count(self, request):
        """How many requests BareBack recorded (one process: the class is shared); no RPC."""
        return 200, {"Content-Type": "application/json"}, json.dumps({"recorded": BareBack.recorded})

    @event_handler("bare_back", "recorded")
    def on_recorded(self, receipt):
        BareFront.seen += 1


class BareReference:
    """The bare path as a process of its own (started, checked ready, stopped)."""

    def __init__(self, folder: Path, amqp_uri: str, port: int):
        self.folder, self.port = Path(folder), port
        self.config = self.folder / "bare.yml"
        self.config.write_text(f"AMQP_URI: '{amqp_uri}'\nWEB_SERVER_ADDRESS: '127.0.0.1:{port}'\n")
        self.log = self.folder / "bare.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "BareReference":
        import requests

        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nameko", "run", "--config", str(self.config),
                 "bench.bare_reference:BareFront", "bench.bare_reference:BareBack"],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the bare reference exited: see {self.log}")
            try:
                if requests.post(self.url + "/bare", json={"amount_fen": 1}, timeout=2).status_code == 201:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the bare reference did not answer in {timeout:.0f} s: see {self.log}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
