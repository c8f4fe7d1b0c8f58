"""`call_many` (services/common/service.py), what the gateway sends when it
coalesces concurrent donation writes (services/gateway/rpc.py), against the
real donations service in a nameko container on the real broker. The RPC's one
assertion covers every call in it: a call changed on the way (another caller,
other arguments), or the RPC sent again, and nothing in it is written. Each
call is then checked on its own — its signature, its input — and refused
alone; the others are written, each with its own receipt, Idempotency-Key and
answer. Only a grouped write may be carried."""
import uuid

import pytest
from nameko.exceptions import MalformedRequest, deserialize

from services.common.errors import CallerNotVouched, InvalidInput
from services.donations.models import Donation
from services.donations.service import DonationsService
from tests.integration.conftest import ADMIN, count
from tests.unit.test_donations_service import campaign_payload
from tests.vouching import signer, vouched_rpc

CASH = {"kind": "cash", "amount_fen": 300}
SOMEONE = {"id": "member-7", "roles": ["member"]}


def one_call(args, kwargs, request_id=None):
    return {"args": args, "kwargs": kwargs, "request_id": request_id}


class SignedFor:
    """Signs every RPC for the calls given here, whatever it carries: a
    message changed on the broker after the gateway signed it."""

    def __init__(self, calls: list[dict]):
        self.calls = calls

    def vouch(self, service, method, args, _kwargs):
        return signer().vouch(service, method, args, {"method": "record_donation", "calls": self.calls})


class Captured:
    """One assertion on every RPC, as someone replaying a captured message would."""

    def __init__(self, assertion: str):
        self.assertion = assertion

    def vouch(self, *_call):
        return self.assertion


def test_each_call_in_a_call_many_is_checked_and_answered_on_its_own(service_config, start_service):
    config = service_config("donations")
    start_service(DonationsService, config)
    with vouched_rpc(config, "donations", timeout=20) as donations:
        campaign_id = donations.create_campaign(campaign_payload(), ADMIN)["id"]
        gift = [campaign_id, CASH, ADMIN]
        good = one_call(gift, {"idempotency_key": uuid.uuid4().hex}, request_id="req-good-0001")
        bad_input = one_call([campaign_id, {"kind": "cash", "amount_fen": -1}, ADMIN], {"idempotency_key": "k3"})
        wrong_shape = one_call(gift, {"idempotency_key": "k4", "on_behalf_of": "someone"})
        second = one_call(gift, {"idempotency_key": uuid.uuid4().hex})
        answers = donations.call_many(method="record_donation", calls=[good, bad_input, wrong_shape, second])

        assert [sorted(answer) for answer in answers] == [["answer"], ["error"], ["error"], ["answer"]]
        assert isinstance(deserialize(answers[1]["error"]), InvalidInput)
        assert "on_behalf_of" in str(deserialize(answers[2]["error"]))
        receipts = sorted(answers[index]["answer"]["receipt_no"][-4:] for index in (0, 3))
        assert receipts == ["0001", "0002"]
        assert count(config, Donation) == 2

        # The same key again, in another call_many: the first answer, nothing written twice.
        again = donations.call_many(method="record_donation", calls=[
            one_call(gift, {"idempotency_key": good["kwargs"]["idempotency_key"]})])
        assert again == [{"answer": answers[0]["answer"]}]
        assert count(config, Donation) == 2

        # Only a grouped write may be carried: not a read, not another write.
        for method in ("list_donations", "create_campaign", "call_many"):
            with pytest.raises(MalformedRequest):
                donations.call_many(method=method, calls=[])


def test_a_call_many_changed_on_the_way_or_sent_again_writes_nothing(service_config, start_service):
    config = service_config("donations")
    start_service(DonationsService, config)
    with vouched_rpc(config, "donations", timeout=20) as donations:
        campaign_id = donations.create_campaign(campaign_payload(), ADMIN)["id"]
    signed = [one_call([campaign_id, CASH, ADMIN], {"idempotency_key": uuid.uuid4().hex}),
              one_call([campaign_id, CASH, SOMEONE], {"idempotency_key": uuid.uuid4().hex})]
    changed = {
        "callers swapped": [{**signed[0], "args": signed[1]["args"]}, {**signed[1], "args": signed[0]["args"]}],
        "an amount changed": [signed[0], {**signed[1], "args": [campaign_id, {**CASH, "amount_fen": 1}, SOMEONE]}],
        "a call added": [*signed, one_call([campaign_id, CASH, ADMIN], {"idempotency_key": "extra"})],
        "a call dropped": signed[:1],
    }
    for what, calls in changed.items():
        with vouched_rpc(config, "donations", timeout=20, sign=SignedFor(signed)) as donations:
            with pytest.raises(CallerNotVouched, match="other arguments"):
                donations.call_many(method="record_donation", calls=calls)
        assert count(config, Donation) == 0, what

    # As signed, once: both written. The same message again: refused, nothing more.
    assertion = signer().vouch("donations", "call_many", [], {"method": "record_donation", "calls": signed})
    with vouched_rpc(config, "donations", timeout=20, sign=Captured(assertion)) as donations:
        assert [sorted(answer) for answer in donations.call_many(method="record_donation", calls=signed)] == [
            ["answer"], ["answer"]]
        with pytest.raises(CallerNotVouched, match="used before"):
            donations.call_many(method="record_donation", calls=signed)
    assert count(config, Donation) == 2
