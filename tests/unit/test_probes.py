"""The gateway's probes (/ready, /health/services) answer within their time
whatever a check does: each check `ok`, or why not."""
import time

import eventlet
from nameko.exceptions import UnknownService

from services.common.errors import Unavailable
from services.gateway.service import answer_within


def test_every_check_answers_and_a_stuck_one_is_a_timeout_within_the_time():
    finished = []

    def stuck():
        try:
            eventlet.sleep(10)
        finally:
            finished.append("stuck")  # stopped, not left running

    def unknown():
        raise UnknownService("patrol")

    started = time.monotonic()
    results = answer_within(0.2, {"patrol": stuck, "donations": lambda: eventlet.sleep(0.05), "welfare": unknown,
                                  "notifications": lambda: None})
    assert time.monotonic() - started < 0.4
    # Those after the stuck one are collected too, though waited for after it.
    assert results == {"patrol": "unavailable (timeout)", "donations": "ok", "welfare": "unavailable (UnknownService)",
                       "notifications": "ok"}
    assert finished == ["stuck"]


def test_a_call_past_its_rpc_deadline_reads_as_a_timeout():
    def late():
        raise Unavailable("The patrol service did not answer in time.")

    assert answer_within(0.2, {"patrol": late}) == {"patrol": "unavailable (timeout)"}
