"""Limits and retries through the real stack: a stalled service is a 503 in
time while the rest of the gateway answers, and a retry with the same
Idempotency-Key after that timeout counts the write once; one key sent by
several clients at once opens one case; repeated failed logins make a known
and an unknown name wait alike (429); tokens expire; passwords and tokens
never reach a log."""
import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests

from services.common import config as linli_config
from tests.conftest import nothing_more_arrives, wait_for
from tests.e2e.conftest import HOUSEHOLD, Client, running_stack
from tests.e2e.test_donations import campaign_of, donate, new_campaign

# make test-slow (about 25 s and a stack of its own): make test keeps within 10 minutes.
pytestmark = pytest.mark.slow

RPC_TIMEOUT = 2
TOKEN_TTL = linli_config.load("gateway")["TOKEN_TTL_SECONDS"]  # as the stack's gateway reads it (12 hours)
FREE_FAILURES = 3


@pytest.fixture(scope="module")
def stack(module_vhost, tmp_path_factory):
    with running_stack(module_vhost, tmp_path_factory.mktemp("linli") / "var",
                       LINLI_RPC_TIMEOUT=str(RPC_TIMEOUT), LINLI_LOGIN_FREE_FAILURES=str(FREE_FAILURES)) as stack:
        yield stack


def log_in(stack, username, password):
    return requests.post(stack.url + "/api/v1/auth/token", json={"username": username, "password": password},
                         timeout=15)


def test_a_stalled_service_is_a_503_in_time_and_a_retry_counts_the_write_once(stack, admin, register):
    volunteer, _ = register()
    campaign = new_campaign(admin)
    body, key = {"kind": "cash", "amount_fen": 12_345}, uuid.uuid4().hex
    donations = stack.processes[("donations", 0)]
    stalled = {}

    def donate_while_stalled():
        started = time.monotonic()
        stalled["answer"] = donate(volunteer, campaign["id"], body, key)
        stalled["seconds"] = time.monotonic() - started

    os.kill(donations.pid, signal.SIGSTOP)  # alive, holding its messages, answering nothing
    try:
        waiting = threading.Thread(target=donate_while_stalled)
        waiting.start()
        # Meanwhile the gateway answers everything that does not need donations.
        for _ in range(5):
            started = time.monotonic()
            assert admin.get("/zones").status_code == 200
            assert admin.get("/cases").status_code == 200
            assert time.monotonic() - started < 1.5
        waiting.join(timeout=RPC_TIMEOUT + 10)
        assert not waiting.is_alive(), "the gateway hung on a stalled service"
    finally:
        os.kill(donations.pid, signal.SIGCONT)

    answer = stalled["answer"]
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "unavailable"
    assert RPC_TIMEOUT - 0.5 < stalled["seconds"] < RPC_TIMEOUT + 2

    # The request was queued, not lost: the service records it once it wakes.
    wait_for(lambda: campaign_of(admin, campaign["id"])["totals"]["donations"] == 1, timeout=15,
             what="the stalled donation to be recorded")
    # The client did not know that, and retries with the same key: the first answer, nothing doubled.
    retry = donate(volunteer, campaign["id"], body, key)
    assert retry.status_code == 201, retry.text
    assert retry.json()["amount_fen"] == 12_345
    again = donate(volunteer, campaign["id"], body, key)
    assert again.json() == retry.json()
    assert campaign_of(admin, campaign["id"])["totals"] == {"cash_fen": 12_345, "items": {}, "donations": 1}


def test_repeated_failed_logins_make_a_known_and_an_unknown_name_wait_alike(stack, register):
    username, password = f"m{uuid.uuid4().hex[:10]}", "the-right-password"
    register(username=username, password=password)
    for name in (username, f"no-such-{uuid.uuid4().hex[:6]}"):  # a delay tells nothing about who exists
        assert [log_in(stack, name, "a-wrong-guess").status_code for _ in range(FREE_FAILURES)] == [401] * 3
        refused = log_in(stack, name, password)  # even the right password, while it must wait
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert refused.headers["Retry-After"] == "1" == str(refused.json()["error"]["details"]["retry_after"])
    # Everyone else logs in as usual.
    assert log_in(stack, "admin", "e2e-admin-password").status_code == 200

    time.sleep(1.2)
    assert log_in(stack, username, password).status_code == 200


def test_passwords_and_tokens_never_reach_a_log(stack, admin, register):
    password, wrong = f"pw-{uuid.uuid4().hex}", f"guess-{uuid.uuid4().hex}"
    member, _ = register(password=password)
    assert log_in(stack, "admin", wrong).status_code == 401
    # A stream takes its token in the query (EventSource sends no headers), which the access
    # log shows; a refused one is logged at once.
    refused = requests.get(f"{stack.url}/api/v1/me/alerts/stream", params={"access_token": member.token + "x"},
                           timeout=15)
    assert refused.status_code == 401
    assert Client(stack.url, member.token).get("/me").status_code == 200

    logs = "".join(path.read_text(errors="replace") for path in (stack.var_dir / "log").iterdir())
    assert "POST /api/v1/auth/token" in logs  # the access log is there, and was read
    assert "access_token=[redacted]" in logs
    for secret in (password, wrong, member.token, admin.token, "e2e-admin-password"):
        assert secret not in logs


def test_a_case_opened_with_one_key_by_several_clients_at_once_is_one_case_and_one_alert(stack, admin, register):
    assignee, assignee_view = register()
    household = requests.post(f"{admin.api}/households", json=HOUSEHOLD, timeout=15,
                              headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex})
    assert household.status_code == 201, household.text
    body = {"household_id": household.json()["id"], "categories": ["elderly"], "assignee_id": assignee_view["id"],
            "summary": "Opened by a double click on a slow line."}
    headers = {**admin.headers, "Idempotency-Key": uuid.uuid4().hex}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: requests.post(f"{admin.api}/cases", json=body, headers=headers,
                                                        timeout=30), range(6)))
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers if a.status_code != 201]
    assert len({a.json()["id"] for a in answers}) == 1
    case_id = answers[0].json()["id"]
    # A later retry too; the same key with another body is refused.
    assert requests.post(f"{admin.api}/cases", json=body, headers=headers, timeout=30).json()["id"] == case_id
    changed = requests.post(f"{admin.api}/cases", json={**body, "summary": "Another."}, headers=headers, timeout=30)
    assert changed.status_code == 422 and changed.json()["error"]["code"] == "idempotency_key_reused"

    assert [c["id"] for c in admin.get("/cases", params={"limit": 200}).json()["items"]].count(case_id) == 1
    alerts = wait_for(lambda: [a for a in assignee.get("/me/alerts").json()["items"]
                               if a["ref"] == {"type": "case", "id": case_id}], what="the assignee's alert")
    assert nothing_more_arrives(lambda: len([a for a in assignee.get("/me/alerts").json()["items"]
                                             if a["ref"]["id"] == case_id]), what="the case's alerts") == 1
    assert len(alerts) == 1


def test_a_token_lasts_its_ttl_and_no_longer(stack):
    answer = log_in(stack, "admin", "e2e-admin-password").json()
    claims = jwt.decode(answer["access_token"], options={"verify_signature": False})
    assert answer["expires_in"] == TOKEN_TTL == claims["exp"] - claims["iat"]
    assert abs(claims["iat"] - time.time()) < 60
    # The same claims with the clock past `exp` (signed with the stack's own key) are refused.
    expired = jwt.encode({**claims, "iat": claims["iat"] - TOKEN_TTL - 1, "exp": claims["iat"] - 1},
                         stack.env["LINLI_JWT_SECRET"], algorithm="HS256")
    refused = Client(stack.url, expired).get("/me")
    assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]
    assert Client(stack.url, answer["access_token"]).get("/me").status_code == 200
