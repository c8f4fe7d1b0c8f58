"""`call_many` (services/common/service.py), what the gateway sends when it
coalesces concurrent donation writes (services/gateway/rpc.py), against the
real donations service in a nameko container on the real broker: each call it
carries is checked on its own — a forged assertion, one for other arguments,
one used twice, a method that is not a grouped write — and refused alone; the
others are written, each with its own receipt, Idempotency-Key and answer."""
import uuid

import pytest
from nameko.exceptions import MalformedRequest, deserialize

from services.common.errors import CallerNotVouched, InvalidInput
from services.donations.models import Donation
from services.donations.service import DonationsService
from tests.integration.conftest import ADMIN, count
from tests.unit.test_donations_service import campaign_payload
from tests.vouching import signer, vouched_rpc

OTHER_KEY = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIEBBW1KcVGsMemmzQHN5ZitXwlKD5TuVS/dAJZg2ZZ+Q
-----END PRIVATE KEY-----"""

CASH = {"kind": "cash", "amount_fen": 300}


def one_call(args, kwargs, assertion=None, request_id=None):
    return {"args": args, "kwargs": kwargs, "request_id": request_id,
            "assertion": assertion or signer().vouch("donations", "record_donation", args, kwargs)}


def test_each_call_in_a_call_many_is_checked_and_answered_on_its_own(service_config, start_service):
    config = service_config("donations")
    start_service(DonationsService, config)
    with vouched_rpc(config, "donations", timeout=20) as donations:
        campaign_id = donations.create_campaign(campaign_payload(), ADMIN)["id"]
        gift = [campaign_id, CASH, ADMIN]
        good = one_call(gift, {"idempotency_key": uuid.uuid4().hex})
        other_args = one_call([campaign_id, {**CASH, "amount_fen": 1}, ADMIN], {"idempotency_key": "k1"},
                              assertion=good["assertion"])
        forged = one_call(gift, {"idempotency_key": "k2"}, assertion=signer(OTHER_KEY).vouch(
            "donations", "record_donation", gift, {"idempotency_key": "k2"}))
        replayed = dict(good)
        bad_input = one_call([campaign_id, {"kind": "cash", "amount_fen": -1}, ADMIN], {"idempotency_key": "k3"})
        second = one_call(gift, {"idempotency_key": uuid.uuid4().hex})
        answers = donations.call_many(method="record_donation",
                                      calls=[good, other_args, forged, replayed, bad_input, second])

        assert [sorted(answer) for answer in answers] == [["answer"], ["error"], ["error"], ["error"], ["error"],
                                                          ["answer"]]
        errors = {index: deserialize(answers[index]["error"]) for index in (1, 2, 3, 4)}
        assert isinstance(errors[1], CallerNotVouched) and "other arguments" in str(errors[1])
        assert isinstance(errors[2], CallerNotVouched) and "signature" in str(errors[2])
        assert isinstance(errors[3], CallerNotVouched) and "used before" in str(errors[3])
        assert isinstance(errors[4], InvalidInput)
        receipts = sorted(answers[index]["answer"]["receipt_no"][-4:] for index in (0, 5))
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
