"""Input that used to be a 500, or that was taken though it meant two things,
is refused with a 4xx naming the field: JSON nested past the bound, duplicate
keys, a body not sent as JSON, text no database can store (a NUL character, a
lone surrogate) in a body, a query, a path, or any RPC argument; a cursor not
from this API; a donation or dispatch without an Idempotency-Key."""
import base64
import json
import time

import pytest
from marshmallow import Schema, ValidationError, fields
from nameko.containers import ServiceContainer
from nameko.testing.utils import get_extension
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.common import strict_json
from services.common.errors import InvalidInput, UnsupportedMediaType
from services.common.pagination import PageSchema
from services.common.schemas import UNSTORABLE_MESSAGE
from services.common import caller
from services.common.service import VouchedRpc
from services.donations.service import DonationsService
from services.gateway.http import ApiEntrypoint, error_response
from tests import vouching


class Body(Schema):
    donor_name = fields.String()
    amount_fen = fields.Integer()
    items = fields.List(fields.Raw())


ROUTE = ApiEntrypoint("POST", "/campaigns/<campaign_id>/donations", roles=None, body=Body, key_required=True)


def request(data=b"", content_type="application/json", **kwargs) -> Request:
    headers = kwargs.pop("headers", {})
    if content_type is not None:
        headers["Content-Type"] = content_type
    return Request(EnvironBuilder(method="POST", data=data, headers=headers, **kwargs).get_environ())


def load_body(data, content_type="application/json"):
    return ROUTE._load_body(request(data, content_type))


def refusal(call) -> tuple[int, dict]:
    """What a client gets back: the status and the error."""
    with pytest.raises(Exception) as raised:
        call()
    response = error_response(raised.value)
    return response.status_code, json.loads(response.get_data())["error"]


def nested(depth: int) -> str:
    return '{"items": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


# -- the JSON text ----------------------------------------------------------------------


def test_json_nested_past_the_bound_is_refused_before_the_parser_recurses():
    assert load_body(nested(strict_json.MAX_DEPTH))[1]["items"]  # 32 levels: taken
    for depth in (strict_json.MAX_DEPTH + 1, 900, 100_000):
        status, error = refusal(lambda depth=depth: load_body(nested(depth)))
        assert (status, error["code"]) == (400, "invalid_input")
        assert error["details"]["fields"] == {"_schema": [strict_json.DEPTH_MESSAGE]}
    # 1,500 opening brackets that never close, as one attack sent them.
    assert refusal(lambda: load_body("[" * 1500))[0] == 400


def test_brackets_inside_strings_do_not_count_as_depth():
    body = {"donor_name": "[[[[" * 50 + '\\"{{{{' * 50}
    assert load_body(json.dumps(body))[1] == body


def test_the_depth_scan_stays_linear_on_hostile_text():
    """An unterminated string full of escaped quotes is scanned once, not once per quote."""
    hostile = '"' + '\\"' * 120_000
    started = time.perf_counter()
    assert not strict_json.too_deep(hostile)
    assert time.perf_counter() - started < 0.5


def test_a_key_given_twice_is_refused_naming_it():
    """{"amount_fen": 1, "amount_fen": 999999} recorded 999,999: the last one won silently."""
    status, error = refusal(lambda: load_body('{"amount_fen": 1, "amount_fen": 999999}'))
    assert (status, error["code"]) == (400, "invalid_input")
    assert list(error["details"]["fields"]) == ["amount_fen"]
    status, error = refusal(lambda: load_body('{"items": [{"quantity": 1, "quantity": 2}]}'))
    assert list(error["details"]["fields"]) == ["quantity"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_numbers(constant):
    status, error = refusal(lambda: load_body('{"amount_fen": %s}' % constant))
    assert (status, error["code"]) == (400, "invalid_input")


@pytest.mark.parametrize("content_type", [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
    "application/json; charset=latin-1", "application/jsonx", None,
])
def test_a_body_not_sent_as_json_is_a_415(content_type):
    status, error = refusal(lambda: load_body('{"amount_fen": 100}', content_type))
    assert (status, error["code"]) == (415, "unsupported_media_type")
    assert list(error["details"]["fields"]) == ["Content-Type"]


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", "Application/JSON; charset=UTF-8",
    "application/merge-patch+json",
])
def test_json_in_its_spellings_is_taken(content_type):
    assert load_body('{"amount_fen": 100}', content_type)[1] == {"amount_fen": 100}


def test_no_body_and_no_content_type_is_a_missing_body_not_a_415():
    status, error = refusal(lambda: load_body(b"", None))
    assert (status, error["code"]) == (400, "invalid_input")


def test_bytes_that_are_not_utf8_are_not_json():
    # A lone surrogate written as UTF-8 would be (ED A0 80): no UTF-8 decoder takes it.
    status, error = refusal(lambda: load_body(b'{"donor_name": "\xed\xa0\x80"}'))
    assert (status, error["code"]) == (400, "invalid_input")


# -- text no database can store -------------------------------------------------------


@pytest.mark.parametrize("text", ["\ud800", "李\udc00", "\x00"])
def test_unstorable_text_in_a_body_is_refused_naming_the_field(text):
    body = json.dumps({"donor_name": text, "amount_fen": 100})  # ASCII JSON: "\ud800" spelled out
    status, error = refusal(lambda: load_body(body))
    assert (status, error["code"]) == (400, "invalid_input")
    assert error["details"]["fields"] == {"donor_name": [UNSTORABLE_MESSAGE]}
    status, error = refusal(lambda: load_body(json.dumps({"items": [{"description": text}]})))
    assert list(error["details"]["fields"]) == ["items"]


def test_unstorable_text_in_a_query_or_a_path_is_refused_naming_it():
    route = ApiEntrypoint("GET", "/campaigns/<campaign_id>/donations", roles=None, query=PageSchema)
    # A surrogate's UTF-8 in a query (%ED%A0%80) is decoded as U+FFFD, never as itself; a NUL is refused.
    for query in ("cursor=%00", "cursor=%ED%A0%80", "limit=%00"):
        asked = Request(EnvironBuilder(path="/x", query_string=query).get_environ())
        status, error = refusal(lambda asked=asked: route._load_query(asked))
        assert (status, list(error["details"]["fields"])) == (400, [query.partition("=")[0]])
    asked = Request(EnvironBuilder(path="/x").get_environ())
    asked.path_values = {"campaign_id": "\udfff"}
    status, error = refusal(lambda: route._load_query(asked))
    assert (status, list(error["details"]["fields"])) == (400, ["campaign_id"])


def test_a_query_parameter_given_twice_is_refused_naming_it():
    route = ApiEntrypoint("GET", "/cases", roles=None, query=PageSchema)
    asked = Request(EnvironBuilder(path="/x", query_string="limit=5&limit=500&cursor=").get_environ())
    status, error = refusal(lambda: route._load_query(asked))
    assert (status, error["details"]["fields"]) == (400, {"limit": ["Given more than once."]})


# -- cursors ---------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    _b64(b"[" * 1500),                                             # was a RecursionError: a 500
    _b64(json.dumps(["2026-05-12T08:00:00", "\ud800"]).encode()),  # an id no database can hold
    _b64(json.dumps(["2026-05-12T08:00:00", "\x00"]).encode()),
    _b64(json.dumps(["2026-05-12T08:00:00", ["c1"]]).encode()),    # not an id
    _b64(json.dumps(["2026-05-12T08:00:00", "c" * 65]).encode()),
])
def test_a_cursor_not_from_this_api_is_a_field_error(cursor):
    with pytest.raises(ValidationError) as raised:
        PageSchema().load({"cursor": cursor})
    assert set(raised.value.messages) == {"cursor"}


# -- the Idempotency-Key of money and goods ------------------------------------------------


def test_a_donation_or_dispatch_without_an_idempotency_key_is_refused_naming_the_header():
    status, error = refusal(lambda: ROUTE._idempotency_key(request()))
    assert (status, error["code"]) == (400, "idempotency_key_required")
    assert list(error["details"]["fields"]) == ["Idempotency-Key"]
    assert ROUTE._idempotency_key(request(headers={"Idempotency-Key": "k-1"})) == "k-1"
    # Other creating writes still get a key of their own (a redelivered RPC request is one write).
    other = ApiEntrypoint("POST", "/cases", roles=None, idempotent=True)
    assert other._idempotency_key(request()).startswith("request-")


def test_unsupported_media_type_is_a_linli_error_with_its_status():
    assert UnsupportedMediaType("x").status == 415


# -- every RPC entrypoint ----------------------------------------------------------------------


class _Message:
    """A call as the gateway sends it: vouched for, so the input check is what refuses it."""
    delivery_info = {"routing_key": "donations.get_receipt"}

    def __init__(self, method: str, args, kwargs):
        self.headers = {caller.HEADER: vouching.signer().vouch("donations", method, args, kwargs)}


@pytest.fixture
def container():
    container = ServiceContainer(DonationsService, vouching.with_caller_keys({"AMQP_URI": "memory://"}))
    get_extension(container, caller.CallerCheck).setup()  # built, never started: no broker
    return container


@pytest.mark.parametrize("args, kwargs, named", [
    (["c1", "K7QW2M-\ud800"], {}, ["receipt_no"]),
    (["\x00", "\udc80"], {}, ["campaign_id", "receipt_no"]),
    (["c1"], {"receipt_no": "\ud800"}, ["receipt_no"]),
])
def test_an_rpc_argument_no_database_can_store_is_refused_before_any_work(container, args, kwargs, named):
    entrypoint = get_extension(container, VouchedRpc, method_name="get_donation")
    with pytest.raises(InvalidInput) as refused:
        entrypoint.handle_message({"args": args, "kwargs": kwargs}, _Message("get_donation", args, kwargs))
    assert sorted(refused.value.details["fields"]) == named


def test_a_payload_argument_is_refused_naming_its_own_fields(container):
    entrypoint = get_extension(container, VouchedRpc, method_name="record_donation")
    payload = {"kind": "cash", "amount_fen": 100, "donor_name": "\ud800"}
    args, kwargs = ["c1", payload, {"id": "m1", "roles": ["member"]}], {"idempotency_key": "k\x00"}
    with pytest.raises(InvalidInput) as refused:
        entrypoint.handle_message({"args": args, "kwargs": kwargs}, _Message("record_donation", args, kwargs))
    assert sorted(refused.value.details["fields"]) == ["donor_name", "idempotency_key"]
