"""Load shedding in the gateway: past its bound on requests in flight (per
process, and per service behind it) as many again may wait a moment for a
slot; past that a request is answered 503 with Retry-After in the one error
shape at once, instead of queueing without bound; what is admitted goes
through; probes and streams are never shed."""
import json
import time
from types import SimpleNamespace

import eventlet
import pytest
from eventlet.event import Event

from services.common.errors import Unavailable
from services.gateway.http import Admission, ApiEntrypoint, gateway_admission, json_response
from services.gateway.rpc import _DeadlineProxy


def test_an_admission_refuses_past_its_limit_after_a_short_wait():
    admission = Admission(2, 0.03, "gateway")
    with admission.admit(), admission.admit():
        assert admission.in_flight == 2
        started = time.monotonic()
        with pytest.raises(Unavailable) as refused:
            with admission.admit():
                pass
        assert 0.02 < time.monotonic() - started < 0.2
        assert refused.value.details == {"retry_after": 1}
        assert "busy" in refused.value.message
    assert admission.in_flight == 0
    with admission.admit():  # the slots are back
        pass


def test_as_many_may_wait_as_may_run_and_one_more_is_refused_at_once():
    admission = Admission(1, 5.0, "gateway")
    release = Event()

    def hold():
        with admission.admit():
            release.wait()

    holder, waiter = eventlet.spawn(hold), eventlet.spawn(hold)
    eventlet.sleep(0.01)  # one in flight, one waiting
    started = time.monotonic()
    with pytest.raises(Unavailable):
        with admission.admit():
            pass
    assert time.monotonic() - started < 0.05  # not the 5 s wait: there is no room to wait
    release.send()
    holder.wait()
    waiter.wait()
    assert admission.in_flight == 0


def test_a_slot_freed_within_the_wait_admits_the_waiter():
    admission = Admission(1, 0.5, "donations")
    release = Event()

    def hold():
        with admission.admit():
            release.wait()

    holder = eventlet.spawn(hold)
    eventlet.sleep(0)
    eventlet.spawn_after(0.05, release.send)
    with admission.admit():  # waits about 0.05 s, then gets the slot
        assert admission.in_flight == 1
    holder.wait()


def test_a_limit_of_zero_admits_everything():
    admission = Admission(0, 0.01, "patrol")
    with admission.admit(), admission.admit(), admission.admit():
        pass


@pytest.mark.parametrize("config, limit", [
    ({"max_workers": 10}, 8),                          # the default: max_workers - 2
    ({"max_workers": 10, "MAX_IN_FLIGHT": 4}, 4),
    ({"max_workers": 10, "MAX_IN_FLIGHT": 50}, 8),     # never more: the event handlers keep their workers
    ({"max_workers": 2}, 1),
])
def test_the_gateway_bound_keeps_workers_for_the_event_handlers(config, limit):
    assert gateway_admission(config).limit == limit


def route_answering_slowly(admission: Admission, seconds: float, **kwargs) -> ApiEntrypoint:
    route = ApiEntrypoint("POST", "/campaigns/<campaign_id>/donations", roles=None, **kwargs)
    route.server = SimpleNamespace(admission=admission)
    route._answer = lambda request: (eventlet.sleep(seconds), json_response({"ok": True}, 201))[1]
    return route


def answer_at_once(route: ApiEntrypoint, count: int) -> list[tuple[int, float, object]]:
    def one():
        started = time.monotonic()
        response = route.handle_request(SimpleNamespace())
        return response, time.monotonic() - started

    pool = eventlet.GreenPool()
    return list(pool.imap(lambda _: one(), range(count)))


def test_a_saturated_gateway_answers_503_with_retry_after_at_once_and_serves_what_it_admitted():
    route = route_answering_slowly(Admission(2, 0.02, "gateway"), 0.3)
    answers = answer_at_once(route, 6)
    admitted = [(r, s) for r, s in answers if r.status_code == 201]
    shed = [(r, s) for r, s in answers if r.status_code == 503]
    assert len(admitted) == 2 and len(shed) == 4
    for response, seconds in shed:
        assert seconds < 0.15  # the short wait, not the 0.3 s the admitted take
        assert response.headers["Retry-After"] == "1"
        error = json.loads(response.get_data())["error"]
        assert error["code"] == "unavailable" and error["details"] == {"retry_after": 1}
    assert all(seconds >= 0.29 for _, seconds in admitted)


@pytest.mark.parametrize("kwargs", [{"shed": False}, {"event_stream": True}])
def test_probes_and_streams_are_never_shed(kwargs):
    route = route_answering_slowly(Admission(1, 0.01, "gateway"), 0.05, **kwargs)
    assert [r.status_code for r, _ in answer_at_once(route, 4)] == [201] * 4


class StalledProxy:
    """A nameko RPC proxy whose calls answer only when `answer` is sent."""

    def __init__(self):
        self.answer = Event()

    def __getattr__(self, name):
        answer = self.answer
        return SimpleNamespace(call_async=lambda *a, **k: SimpleNamespace(result=answer.wait))


def test_calls_to_one_service_past_its_bound_are_shed_and_probes_still_pass():
    backend = StalledProxy()
    admission = Admission(1, 0.02, "donations")
    proxy = _DeadlineProxy(backend, "donations", 5, admission)
    first = eventlet.spawn(proxy.record_donation, "c1", {})
    eventlet.sleep(0.01)
    started = time.monotonic()
    with pytest.raises(Unavailable) as refused:
        proxy.record_donation("c1", {})
    assert time.monotonic() - started < 0.15
    assert refused.value.details["retry_after"] == 1
    assert "donations service is busy" in refused.value.message
    probe = eventlet.spawn(proxy.ping)  # not bounded: readiness must not fail because the service is busy
    eventlet.sleep(0.01)
    backend.answer.send({"receipt_no": "X-000001"})
    assert first.wait() == {"receipt_no": "X-000001"}
    assert probe.wait() == {"receipt_no": "X-000001"}
    assert admission.in_flight == 0


def test_a_timed_out_call_gives_its_slot_back():
    admission = Admission(1, 0.01, "welfare")
    proxy = _DeadlineProxy(StalledProxy(), "welfare", 0.05, admission)
    with pytest.raises(Unavailable) as timed_out:
        proxy.open_case({})
    assert "did not answer in time" in timed_out.value.message
    assert admission.in_flight == 0
