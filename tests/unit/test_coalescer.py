"""The gateway's Coalescer (services/gateway/rpc.py) with a stand-in for the
donations service: concurrent writes go as few call_many RPCs, each write
with its own assertion (for exactly its arguments), request id and answer or
error; a batch answered wrongly, or not at all, fails each of its writes."""
import eventlet
import pytest
from nameko.exceptions import serialize

from services.common import caller, logs
from services.common.errors import CallerNotVouched, NotFound, Unavailable
from services.gateway.rpc import Coalescer
from tests.vouching import PUBLIC_KEY, signer

ADMIN = {"id": "admin-1", "roles": ["admin"]}


class Donations:
    """call_many as the service answers it: a receipt each, a 404 for the campaign 'gone'."""

    def __init__(self, answer=None, delay=0.05):
        self.batches: list[list[dict]] = []
        self.answer = answer
        self.delay = delay

    @property
    def call_many(self):
        return self

    def call_async(self, method, calls):
        self.batches.append(calls)
        eventlet.sleep(self.delay)
        answers = self.answer(calls) if self.answer else [
            {"error": serialize(NotFound("No such campaign."))} if call["args"][0] == "gone"
            else {"answer": {"receipt_no": call["kwargs"]["idempotency_key"]}} for call in calls]
        return type("Reply", (), {"result": lambda self: answers})()


def gifts_at_once(coalescer, proxy, campaigns):
    def one(index_campaign):
        index, campaign = index_campaign
        logs.bind_request_id(f"req-{index}")
        return coalescer.call(proxy, (campaign, {"kind": "cash", "amount_fen": 100}, ADMIN),
                              {"idempotency_key": f"key-{index}"})
    return list(eventlet.GreenPool().imap(one, enumerate(campaigns)))


def test_concurrent_writes_go_as_few_rpcs_each_with_its_own_assertion_and_answer():
    sign = signer()
    coalescer, donations = Coalescer("donations", "record_donation", sign, timeout=5), Donations()
    outcomes = gifts_at_once(coalescer, donations, ["c1"] * 9 + ["gone"] + ["c1"] * 10)
    assert [len(batch) for batch in donations.batches][:2] == [1, 1]  # the first two go at once
    assert len(donations.batches) <= 4 and sum(map(len, donations.batches)) == 20
    assert [answer for answer, _error in outcomes if answer] == [
        {"receipt_no": f"key-{index}"} for index in range(20) if index != 9]
    assert isinstance(outcomes[9][1], NotFound) and outcomes[9][0] is None
    calls = [call for batch in donations.batches for call in batch]
    assert sorted(call["request_id"] for call in calls) == sorted(f"req-{index}" for index in range(20))
    # Each assertion is for its own call: the service's check of one call refuses it for another's arguments.
    verifier = caller.Verifier(caller.load_public_key(PUBLIC_KEY), "donations")
    for call in calls:
        verifier.check(call["assertion"], "record_donation", call["args"], call["kwargs"])
    fresh = caller.Verifier(caller.load_public_key(PUBLIC_KEY), "donations")
    with pytest.raises(CallerNotVouched, match="other arguments"):
        fresh.check(calls[0]["assertion"], "record_donation", calls[1]["args"], calls[1]["kwargs"])


def test_a_batch_answered_wrongly_or_not_in_time_fails_each_of_its_writes():
    wrong = Donations(answer=lambda calls: [{"answer": {}}])  # one answer for any number of calls
    outcomes = gifts_at_once(Coalescer("donations", "record_donation", signer(), timeout=5), wrong, ["c1"] * 5)
    assert sum(isinstance(error, Unavailable) for _answer, error in outcomes) >= 3  # every batch but one of one

    slow = Donations(delay=1.0)
    outcomes = gifts_at_once(Coalescer("donations", "record_donation", signer(), timeout=0.2), slow, ["c1"] * 3)
    assert all(isinstance(error, Unavailable) and answer is None for answer, error in outcomes)
