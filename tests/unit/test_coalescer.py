"""The gateway's Coalescer (services/gateway/rpc.py) with a stand-in for the
donations service: concurrent writes go as few call_many RPCs, each write
with its own arguments, request id and answer or error, and no assertion of
its own (the RPC's one covers them all); a batch answered wrongly, or not at
all, fails each of its writes."""
from types import SimpleNamespace

import eventlet
from nameko.exceptions import serialize

from services.common import logs
from services.common.errors import NotFound, Unavailable
from services.gateway.http import Admission
from services.gateway.rpc import COALESCED_SECOND_AT, Coalescer, _DeadlineProxy

ADMIN = {"id": "admin-1", "roles": ["admin"]}


class Donations:
    """call_many as the service answers it: a receipt each, a 404 for the campaign 'gone'."""

    def __init__(self, answer=None, delay=0.05):
        self.batches: list[list[dict]] = []
        self.answer = answer
        self.delay = delay

    def call_async(self, method, calls):
        self.batches.append(calls)
        eventlet.sleep(self.delay)
        answers = self.answer(calls) if self.answer else [
            {"error": serialize(NotFound("No such campaign."))} if call["args"][0] == "gone"
            else {"answer": {"receipt_no": call["kwargs"]["idempotency_key"]}} for call in calls]
        return type("Reply", (), {"result": lambda self: answers})()


class Proxy:
    """One gateway worker's proxy to donations, as the Coalescer sees it: its
    worker's context data (the HTTP request's id) and call_many."""

    def __init__(self, donations: Donations, request_id: str):
        self.worker_ctx = SimpleNamespace(data={logs.REQUEST_ID_KEY: request_id})
        self.call_many = donations


def gift(coalescer, donations, request_id: str, key: str, campaign: str = "c1"):
    """One cash gift through the coalescer, as one gateway worker makes it: (answer, error)."""
    return coalescer.call(Proxy(donations, request_id), (campaign, {"kind": "cash", "amount_fen": 100}, ADMIN),
                          {"idempotency_key": key})


def gifts_at_once(coalescer, donations, campaigns):
    def one(index_campaign):
        index, campaign = index_campaign
        return gift(coalescer, donations, f"req-{index}", f"key-{index}", campaign)
    return list(eventlet.GreenPool().imap(one, enumerate(campaigns)))


def closed_loop(coalescer, donations, writers: int, turns: int):
    """`writers` at once, each making its next gift when the last is answered: their outcomes."""
    def writer(index):
        return [gift(coalescer, donations, f"req-{index}-{turn}", f"{index}-{turn}") for turn in range(turns)]
    return list(eventlet.GreenPool().imap(writer, range(writers)))


def test_concurrent_writes_go_as_few_rpcs_each_with_its_own_arguments_request_id_and_answer():
    coalescer, donations = Coalescer("donations", "record_donation", timeout=5), Donations()
    outcomes = gifts_at_once(coalescer, donations, ["c1"] * 9 + ["gone"] + ["c1"] * 10)
    assert [len(batch) for batch in donations.batches] == [10, 10]  # made together, they go as two halves
    assert [answer for answer, _error in outcomes if answer] == [
        {"receipt_no": f"key-{index}"} for index in range(20) if index != 9]
    assert isinstance(outcomes[9][1], NotFound) and outcomes[9][0] is None
    calls = [call for batch in donations.batches for call in batch]
    assert sorted((call["request_id"], call["kwargs"]["idempotency_key"]) for call in calls) == sorted(
        (f"req-{index}", f"key-{index}") for index in range(20))
    # No assertion per call: the RPC's own (signed by the proxy, over every call) vouches for them.
    assert all(sorted(call) == ["args", "kwargs", "request_id"] for call in calls)


def test_writers_answered_together_go_together_again():
    """A closed loop of 16 writers: a batch's answers wake its writers one by
    one, and each makes its next write. Taken when the first of them came back,
    the next batch went alone with that one write (16 writes went as 1, 1, 14,
    1, 15 ...); taken when its sender runs, it has all of them (here, two RPCs
    of half each)."""
    coalescer, donations = Coalescer("donations", "record_donation", timeout=5), Donations(delay=0.01)
    outcomes = closed_loop(coalescer, donations, writers=16, turns=3)
    assert [len(batch) for batch in donations.batches] == [8] * 6
    assert all(error is None for writes in outcomes for _answer, error in writes)


def test_a_closed_loop_of_writers_keeps_two_rpcs_in_flight():
    """32 writers, each writing again when answered. Were a batch with none in
    flight to take every waiting write, the loop could lock into one RPC of all
    32 at a time, the service idle on each round trip; it takes half, and the
    other half goes at once as the second RPC."""
    in_flight, most = [0], [0]

    class Counted(Donations):
        def call_async(self, method, calls):
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            try:
                return super().call_async(method, calls)
            finally:
                in_flight[0] -= 1

    coalescer, donations = Coalescer("donations", "record_donation", timeout=5), Counted(delay=0.01)
    outcomes = closed_loop(coalescer, donations, writers=32, turns=4)
    assert all(error is None for writes in outcomes for _answer, error in writes)
    assert max(len(batch) for batch in donations.batches) <= 16 and most[0] == 2


def test_a_second_rpc_goes_only_once_enough_writes_wait_for_it():
    """While one RPC is in flight, a few writes wait for it and then go as one
    (an RPC costs more than several writes in it); as many as
    COALESCED_SECOND_AT go at once in a second RPC."""
    coalescer, donations = Coalescer("donations", "record_donation", timeout=5), Donations(delay=0.3)

    def numbered(index):
        return gift(coalescer, donations, f"req-{index}", f"key-{index}")
    pool = eventlet.GreenPool()
    first = pool.spawn(numbered, 0)
    eventlet.sleep(0.01)
    few = [pool.spawn(numbered, index) for index in range(1, COALESCED_SECOND_AT)]
    eventlet.sleep(0.1)
    assert [len(batch) for batch in donations.batches] == [1]  # the rest wait for the RPC in flight
    enough = pool.spawn(numbered, COALESCED_SECOND_AT)
    eventlet.sleep(0.1)
    assert [len(batch) for batch in donations.batches] == [1, COALESCED_SECOND_AT]
    answers = [thread.wait() for thread in (first, *few, enough)]
    assert answers == [({"receipt_no": f"key-{index}"}, None) for index in range(COALESCED_SECOND_AT + 1)]

    later = [pool.spawn(numbered, 100 + index) for index in range(3)]
    eventlet.sleep(0.01)
    more = [pool.spawn(numbered, 200 + index) for index in range(2)]
    assert all(answer is not None for answer, _error in (thread.wait() for thread in later + more))
    assert [len(batch) for batch in donations.batches][2:] == [3, 2]  # two wait for the first, then go together


def test_each_write_keeps_its_own_request_id_through_the_gateways_deadline():
    """As the gateway calls it: through _DeadlineProxy, whose deadline runs the
    call in a green thread of its own (a new, empty context)."""
    donations = Donations()
    coalescers = {"record_donation": Coalescer("donations", "record_donation", timeout=5)}

    def one(index):
        proxy = Proxy(donations, f"req-{index}")
        proxy.record_donation = None  # _DeadlineProxy looks the method up; the coalescer sends call_many
        bounded = _DeadlineProxy(proxy, "donations", 5, Admission(6, 1, "donations"), None, coalescers,
                                 Admission(48, 1, "donations"))
        return bounded.record_donation("c1", {"kind": "cash", "amount_fen": 100}, ADMIN,
                                       idempotency_key=f"key-{index}")
    answers = list(eventlet.GreenPool().imap(one, range(8)))
    assert answers == [{"receipt_no": f"key-{index}"} for index in range(8)]
    assert len(donations.batches) < 8
    assert sorted((call["request_id"], call["kwargs"]["idempotency_key"]) for batch in donations.batches
                  for call in batch) == [(f"req-{index}", f"key-{index}") for index in range(8)]


def test_a_batch_answered_wrongly_or_not_in_time_fails_each_of_its_writes():
    wrong = Donations(answer=lambda calls: [{"answer": {}}])  # one answer for any number of calls
    outcomes = gifts_at_once(Coalescer("donations", "record_donation", timeout=5), wrong, ["c1"] * 5)
    assert sum(isinstance(error, Unavailable) for _answer, error in outcomes) >= 3  # every batch but one of one

    slow = Donations(delay=1.0)
    outcomes = gifts_at_once(Coalescer("donations", "record_donation", timeout=0.2), slow, ["c1"] * 3)
    assert all(isinstance(error, Unavailable) and answer is None for answer, error in outcomes)
