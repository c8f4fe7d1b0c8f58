"""Mixed writes through the gateway from several clients for ~90 s while the
broker is restarted, every service is SIGKILLed and started again in turn, and
two databases are held locked. Clients retry what failed with the same
Idempotency-Key, as the README tells them to. Afterwards every acknowledged
write is stored once, every event of every committed write was handled once
by every consumer, every alert exists once, and no message is left in any
queue or dead-letter queue. The counts go to var/fault-report.json."""
import json
import random
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
import requests

from services.common import events
from services.contracts import SUBSCRIPTIONS
from services.notifications import domain as alerts
from services.ops.stack import SERVICES
from tests.conftest import wait_for
from tests.e2e.conftest import ADMIN_PASSWORD, HOUSEHOLD, login, query
from tests.e2e.test_donations import local_today
from tests.fault.conftest import Counters, consumed, fault_stack, hold_locked, save_report

pytestmark = pytest.mark.fault

LOAD_SECONDS = 90
RETRY_FOR_SECONDS = 120      # how long a client keeps retrying one write
GOAL_FEN = 60_000            # reached after a few dozen donations: goal_reached once
HTTP_TIMEOUT = 20


class Writes:
    """What the clients sent and what they were told."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attempts = Counter()          # (kind, status or error) -> HTTP requests
        self.acked: dict[str, list] = {"donation": [], "household": [], "case": [], "incident": []}
        self.given_up: list = []
        self.timeline: list = []           # (sent, answered, kind, status or error): monotonic seconds
        self.refused: list = []            # a 4xx: a bug in the test or the stack

    def send(self, kind: str, client, path: str, body: dict, stop_at: float):
        """One logical write: try until a 2xx, with the same key each time."""
        key = uuid.uuid4().hex
        while True:
            sent = time.monotonic()
            try:
                answer = post(client, path, body, key)
                outcome = answer.status_code
            except requests.RequestException as exc:
                answer, outcome = None, type(exc).__name__
            with self.lock:
                self.attempts[(kind, str(outcome))] += 1
                self.timeline.append((sent, time.monotonic(), kind, str(outcome)))
            if answer is not None and 200 <= answer.status_code < 300:
                return answer.json()
            if answer is not None and 400 <= answer.status_code < 500 and answer.status_code != 429:
                with self.lock:
                    self.refused.append((kind, answer.status_code, answer.text[:300]))
                return None
            if time.monotonic() > stop_at:
                with self.lock:
                    self.given_up.append((kind, str(outcome)))
                return None
            time.sleep(0.5)

    def ack(self, kind: str, record):
        with self.lock:
            self.acked[kind].append(record)


def post(client, path: str, body: dict, key: str):
    headers = dict(client.headers, **{"Idempotency-Key": key})
    return requests.post(client.api + path, json=body, headers=headers, timeout=HTTP_TIMEOUT)


def donor(client, campaign_id: str, writes: Writes, stop: threading.Event):
    while not stop.is_set():
        amount = random.randint(100, 5_000)
        answer = writes.send("donation", client, f"/campaigns/{campaign_id}/donations",
                             {"kind": "cash", "amount_fen": amount}, time.monotonic() + RETRY_FOR_SECONDS)
        if answer:
            assert answer["amount_fen"] == amount
            writes.ack("donation", {"receipt_no": answer["receipt_no"], "amount_fen": amount})


def case_opener(client, assignee_id: str, writes: Writes, stop: threading.Event):
    while not stop.is_set():
        stop_at = time.monotonic() + RETRY_FOR_SECONDS
        household = writes.send("household", client, "/households", HOUSEHOLD, stop_at)
        if not household:
            continue
        writes.ack("household", household["id"])
        body = {"household_id": household["id"], "categories": ["elderly"], "assignee_id": assignee_id,
                "summary": "Minimum-living allowance."}
        case = writes.send("case", client, "/cases", body, stop_at)
        if case:
            writes.ack("case", case["id"])


def reporter(client, zone: dict, writes: Writes, stop: threading.Event):
    while not stop.is_set():
        severity = random.choice(["low", "medium", "medium", "high"])
        category = random.choice(["fire_hazard", "dispute", "stranger", "hardship"])
        body = {"zone_id": zone["id"], "compound": random.choice(zone["compounds"]), "category": category,
                "description": "Bicycles charging in the stairwell.", "severity": severity}
        incident = writes.send("incident", client, "/incidents", body, time.monotonic() + RETRY_FOR_SECONDS)
        if incident:
            writes.ack("incident", {"id": incident["id"], "severity": severity, "category": category})


def faults(stack, node, counters: Counters, log: list, stop: threading.Event):
    """The faults, one after another, while the clients write."""
    def note(what, started):
        log.append({"fault": what, "at_s": round(started - t0, 1), "took_s": round(time.monotonic() - started, 1)})

    t0 = time.monotonic()
    time.sleep(8)
    started = time.monotonic()
    node.restart()                                # the broker goes away and comes back
    note("rabbitmq node stopped and started", started)
    time.sleep(6)
    for service in SERVICES:                      # SIGKILL each service, start it again
        started = time.monotonic()
        if service != "gateway":
            counters.bank(stack, service)
        stack.kill(service)
        time.sleep(2)
        stack.start_process(service)
        note(f"{service} SIGKILLed, restarted after 2 s", started)
        time.sleep(6)
    for service, seconds in (("notifications", 8), ("donations", 7)):
        started = time.monotonic()
        hold_locked(stack, service, seconds)      # its writers wait, or fail and retry
        note(f"{service}.db held locked (BEGIN EXCLUSIVE) {seconds} s", started)
        time.sleep(3)
    started = time.monotonic()
    node.restart_app()                            # a second, shorter outage
    note("rabbitmq app stop_app/start_app", started)
    stop.wait(max(0, LOAD_SECONDS - (time.monotonic() - t0)))


def watchdog(stack, exits: list, stop: threading.Event):
    """What a supervisor (systemd, Kubernetes) would do: start again a process
    that exited by itself. Each such exit is noted; the test fails on it at the end."""
    while not stop.is_set():
        for (service, index), process in list(stack.processes.items()):
            if process.poll() is not None and stack.processes.get((service, index)) is process:
                tail = [line for line in stack.log_tail(service, index, lines=400).splitlines()
                        if "CRITICAL" in line or "Error:" in line or "Error" in line[:40]]
                exits.append({"service": service, "returncode": process.returncode,
                              "at": time.strftime("%H:%M:%S"), "log": tail[-3:]})
                stack.processes.pop((service, index))
                stack.start_process(service, index)
        stop.wait(1)


def outbox_events(stack, service: str, event_type: str) -> dict[str, dict]:
    rows = query(stack, service, "SELECT id, envelope FROM outbox WHERE event_type = ?", event_type)
    return {row_id: json.loads(envelope)["data"] for row_id, envelope in rows}


def handled(stack, consumer_service: str, handler: str) -> list[str]:
    return [row[0] for row in query(stack, consumer_service,
                                    "SELECT event_id FROM processed_events WHERE consumer = ?",
                                    f"{consumer_service}.{handler}")]


def community(admin):
    """A party member for cases, a zone with its leader for incidents, a running campaign for donations:
    (admin id, member id, leader id, zone, campaign id)."""
    admin_id = admin.get("/me").json()["id"]
    member = admin.post("/members", {"username": "wangfang", "password": "member-password", "name": "王芳",
                                     "roles": ["member"], "party_member": True})
    leader = admin.post("/members", {"username": "zhao.east", "password": "member-password", "name": "赵",
                                     "roles": ["member"], "party_member": True})
    assert member.status_code == leader.status_code == 201
    member_id, leader_id = member.json()["id"], leader.json()["id"]
    zone = admin.post("/zones", {"name": "East", "compounds": ["Xingfu Garden", "Heping Court"]})
    assert zone.status_code == 201, zone.text
    zone = zone.json()
    team = requests.put(f"{admin.api}/zones/{zone['id']}/team", headers=admin.headers, timeout=15,
                        json={"leader_id": leader_id, "member_ids": []})
    assert team.status_code == 200, team.text
    today = local_today()
    campaign = admin.post("/campaigns", {"name": "Earthquake relief", "goal_fen": GOAL_FEN,
                                         "starts_on": (today - timedelta(days=1)).isoformat(),
                                         "ends_on": (today + timedelta(days=1)).isoformat()})
    assert campaign.status_code == 201, campaign.text
    return admin_id, member_id, leader_id, zone, campaign.json()["id"]


def writing_clients(admin, member_id, zone, campaign_id, writes, stop) -> list[threading.Thread]:
    """The four clients that write until `stop`: two donors, a case opener, an incident reporter."""
    clients = [threading.Thread(target=donor, args=(admin, campaign_id, writes, stop)) for _ in range(2)]
    return clients + [threading.Thread(target=case_opener, args=(admin, member_id, writes, stop)),
                      threading.Thread(target=reporter, args=(admin, zone, writes, stop))]


def test_writes_and_events_survive_broker_restarts_killed_services_and_locked_databases(node, tmp_path_factory):
    var = tmp_path_factory.mktemp("fault-load") / "var"
    with fault_stack(node, var, LINLI_RPC_TIMEOUT="5") as stack:
        admin = login(stack.url, "admin", ADMIN_PASSWORD)
        admin_id, member_id, leader_id, zone, campaign_id = community(admin)

        writes, counters, fault_log, stop = Writes(), Counters(), [], threading.Event()
        clients = writing_clients(admin, member_id, zone, campaign_id, writes, stop)
        injector = threading.Thread(target=faults, args=(stack, node, counters, fault_log, stop))
        exits, watching = [], threading.Event()
        guard = threading.Thread(target=watchdog, args=(stack, exits, watching))
        started = time.monotonic()
        for thread in clients + [injector, guard]:
            thread.start()
        try:
            injector.join(timeout=LOAD_SECONDS + 120)
            assert not injector.is_alive(), "the fault injector hung"
            stop.set()
            for thread in clients:
                thread.join(timeout=RETRY_FOR_SECONDS + 30)
            load_seconds = time.monotonic() - started
            assert not [t for t in clients if t.is_alive()], "a client hung"
            check_everything(stack, node, admin, writes, counters, fault_log, exits, watching, guard,
                             load_seconds, ids=(admin_id, member_id, leader_id, campaign_id))
        except BaseException:
            save_report("fault-report.json", {
                "result": "FAILED (see the test's output); counts as far as they go",
                "load_seconds": round(time.monotonic() - started, 1), "faults": fault_log,
                "processes_that_exited_by_themselves": exits, "queues_at_the_end": node.queues(),
                "writes": {kind: {"logical_writes_acked": len(writes.acked[kind]),
                                  "http_outcomes": {o: n for (k, o), n in sorted(writes.attempts.items())
                                                    if k == kind}} for kind in writes.acked}})
            raise
        finally:
            # Before the stack stops: the watchdog would start again what stopping ends.
            stop.set()
            watching.set()
            guard.join(timeout=10)


def check_everything(stack, node, admin, writes, counters, fault_log, exits, watching, guard, load_seconds, ids,
                     report_name: str = "fault-report.json", figures: dict | None = None):
    """`node`: a BrokerNode or a BrokerCluster (its queues()); `figures` go into the report as they are."""
    admin_id, member_id, leader_id, campaign_id = ids
    assert not writes.refused, writes.refused       # no 4xx for a valid write, retried or not
    assert not writes.given_up, writes.given_up     # every write went through in the end

    # -- settle: every outbox row sent, every queue empty ------------------------------
    def unsent():
        return {service: query(stack, service, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")[0][0]
                for service in SERVICES}
    wait_for(lambda: not any(unsent().values()), timeout=60, interval=1, what="every outbox row published")
    watching.set()
    guard.join(timeout=10)
    assert all(stack.alive().values()), stack.alive()

    def busy_queues():
        # A reply queue of a gateway that was killed holds answers no one waits for any more: not work.
        return {name: q for name, q in node.queues().items()
                if (q["messages"] or q["messages_unacknowledged"]) and not name.startswith("rpc.reply-")}
    deadline = time.monotonic() + 90
    while busy_queues() and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(2)                                   # a handler's commit after its ack
    queues = node.queues()
    assert not busy_queues(), busy_queues()
    dead_letters = {name: q["messages"] for name, q in queues.items() if name.endswith(".dlq")}
    assert sorted(dead_letters) == sorted(events.dead_letter_queue_name(events.queue_name(s))
                                          for s in SUBSCRIPTIONS)
    assert not any(dead_letters.values()), dead_letters

    # -- every acknowledged write is stored, once --------------------------------------
    donations = query(stack, "donations", "SELECT receipt_no, amount_fen, seq FROM donations "
                      "WHERE campaign_id = ?", campaign_id)
    acked_donations = {d["receipt_no"]: d["amount_fen"] for d in writes.acked["donation"]}
    assert len(acked_donations) == len(writes.acked["donation"])   # no two keys got one receipt
    assert {r: a for r, a, _ in donations} == acked_donations      # nothing lost, nothing extra
    assert sorted(seq for _, _, seq in donations) == list(range(1, len(donations) + 1))
    cash, count, reached = query(stack, "donations", "SELECT cash_fen, donation_count, goal_reached_at "
                                 "FROM campaigns WHERE id = ?", campaign_id)[0]
    assert (cash, count) == (sum(acked_donations.values()), len(acked_donations))
    answer = admin.get(f"/campaigns/{campaign_id}").json()["totals"]
    assert (answer["cash_fen"], answer["donations"]) == (cash, count)

    cases = query(stack, "welfare", "SELECT id FROM cases WHERE assignee_id = ?", member_id)
    assert sorted(c for (c,) in cases) == sorted(writes.acked["case"])
    households = query(stack, "welfare", "SELECT id FROM households")
    assert sorted(h for (h,) in households) == sorted(writes.acked["household"])
    incidents = {i["id"]: i for i in writes.acked["incident"]}
    assert len(incidents) == len(writes.acked["incident"])
    assert sorted(i for (i,) in query(stack, "patrol", "SELECT id FROM incidents")) == sorted(incidents)

    # -- every event of every committed write handled once by every consumer -----------
    case_opened = outbox_events(stack, "welfare", "case_opened")
    assert sorted(e["case_id"] for e in case_opened.values()) == sorted(writes.acked["case"])
    reported = outbox_events(stack, "patrol", "incident_reported")
    assert sorted(e["incident_id"] for e in reported.values()) == sorted(incidents)
    drafted = outbox_events(stack, "welfare", "case_drafted")
    hardship = {e_id for e_id, e in reported.items() if e["category"] == "hardship"}
    assert sorted(e["incident_id"] for e in drafted.values()) == \
        sorted(reported[e]["incident_id"] for e in hardship)
    goal = outbox_events(stack, "donations", "goal_reached")
    assert len(goal) == (1 if reached else 0) and (reached is not None) == (cash >= GOAL_FEN)
    registered = outbox_events(stack, "gateway", "member_registered")

    expected = {  # (consumer service, handler): the events it must have handled
        ("notifications", "on_case_opened"): set(case_opened),
        ("notifications", "on_incident_reported"): set(reported),
        ("welfare", "on_incident_reported"): hardship,   # it records only what it acts on
        ("notifications", "on_case_drafted"): set(drafted),
        ("notifications", "on_goal_reached"): set(goal),
        ("notifications", "on_member_registered"): set(registered),
    }
    handled_rows = {}
    for (service, handler), event_ids in expected.items():
        rows = handled(stack, service, handler)
        handled_rows[f"{service}.{handler}"] = len(rows)
        assert len(rows) == len(set(rows))
        assert set(rows) == event_ids, (service, handler, len(rows), len(event_ids))

    # -- what the people see: each alert once --------------------------------------------
    rows = query(stack, "notifications", "SELECT member_id, kind, ref_id FROM alerts")
    per_alert = Counter(rows)
    assert [alert for alert, n in per_alert.items() if n > 1] == []
    high = {i for i, incident in incidents.items() if incident["severity"] == "high"}
    draft_cases = {e["case_id"] for e in drafted.values()}
    assert set(per_alert) == (
        {(member_id, alerts.CASE_ASSIGNED, case) for case in writes.acked["case"]}
        | {(leader_id, alerts.INCIDENT_REPORTED, i) for i in incidents}
        | {(admin_id, alerts.INCIDENT_HIGH_SEVERITY, i) for i in high}
        | {(admin_id, alerts.CASE_DRAFTED, case) for case in draft_cases}
        | ({(admin_id, alerts.GOAL_REACHED, campaign_id)} if reached else set()))
    assert len(admin.get("/me/alerts", params={"limit": 1}).json()["items"]) == 1

    # -- the report ----------------------------------------------------------------------
    totals = counters.total(stack)
    deliveries = {}
    for sub in SUBSCRIPTIONS:
        queue = events.queue_name(sub)
        ok, failed = consumed(totals, queue, "ok"), consumed(totals, queue, "failed")
        dead = consumed(totals, queue, "dead_lettered")
        distinct = len(outbox_events(stack, sub.source, sub.event_type))
        if ok or failed or distinct:
            deliveries[queue] = {"events": distinct, "deliveries_ok": ok, "deliveries_failed": failed,
                                 "dead_lettered": dead, "duplicates_suppressed": max(0, ok - distinct)}
    outbox_rows = {service: query(stack, service, "SELECT COUNT(*) FROM outbox")[0][0] for service in SERVICES}
    publishes = sum(v for k, v in totals.items() if k[0] == "linli_events_published")
    report = {
        "load_seconds": round(load_seconds, 1),
        "faults": fault_log,
        "writes": {kind: {
            "logical_writes_acked": len(writes.acked[kind]),
            "http_requests": sum(n for (k, _), n in writes.attempts.items() if k == kind),
            "http_outcomes": {o: n for (k, o), n in sorted(writes.attempts.items()) if k == kind},
        } for kind in writes.acked},
        "stored": {"donations": len(donations), "cash_fen": cash, "cases": len(cases),
                   "households": len(households), "incidents": len(incidents),
                   "draft_cases": len(draft_cases), "goal_reached": bool(reached)},
        "events_published": {"outbox_rows": outbox_rows, "outbox_rows_total": sum(outbox_rows.values()),
                             "broker_publishes_counted": publishes},
        "events_handled": handled_rows,
        "alerts": len(per_alert),
        "deliveries_per_queue": deliveries,
        "duplicates_suppressed_total": sum(d["duplicates_suppressed"] for d in deliveries.values()),
        "dead_letters": sum(dead_letters.values()),
        "processes_that_exited_by_themselves": exits,
        "note": ("deliveries come from each consumer's metrics, banked just before each SIGKILL and "
                 "read at the end; deliveries in a killed process's last milliseconds are not counted"),
    } | (figures or {})
    save_report(report_name, report)

    # Last, so that everything above is checked too: no process may die of a fault it
    # should ride out (a broker restart, a locked database). nameko 2.14's RPC
    # entrypoint kills its container when the reply or the ack fails on a dropped
    # connection (rpc.py handle_result -> send_response / ack_message).
    assert not exits, json.dumps(exits, indent=1)
