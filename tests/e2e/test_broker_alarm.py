"""A broker alarm (RabbitMQ blocks every publisher when memory or disk runs
low) on a private node: a write through the gateway answers 503 within the
RPC deadline instead of hanging, reads the gateway answers itself go on, and
once the alarm clears the same write with the same Idempotency-Key counts once;
a write the gateway commits itself answers at once and its event follows."""
import uuid

import pytest
import requests

from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, login, query, running_stack, timed
from tests.e2e.test_donations import campaign_of, donate, new_campaign

# Minutes of broker restarts, alarms, TLS nodes, killed instances or fuzzing: `make test-slow`.
pytestmark = [pytest.mark.slow, pytest.mark.transport]

RPC_TIMEOUT = 2.0
# The deadline, plus the HTTP round trip on a busy 2-core machine.
ANSWER_BOUND = RPC_TIMEOUT + 3.0


@pytest.fixture(scope="module")
def alarm_stack(node, tmp_path_factory):
    with running_stack(node, tmp_path_factory.mktemp("alarm") / "var",
                       LINLI_RPC_TIMEOUT=str(RPC_TIMEOUT)) as stack:
        yield stack


def alarmed(node):
    node.set_memory_alarm()
    wait_for(lambda: "memory" in node.alarms(), timeout=10, what="the memory alarm")


def test_a_write_answers_503_during_a_memory_alarm_and_counts_once_after_it(node, alarm_stack):
    admin = login(alarm_stack.url, "admin", ADMIN_PASSWORD)
    campaign = new_campaign(admin)
    cash = {"kind": "cash", "amount_fen": 100}
    first, _ = timed(lambda: donate(admin, campaign["id"], cash, uuid.uuid4().hex))
    assert first.status_code == 201, first.text

    alarmed(node)
    try:
        key = uuid.uuid4().hex
        blocked, took = timed(lambda: donate(admin, campaign["id"], cash, key))
        print(f"\ndonation during the alarm: {blocked.status_code} after {took:.2f} s")
        assert blocked.status_code == 503, blocked.text
        assert blocked.json()["error"]["code"] == "unavailable"
        assert took < ANSWER_BOUND

        # A read that asks a service is an RPC request, itself a publish: 503 too, as fast.
        read, took = timed(lambda: admin.get(f"/campaigns/{campaign['id']}"))
        print(f"campaign read during the alarm: {read.status_code} after {took:.2f} s")
        assert read.status_code == 503, read.text
        assert took < ANSWER_BOUND

        # What the gateway answers from its own database goes on.
        assert admin.get("/health").status_code == 200
        me = admin.get("/me")
        assert me.status_code == 200 and me.json()["username"] == "admin"
        assert admin.get("/members").status_code == 200
        assert login(alarm_stack.url, "admin", ADMIN_PASSWORD).token
        ready, took = timed(lambda: admin.get("/ready"))
        assert ready.status_code == 503 and took < ANSWER_BOUND
    finally:
        node.clear_memory_alarm()

    # The 503'd donation may have been recorded once the broker read it again:
    # the client's retry with its key gets that first answer, or records it now.
    def retried():
        answer = donate(admin, campaign["id"], cash, key)
        return answer if answer.status_code == 201 else None
    again = wait_for(retried, timeout=20, interval=0.5, what="the donation to go through after the alarm")
    assert donate(admin, campaign["id"], cash, key).json()["receipt_no"] == again.json()["receipt_no"]
    fresh = donate(admin, campaign["id"], cash, uuid.uuid4().hex)
    assert fresh.status_code == 201, fresh.text
    totals = campaign_of(admin, campaign["id"])["totals"]
    assert totals["donations"] == 3 and totals["cash_fen"] == 300


def unsent_events(stack, service: str) -> int:
    return query(stack, service, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")[0][0]


def test_a_write_the_gateway_commits_itself_answers_during_an_alarm_and_its_event_follows(node, alarm_stack):
    """POST /members commits in the gateway and publishes member_registered
    right after: the publish must not hold the answer past its short wait."""
    admin = login(alarm_stack.url, "admin", ADMIN_PASSWORD)
    alarmed(node)
    try:
        answer, took = timed(lambda: requests.post(f"{admin.api}/members", headers=admin.headers, json={
            "username": f"m{uuid.uuid4().hex[:10]}", "password": "member-password", "name": "张伟",
            "roles": ["member"], "party_member": True}, timeout=ANSWER_BOUND + 5))
        print(f"\nregistration during the alarm: {answer.status_code} after {took:.2f} s")
        assert answer.status_code == 201, answer.text
        assert took < ANSWER_BOUND
        assert unsent_events(alarm_stack, "gateway") >= 1  # committed; its event waits for the broker
    finally:
        node.clear_memory_alarm()
    wait_for(lambda: unsent_events(alarm_stack, "gateway") == 0, timeout=20,
             what="the member_registered event to go out after the alarm")
