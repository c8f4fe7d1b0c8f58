"""The whole stack as separate processes (the same supervisor as `linli up`),
in a throwaway vhost and a temporary folder; tests talk HTTP to the gateway."""
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from services.ops.stack import SERVICES, Stack
from tests import databases
from tests.conftest import _new_vhost
from tests.ports import free_port

ADMIN_PASSWORD = "e2e-admin-password"


def linli(env: dict, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.ops.cli", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def running_stack(broker, var, *, start: bool = True, metrics_port: int = 0, ready_timeout: float = 90,
                  scale: dict[str, int] | None = None, **env_overrides):
    """Every service as a process (`scale`: instances of some), on `broker`
    (a vhost, or a private node), data in `var`, with the first admin made as
    an operator would (`linli admin create`). `start=False`: prepared, but no
    process started."""
    # Each service as its own broker user, where the broker has the management API to make them.
    management_url = getattr(broker, "management_url", None)
    env = (dict(os.environ, AMQP_URI=broker.amqp_uri, LINLI_OUTBOX_GRACE_SECONDS="1")
           | ({"LINLI_AMQP_MANAGEMENT_URL": management_url} if management_url else {})
           | databases.service_database_env(var, SERVICES) | env_overrides)
    stack = Stack(var, env=env, port=free_port((scale or {}).get("gateway", 1)), metrics_port=metrics_port, scale=scale,
                  broker_users=management_url is not None)
    stack.prepare()
    created = linli(stack.env, "--var", str(var), "admin", "create", "--username", "admin",
                    stdin=ADMIN_PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    try:
        if start:
            stack.start()
            assert stack.wait_ready(timeout=ready_timeout), "the stack did not become ready"
        yield stack
    finally:
        stack.stop()


def rpc_config(stack: Stack) -> dict:
    """What a nameko client needs to call the stack's services as its gateway
    does (tests.vouching.vouched_rpc): the broker, and the gateway's signing key."""
    return {"AMQP_URI": stack.env["AMQP_URI"], "CALLER_SIGNING_KEY": stack.env["LINLI_CALLER_SIGNING_KEY"]}


def ok(answer, status: int = 200) -> dict:
    """The answer's JSON, once it has the status expected (else the test fails with its text)."""
    assert answer.status_code == status, answer.text
    return answer.json()


def query(stack: Stack, service: str, sql: str, *params) -> list[tuple]:
    """Read a service's database directly; `?` marks each of `params`."""
    names = iter(range(len(params)))
    sql = re.sub(r"\?", lambda _: f":p{next(names)}", sql)
    engine = create_engine(stack.db_url(service), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(
                text(sql), {f"p{index}": value for index, value in enumerate(params)})]
    finally:
        engine.dispose()


def timed(call):
    """(what `call()` answered, the seconds it took)."""
    started = time.monotonic()
    answer = call()
    return answer, time.monotonic() - started


def table_names(stack: Stack, service: str) -> list[str]:
    engine = create_engine(stack.db_url(service), poolclass=NullPool)
    try:
        return inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def stack(module_vhost, tmp_path_factory):
    with running_stack(module_vhost, tmp_path_factory.mktemp("linli") / "var") as stack:
        yield stack


OFFICE_RECEIVER_HOST = "127.0.0.2"
OFFICE_PUBLIC_URL = "https://linli.example.org"
OFFICE_RETENTION_SECONDS = 4


@pytest.fixture(scope="session")
def office_stack(request, tmp_path_factory):
    """One stack for the modules that play the office's day (its API and its pages)
    and the first path: each makes its own drives, members, households and cases
    and counts only those, so they share one and save a start each (a module's
    `stack` fixture returns it). Webhooks may reach OFFICE_RECEIVER_HOST over
    plain http (a receiver in the test process), and link back to OFFICE_PUBLIC_URL. A closed
    case may be erased OFFICE_RETENTION_SECONDS after its closing (test_privacy.py sees both sides)."""
    vhost = _new_vhost(request)
    try:
        with running_stack(vhost, tmp_path_factory.mktemp("office") / "var", LINLI_WEBHOOK_ALLOW_HTTP="true",
                           LINLI_WEBHOOK_ALLOW_HOSTS=OFFICE_RECEIVER_HOST, LINLI_PUBLIC_URL=OFFICE_PUBLIC_URL,
                           LINLI_WELFARE_RETENTION_DAYS=str(OFFICE_RETENTION_SECONDS / 86400)) as stack:
            yield stack
    finally:
        vhost.delete()


class Client:
    """HTTP to the gateway as one logged-in account."""

    def __init__(self, base_url: str, token: str | None = None):
        self.api = base_url + "/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.token = token

    def get(self, path, **kwargs):
        return requests.get(self.api + path, headers=self.headers, timeout=15, **kwargs)

    def post(self, path, json_body=None, key: str | None = None, **kwargs):
        """`key`: the write's Idempotency-Key (required on donations and dispatches)."""
        headers = self.headers if key is None else {**self.headers, "Idempotency-Key": key}
        return requests.post(self.api + path, json=json_body, headers=headers, timeout=15, **kwargs)


def new_key() -> str:
    """An Idempotency-Key for one intended write, as a careful client makes it."""
    return uuid.uuid4().hex


def login(base_url: str, username: str, password: str) -> Client:
    answer = requests.post(base_url + "/api/v1/auth/token",
                           json={"username": username, "password": password}, timeout=15)
    assert answer.status_code == 200, answer.text
    return Client(base_url, answer.json()["access_token"])


@pytest.fixture(scope="module")
def admin(stack) -> Client:
    return login(stack.url, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def register(stack, admin):
    """Register an account (a party member unless told) and log it in."""
    def make(**fields) -> tuple[Client, dict]:
        username = fields.pop("username", f"m{uuid.uuid4().hex[:10]}")
        body = {"username": username, "password": "member-password", "name": "张伟",
                "phone": "139 1234 5678", "roles": ["member"], "party_member": True,
                "compound": "Xingfu Garden"} | fields
        answer = admin.post("/members", body)
        assert answer.status_code == 201, answer.text
        return login(stack.url, username, body["password"]), answer.json()
    return make


HOUSEHOLD = {"compound": "Xingfu Garden", "address": "Building 3, Unit 2, Room 401", "people": [
    {"name": "李秀英", "relation": "mother", "birth_year": 1946, "conditions": ["frail"]},
    {"name": "李强", "relation": "son", "birth_year": 1975, "conditions": ["severe mental illness"]}]}


def open_case(admin: Client, assignee_id: str,
              summary: str = "Minimum-living allowance and a disability certificate.") -> dict:
    household = admin.post("/households", HOUSEHOLD)
    assert household.status_code == 201, household.text
    case = admin.post("/cases", {"household_id": household.json()["id"], "categories": ["elderly", "illness"],
                                 "summary": summary,
                                 "assignee_id": assignee_id})
    assert case.status_code == 201, case.text
    return case.json()


class EventStream:
    """Reads a server-sent event stream in the background."""

    def __init__(self, url: str, token: str, last_event_id: str | None = None):
        self.events: list[dict] = []
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(url, headers=headers, stream=True, timeout=30)
        assert self.response.status_code == 200, self.response.text
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        event = {}
        try:
            for line in self.response.iter_lines(decode_unicode=True):
                if line.startswith("id: "):
                    event["id"] = line[len("id: "):]
                elif line.startswith("event: "):
                    event["event"] = line[len("event: "):]
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[len("data: "):])
                elif line == "" and event:
                    self.events.append(event)
                    event = {}
        except Exception:  # the test closed the stream
            pass

    def close(self):
        # Shut the socket under the reader, rather than close the response it is reading.
        connection = getattr(self.response.raw, "connection", None)
        if connection is not None and connection.sock is not None:
            connection.sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self.response.close()
