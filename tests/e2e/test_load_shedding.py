"""Admission by waiting time, through the real stack: a burst of gifts the
services can work through within the admission deadline is answered in full;
past that, what cannot be served in time is refused at once, 503 with
Retry-After in the one error shape, and whatever was accepted is stored; a
stalled service's callers are never kept past the deadline, and every refused
write, retried with its Idempotency-Key once the service is back, is recorded
exactly once. And readiness is the gateway's own: a stalled backend shows in
/health/services, not in /ready."""
import contextlib
import os
import signal
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import wait_for
from tests.e2e.conftest import running_stack, timed
from tests.e2e.test_donations import campaign_of, donate, new_campaign
from tests.e2e.test_logs import Logs

RPC_TIMEOUT = 3
# The run past capacity: a gateway with a short deadline and room for few gifts at once
# (LINLI_GATEWAY_MAX_IN_FLIGHT_GROUPED), so that 400 gifts at once are well past what it
# serves within the deadline. With the default room (64) it writes batches of tens of gifts
# and served nearly all of 400, or of 800, in time, however the threads' start spread them;
# the few it refused were the tail that had waited out the deadline.
SMALL_DEADLINE = 0.5
SMALL_ROOM = 4
GENEROUS_DEADLINE = 15.0  # for the 250 gifts on a busy shared machine (the default is 5 s)
PROBE_BOUND = 1.5         # "within a second", and the HTTP round trip on a busy 2-core machine
SLACK = 1.5               # the same for a busy answer


# About a minute in all (bursts of hundreds of gifts, a stalled service): in `make test-slow`.
pytestmark = [pytest.mark.slow, pytest.mark.transport]

@pytest.fixture(scope="module")
def stack(module_vhost, tmp_path_factory):
    # The admission settings are the defaults (5 s deadline): what an office runs.
    with running_stack(module_vhost, tmp_path_factory.mktemp("linli") / "var",
                       LINLI_RPC_TIMEOUT=str(RPC_TIMEOUT)) as stack:
        yield stack


def is_shed(answer) -> bool:
    return (answer.status_code == 503 and int(answer.headers.get("Retry-After", 0)) >= 1
            and answer.json()["error"]["code"] == "unavailable" and "busy" in answer.json()["error"]["message"])


@contextlib.contextmanager
def gateway_deadline(stack, seconds: float, grouped_room: int | None = None):
    """The stack's gateway restarted with another admission deadline (and room for
    coalesced writes); with the defaults again after."""
    settings = {"LINLI_GATEWAY_ADMISSION_DEADLINE": seconds, "LINLI_GATEWAY_MAX_IN_FLIGHT_GROUPED": grouped_room}

    def restart(changed: bool):
        stack.stop_process("gateway")
        for name, value in settings.items():
            stack.env.pop(name, None)
            if changed and value is not None:
                stack.env[name] = str(value)
        stack.start_process("gateway")
        assert stack.wait_ready(timeout=60)

    restart(True)
    try:
        yield stack
    finally:
        restart(False)


def gifts_at_once(client, campaign_id: str, count: int) -> list[tuple[dict, object, float]]:
    """`count` gifts, each from its own client (its own connection, its own key), all at once; none retried."""
    gifts = [{"kind": "cash", "amount_fen": 100 + n} for n in range(count)]
    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda gift: timed(lambda: donate(client, campaign_id, gift, uuid.uuid4().hex)),
                                gifts))
    return [(gift, answer, seconds) for gift, (answer, seconds) in zip(gifts, answers, strict=True)]


def test_a_burst_of_250_gifts_is_answered_in_full(stack, admin, register):
    volunteer, _ = register()
    campaign = new_campaign(admin)
    # The old fixed waiting room took 8 beyond the 8 in flight, whatever its wait. The burst
    # is 1-2 s of work (at the default 5 s deadline, three in a row on this machine: 750 of 750
    # answered), but the machine is shared and at times takes five times as long: a generous one.
    with gateway_deadline(stack, GENEROUS_DEADLINE):
        answered = gifts_at_once(volunteer, campaign["id"], 250)
    statuses = [answer.status_code for _, answer, _ in answered]
    print(f"\n250 gifts at once: {statuses.count(201)} answered 201 in at most "
          f"{max(seconds for *_, seconds in answered):.2f} s")
    refusals = [(answer.json()["error"]["message"], answer.headers.get("Retry-After"), round(seconds, 2))
                for _, answer, seconds in answered if answer.status_code != 201]
    assert statuses == [201] * 250, refusals
    assert campaign_of(admin, campaign["id"])["totals"] == {
        "cash_fen": sum(gift["amount_fen"] for gift, _, _ in answered), "items": {}, "donations": 250}


def test_readiness_is_the_gateways_own_and_a_stalled_backend_shows_in_services_health(stack, admin):
    patrol = stack.processes[("patrol", 0)].pid
    os.kill(patrol, signal.SIGSTOP)
    try:
        ready, seconds = timed(lambda: requests.get(stack.url + "/api/v1/ready", timeout=5))
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}
        assert seconds < PROBE_BOUND

        health, seconds = timed(lambda: requests.get(stack.url + "/api/v1/health/services", timeout=5))
        assert health.status_code == 503, health.text
        assert seconds < PROBE_BOUND
        body = health.json()
        assert body["error"]["code"] == "degraded"
        assert body["status"] == "degraded"
        assert body["services"] == {"patrol": "unavailable (timeout)", "donations": "ok", "welfare": "ok",
                                    "notifications": "ok", "volunteers": "ok"}

        campaigns, seconds = timed(lambda: admin.get("/campaigns"))  # the rest of the API goes on
        assert campaigns.status_code == 200, campaigns.text
        assert seconds < PROBE_BOUND
    finally:
        os.kill(patrol, signal.SIGCONT)
    healthy = wait_for(lambda: (lambda answer: answer if answer.status_code == 200 else None)(
        requests.get(stack.url + "/api/v1/health/services", timeout=5)), timeout=20, what="patrol back")
    assert healthy.json() == {"status": "ok", "services": {
        "patrol": "ok", "donations": "ok", "welfare": "ok", "notifications": "ok", "volunteers": "ok"}}


def test_a_stalled_service_sheds_its_callers_within_the_deadline_and_loses_nothing(stack, admin, register):
    volunteer, _ = register()
    campaign = new_campaign(admin)
    donations = stack.processes[("donations", 0)].pid
    # More than the gateway works on at once (64 workers, 48 gifts in flight to a service): some must wait.
    gifts = [({"kind": "cash", "amount_fen": 100 + n}, uuid.uuid4().hex) for n in range(160)]
    os.kill(donations, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(len(gifts)) as pool:
            answers = list(pool.map(lambda gift: timed(lambda: donate(volunteer, campaign["id"], *gift)), gifts))
        # Every one 503: refused as busy, having waited 5 s (the default deadline) at
        # most; or let through to the stalled service, and timed out at the RPC deadline.
        assert all(answer.status_code == 503 for answer, _ in answers), [a.text for a, _ in answers]
        shed = [seconds for answer, seconds in answers if is_shed(answer)]
        timed_out = [seconds for answer, seconds in answers if not is_shed(answer)]
        print(f"\n{len(gifts)} gifts to a stalled service: {len(shed)} refused in at most {max(shed):.2f} s, "
              f"{len(timed_out)} timed out in at most {max(timed_out):.2f} s")
        assert shed, "none was refused as busy"
        assert max(shed) < 5 + SLACK
        assert max(timed_out) < 5 + RPC_TIMEOUT + SLACK
        # The probes and the gateway's own answers go on.
        for probe in ("/health", "/ready", "/metrics"):
            answer, seconds = timed(lambda probe=probe: requests.get(stack.url + "/api/v1" + probe, timeout=5))
            assert answer.status_code == 200 and seconds < PROBE_BOUND, probe
        assert admin.get("/me").status_code == 200
    finally:
        os.kill(donations, signal.SIGCONT)

    # Nothing lost, nothing doubled: every write retried with its key is recorded once.
    for gift, key in gifts:
        for _attempt in range(20):
            retry = donate(volunteer, campaign["id"], gift, key)
            if retry.status_code != 503:
                break
            time.sleep(float(retry.headers.get("Retry-After", 1)) / 4)
        assert retry.status_code == 201, retry.text
        assert retry.json()["amount_fen"] == gift["amount_fen"]
    assert campaign_of(admin, campaign["id"])["totals"] == {
        "cash_fen": sum(gift["amount_fen"] for gift, _ in gifts), "items": {}, "donations": len(gifts)}


def test_past_capacity_the_gateway_refuses_at_once_and_keeps_what_it_accepted(stack, admin, register):
    volunteer, _ = register()
    campaign = new_campaign(admin)
    with gateway_deadline(stack, SMALL_DEADLINE, SMALL_ROOM):
        logs = Logs(stack)
        answered = gifts_at_once(volunteer, campaign["id"], 400)
        # The gateway's own time for each refusal, from reading the request to answering it.
        wait_for(lambda: sum(line.get("status") == 503 for line in logs.lines()["gateway-0"]) >= sum(
            answer.status_code == 503 for _, answer, _ in answered), timeout=10, what="the refusals' access lines")
        refused_ms = sorted(line["duration_ms"] for line in logs.lines()["gateway-0"] if line.get("status") == 503)
    accepted = [(gift, seconds) for gift, answer, seconds in answered if answer.status_code == 201]
    refused = [(answer, seconds) for _, answer, seconds in answered if answer.status_code != 201]
    refused_seconds = sorted(seconds for _, seconds in refused)
    print(f"\n400 gifts at once, {SMALL_DEADLINE} s deadline, room for {SMALL_ROOM}: {len(accepted)} accepted, "
          f"{len(refused)} refused; at the client the refusals' median {statistics.median(refused_seconds):.3f} s, "
          f"max {refused_seconds[-1]:.3f} s; in the gateway median {statistics.median(refused_ms):.1f} ms, "
          f"90th percentile {refused_ms[int(len(refused_ms) * 0.9)]:.1f} ms, max {refused_ms[-1]:.1f} ms")
    assert accepted and refused
    assert all(is_shed(answer) for answer, _ in refused), {answer.text for answer, _ in refused}
    assert len(refused_ms) == len(refused)
    # Refused at once, not after a wait: one that waited and found no slot in time is refused
    # at the deadline (a few are, where the estimate was too hopeful). Judged by the gateway's
    # own time for each: at the client a refusal also counts the time the machine takes to
    # start 400 threads and the gateway to read their requests (here a median of 0.06-0.17 s,
    # in CI beside two other test processes 0.34 and 0.62 s).
    assert statistics.median(refused_ms) < SMALL_DEADLINE * 1000 / 2
    assert campaign_of(admin, campaign["id"])["totals"] == {
        "cash_fen": sum(gift["amount_fen"] for gift, _ in accepted), "items": {}, "donations": len(accepted)}
