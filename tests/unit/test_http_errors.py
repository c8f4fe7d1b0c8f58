"""Every failure reaches a client in the one error shape, with the right
status, and never with a traceback or an internal message."""
import json
from types import SimpleNamespace

import eventlet
import kombu.exceptions
import pytest
from marshmallow import Schema, ValidationError, fields
from nameko.exceptions import ContainerBeingKilled, IncorrectSignature, RemoteError, UnknownService

from services.common.errors import (
    Conflict, Forbidden, IdempotencyKeyReused, InvalidInput, NotFound, TooManyRequests, Unavailable,
)
from services.gateway.http import ApiEntrypoint, error_response


def answer(exc):
    response = error_response(exc)
    return response.status_code, json.loads(response.get_data())["error"]


@pytest.mark.parametrize("exc, status, code", [
    (InvalidInput("bad", {"fields": {"x": ["bad"]}}), 400, "invalid_input"),
    (Forbidden("no"), 403, "forbidden"),
    (NotFound("none"), 404, "not_found"),
    (Conflict("taken"), 409, "conflict"),
    (Unavailable("away"), 503, "unavailable"),
    (UnknownService("welfare"), 503, "unavailable"),
    (eventlet.Timeout(), 503, "unavailable"),
    (kombu.exceptions.OperationalError("[Errno 111] Connection refused"), 503, "unavailable"),
    (ConnectionResetError(), 503, "unavailable"),
    (ContainerBeingKilled(), 503, "unavailable"),
    (TooManyRequests("slow down", {"retry_after": 3}), 429, "too_many_requests"),
    (IdempotencyKeyReused("another body"), 422, "idempotency_key_reused"),
])
def test_expected_failures_map_to_their_status(exc, status, code):
    got_status, error = answer(exc)
    assert (got_status, error["code"]) == (status, code)
    assert error["message"]


def test_a_marshmallow_error_names_each_field():
    class Body(Schema):
        name = fields.String(required=True)
        age = fields.Integer(strict=True)

    with pytest.raises(ValidationError) as raised:
        Body().load({"age": "x"})
    status, error = answer(raised.value)
    assert status == 400
    assert set(error["details"]["fields"]) == {"name", "age"}


@pytest.mark.parametrize("exc", [
    RuntimeError("secret internals: /var/lib/linli password=hunter2"),
    RemoteError("OperationalError", "INSERT INTO people (name) VALUES ('李秀英')"),
])
def test_an_unexpected_error_is_a_plain_500_that_tells_nothing(exc):
    status, error = answer(exc)
    assert status == 500
    assert error == {"code": "internal_error", "message": "Something went wrong on our side.", "details": {}}


def test_the_access_log_keeps_no_token_and_no_receipt_code():
    from services.gateway.http import _RedactingLog

    lines = []

    class Sink:
        def info(self, message):
            lines.append(message)

    log = _RedactingLog(Sink())
    log.info('127.0.0.1 - - "GET /api/v1/me/alerts/stream?access_token=eyJabc.def HTTP/1.1" 200')
    log.info('127.0.0.1 - - "GET /api/v1/receipts/K7QW2M-000001?code=4ZT6DUX9&x=1 HTTP/1.1" 200')
    assert "eyJabc" not in lines[0] and "access_token=[redacted]" in lines[0]
    assert "4ZT6DUX9" not in lines[1] and "code=[redacted]&x=1" in lines[1]


def test_a_429_says_when_to_retry():
    assert error_response(TooManyRequests("slow down", {"retry_after": 3})).headers["Retry-After"] == "3"


def test_a_service_refusing_the_gateways_assertion_is_our_500_and_tells_the_client_nothing(caplog):
    """The gateway never gets this unless its keys or clock are wrong: our fault, not the client's."""
    from services.common.errors import CallerNotVouched
    status, error = answer(CallerNotVouched("The gateway did not vouch for this call: it has expired.",
                                            {"reason": "it has expired"}))
    assert (status, error["code"]) == (500, "internal_error")
    assert "vouch" not in json.dumps(error) and "expired" not in json.dumps(error)
    assert "it has expired" in caplog.text and "CALLER_SIGNING_KEY" in caplog.text


def test_a_client_that_left_mid_answer_logs_no_traceback():
    """Every closed event stream ends in a failed write: no fault of ours, and no 1 KB traceback each."""
    from services.gateway.http import _RedactingLog

    lines = []

    class Sink:
        def info(self, message):
            lines.append(("info", message))

        def debug(self, message):
            lines.append(("debug", message))

        def error(self, message):
            lines.append(("error", message))

    log = _RedactingLog(Sink())
    log.info('Traceback (most recent call last):\n  File "wsgi.py"\nBrokenPipeError: [Errno 32] Broken pipe\n')
    log.info("Traceback (most recent call last):\n  ...\nConnectionResetError: [Errno 104] reset\n")
    log.info("Traceback (most recent call last):\n  ...\nRuntimeError: a fault of ours\n")
    log.error("chunked encoding error")  # the rest of eventlet's log passes through
    assert [level for level, _ in lines] == ["debug", "debug", "info", "error"]
    assert "RuntimeError" in lines[2][1]


def test_a_handler_that_cannot_take_a_requests_arguments_is_refused_every_time():
    """ApiEntrypoint checks a call's shape once, not once per request: a shape
    the handler takes passes again, one it does not is refused each time."""
    class Service:
        def zone(self, request, zone_id):
            return {}

    entrypoint = ApiEntrypoint("GET", "/zones/<zone_id>", roles=None)
    entrypoint.container, entrypoint.method_name = SimpleNamespace(service_cls=Service), "zone"
    entrypoint._good_shapes = set()
    for zone_id in ("z1", "z2"):
        entrypoint.check_signature((object(),), {"zone_id": zone_id})
    for _ in range(2):
        with pytest.raises(IncorrectSignature):
            entrypoint.check_signature((object(),), {"campaign_id": "c1"})
        with pytest.raises(IncorrectSignature):
            entrypoint.check_signature((object(), object()), {"zone_id": "z1"})


class Route:
    """A route's handler, as the gateway's entrypoints are to JsonWsgiApp."""

    def __init__(self, url: str, answer):
        self.url = url
        self.answer = answer

    def handle_request(self, request):
        return self.answer(request)


def wsgi_app(*routes: tuple[str, Route]):
    from werkzeug.routing import Map, Rule

    from services.gateway.http import JsonWsgiApp
    rules = [Rule(route.url, methods=[method], endpoint=route) for method, route in routes]
    return JsonWsgiApp(SimpleNamespace(make_url_map=lambda: Map(rules)))


def test_a_remembered_route_gives_each_request_its_own_path_values():
    from werkzeug.test import Client

    from services.gateway.http import json_response

    def echo(request):
        values = dict(request.path_values)
        request.path_values["campaign_id"] = "changed by the handler"
        return json_response(values, 201)

    client = Client(wsgi_app(("POST", Route("/campaigns/<campaign_id>/donations", echo))))
    for campaign in ("c1", "c2", "c1", "c1"):
        answer = client.post(f"/campaigns/{campaign}/donations")
        assert (answer.status_code, answer.get_json()) == (201, {"campaign_id": campaign})
    missing = client.post("/campaigns/c1/nothing")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong = client.get("/campaigns/c1/donations")
    assert wrong.status_code == 405 and wrong.get_json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("made_by", ["error_response", "json_response"])
def test_an_error_carries_its_request_id_in_the_header_and_once_in_the_body(made_by):
    from werkzeug.test import Client

    from services.gateway.http import error_payload, json_response

    def refuse(request):
        if made_by == "error_response":  # the request id is in it as it is made
            return error_response(Unavailable("The gateway is busy; try again in a moment.", {"retry_after": 1}))
        return json_response(error_payload("unavailable", "Not every part answers yet."), 503)  # stamped after

    client = Client(wsgi_app(("POST", Route("/gifts", refuse))))
    answer = client.post("/gifts", headers={"X-Request-Id": "trace-1234abcd"})
    body = json.loads(answer.get_data())
    assert answer.status_code == 503 and answer.headers["X-Request-Id"] == "trace-1234abcd"
    assert body["error"]["request_id"] == "trace-1234abcd" and body["error"]["code"] == "unavailable"
    assert answer.get_data().count(b"request_id") == 1
