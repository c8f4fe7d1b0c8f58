"""Several instances of each service, as `linli up --scale` runs them: under
load, a donations instance is added, one is stopped (scaled down) and a
welfare instance is killed. Nothing acknowledged is lost or counted twice,
each case alerts its assignee once, and every event is published once."""
import json
import threading
import time
import uuid
from collections import Counter

import pytest
import requests
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange

from services import contracts
from services.common import deadletters
from tests import databases
from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, HOUSEHOLD, login, query, running_stack
from tests.e2e.test_donations import new_campaign

# Minutes of broker restarts, alarms, TLS nodes, killed instances or fuzzing: `make test-slow`.
pytestmark = pytest.mark.slow

SCALE = {"donations": 2, "welfare": 2, "notifications": 2, "patrol": 2, "gateway": 2}
LOAD_SECONDS = 24
AUDIT_QUEUE = "scale-out-audit"  # a copy of every event, to count publishes
PUBLISHERS = ("donations", "welfare", "notifications")


class Desk(threading.Thread):
    """One client: writes with an Idempotency-Key each, sent again until acknowledged."""

    def __init__(self, base_url: str, token: str, write, stop: threading.Event):
        super().__init__(daemon=True)
        self.api = base_url + "/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.write, self.stop = write, stop
        self.acknowledged: list[dict] = []
        self.retries = 0
        self.last_refusal = None

    def send(self, path: str, body: dict) -> dict:
        key = uuid.uuid4().hex
        while True:
            try:
                answer = requests.post(self.api + path, json=body, timeout=30,
                                       headers={**self.headers, "Idempotency-Key": key})
                if answer.status_code in (200, 201):
                    return answer.json()
                assert answer.status_code in (502, 503, 504), answer.text  # a client error is a test failure
                self.last_refusal = answer.text
            except requests.ConnectionError as exc:
                self.last_refusal = repr(exc)  # the gateway is overloaded: send the same write again
            self.retries += 1
            time.sleep(0.2)

    def run(self):
        while not self.stop.is_set():
            self.acknowledged.append(self.write(self))


@pytest.fixture
def audit(module_vhost):
    """A queue bound to every event exchange: one message per publish."""
    with Connection(module_vhost.amqp_uri) as connection:
        channel = connection.channel()
        queue = Queue(AUDIT_QUEUE, durable=True, channel=channel)
        queue.declare()
        for source in PUBLISHERS:
            exchange = get_event_exchange(source, {})(channel)
            exchange.declare()
            queue.bind_to(exchange=exchange.name, routing_key="#")
        channel.close()
    yield module_vhost


def published_ids(amqp_uri: str) -> Counter:
    ids = Counter()
    with Connection(amqp_uri) as connection:
        queue = Queue(AUDIT_QUEUE, channel=connection.channel())
        while (message := queue.get(no_ack=True)) is not None:
            ids[json.loads(message.body)["id"]] += 1
    return ids


def test_instances_added_stopped_and_killed_under_load_lose_nothing_and_double_nothing(
        audit, module_vhost, tmp_path):
    with running_stack(module_vhost, tmp_path / "var", scale=SCALE, ready_timeout=120) as stack:
        base_urls = [stack.url, f"http://127.0.0.1:{stack.port + 1}"]  # the two gateway instances
        admin = login(stack.url, "admin", ADMIN_PASSWORD)
        assignee = admin.post("/members", {
            "username": "scale-assignee", "password": "member-password", "name": "张伟", "phone": "139 1234 5678",
            "roles": ["member"], "party_member": True, "compound": "Xingfu Garden"}).json()
        member = login(stack.url, "scale-assignee", "member-password")
        campaign = new_campaign(admin, goal_fen=100_000_000)

        def donation(desk):
            amount = 100 + len(desk.acknowledged)
            answer = desk.send(f"/campaigns/{campaign['id']}/donations", {"kind": "cash", "amount_fen": amount})
            return {"amount_fen": amount, "receipt_no": answer["receipt_no"]}

        def hardship_case(desk):
            household = desk.send("/households", HOUSEHOLD)
            return desk.send("/cases", {"household_id": household["id"], "categories": ["elderly"],
                                        "summary": "Minimum-living allowance.", "assignee_id": assignee["id"]})

        stop = threading.Event()
        desks = [Desk(base_urls[n % 2], admin.token, donation if n < 4 else hardship_case, stop) for n in range(6)]
        for desk in desks:
            desk.start()
        time.sleep(LOAD_SECONDS / 4)
        stack.start_process("donations", 2)        # scaled up
        time.sleep(LOAD_SECONDS / 4)
        stack.stop_process("donations", 0)         # scaled down: SIGTERM
        time.sleep(LOAD_SECONDS / 4)
        stack.kill("welfare", 1)                   # crashed: SIGKILL
        time.sleep(LOAD_SECONDS / 4)
        stop.set()
        for desk in desks:
            desk.join(timeout=60)
        assert not any(desk.is_alive() for desk in desks), [
            (desk.api, desk.retries, desk.last_refusal) for desk in desks if desk.is_alive()]

        gifts = [gift for desk in desks[:4] for gift in desk.acknowledged]
        cases = [case["id"] for desk in desks[4:] for case in desk.acknowledged]
        assert len(gifts) > 50 and len(cases) > 10, (len(gifts), len(cases))

        # Every acknowledged donation is stored once, with gap-free receipts, and counted once.
        stored = query(stack, "donations", "SELECT receipt_no, amount_fen FROM donations WHERE campaign_id = ?",
                       campaign["id"])
        assert sorted(stored) == sorted((gift["receipt_no"], gift["amount_fen"]) for gift in gifts)
        seqs = sorted(int(receipt.rsplit("-", 1)[1]) for receipt, _ in stored)
        assert seqs == list(range(1, len(gifts) + 1))
        totals = admin.get(f"/campaigns/{campaign['id']}").json()["totals"]
        assert totals["cash_fen"] == sum(gift["amount_fen"] for gift in gifts)
        assert totals["donations"] == len(gifts)

        # Every outbox row published, and (where rows can be locked) published once.
        def unsent():
            return sum(query(stack, service, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")[0][0]
                       for service in PUBLISHERS)
        wait_for(lambda: unsent() == 0, timeout=60, what="the outboxes emptied")

        # Each case alerts its assignee exactly once.
        def alerts():
            found, cursor = [], None
            while True:
                page = member.get("/me/alerts", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
                found += [alert["ref"]["id"] for alert in page["items"] if alert["kind"] == "case_assigned"]
                if not (cursor := page["next_cursor"]):
                    return found
        wait_for(lambda: len(alerts()) >= len(cases), timeout=60,
                 what=f"an alert per case ({len(alerts())} of {len(cases)}; "
                      f"dead letters: {deadletters.list_dead_letters(module_vhost.amqp_uri, contracts.SUBSCRIPTIONS)})")
        assert Counter(alerts()) == Counter(cases)

        outbox = Counter(row[0] for service in PUBLISHERS for row in query(stack, service, "SELECT id FROM outbox"))
        # The last confirmed publishes reach the audit queue.
        published = Counter()

        def all_published():  # each read takes what the audit queue holds
            published.update(published_ids(module_vhost.amqp_uri))
            return set(published) == set(outbox)
        wait_for(all_published, timeout=10, interval=0.5, what="every outbox row in the audit queue")
        if databases.on_postgres():
            # Relays claim rows with FOR UPDATE SKIP LOCKED, so instances never publish a row
            # twice, but for what the killed one had published and not yet marked (at most one
            # batch per worker): another instance sends that again, and consumers drop the copy.
            # SQLite has no row locks: there, two relays can both take a row left behind.
            doubled = Counter(source for service in PUBLISHERS for event_id, times in published.items()
                              if times > 1 for (source,) in query(stack, service,
                                                                  "SELECT source FROM outbox WHERE id = ?", event_id))
            assert set(doubled) <= {"welfare"} and doubled["welfare"] <= 10, doubled
        assert stack.alive() == {name: True for name in stack.alive()}, "an instance exited by itself"
