"""The services' log lines (services/common/logs.py, docs/logs.md): one JSON
object per line with the fields an on-call person filters on; the request id
of the worker that wrote it, never another green thread's; the id carried on
by RPC (nameko's context headers) and events (the outbox row); an expected
refusal one line with no traceback, an unexpected error its traceback."""
import io
import json
import logging
import logging.config
import re
from datetime import datetime
from types import SimpleNamespace

import eventlet
import pytest
from nameko.containers import WorkerContext
from nameko.messaging import HeaderEncoder
from nameko.web.handlers import HttpRequestHandler
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.common import config as linli_config
from services.common import logs
from services.common.errors import Conflict
from services.common.service import EXPECTED_ERRORS  # noqa: F401 -- installs the filter on nameko.containers
from services.gateway.http import JsonWebServer, _log_access
from tests.unit.test_donations_service import ADMIN, campaign_payload


@pytest.fixture
def lines():
    """A logger `test.logs` writing through the service's shipped LOGGING
    formatter (deploy/config/donations.yml) into a list of parsed lines."""
    formatter_config = linli_config.load("donations")["LOGGING"]["formatters"]["json"]
    formatter = logging.config.DictConfigurator({}).configure_custom(dict(formatter_config))
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    containers = logging.getLogger("nameko.containers")
    containers.addHandler(handler)
    logs.bind_request_id(None)  # a test before may have left one (JsonWsgiApp binds its caller's)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    containers.removeHandler(handler)
    logs.bind_request_id(None)


def test_a_line_is_one_json_object_with_utc_time_level_service_logger_and_message(lines):
    logging.getLogger("test.logs").info("published %d event(s)\nsecond line", 3)
    (line,) = lines()
    assert set(line) == {"time", "level", "service", "logger", "message"}  # no request id: none is current
    assert (line["level"], line["service"], line["logger"], line["message"]) == (
        "INFO", "donations", "test.logs", "published 3 event(s)\nsecond line")
    assert line["time"].endswith("Z") and datetime.fromisoformat(line["time"]).utcoffset().total_seconds() == 0


def test_a_record_gathers_nothing_a_line_does_not_show(lines):
    """services/common/runtime.py: for a record, the caller's file, line and
    function, the thread and the process are not looked up (no line shows
    them); the line still holds every field it shows (the test above)."""
    records = []
    keep = logging.Handler()
    keep.emit = records.append
    logger = logging.getLogger("test.logs")
    logger.addHandler(keep)
    try:
        logger.info("ran %s", "donations.record_donation")
    finally:
        logger.removeHandler(keep)
    (record,) = records
    assert (record.funcName, record.lineno, record.thread, record.process) == ("(unknown function)", 0, None, None)
    assert lines()[0]["message"] == "ran donations.record_donation"


def test_a_line_carries_the_current_request_id_and_the_fields_given_to_it(lines):
    logs.bind_request_id("req-0123456789")
    logging.getLogger("test.logs").warning("refused", extra={"status": 409, "code": "conflict"})
    (line,) = lines()
    assert (line["request_id"], line["status"], line["code"]) == ("req-0123456789", 409, "conflict")


def test_an_unexpected_error_keeps_its_type_and_its_traceback(lines):
    try:
        {}["missing"]
    except KeyError:
        logging.getLogger("test.logs").exception("error handling worker")
    (line,) = lines()
    assert line["error"] == "KeyError"
    assert line["traceback"].startswith("Traceback (most recent call last)")


@pytest.mark.parametrize("sent", ["0f8fad5b-d9cb-469f-a165-70867728950e", "trace-1234abcd", "abcdefgh"])
def test_a_callers_request_id_is_taken_when_it_is_a_short_safe_token(sent):
    assert logs.request_id_from(sent) == sent


@pytest.mark.parametrize("sent", [None, "", "short", "a" * 65, "two words here", "-leading-dash",
                                  'x"} {"level": "ERROR"', "line\nbreak-here", "名字名字名字名字名字"])
def test_any_other_request_id_is_replaced_by_a_new_one(sent):
    made = logs.request_id_from(sent)
    assert made != sent and re.fullmatch(r"[0-9a-f]{32}", made)
    assert logs.request_id_from(sent) != made  # a new one each time


def worker_ctx(service: str, method: str, entrypoint=None, data=None):
    container = SimpleNamespace(config={}, service_name=service)
    entrypoint = entrypoint or SimpleNamespace(method_name=method)
    return WorkerContext(container, None, entrypoint, data=data)


def nameko_logs_a_worker_error(ctx, exc: Exception, expected: bool):
    """What nameko's ServiceContainer._run_worker logs when a worker raises."""
    log = logging.getLogger("nameko.containers")
    try:
        raise exc
    except Exception:
        if expected:
            log.warning("(expected) error handling worker %s: %s", ctx, exc, exc_info=True)
        else:
            log.exception("error handling worker %s: %s", ctx, exc)


def test_an_expected_refusal_is_one_line_with_status_code_and_entrypoint_and_no_traceback(lines):
    logs.bind_request_id("req-0123456789")
    nameko_logs_a_worker_error(worker_ctx("donations", "dispatch"),
                               Conflict("Not that much in stock: 3 asked by 李明.", {}), expected=True)
    (line,) = lines()
    assert line["message"] == "refused donations.dispatch: 409 conflict"  # the refusal's text may quote the caller
    assert (line["level"], line["status"], line["code"], line["entrypoint"], line["error"], line["request_id"]) == (
        "WARNING", 409, "conflict", "donations.dispatch", "Conflict", "req-0123456789")
    assert "traceback" not in line and "李明" not in json.dumps(line, ensure_ascii=False)


def test_an_unexpected_error_in_a_service_still_logs_its_traceback_once(lines):
    nameko_logs_a_worker_error(worker_ctx("donations", "dispatch"), RuntimeError("a fault of ours"), expected=False)
    (line,) = lines()
    assert line["level"] == "ERROR" and line["error"] == "RuntimeError"
    assert "Traceback" in line["traceback"] and "a fault of ours" in line["traceback"]


def test_the_gateways_http_workers_leave_their_errors_to_its_access_line_and_error_mapping(lines):
    route = HttpRequestHandler("POST", "/api/v1/campaigns/<campaign_id>/dispatches")
    nameko_logs_a_worker_error(worker_ctx("gateway", "dispatch_goods", route), Conflict("no"), expected=True)
    nameko_logs_a_worker_error(worker_ctx("gateway", "dispatch_goods", route), RuntimeError("x"), expected=False)
    assert lines() == []


def test_a_workers_request_id_goes_on_with_its_rpc_calls_as_nameko_sends_context():
    request = SimpleNamespace(request_id="req-0123456789")
    context = JsonWebServer().context_data_from_headers(request)  # the gateway's HTTP worker
    headers = HeaderEncoder().get_message_headers(worker_ctx("gateway", "dispatch_goods", data=context))
    assert headers[logs.AMQP_HEADER] == "req-0123456789"


def test_each_green_thread_logs_its_own_workers_request_id_under_concurrency(lines):
    """nameko runs each worker in a green thread of its own; they interleave at
    every wait. Each line must carry its own worker's id, never another's."""
    provider = logs.RequestIds()

    def work(index):
        ctx = worker_ctx("donations", "get_campaign", data={logs.REQUEST_ID_KEY: f"req-{index:010d}"})
        provider.worker_setup(ctx)
        for step in range(3):
            eventlet.sleep(0.001 * ((index * 7 + step) % 5))  # the others run meanwhile
            logging.getLogger("test.logs").info("worker %d step %d", index, step)
        provider.worker_teardown(ctx)
        logging.getLogger("test.logs").info("worker %d done", index)

    pool = eventlet.GreenPool(50)
    for index in range(50):
        pool.spawn(work, index)
    pool.waitall()

    written = lines()
    assert len(written) == 200
    for line in written:
        index = int(line["message"].split()[1])
        if line["message"].endswith("done"):
            assert "request_id" not in line  # torn down: the next work of this thread is not this request's
        else:
            assert line["request_id"] == f"req-{index:010d}", line


@pytest.mark.parametrize("sent", ["x" * 65, "two words here", 12345, ""])
def test_a_worker_takes_no_request_id_from_a_header_the_gateway_would_not_have_made(lines, sent):
    logs.RequestIds().worker_setup(worker_ctx("welfare", "on_items_dispatched", data={logs.REQUEST_ID_KEY: sent}))
    assert logs.current_request_id() is None


def test_an_event_written_by_a_worker_keeps_its_request_id_in_the_outbox(donations, donations_db):
    logs.bind_request_id("req-0123456789")
    try:
        donations().create_campaign(campaign_payload(), ADMIN)
    finally:
        logs.bind_request_id(None)
    donations().create_campaign(campaign_payload(name="Winter coats"), ADMIN)
    assert [row["request_id"] for row in donations_db.outbox("campaign_created")] == ["req-0123456789", None]


def test_the_shipped_logging_config_of_every_service_writes_json_lines_named_for_it():
    for service in ("gateway", "patrol", "donations", "welfare", "notifications", "volunteers"):
        logging_config = linli_config.load(service)["LOGGING"]
        formatter = logging_config["formatters"][logging_config["handlers"]["console"]["formatter"]]
        assert formatter["()"] == "services.common.logs.JsonLines" and formatter["service"] == service



def test_the_gateways_access_line_names_the_route_status_and_code_and_no_query_value(caplog):
    request = Request(EnvironBuilder(method="GET", path="/api/v1/members",
                                     query_string="q=%E8%B5%B5%E7%A7%80%E5%85%B0&limit=5").get_environ())
    with caplog.at_level(logging.INFO, logger="services.gateway.access"):
        _log_access(request, "/api/v1/members", 403, "forbidden", 0.0123)
    (record,) = caplog.records
    assert record.getMessage() == "GET /api/v1/members?q=[redacted]&limit=[redacted] 403 forbidden"
    assert (record.route, record.status, record.code, record.duration_ms) == ("/api/v1/members", 403, "forbidden", 12.3)
