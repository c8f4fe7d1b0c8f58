"""Alerts survive the notifications process being killed while cases are opened."""
from collections import Counter

import pytest

from services.common import events
from services.contracts import SUBSCRIPTIONS
from tests.conftest import wait_for
from tests.e2e.conftest import open_case

pytestmark = pytest.mark.slow  # a stack of its own with a process killed: in make test-slow


def test_every_alert_arrives_once_when_notifications_is_killed_and_restarted(
        stack, admin, register, module_vhost):
    assignee, profile = register()
    cases = []
    for number in range(12):
        if number == 4:
            stack.kill("notifications")            # SIGKILL, mid-stream
        if number == 9:
            stack.start_process("notifications")   # back again
        cases.append(open_case(admin, profile["id"])["id"])

    def alerts():
        return assignee.get("/me/alerts", params={"limit": 200}).json()["items"]

    wait_for(lambda: len(alerts()) >= len(cases), timeout=30, what="every alert")
    queue = events.queue_name(SUBSCRIPTIONS[0])
    wait_for(lambda: module_vhost.depth(queue) == 0, timeout=15, what="the queue drained")
    per_case = Counter(alert["ref"]["id"] for alert in alerts())
    assert per_case == Counter(cases)  # each case exactly once, nothing else
