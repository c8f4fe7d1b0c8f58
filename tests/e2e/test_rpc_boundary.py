"""Each service validates its own input, even from a caller the gateway
vouched for: malformed RPC calls, sent with a nameko client straight to the
running services (not through the gateway, but signed with its key), get a
clear remote error and write nothing."""
import time

import pytest
from nameko.exceptions import IncorrectSignature, MethodNotFound

from services.common.errors import Forbidden, InvalidInput, NotFound
from services.ops.stack import BACKENDS
from tests.e2e.conftest import open_case, query, rpc_config, table_names
from tests.e2e.test_donations import new_campaign
from tests.vouching import vouched_rpc


@pytest.fixture(scope="module")
def stack(office_stack):
    """The office's shared stack (tests/e2e/conftest.py): what this module checks holds on any running stack."""
    return office_stack

ADMIN = {"id": "a" * 32, "roles": ["admin"]}
MEMBER = {"id": "m" * 32, "roles": ["member"]}
WEBHOOK = {"url": "https://example.org/hook"}
ZONE = {"name": "North gate", "compounds": ["Xingfu Garden"]}
DEEP = ["x"]
for _ in range(900):  # a RecursionError in the service, before
    DEEP = [DEEP]


@pytest.fixture(scope="module")
def known(admin, register):
    """Real ids, so that calls get past "not found" to the checks behind it."""
    member, member_view = register()
    case = open_case(admin, member_view["id"])
    return {"campaign": new_campaign(admin)["id"], "case": case["id"], "member": member_view["id"]}


def malformed_calls(known):
    """(service, method, args, the error the caller must get[, keyword args])."""
    campaign, case = known["campaign"], known["case"]
    return [
        # The actor the gateway vouches for must be well formed, and be allowed.
        ("patrol", "create_zone", (ZONE, {"id": "x"}), InvalidInput),
        ("patrol", "create_zone", (ZONE, {"id": "x", "roles": ["root"]}), InvalidInput),
        ("patrol", "create_zone", (ZONE, "admin"), InvalidInput),
        ("patrol", "create_zone", (ZONE, MEMBER), Forbidden),
        ("donations", "create_campaign", ({"name": "x"}, MEMBER), Forbidden),
        ("welfare", "open_case", ({}, {"id": 7, "roles": "admin"}, None), InvalidInput),
        # Payloads of the wrong shape or type.
        ("patrol", "create_zone", ([], ADMIN), InvalidInput),
        ("patrol", "create_zone", ({"name": 5, "compounds": "all"}, ADMIN), InvalidInput),
        ("patrol", "start_patrol", ("now", MEMBER), InvalidInput),
        ("patrol", "report_incident", ({"kind": "fire"}, MEMBER), InvalidInput),
        # Reads of free text name their caller too (whose answer depends on it), and audit nothing else.
        ("patrol", "get_incident", ("any-incident", {"id": "x"}), InvalidInput),
        ("patrol", "list_incidents", (None,), InvalidInput),
        ("patrol", "list_patrols", ({"id": "x", "roles": ["root"]}, {}), InvalidInput),
        ("patrol", "list_audit", (MEMBER,), Forbidden),
        ("donations", "create_campaign", ({"name": "x", "goal_fen": 1.5}, ADMIN), InvalidInput),
        ("donations", "record_donation", (campaign, {"kind": "cash", "amount_fen": "100"}, MEMBER), InvalidInput),
        ("donations", "record_donation", (campaign, {"kind": "cash", "amount_fen": 100.5}, MEMBER), InvalidInput),
        ("donations", "record_donation", (campaign, {"kind": "cash", "amount_fen": -100}, MEMBER), InvalidInput),
        ("donations", "record_donation", (campaign, {"kind": "cash", "amount_fen": 100}, MEMBER), InvalidInput,
         {"idempotency_key": 12}),
        ("welfare", "open_case", ({}, ADMIN, None), InvalidInput, {"idempotency_key": "k" * 101}),
        ("donations", "dispatch", (campaign, {"destination": "x", "items": [
            {"category": "clothing", "quantity": -5}]}, ADMIN), InvalidInput),
        ("welfare", "create_household", ({"compound": "X", "address": "Y", "people": "Li"}, ADMIN), InvalidInput),
        ("welfare", "open_case", ({"household_id": 1, "categories": ["rich"]}, ADMIN, None), InvalidInput),
        ("welfare", "log_visit", (case, {"visited_on": "yesterday", "notes": ""}, ADMIN), InvalidInput),
        ("welfare", "add_referral", (case, {"agency": None}, ADMIN), InvalidInput),
        ("welfare", "close_case", (case, {"outcome": ["a"]}, ADMIN), InvalidInput),
        ("patrol", "add_category", ({"code": "ok_code", "label_zh": 5, "label_en": "x"}, ADMIN), InvalidInput),
        ("welfare", "add_category", ({"code": "Not A Code", "label_zh": "x", "label_en": "x"}, ADMIN), InvalidInput),
        ("donations", "add_category", ({"code": "heaters", "label_zh": "x", "label_en": "x"}, MEMBER), Forbidden),
        ("donations", "retire_category", ({"code": "tents"}, ADMIN), InvalidInput),
        ("patrol", "retire_category", ("other", MEMBER), Forbidden),
        ("notifications", "set_webhook", (known["member"], {"url": "ftp://example.org"}), InvalidInput),
        ("notifications", "set_webhook", (known["member"], {**WEBHOOK, "quiet_hours": "night"}), InvalidInput),
        # Ids that are not ids.
        ("patrol", "assign_team", (12, {"leader_id": "x", "member_ids": []}, ADMIN), InvalidInput),
        ("donations", "record_donation", (None, {"kind": "cash", "amount_fen": 100}, MEMBER), InvalidInput),
        ("donations", "close_campaign", ({"id": campaign}, ADMIN), InvalidInput),
        ("welfare", "log_visit", (["x"], {"visited_on": "2026-11-01", "notes": "n"}, ADMIN), InvalidInput),
        ("notifications", "set_webhook", (12345, WEBHOOK), InvalidInput),
        ("notifications", "set_webhook", ("", WEBHOOK), InvalidInput),
        ("notifications", "set_webhook", ("m" * 1000, WEBHOOK), InvalidInput),
        ("notifications", "ack_alert", (None, None), InvalidInput),
        # Text no database can store (a lone surrogate, a NUL), anywhere, and input nested past the bound.
        ("donations", "get_receipt", ("\ud800", {"code": "X"}), InvalidInput),
        ("donations", "get_donation", (campaign, "K7QW2M-\udc00"), InvalidInput),
        ("welfare", "create_household", ({"compound": "X", "address": "\ud800", "people": []}, ADMIN), InvalidInput),
        ("notifications", "set_webhook", (known["member"], {"url": "https://example.org/\ud800"}), InvalidInput),
        ("patrol", "get_zone", ("z\x00",), InvalidInput),
        ("patrol", "create_zone", ({"name": "x", "compounds": DEEP}, ADMIN), InvalidInput),
        # Well-formed but unknown.
        ("donations", "close_campaign", ("no-such-campaign", ADMIN), NotFound),
        ("welfare", "log_visit", ("no-such-case", {"visited_on": "2026-11-01", "notes": "n"}, ADMIN), NotFound),
        ("patrol", "get_incident", ("no-such-incident", ADMIN), NotFound),
        ("welfare", "retire_category", ("no_such_category", ADMIN), NotFound),
        # Calls that do not fit the method at all.
        ("patrol", "create_zone", (ZONE,), IncorrectSignature),
        ("donations", "record_donation", (campaign, {}, MEMBER, None, "extra"), IncorrectSignature),
        ("welfare", "drop_all_tables", (), MethodNotFound),
    ]


def row_counts(stack) -> dict:
    counts = {}
    for service in BACKENDS:
        for table in table_names(stack, service):
            counts[service, table] = query(stack, service, f'SELECT COUNT(*) FROM "{table}"')[0][0]
    return counts


def settled_row_counts(stack, timeout: float = 20.0) -> dict:
    """The row counts once the stack is quiet: every outbox row published and
    nothing changing for half a second, so that the events of the calls before
    (a case opened makes an alert) are not counted as the effect of the calls after."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        counts = row_counts(stack)
        unsent = sum(query(stack, service, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")[0][0]
                     for service in BACKENDS)
        if counts == last and not unsent:
            return counts
        if time.monotonic() > deadline:
            pytest.fail(f"the stack did not settle in {timeout}s ({unsent} events unsent)")
        last = counts
        time.sleep(0.5)


def test_malformed_rpc_calls_get_a_clear_error_and_write_nothing(stack, known):
    calls = malformed_calls(known)
    before = settled_row_counts(stack)
    with vouched_rpc(rpc_config(stack), timeout=15) as rpc:
        for service, method, args, expected, *kwargs in calls:
            with pytest.raises(Exception) as raised:
                getattr(getattr(rpc, service), method)(*args, **(kwargs[0] if kwargs else {}))
            error = raised.value
            name = getattr(error, "exc_type", type(error).__name__)  # nameko's own errors come as RemoteError
            assert name == expected.__name__, (service, method, args, repr(error))
            assert str(error), (service, method)
            if isinstance(error, InvalidInput):
                assert error.details.get("fields") or error.message, (service, method, error.details)
        assert rpc.welfare.ping() == {"service": "welfare", "ok": True}  # and still serving
    assert row_counts(stack) == before
