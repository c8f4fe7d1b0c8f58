"""A running stack as `linli up` leaves it: each service process connected to
the broker as its own user, which cannot read another service's queues nor
watch `nameko-rpc`; and var/ (databases, logs, secrets) its owner's only."""
import json
import stat
import uuid

import pytest
import requests
from amqp.exceptions import AccessRefused
from kombu import Connection

from services.ops import brokerusers
from services.ops.stack import BROKER_PASSWORDS, SERVICES, Stack
from tests.conftest import wait_for
from tests.e2e.conftest import open_case

# make test-slow (about 22 s and a stack of its own on the module's vhost): make test keeps within 10 minutes.
pytestmark = pytest.mark.slow


def connected_users(stack: Stack, vhost) -> dict[str, int]:
    answer = requests.get(f"{vhost.management_url}/api/vhosts/{vhost.name}/connections",
                          auth=("guest", "guest"), timeout=10)
    answer.raise_for_status()
    users: dict[str, int] = {}
    for connection in answer.json():
        users[connection["user"]] = users.get(connection["user"], 0) + 1
    return users


def test_each_service_process_is_connected_as_its_own_broker_user(stack, module_vhost, admin, register):
    # Work that crosses every service: RPC, events, retries' declarations, the feed.
    _member, profile = register()
    open_case(admin, profile["id"])
    users = wait_for(lambda: (found := connected_users(stack, module_vhost))
                     and all(brokerusers.username(s, module_vhost.name) in found for s in SERVICES) and found,
                     timeout=20, what="every service's connection in the management API")
    assert set(users) == {brokerusers.username(service, module_vhost.name) for service in SERVICES}, users
    for service in SERVICES:
        uri = stack.process_env(service)["AMQP_URI"]
        assert uri.startswith(f"amqp://linli-{service}%40{module_vhost.name}:"), service
        assert "guest" not in uri


def test_a_running_services_user_cannot_read_others_calls(stack, module_vhost):
    """With the very credentials the patrol process runs with."""
    passwords = json.loads((stack.var_dir / BROKER_PASSWORDS).read_text())
    patrol_user = brokerusers.username("patrol", module_vhost.name)
    patrol_uri = brokerusers.with_user(module_vhost.amqp_uri, patrol_user, passwords[patrol_user])
    refusals = []
    for action in (lambda channel: channel.basic_consume("rpc-welfare", callback=print),
                   lambda channel: channel.queue_bind("rpc-patrol", "nameko-rpc", "#"),
                   lambda channel: channel.queue_bind("rpc-patrol", "nameko-rpc", "welfare.*"),
                   lambda channel: channel.basic_get("evt-welfare-case_opened--notifications.on_case_opened")):
        with Connection(patrol_uri) as connection:
            channel = connection.channel()
            try:
                action(channel)
            except AccessRefused as refused:
                refusals.append(refused.reply_code)
    assert refusals == [403, 403, 403, 403]


def test_var_is_readable_by_its_owner_only(stack, admin):
    assert admin.get("/zones").status_code == 200  # the databases have been written to
    found = {}
    for path in [stack.var_dir, *stack.var_dir.rglob("*")]:
        found[path.relative_to(stack.var_dir).as_posix()] = stat.S_IMODE(path.stat().st_mode)
    for name, mode in found.items():
        expected = 0o700 if (stack.var_dir / name).is_dir() else 0o600
        assert mode == expected, (name, oct(mode))
    assert {"jwt-secret", BROKER_PASSWORDS, "log/gateway-0.log"} <= set(found)
    if stack.db_url("gateway").startswith("sqlite"):
        assert {"gateway.db", "welfare.db", "notifications.db"} <= set(found)
        assert any(name.endswith(("-wal", "-shm")) for name in found), found  # made by the service processes


def test_the_broker_passwords_are_reused_by_the_next_prepare(stack, module_vhost, admin):
    before = (stack.var_dir / BROKER_PASSWORDS).read_text()
    again = Stack(stack.var_dir, env=stack.env, port=stack.port, broker_users=True)
    again.env["LINLI_AMQP_MANAGEMENT_URL"] = module_vhost.management_url
    again.prepare()
    assert (stack.var_dir / BROKER_PASSWORDS).read_text() == before
    assert again.service_uris == stack.service_uris
    # The running processes' users still log in: a new write goes through every service.
    answer = admin.post("/zones", {"name": f"Zone {uuid.uuid4().hex[:6]}", "compounds": [uuid.uuid4().hex[:8]]})
    assert answer.status_code == 201, answer.text


def test_rotating_the_broker_passwords_is_refused_while_linli_runs(stack, admin):
    """A running process keeps its password and could not reconnect after a
    rotation: `linli broker-users --rotate` says to stop Linli first, and changes nothing."""
    from tests.e2e.conftest import linli

    before = (stack.var_dir / BROKER_PASSWORDS).read_text()
    rotated = linli(stack.env, "--var", str(stack.var_dir), "broker-users", "--rotate")
    assert rotated.returncode == 1 and "stop it, rotate, start it again" in rotated.stderr
    assert (stack.var_dir / BROKER_PASSWORDS).read_text() == before
    assert admin.get("/zones").status_code == 200
