"""Load shedding through the real stack: with a service stalled (SIGSTOP) and
requests piling up, the gateway holds only its bound of them and answers the
rest 503 with Retry-After at once, in the one error shape; probes still
answer; nothing hangs; and every refused write, retried with its
Idempotency-Key once the service is back, is recorded exactly once."""
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.conftest import running_stack, timed
from tests.e2e.test_donations import campaign_of, donate, new_campaign

RPC_TIMEOUT = 3
PER_SERVICE = 2      # calls in flight to one service (and as many waiting)
IN_FLIGHT = 4        # API requests in flight in the gateway process (and as many waiting)
WAIT = 0.2           # how long a waiting request waits for a slot
QUICK = 1.0          # a shed answer comes after two short waits at most; generous for a busy machine


@pytest.fixture(scope="module")
def stack(module_vhost, tmp_path_factory):
    with running_stack(module_vhost, tmp_path_factory.mktemp("linli") / "var",
                       LINLI_RPC_TIMEOUT=str(RPC_TIMEOUT), LINLI_GATEWAY_MAX_IN_FLIGHT=str(IN_FLIGHT),
                       LINLI_GATEWAY_MAX_IN_FLIGHT_PER_SERVICE=str(PER_SERVICE),
                       LINLI_GATEWAY_ADMISSION_WAIT=str(WAIT)) as stack:
        yield stack


def is_shed(answer) -> bool:
    return (answer.status_code == 503 and answer.headers.get("Retry-After") == "1"
            and answer.json()["error"]["code"] == "unavailable" and "busy" in answer.json()["error"]["message"])


def test_a_saturated_gateway_sheds_at_once_and_loses_nothing(stack, admin, register):
    volunteer, member = register()
    campaign = new_campaign(admin)
    donations, welfare = stack.processes[("donations", 0)].pid, stack.processes[("welfare", 0)].pid
    gifts = [({"kind": "cash", "amount_fen": 100 + n}, uuid.uuid4().hex) for n in range(12)]

    os.kill(donations, signal.SIGSTOP)
    try:
        # 1. Ten writes at once to a stalled service: two are let through to it (and
        # time out), the other eight are refused within a short wait instead of queueing.
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda gift: timed(lambda: donate(volunteer, campaign["id"], *gift)),
                                    gifts[:10]))
        shed = [seconds for answer, seconds in answers if is_shed(answer)]
        waited = [seconds for answer, seconds in answers if not is_shed(answer)]
        assert len(shed) == 10 - PER_SERVICE, [(a.status_code, a.text) for a, _ in answers]
        assert max(shed) < QUICK
        assert all(answer.status_code == 503 for answer, _ in answers)  # the two timed out: 503 too
        assert all(RPC_TIMEOUT - 0.5 < seconds < RPC_TIMEOUT + 2 for seconds in waited)

        # 2. The gateway's own bound: two writes stuck on donations and two cases stuck
        # on welfare fill it; a read of patrol is then shed, the probes still answer.
        os.kill(welfare, signal.SIGSTOP)
        with ThreadPoolExecutor(4) as pool:
            stuck = [pool.submit(donate, volunteer, campaign["id"], *gift) for gift in gifts[10:]]
            case = {"household_id": "h" * 32, "categories": ["elderly"], "summary": "stuck",
                    "assignee_id": member["id"]}  # no such household: welfare refuses it once awake
            stuck += [pool.submit(admin.post, "/cases", case) for _ in range(2)]
            time.sleep(1)  # all four are in flight now
            refused, seconds = timed(lambda: admin.get("/zones"))
            assert is_shed(refused), refused.text
            assert "gateway is busy" in refused.json()["error"]["message"]
            assert seconds < QUICK
            for probe in ("/health", "/metrics"):
                answer, seconds = timed(lambda probe=probe: requests.get(stack.url + "/api/v1" + probe, timeout=5))
                assert answer.status_code == 200 and seconds < QUICK, probe
            assert [future.result(timeout=RPC_TIMEOUT + 5).status_code for future in stuck] == [503] * 4
        # Their slots are free again: the gateway answers what does not need the stalled services.
        assert admin.get("/zones").status_code == 200
    finally:
        os.kill(donations, signal.SIGCONT)
        os.kill(welfare, signal.SIGCONT)

    # 3. Nothing lost, nothing doubled: every write retried with its key is recorded once.
    for gift in gifts:
        for _attempt in range(20):
            retry = donate(volunteer, campaign["id"], *gift)
            if retry.status_code != 503:
                break
            time.sleep(float(retry.headers.get("Retry-After", 1)) / 4)
        assert retry.status_code == 201, retry.text
        assert retry.json()["amount_fen"] == gift[0]["amount_fen"]
    assert campaign_of(admin, campaign["id"])["totals"] == {
        "cash_fen": sum(gift["amount_fen"] for gift, _ in gifts), "items": {}, "donations": len(gifts)}
