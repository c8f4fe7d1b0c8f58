"""A private RabbitMQ node for tests that restart the broker or raise its
alarms: never the shared node (rabbit@localhost on 5672) others test against.

    node = BrokerNode().start()     # rabbitmq-server -detached, own ports and data
    node.amqp_uri                   # amqp://guest:guest@127.0.0.1:<port>/
    node.restart()                  # stop the whole node, start it again: durable data survives
    node.set_memory_alarm(); node.clear_memory_alarm()
    node.queues()                   # {name: {messages, messages_ready, messages_unacknowledged, consumers}}
    node.remove()                   # stop it and delete its data

    BrokerNode(tls=("ca.pem", "cert.pem", "key.pem"), management=True)
    node.amqps_uri                  # a TLS listener too, with that certificate
    node.management_url             # the management API on a port of its own

    cluster = BrokerCluster(3, management=True).start()  # three such nodes joined into one cluster
    cluster.amqp_uri                # their URIs, `;`-separated: how a service is given every node
    cluster.nodes[0].stop(); cluster.nodes[0].start()   # lose one node, bring it back
    cluster.queues()                # {name: {type, leader, members, online, messages, consumers, ...}}

Every `rabbitmqctl` call names this node explicitly (`-n linli-fault-...`),
and refuses to run against any other name. Run as root, the Debian scripts
switch to the `rabbitmq` user, so the node's folder is made theirs.
"""
from __future__ import annotations

import atexit
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid

import requests
from kombu import Connection

from tests.ports import free_port

NAME_PREFIX = "linli-fault-"


class BrokerNodeError(RuntimeError):
    pass


class BrokerNode:
    def __init__(self, label: str = "node", tls: tuple[str, str, str] | None = None, management: bool = False,
                 name: str | None = None):
        self.name = name or f"{NAME_PREFIX}{label}-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        while self.dist_port == self.port:
            self.dist_port = free_port()
        self.tls = tls  # (CA, certificate, key) files: a TLS listener on tls_port
        self.tls_port = free_port() if tls else None
        self.management = management
        self.management_port = free_port() if management else None
        # /tmp, not pytest's tmp_path: the broker runs as `rabbitmq`, which cannot enter root's 0700 folders.
        self.dir = tempfile.mkdtemp(prefix=f"{self.name.split('@')[0]}-", dir="/tmp")
        self._running = False
        self._write_files()
        atexit.register(self.remove)

    # -- configuration ------------------------------------------------------------------

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def amqps_uri(self) -> str | None:
        return f"amqps://guest:guest@127.0.0.1:{self.tls_port}/" if self.tls else None

    @property
    def management_url(self) -> str | None:
        return f"http://127.0.0.1:{self.management_port}" if self.management else None

    def env(self) -> dict:
        env = dict(os.environ)
        for key in list(env):  # nothing of the caller's broker settings leaks in
            if key.startswith("RABBITMQ_"):
                del env[key]
        env.update({
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": f"{self.dir}/mnesia",
            "RABBITMQ_LOG_BASE": f"{self.dir}/log",
            "RABBITMQ_PID_FILE": f"{self.dir}/pid",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{self.dir}/enabled_plugins",
            "RABBITMQ_PLUGINS_EXPAND_DIR": f"{self.dir}/plugins-expand",
            # Our own files, not /etc/rabbitmq's: that one names the shared node and its port.
            "RABBITMQ_CONFIG_FILE": f"{self.dir}/rabbitmq.conf",
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{self.dir}/advanced.config",
            "RABBITMQ_CONF_ENV_FILE": f"{self.dir}/rabbitmq-env.conf",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        return env

    def _write_files(self):
        for sub in ("mnesia", "log", "plugins-expand", "tls"):
            os.makedirs(f"{self.dir}/{sub}", exist_ok=True)
        conf = f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
        if self.tls:
            for source, target in zip(self.tls, ("ca.pem", "cert.pem", "key.pem"), strict=True):
                shutil.copy(source, f"{self.dir}/tls/{target}")
            conf += (f"listeners.ssl.default = 127.0.0.1:{self.tls_port}\n"
                     f"ssl_options.cacertfile = {self.dir}/tls/ca.pem\n"
                     f"ssl_options.certfile = {self.dir}/tls/cert.pem\n"
                     f"ssl_options.keyfile = {self.dir}/tls/key.pem\n"
                     "ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")
        if self.management:
            conf += f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {self.management_port}\n"
        files = {
            # By default no plugins: no management port to clash with the shared node's.
            "enabled_plugins": "[rabbitmq_management].\n" if self.management else "[].\n",
            "rabbitmq.conf": conf,
            "advanced.config": "[].\n",
            "rabbitmq-env.conf": "ERL_EPMD_ADDRESS=127.0.0.1\n",
        }
        for name, text in files.items():
            with open(f"{self.dir}/{name}", "w") as handle:
                handle.write(text)
        os.chmod(self.dir, 0o755)
        if os.geteuid() == 0:  # the Debian wrapper runs the broker as `rabbitmq`
            user = pwd.getpwnam("rabbitmq")
            for root, dirs, names in os.walk(self.dir):
                for entry in [root] + [os.path.join(root, n) for n in dirs + names]:
                    os.chown(entry, user.pw_uid, user.pw_gid)

    # -- control ------------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 90, check: bool = True) -> subprocess.CompletedProcess:
        """rabbitmqctl against this node, and only this node."""
        if not self.name.startswith(NAME_PREFIX) or self.name.startswith("rabbit@"):
            raise BrokerNodeError(f"refusing to control {self.name}")
        result = subprocess.run(["rabbitmqctl", "-n", self.name, *args], env=self.env(),
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise BrokerNodeError(f"rabbitmqctl {' '.join(args)}: {result.returncode}\n"
                                  f"{result.stdout}\n{result.stderr}")
        return result

    def start(self, timeout: float = 90) -> "BrokerNode":
        started = subprocess.run(["rabbitmq-server", "-detached"], env=self.env(),
                                 capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            raise BrokerNodeError(f"rabbitmq-server: {started.stdout}\n{started.stderr}")
        self._running = True
        self.wait_amqp(timeout)
        return self

    def wait_amqp(self, timeout: float = 90):
        """Until the node is booted and takes an AMQP connection."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            # await_startup fails at once while the detached node has not yet registered with epmd.
            waited = self.ctl("await_startup", "--timeout", "10", check=False, timeout=30)
            if waited.returncode == 0:
                try:
                    with Connection(self.amqp_uri, connect_timeout=5) as connection:
                        connection.connect()
                    if self.management:  # its listener comes up after AMQP's
                        requests.get(f"{self.management_url}/api/overview", auth=("guest", "guest"),
                                     timeout=5).raise_for_status()
                    return
                except Exception as exc:  # listener not up yet
                    last = exc
            else:
                last = waited.stderr.strip()[-300:]
            time.sleep(0.5)
        raise BrokerNodeError(f"{self.name} did not start in {timeout}s: {last}\n{self.log_tail()}")

    def stop(self):
        """Stop the whole node (the Erlang VM) and wait until its process is gone."""
        if not self._running:
            return
        pid_file = f"{self.dir}/pid"
        args = ("stop", pid_file) if os.path.exists(pid_file) else ("stop",)
        self.ctl(*args, check=False, timeout=120)
        self._running = False

    def restart(self, timeout: float = 90):
        """A broker outage: every connection drops; durable queues and persistent messages survive."""
        self.stop()
        self.start(timeout)

    def restart_app(self):
        """A lighter outage: the RabbitMQ application stops and starts, the VM stays."""
        self.ctl("stop_app")
        self.ctl("start_app")
        self.wait_amqp()

    def set_memory_alarm(self):
        """Publishers are blocked (connection.blocked) until cleared."""
        self.ctl("set_vm_memory_high_watermark", "0.000001")

    def clear_memory_alarm(self):
        self.ctl("set_vm_memory_high_watermark", "0.4")

    def set_disk_alarm(self):
        self.ctl("set_disk_free_limit", "100000GB")

    def clear_disk_alarm(self):
        self.ctl("set_disk_free_limit", "50MB")

    def alarms(self) -> str:
        return self.ctl("eval", "rabbit_alarm:get_alarms().").stdout.strip()

    def queues(self, vhost: str = "/") -> dict[str, dict]:
        out = self.ctl("list_queues", "-p", vhost, "-q", "--formatter", "json", "name", "messages",
                       "messages_ready", "messages_unacknowledged", "consumers").stdout
        return {row.pop("name"): row for row in json.loads(out or "[]")}

    def depth(self, queue: str) -> int:
        """Messages ready in a queue (what tests/e2e's vhost.depth() answers)."""
        with Connection(self.amqp_uri) as connection:
            channel = connection.channel()
            _name, messages, _consumers = channel.queue_declare(queue, passive=True)
            channel.close()
        return messages

    def log_tail(self, lines: int = 30) -> str:
        path = f"{self.dir}/log/{self.name}.log"
        if not os.path.exists(path):
            return ""
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])

    def remove(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class BrokerCluster:
    """`size` private nodes joined into one RabbitMQ cluster (classic peer
    joining: `join_cluster` to the first node). They share the Erlang cookie
    because they all run as the `rabbitmq` user with its home's cookie."""

    def __init__(self, size: int = 3, label: str = "cluster", management: bool = False):
        run = uuid.uuid4().hex[:8]
        self.nodes = [BrokerNode(name=f"{NAME_PREFIX}{label}-{run}-{index}@localhost", management=management)
                      for index in range(size)]
        atexit.register(self.remove)

    @property
    def management_url(self) -> str | None:
        """The first node's management API (any node's answers for the whole cluster)."""
        return self.nodes[0].management_url

    @property
    def amqp_uri(self) -> str:
        """Every node, `;`-separated, the first one first: as a district's services are configured."""
        return ";".join(node.amqp_uri for node in self.nodes)

    def start(self, timeout: float = 90) -> "BrokerCluster":
        first, *others = self.nodes
        first.start(timeout)
        for node in others:
            node.start(timeout)
            node.ctl("stop_app")
            node.ctl("reset")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.wait_amqp(timeout)
        running = self.running_nodes(first)
        if sorted(running) != sorted(n.name for n in self.nodes):
            raise BrokerNodeError(f"the cluster has {running}, not all of {[n.name for n in self.nodes]}")
        return self

    def running(self) -> list[BrokerNode]:
        return [node for node in self.nodes if node._running]

    def running_nodes(self, via: BrokerNode | None = None) -> list[str]:
        """The nodes that `via` (by default any running one) sees running in the cluster."""
        via = via or self.running()[0]
        status = json.loads(via.ctl("cluster_status", "--formatter", "json").stdout)
        return status["running_nodes"]

    def node_named(self, name: str) -> BrokerNode:
        return next(node for node in self.nodes if node.name == name)

    def node_of_port(self, port: int) -> BrokerNode:
        return next(node for node in self.nodes if node.port == port)

    def queues(self, vhost: str = "/") -> dict[str, dict]:
        """Every queue in the cluster, asked of a running node: its type, leader
        (a quorum queue's) or home node (a classic one's), members and the online
        ones, durable or auto_delete, messages and consumers. A queue whose home node is down answers
        with its state (`down`) and no counts."""
        out = self.running()[0].ctl(
            "list_queues", "-p", vhost, "-q", "--formatter", "json", "name", "type", "durable", "auto_delete",
            "state", "leader",
            "members", "online", "pid", "messages", "messages_ready", "messages_unacknowledged",
            "consumers").stdout
        queues = {}
        for row in json.loads(out or "[]"):
            name = row.pop("name")
            for key in ("members", "online"):  # quorum queues: lists; classic: ""
                row[key] = row.get(key) or []
            for key in ("messages", "messages_ready", "messages_unacknowledged", "consumers"):
                row[key] = row.get(key) or 0
            queues[name] = row
        return queues

    def connections(self) -> dict[str, list[dict]]:
        """Each running node's client connections: {node name: [{user, peer_port, name}]}."""
        found = {}
        for node in self.running():
            out = node.ctl("list_connections", "-q", "--formatter", "json", "user", "peer_port", "name",
                           "client_properties", check=False).stdout
            found[node.name] = json.loads(out or "[]")
        return found

    def remove(self):
        for node in reversed(self.nodes):
            node.remove()
