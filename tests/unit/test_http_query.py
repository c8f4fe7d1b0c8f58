"""An API route takes the query parameters it documents and no others: an
unknown one (a typo like `?limt=5`) is a 400 naming it, not silently ignored.
A creating write always carries an Idempotency-Key, the client's or its own."""
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.common.errors import InvalidInput
from services.common.pagination import PageSchema
from services.gateway.http import ApiEntrypoint


def load_query(entrypoint: ApiEntrypoint, query: str):
    return entrypoint._load_query(Request(EnvironBuilder(path="/x", query_string=query).get_environ()))


def test_documented_parameters_are_loaded():
    route = ApiEntrypoint("GET", "/cases", roles=("admin",), query=PageSchema)
    assert load_query(route, "limit=5") == ({"limit": "5"}, {"limit": 5, "cursor": None})


@pytest.mark.parametrize("query, unknown", [("limt=5", ["limt"]), ("limit=5&x=1&=2", ["", "x"])])
def test_an_unknown_parameter_is_invalid_input_naming_it(query, unknown):
    route = ApiEntrypoint("GET", "/cases", roles=("admin",), query=PageSchema)
    with pytest.raises(InvalidInput) as refused:
        load_query(route, query)
    assert sorted(refused.value.details["fields"]) == unknown


def test_a_route_without_a_query_takes_no_parameters():
    with pytest.raises(InvalidInput):
        load_query(ApiEntrypoint("GET", "/public/summary", roles=None), "page=2")
    assert load_query(ApiEntrypoint("GET", "/public/summary", roles=None), "") == ({}, {})


def test_the_token_of_an_event_stream_may_come_in_the_query():
    stream = ApiEntrypoint("GET", "/events/stream", roles=("admin",), event_stream=True)
    assert load_query(stream, "access_token=abc") == ({}, {})
    with pytest.raises(InvalidInput):  # a public route asks for no token
        load_query(ApiEntrypoint("GET", "/health", roles=None), "access_token=abc")
    with pytest.raises(InvalidInput):  # and other routes take it only in the header
        load_query(ApiEntrypoint("GET", "/cases", roles=("admin",)), "access_token=abc")


def test_pages_are_not_the_api_and_ignore_their_query():
    page = ApiEntrypoint("GET", "/", roles=None, prefix="", in_openapi=False)
    assert load_query(page, "lang=en") == ({}, {})


def test_a_write_without_an_idempotency_key_gets_one_of_its_own():
    """So that an RPC request the broker redelivers after a restart is one write."""
    route = ApiEntrypoint("POST", "/cases", roles=("admin",), idempotent=True)
    own = {route._idempotency_key(Request(EnvironBuilder(method="POST").get_environ())) for _ in range(3)}
    assert len(own) == 3 and all(key.startswith("request-") for key in own)
    sent = Request(EnvironBuilder(method="POST", headers={"Idempotency-Key": "k-1"}).get_environ())
    assert route._idempotency_key(sent) == "k-1"
    assert ApiEntrypoint("POST", "/cases/<case_id>/close", roles=("admin",))._idempotency_key(sent) is None
