"""The services' logs as an on-call person reads them (docs/logs.md): JSON
lines, one request followed by its X-Request-Id from the gateway through RPC
and events into the consumers' lines, an expected refusal one line per
process without a traceback, and no personal data in any line.

The stack logs at DEBUG here, so that nameko's own lines of each worker
("calling handler for <WorkerContext [donations.record_donation] ...>") show
which request id each worker ran under; an operator's INFO is a subset."""
import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from urllib.parse import quote

import pytest
import requests

from services.ops.stack import SERVICES
from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, login, new_key, open_case, running_stack
from tests.e2e.test_donations import donated, new_campaign

WORKER = re.compile(r"<WorkerContext \[(?P<entrypoint>[\w.]+)\] at (?P<address>0x[0-9a-f]+)>")


@pytest.fixture(scope="module")
def stack(module_vhost, tmp_path_factory):
    with running_stack(module_vhost, tmp_path_factory.mktemp("logs") / "var", LINLI_LOG_LEVEL="DEBUG") as stack:
        yield stack


@pytest.fixture(scope="module")
def admin(stack):
    return login(stack.url, "admin", ADMIN_PASSWORD)


class Logs:
    """Every service log's lines written since this was made (each parsed as JSON)."""

    def __init__(self, stack, since_start: bool = False):
        self.folder = stack.var_dir / "log"
        self.start = {} if since_start else {path.name: path.stat().st_size for path in self.folder.iterdir()}

    def text(self) -> dict[str, str]:
        texts = {}
        for path in sorted(self.folder.iterdir()):
            with path.open("rb") as log:
                log.seek(self.start.get(path.name, 0))
                text = log.read().decode("utf-8", errors="replace")
            # Complete lines only: a process may be writing its next one as it is read.
            texts[path.name.removesuffix(".log")] = text[:text.rfind("\n") + 1]
        return texts

    def lines(self) -> dict[str, list[dict]]:
        """{process: its new lines}; each line must be one JSON object."""
        parsed = {}
        for process, text in self.text().items():
            parsed[process] = []
            for line in text.splitlines():
                record = json.loads(line)  # not JSON: the test fails here, showing the line
                assert isinstance(record, dict), line
                assert {"time", "level", "service", "logger", "message"} <= set(record), line
                parsed[process].append(record)
        return parsed

    def of_request(self, request_id: str) -> dict[str, list[dict]]:
        return {process: [line for line in lines if line.get("request_id") == request_id]
                for process, lines in self.lines().items()}


def handlers_run(lines: list[dict]) -> set[str]:
    """The entrypoints whose handler these lines show run to its end."""
    return {WORKER.search(line["message"])["entrypoint"] for line in lines
            if line["message"].startswith("ran handler for") and WORKER.search(line["message"])}


def test_every_line_every_service_wrote_since_it_started_is_json(stack):
    lines = Logs(stack, since_start=True).lines()
    assert sorted(lines) == sorted(f"{service}-0" for service in SERVICES)
    for process, process_lines in lines.items():
        assert process_lines, process  # each logged its start at least
        assert {line["service"] for line in process_lines} == {process.removesuffix("-0")}


def test_one_request_is_followed_by_its_id_through_rpc_and_events_into_every_service_it_reaches(stack, admin):
    campaign = new_campaign(admin, goal_fen=100)
    logs = Logs(stack)
    request_id = f"trace-{uuid.uuid4().hex[:12]}"

    # One gift reaches the goal: the gateway calls donations (RPC), whose goal_reached
    # notifications handle (an event, from the outbox), whose alert_created the gateway hears.
    answer = requests.post(f"{admin.api}/campaigns/{campaign['id']}/donations",
                           json={"kind": "cash", "amount_fen": 100, "donor_name": "王芳"},
                           headers={**admin.headers, "Idempotency-Key": new_key(), "X-Request-Id": request_id},
                           timeout=15)
    assert answer.status_code == 201, answer.text
    assert answer.headers["X-Request-Id"] == request_id

    def reached_every_service():
        ran = {process: handlers_run(lines) for process, lines in logs.of_request(request_id).items()}
        return ran if "notifications.on_goal_reached" in ran["notifications-0"] \
            and "gateway.on_alert_created" in ran["gateway-0"] else None
    ran = wait_for(reached_every_service, timeout=20, what="the request's id in every service it reached")
    assert "gateway.record_donation" in ran["gateway-0"]
    # The gateway coalesces concurrent gifts into one call_many (services/gateway/rpc.py): this
    # one went alone, and the line of the gift itself carries its id too.
    assert "donations.call_many" in ran["donations-0"]
    assert [line["message"] for line in logs.of_request(request_id)["donations-0"]
            if "record_donation" in line["message"]] == ["ran donations.record_donation in call_many"]
    # Those workers ran for this request alone: every line of theirs carries its id.
    caused = {"gateway-0": ("gateway.record_donation", "gateway.on_alert_created"),
              "donations-0": ("donations.call_many",), "notifications-0": ("notifications.on_goal_reached",)}
    for process, entrypoints in caused.items():
        theirs = [line for line in logs.lines()[process]
                  if line["message"].startswith(("calling handler", "ran handler"))
                  and WORKER.search(line["message"])["entrypoint"] in entrypoints]
        assert len(theirs) >= 2 * len(entrypoints), (process, theirs)
        assert {line.get("request_id") for line in theirs} == {request_id}, (process, theirs)
    access = [line for line in logs.of_request(request_id)["gateway-0"] if line["logger"] == "services.gateway.access"]
    assert [(line["method"], line["route"], line["status"]) for line in access] == [
        ("POST", "/api/v1/campaigns/<campaign_id>/donations", 201)]
    assert "王芳" not in "".join(logs.text().values())


def test_gifts_written_together_are_each_logged_under_their_own_request_id(stack, admin):
    """Concurrent gifts go to donations as one call_many (services/gateway/rpc.py):
    still, each gift's line there carries its own request's id, not the first one's."""
    campaign = new_campaign(admin)
    logs = Logs(stack)
    request_ids = [f"together-{uuid.uuid4().hex[:12]}" for _ in range(12)]

    def give(request_id):
        return requests.post(f"{admin.api}/campaigns/{campaign['id']}/donations",
                             json={"kind": "cash", "amount_fen": 100, "anonymous": True},
                             headers={**admin.headers, "Idempotency-Key": new_key(), "X-Request-Id": request_id},
                             timeout=15).status_code
    with ThreadPoolExecutor(len(request_ids)) as pool:
        assert list(pool.map(give, request_ids)) == [201] * len(request_ids)

    def gift_lines():
        lines = [line for line in logs.lines()["donations-0"]
                 if line["message"] == "ran donations.record_donation in call_many"]
        return lines if len(lines) >= len(request_ids) else None
    lines = wait_for(gift_lines, timeout=10, what="a line per gift in donations' log")
    assert sorted(line.get("request_id") for line in lines) == sorted(request_ids)
    rpcs = [line for line in logs.lines()["donations-0"] if line["message"].startswith("calling handler")
            and WORKER.search(line["message"])["entrypoint"] == "donations.call_many"]
    assert len(rpcs) < len(request_ids)  # they did go together


def test_a_callers_unsafe_request_id_is_replaced_by_one_of_the_gateways(stack, admin):
    for unsafe in ("x", "a" * 65, "abc def ghi", 'forged"} {"level": "ERROR'):
        answer = requests.get(f"{admin.api}/zones", headers={**admin.headers, "X-Request-Id": unsafe}, timeout=15)
        assert answer.status_code == 200
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["X-Request-Id"]), answer.headers
    assert re.fullmatch(r"[0-9a-f]{32}", requests.get(f"{admin.api}/zones", headers=admin.headers,
                                                      timeout=15).headers["X-Request-Id"])


def test_an_expected_conflict_logs_one_line_per_process_and_no_traceback(stack, admin):
    campaign = new_campaign(admin)
    donated(admin, campaign["id"], {"kind": "in_kind", "donor_name": "孙丽", "items": [
        {"category": "bedding", "quantity": 1, "description": "a quilt"}]})
    logs = Logs(stack)
    request_id = f"conflict-{uuid.uuid4().hex[:12]}"

    answer = requests.post(f"{admin.api}/campaigns/{campaign['id']}/dispatches",
                           json={"destination": "Shelter 1", "items": [{"category": "bedding", "quantity": 3}]},
                           headers={**admin.headers, "Idempotency-Key": new_key(), "X-Request-Id": request_id},
                           timeout=15)
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "conflict"
    assert answer.json()["error"]["request_id"] == request_id == answer.headers["X-Request-Id"]

    time.sleep(1)  # anything more the refusal would write
    # What an operator sees at INFO: one line in the gateway and one in donations, no other.
    seen = {process: [line for line in lines if line["level"] != "DEBUG"]
            for process, lines in logs.of_request(request_id).items()}
    assert {process: len(lines) for process, lines in seen.items() if lines} == {"gateway-0": 1, "donations-0": 1}
    (gateway,), (donations,) = seen["gateway-0"], seen["donations-0"]
    assert (gateway["level"], gateway["status"], gateway["code"], gateway["route"]) == (
        "INFO", 409, "conflict", "/api/v1/campaigns/<campaign_id>/dispatches")
    assert (donations["level"], donations["status"], donations["code"], donations["entrypoint"], donations["error"]) \
        == ("WARNING", 409, "conflict", "donations.dispatch", "Conflict")
    assert "Traceback" not in "".join(logs.text().values())
    assert not any("traceback" in line for lines in logs.lines().values() for line in lines)


def test_concurrent_requests_each_keep_their_own_id(stack, admin):
    """Each nameko worker is a green thread of its own: twenty requests at once,
    each worker's lines carry its own request's id and no other's."""
    campaign = new_campaign(admin)
    logs = Logs(stack)
    sent = [f"concurrent-{index:02d}-{uuid.uuid4().hex[:8]}" for index in range(20)]

    def read(request_id):
        return requests.get(f"{admin.api}/campaigns/{campaign['id']}",
                            headers={**admin.headers, "X-Request-Id": request_id}, timeout=15)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(read, sent))
    assert [answer.status_code for answer in answers] == [200] * 20
    assert [answer.headers["X-Request-Id"] for answer in answers] == sent

    for process, entrypoint in (("gateway-0", "gateway.get_campaign"), ("donations-0", "donations.get_campaign")):
        ids_of_worker: dict[str, set] = {}
        for line in logs.lines()[process]:
            worker = WORKER.search(line["message"])
            if worker and worker["entrypoint"] == entrypoint and line["message"].startswith(
                    ("calling handler", "ran handler")):
                ids_of_worker.setdefault(worker["address"], set()).add(line.get("request_id"))
        # Worker addresses may be reused once a worker is gone, so count ids, not addresses.
        seen = [request_id for ids in ids_of_worker.values() for request_id in ids]
        assert sorted(seen) == sorted(sent), (process, ids_of_worker)


def test_personal_data_stays_out_of_every_services_log(stack, admin):
    logs = Logs(stack)
    member = {"username": f"m{uuid.uuid4().hex[:8]}", "password": "member-password", "name": "赵秀兰",
              "phone": "139 8765 4321", "roles": ["member"], "party_member": True, "compound": "Xingfu Garden"}
    created = admin.post("/members", member)
    assert created.status_code == 201, created.text
    case = open_case(admin, created.json()["id"], summary="Lives alone since the flood; asks for a carer.")
    notes = "Spoke with 李秀英 at the door of Building 3, Unit 2, Room 401; her son's medication ran out."
    visit = admin.post(f"/cases/{case['id']}/visits", {"visited_on": date.today().isoformat(), "notes": notes})
    assert visit.status_code == 201, visit.text
    # A refusal that quotes nothing it was sent, though the body held personal data.
    refused = admin.post("/households", {"compound": "Xingfu Garden", "address": "Building 9, Room 101",
                                         "people": [{"name": "钱多多", "relation": "self", "birth_year": 1800}]})
    assert refused.status_code == 400, refused.text
    # A member search by name: the query's values are never logged.
    assert admin.get("/members", params={"q": "赵秀兰"}).status_code == 200
    time.sleep(2)  # the events those writes caused are handled

    lines = logs.lines()  # every line JSON
    assert sum(len(process_lines) for process_lines in lines.values()) > 20  # the logs were written, and read
    text = "".join(logs.text().values())
    for personal in ("赵秀兰", "139 8765 4321", "13987654321", "李秀英", "李强", "Room 401", "Building 3",
                     "severe mental illness", "Lives alone since the flood", "medication ran out",
                     "钱多多", "Building 9"):
        assert personal not in text, personal
    # JSON escapes non-ASCII text (\uXXXX): the names must not hide there either.
    for name in ("赵秀兰", "李秀英", "钱多多"):
        assert json.dumps(name).strip('"') not in text, name
        assert quote(name) not in text and quote(name).lower() not in text, name  # nor URL-encoded
