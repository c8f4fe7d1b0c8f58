"""The broker is no back door: against the whole stack as processes, a call a
plain nameko client sends straight to a service, claiming any identity, gets a
clear remote error and does nothing (no row, no audit entry); an assertion the
gateway made for one call is good for that call once, and for nothing else;
an expired or forged one is refused; the HTTP routes work as before."""
import time

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from services.common import caller
from services.common.errors import CallerNotVouched
from tests.e2e.conftest import HOUSEHOLD, open_case, rpc_config
from tests.e2e.test_donations import donated, new_campaign
from tests.e2e.test_rpc_boundary import row_counts, settled_row_counts
from tests.vouching import signer, vouched_rpc


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py): what this module checks holds on any running stack."""
    return office_stack

NOBODY = {"id": "nobody-at-all", "roles": ["admin"]}


class Replayed:
    """Puts one captured assertion on every call, as someone on the broker would."""

    def __init__(self, assertion: str):
        self.assertion = assertion

    def vouch(self, *_call) -> str:
        return self.assertion


def reason(raised) -> str:
    return raised.value.details["reason"]


def audit(admin) -> list[dict]:
    answer = admin.get("/audit", params={"limit": 200})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


@pytest.fixture(scope="module")
def admin_principal(admin) -> dict:
    me = admin.get("/me")
    assert me.status_code == 200, me.text
    return {"id": me.json()["id"], "roles": ["admin"]}


def test_a_call_the_gateway_did_not_vouch_for_does_nothing(stack, admin, register):
    household = admin.post("/households", HOUSEHOLD)
    assert household.status_code == 201, household.text
    household_id = household.json()["id"]
    volunteer, _ = register()
    campaign = new_campaign(admin)
    receipt = donated(volunteer, campaign["id"], {"kind": "cash", "amount_fen": 5_000, "donor_name": "陈静"})
    before = settled_row_counts(stack)

    with ClusterRpcProxy({"AMQP_URI": stack.env["AMQP_URI"]}, timeout=15) as rpc:
        for call in (lambda: rpc.welfare.get_household(household_id, NOBODY),
                     lambda: rpc.welfare.list_cases(NOBODY),
                     lambda: rpc.donations.get_donation(campaign["id"], receipt["receipt_no"]),
                     lambda: rpc.patrol.ping()):
            with pytest.raises(CallerNotVouched) as raised:
                call()
            assert reason(raised) == "the call carries no assertion"
            assert "陈静" not in str(raised.value) and "Building 3" not in str(raised.value)

    assert row_counts(stack) == before
    entries = audit(admin)
    assert not [e for e in entries if e["actor_id"] == NOBODY["id"] or e["household_id"] == household_id]

    # Through the gateway, as ever: the household, and its read audited in the admin's name.
    shown = admin.get(f"/households/{household_id}")
    assert shown.status_code == 200 and shown.json()["address"] == HOUSEHOLD["address"]
    me = admin.get("/me").json()["id"]
    assert [e["actor_id"] for e in audit(admin) if e["household_id"] == household_id] == [me]
    assert volunteer.get(f"/campaigns/{campaign['id']}/donations/{receipt['receipt_no']}").status_code == 200


def test_an_assertion_is_good_for_its_own_call_once_and_for_no_other(stack, admin, register, admin_principal):
    _member, member = register()
    case_a, case_b = open_case(admin, member["id"])["id"], open_case(admin, member["id"])["id"]
    sign = signer(stack.env["LINLI_CALLER_SIGNING_KEY"], lifetime=15)
    captured = sign.vouch("welfare", "get_case", (case_a, admin_principal), {})
    before = settled_row_counts(stack)

    with vouched_rpc(rpc_config(stack), timeout=15, sign=Replayed(captured)) as rpc:
        misapplied = {
            "it is for other arguments": lambda: rpc.welfare.get_case(case_b, admin_principal),
            "it is for another method": lambda: rpc.welfare.get_household(case_a, admin_principal),
            "it is for another service": lambda: rpc.donations.get_donation(case_a, admin_principal),
        }
        for expected, call in misapplied.items():
            with pytest.raises(CallerNotVouched) as raised:
                call()
            assert reason(raised) == expected
        assert row_counts(stack) == before

        # The call it was made for: answered, once.
        assert rpc.welfare.get_case(case_a, admin_principal)["id"] == case_a
        with pytest.raises(CallerNotVouched) as raised:
            rpc.welfare.get_case(case_a, admin_principal)
        assert reason(raised) == "it was used before"

    reads = [(e["case_id"], e["actor_id"]) for e in audit(admin) if e["case_id"] in (case_a, case_b)]
    assert reads == [(case_a, admin_principal["id"])]


def test_an_expired_or_forged_assertion_is_refused(stack, admin, register, admin_principal):
    _member, member = register()
    case = open_case(admin, member["id"])["id"]
    stale = signer(stack.env["LINLI_CALLER_SIGNING_KEY"], lifetime=15, clock=lambda: time.time() - 60)
    other_key, _public = caller.generate_key_pair()
    before = settled_row_counts(stack)
    for sign, expected in ((stale, "it has expired"), (signer(other_key), "its signature is not the gateway's")):
        with vouched_rpc(rpc_config(stack), timeout=15, sign=sign) as rpc:
            with pytest.raises(CallerNotVouched) as raised:
                rpc.welfare.get_case(case, admin_principal)
            assert reason(raised) == expected
    assert row_counts(stack) == before
    assert not [e for e in audit(admin) if e["case_id"] == case]
    # A fresh assertion with the gateway's key: answered.
    with vouched_rpc(rpc_config(stack), timeout=15) as rpc:
        assert rpc.welfare.get_case(case, admin_principal)["id"] == case


def test_the_private_key_reaches_the_gateway_only(stack):
    for (service, _index), process in stack.processes.items():
        with open(f"/proc/{process.pid}/environ", "rb") as environ:
            names = {entry.split(b"=", 1)[0].decode() for entry in environ.read().split(b"\0") if entry}
        assert "LINLI_CALLER_PUBLIC_KEY" in names, service
        assert ("LINLI_CALLER_SIGNING_KEY" in names) == (service == "gateway"), service
        assert ("LINLI_JWT_SECRET" in names) == (service == "gateway"), service
    key_file = stack.var_dir / "caller-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
