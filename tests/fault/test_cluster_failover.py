"""A district's RabbitMQ is a three-node cluster, and the node every service
is connected to is stopped under a mixed write load, then started again.

Three private nodes (tests/broker_node.py BrokerCluster) are joined into one
cluster; every service runs as a process, given all three nodes in AMQP_URI
(`;`-separated, the first first: where they all connect). Clients write
donations, households and cases, and incidents through the gateway, retrying
with the same Idempotency-Key on a 5xx or a dropped connection. The first node
is stopped (`rabbitmqctl stop`, the whole VM), left down, then started again.

Checked: every process reconnects to a surviving node within seconds; writes
succeed again within seconds; every durable Linli queue keeps an online leader
and its consumers on the surviving nodes, and gets its third member back after
the restart; and, as in test_faults_under_load, every acknowledged write is
stored once and every event handled once by every consumer. The figures go to
var/cluster-failover-report.json and the test's output."""
import re
import subprocess
import threading
import time

import pytest

from services.ops.stack import SERVICES
from tests.broker_node import BrokerCluster
from tests.e2e.conftest import ADMIN_PASSWORD, login
from tests.fault.conftest import Counters, fault_stack
from tests.fault.test_faults_under_load import (
    RETRY_FOR_SECONDS, Writes, check_everything, community, watchdog, writing_clients)

pytestmark = pytest.mark.fault

BEFORE_SECONDS = 10        # load before the node is stopped
DOWN_SECONDS = 30          # how long the node stays down
AFTER_SECONDS = 10         # load after it is back
RECONNECT_WITHIN = 15      # every process on a surviving node within this many seconds of the stop
WRITES_BACK_WITHIN = 20    # no stretch longer than this without an acknowledged write


@pytest.fixture(scope="module")
def cluster():
    # With the management API: each service connects as its own broker user, made on the cluster by `linli`.
    cluster = BrokerCluster(3, management=True).start()
    yield cluster
    cluster.remove()


def broker_sockets(cluster: BrokerCluster) -> dict[int, list[int]]:
    """{pid: the broker ports its established AMQP connections go to}, from `ss`."""
    ports = {node.port for node in cluster.nodes}
    out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True, text=True,
                         check=True).stdout
    found: dict[int, list[int]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        peer_port = int(fields[3].rpartition(":")[2])
        if peer_port not in ports:
            continue
        for pid in re.findall(r"pid=(\d+)", line):
            found.setdefault(int(pid), []).append(peer_port)
    return found


def service_pids(stack) -> dict[str, int]:
    return {f"{service}-{index}": process.pid for (service, index), process in stack.processes.items()}


def linli_queues(cluster: BrokerCluster) -> dict[str, dict]:
    """Linli's queues: its durable ones, and each process's own transient ones (a
    gateway's live feeds and broadcast alerts); not nameko's RPC reply queues."""
    return {name: q for name, q in cluster.queues().items() if not name.startswith("rpc.reply-")}


def unavailable(queues: dict[str, dict], nodes: set[str], consumed: set[str], members: int) -> dict:
    """The queues that are not served on `nodes`: a durable one that is not a
    quorum queue running with its leader and `members` members online there; any
    one that had a consumer before and has none now (a process's transient queue
    is declared again on the node its connection reached)."""
    bad = {}
    for name, q in queues.items():
        durable = q["durable"] and not q["auto_delete"]
        if (q["state"] != "running" or (name in consumed and not q["consumers"])
                or (durable and (q["type"] != "quorum" or q["leader"] not in nodes
                                 or len(set(q["online"]) & nodes) < members))):
            bad[name] = {key: q[key] for key in ("type", "durable", "state", "leader", "online", "consumers")}
    return bad


def longest_wait_for_an_ack(timeline: list, start: float, end: float) -> float:
    """The longest stretch within [start, end] in which no write was answered 2xx."""
    answered = sorted(done for _sent, done, _kind, outcome in timeline
                      if outcome.startswith("2") and start <= done <= end)
    marks = [start] + answered + [end]
    return max(b - a for a, b in zip(marks, marks[1:], strict=False))


def lose_the_services_node(stack, cluster: BrokerCluster, writes: Writes, figures: dict, stop: threading.Event):
    """While the clients write: find the node the services are connected to,
    stop it, measure the reconnections, start it again."""
    time.sleep(BEFORE_SECONDS)
    pids = service_pids(stack)
    sockets = broker_sockets(cluster)
    connected = {name: sockets.get(pid, []) for name, pid in pids.items()}
    figures["connections_before"] = {name: len(ports) for name, ports in connected.items()}
    used = {port for ports in connected.values() for port in ports}
    # Every service process connects to the first node of AMQP_URI: that is the one to lose.
    assert all(connected.values()), connected
    assert used == {cluster.nodes[0].port}, (used, [n.port for n in cluster.nodes])
    target = cluster.node_of_port(used.pop())
    survivors = {node.name for node in cluster.nodes if node is not target}
    surviving_ports = {node.port for node in cluster.nodes if node is not target}
    before = linli_queues(cluster)
    consumed = {name for name, q in before.items() if q["consumers"]}
    durable = [q for q in before.values() if q["durable"] and not q["auto_delete"]]
    figures["queues"] = {"durable": len(durable), "durable_types": sorted({q["type"] for q in durable}),
                         "transient_per_process": len(before) - len(durable), "with_consumers": len(consumed)}

    stopped_at = time.monotonic()
    stop_took = {}

    def stop_node():
        target.stop()
        stop_took["s"] = round(time.monotonic() - stopped_at, 1)

    stopper = threading.Thread(target=stop_node)
    stopper.start()
    lost: dict[str, float] = {}         # when a process had no connection to the stopped node left
    reconnected: dict[str, float] = {}  # ... and when it had one to a surviving node, and none other
    queues_served_at = None
    while time.monotonic() - stopped_at < 60 and (len(reconnected) < len(pids) or queues_served_at is None):
        sockets = broker_sockets(cluster)
        now = time.monotonic()
        for name, pid in pids.items():
            ports = set(sockets.get(pid, []))
            if name not in lost and target.port not in ports:
                lost[name] = now
            if name not in reconnected and ports and ports <= surviving_ports:
                reconnected[name] = now
        if queues_served_at is None and not stopper.is_alive() and \
                not unavailable(linli_queues(cluster), survivors, consumed, members=2):
            queues_served_at = time.monotonic()
        time.sleep(0.1)
    stopper.join(timeout=120)
    figures["node_stopped"] = target.name
    figures["node_stop_took_s"] = stop_took.get("s")  # `rabbitmqctl stop` until the VM is gone
    # Sampled every 0.1 s or so (an `ss` each time): a reconnection quicker than that counts as 0.
    figures["connections_dropped_s_after_stop_issued"] = {
        name: round(at - stopped_at, 2) for name, at in sorted(lost.items())}
    figures["reconnect_s_per_process"] = {
        name: round(at - lost[name], 2) for name, at in sorted(reconnected.items())}
    figures["reconnect_s_max"] = max(figures["reconnect_s_per_process"].values(), default=None)
    # Checked once the node is down (before, it still counts as an online member).
    figures["queues_all_served_s_after_stop_issued"] = (
        round(queues_served_at - stopped_at, 2) if queues_served_at else None)
    figures["queues_during_outage_not_served"] = unavailable(linli_queues(cluster), survivors, consumed, members=2)

    stop.wait(max(0, DOWN_SECONDS - (time.monotonic() - stopped_at)))
    restarted_at = time.monotonic()
    target.start()
    figures["node_start_took_s"] = round(time.monotonic() - restarted_at, 1)
    everyone = {node.name for node in cluster.nodes}
    deadline = time.monotonic() + 60
    while (missing := unavailable(linli_queues(cluster), everyone, consumed, members=3)):
        assert time.monotonic() < deadline, f"not every queue has its three members online again: {missing}"
        time.sleep(1)
    figures["all_members_online_again_s"] = round(time.monotonic() - restarted_at, 1)
    stop.wait(AFTER_SECONDS)
    figures["timeline"] = {"stopped_at": stopped_at, "restarted_at": restarted_at}


def test_losing_the_node_the_services_use_loses_no_write_and_no_event(cluster, tmp_path_factory):
    var = tmp_path_factory.mktemp("cluster-failover") / "var"
    with fault_stack(cluster, var, LINLI_RPC_TIMEOUT="5") as stack:
        admin = login(stack.url, "admin", ADMIN_PASSWORD)
        admin_id, member_id, leader_id, zone, campaign_id = community(admin)

        writes, counters, figures, stop = Writes(), Counters(), {}, threading.Event()
        clients = writing_clients(admin, member_id, zone, campaign_id, writes, stop)
        failures: list = []

        def inject():
            try:
                lose_the_services_node(stack, cluster, writes, figures, stop)
            except BaseException as exc:  # failed in its thread: the test fails with it
                failures.append(exc)

        injector = threading.Thread(target=inject)
        exits, watching = [], threading.Event()
        guard = threading.Thread(target=watchdog, args=(stack, exits, watching))
        started = time.monotonic()
        for thread in clients + [injector, guard]:
            thread.start()
        try:
            injector.join(timeout=BEFORE_SECONDS + DOWN_SECONDS + AFTER_SECONDS + 300)
            assert not injector.is_alive(), "the fault injector hung"
            stop.set()
            for thread in clients:
                thread.join(timeout=RETRY_FOR_SECONDS + 30)
            load_seconds = time.monotonic() - started
            assert not [t for t in clients if t.is_alive()], "a client hung"
            if failures:
                raise failures[0]

            stopped_at, restarted_at = figures.pop("timeline").values()
            during = [(sent, done, kind, outcome) for sent, done, kind, outcome in writes.timeline
                      if stopped_at <= sent <= restarted_at]
            figures["writes_while_node_down"] = {
                "http_requests": len(during),
                "answered_2xx": sum(1 for *_, outcome in during if outcome.startswith("2")),
                "failed_then_retried": sum(1 for *_, outcome in during if not outcome.startswith("2")),
                "outcomes": dict(sorted({o: sum(1 for *_, x in during if x == o)
                                         for *_, o in during}.items())),
            }
            figures["longest_without_an_acked_write_s"] = round(
                longest_wait_for_an_ack(writes.timeline, stopped_at - 1, restarted_at), 2)
            figures["client_retries_total"] = sum(1 for *_, outcome in writes.timeline if not outcome.startswith("2"))
            figures["down_seconds"] = round(restarted_at - stopped_at, 1)

            check_everything(stack, cluster, admin, writes, counters, [], exits, watching, guard, load_seconds,
                             ids=(admin_id, member_id, leader_id, campaign_id),
                             report_name="cluster-failover-report.json", figures={"cluster": figures})

            # Checked last, so that the report above is written in any case.
            assert not figures["queues_during_outage_not_served"], figures["queues_during_outage_not_served"]
            assert figures["queues_all_served_s_after_stop_issued"] is not None, "some queue was never served again"
            assert sorted(figures["reconnect_s_per_process"]) == sorted(f"{s}-0" for s in SERVICES), \
                figures["reconnect_s_per_process"]
            assert figures["reconnect_s_max"] <= RECONNECT_WITHIN, figures["reconnect_s_per_process"]
            assert figures["longest_without_an_acked_write_s"] <= WRITES_BACK_WITHIN, figures
        finally:
            stop.set()
            watching.set()
            guard.join(timeout=10)
