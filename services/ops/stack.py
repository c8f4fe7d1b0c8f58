"""The process supervisor behind `linli up` (and the end-to-end tests): each
service runs as its own `nameko run` process, any number of instances each,
as its own broker user; what it keeps in var/ is readable by its owner only."""
from __future__ import annotations

import collections
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from amqp.exceptions import ChannelError

import services
from services import contracts
from services.common import broker, caller
from services.common import config as linli_config
from services.common import events, migrations
from services.common.metrics import SERVICE_RESTARTS
from services.ops import brokerusers

# The checkout this module runs from, put first on each process's path. A process starts in the
# stack's own folder, and would import `services` as the environment resolves it (an editable
# install names one checkout for every worktree): its code would not be the code that started it.
# Installed as a package (site-packages, no pyproject.toml beside it), nothing is added: there the
# environment resolves to the same code, and site-packages ahead of the standard library would not do.
_CHECKOUT = Path(services.__file__).resolve().parents[1]
CODE_ROOT = _CHECKOUT if (_CHECKOUT / "pyproject.toml").is_file() else None

BACKENDS = ("patrol", "donations", "welfare", "notifications", "volunteers")
SERVICES = BACKENDS + ("gateway",)
SERVICE_CLASSES = {
    "patrol": "services.patrol.service:PatrolService",
    "donations": "services.donations.service:DonationsService",
    "welfare": "services.welfare.service:WelfareService",
    "notifications": "services.notifications.service:NotificationsService",
    "volunteers": "services.volunteers.service:VolunteersService",
    "gateway": "services.gateway.service:GatewayService",
}
# What lets a process speak for a caller (sign tokens, vouch for RPC calls):
# the gateway's alone, so that a compromised service cannot.
GATEWAY_ONLY = ("LINLI_JWT_SECRET", "LINLI_CALLER_SIGNING_KEY")
# var/ holds personal data (SQLite files, logs) and secrets: its owner's only.
PRIVATE_UMASK = 0o077
BROKER_PASSWORDS = "broker-passwords.json"
# `linli up`'s own metrics port, above the first metrics port (see Stack.metrics_port_of).
SUPERVISOR_METRICS_OFFSET = 4
# A service that exited this many times in a row, each soon after it started, cannot start (see supervise_once).
CANNOT_START_AFTER = 5


class Backoff:
    """How long to wait before starting again a process that exited: 1, 2, 4 ...
    seconds, at most `cap`; back to the first once it had run `steady` seconds."""

    def __init__(self, first: float = 1, cap: float = 30, steady: float = 60):
        self.first, self.cap, self.steady = first, cap, steady
        self.failures = 0  # exits in a row, each before the process ran steadily

    def delay(self, ran_for: float) -> float:
        """The wait after an exit of a process that had run `ran_for` seconds."""
        if ran_for >= self.steady:
            self.failures = 0
        self.failures += 1
        return min(self.cap, self.first * 2 ** (self.failures - 1))


def exit_status(returncode: int) -> str:
    return f"killed by {signal.Signals(-returncode).name}" if returncode < 0 else f"exit code {returncode}"


@contextlib.contextmanager
def private_files():
    """Files and folders made meanwhile are readable by their owner only."""
    previous = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(previous)


# What Linli keeps in var/ (what an older version left readable is tightened).
PRIVATE_FILES = ("*.db", "*.db-wal", "*.db-shm", "*.db-journal", "jwt-secret", "caller-key.pem", BROKER_PASSWORDS,
                 "log/*.log")


def make_private(var_dir: Path):
    """var/ and log/ 0700, Linli's files in them 0600. Only those: `--var` may
    name a folder that holds other things."""
    for folder in (var_dir, var_dir / "log"):
        if folder.is_dir() and not folder.is_symlink():
            folder.chmod(0o700)
    for pattern in PRIVATE_FILES:
        for path in var_dir.glob(pattern):
            if path.is_file() and not path.is_symlink() and path.stat().st_uid == os.getuid():
                path.chmod(0o600)


def read_or_make_secret(path: Path, make) -> str:
    """A secret kept in var/: made once (0600 from the start), then reused."""
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(make())
    return path.read_text().strip()


def database_variable(service: str) -> str:
    return f"LINLI_{service.upper()}_DB"


def default_database_url(var_dir: Path, service: str) -> str:
    """A service's database when LINLI_<SERVICE>_DB names none: a SQLite file in var/."""
    return f"sqlite:///{(Path(var_dir) / f'{service}.db').resolve()}"


def service_env(var_dir: Path, base: dict | None = None) -> dict:
    """The environment of one stack's processes: broker, a SQLite file per
    service unless a URL is given, the token secret and the key pair that vouches
    for RPC calls (GATEWAY_ONLY go to the gateway's processes only)."""
    env = dict(os.environ if base is None else base)
    env.setdefault("AMQP_URI", linli_config.DEFAULT_AMQP_URI)
    env = linli_config.with_amqp_ssl(env)
    # eventlet's notice that it is deprecated (warned where nameko's CLI imports it), and setuptools'
    # about nameko's import of pkg_resources: once per process, and not JSON among the log's lines
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore:pkg_resources is deprecated:UserWarning,"
                                     "ignore:::nameko.cli.commands")
    for service in SERVICES:
        env.setdefault(database_variable(service), default_database_url(var_dir, service))
    if not env.get("LINLI_JWT_SECRET"):
        env["LINLI_JWT_SECRET"] = read_or_make_secret(var_dir / "jwt-secret", lambda: secrets.token_urlsafe(32))
    if not env.get("LINLI_CALLER_SIGNING_KEY") and not env.get("LINLI_CALLER_PUBLIC_KEY"):
        env["LINLI_CALLER_SIGNING_KEY"], env["LINLI_CALLER_PUBLIC_KEY"] = caller_key_pair(var_dir)
    elif not env.get("LINLI_CALLER_PUBLIC_KEY"):
        env["LINLI_CALLER_PUBLIC_KEY"] = caller.public_pem_of(caller.load_signing_key(env["LINLI_CALLER_SIGNING_KEY"]))
    return env


def caller_key_pair(var_dir: Path) -> tuple[str, str]:
    """(private, public) PEM; the private key made once into var/caller-key.pem."""
    private_pem = read_or_make_secret(var_dir / "caller-key.pem", lambda: caller.generate_key_pair()[0])
    return private_pem, caller.public_pem_of(caller.load_signing_key(private_pem))


def running_on(broker_settings: dict) -> dict[str, int]:
    """Services that already consume RPC on this broker vhost: a second
    stack there would share their queues (and answer from other databases)."""
    running = {}
    with broker.connection(broker_settings) as connection:
        for service in SERVICES:
            channel = connection.channel()
            try:
                _name, _messages, consumers = channel.queue_declare(f"rpc-{service}", passive=True)
                if consumers:
                    running[service] = consumers
            except ChannelError:  # no such queue: never ran here
                pass
            finally:
                if channel.is_open:
                    channel.close()
    return running


class Stack:
    def __init__(self, var_dir: Path, env: dict | None = None, scale: dict[str, int] | None = None,
                 port: int | None = None, metrics_port: int = 0, broker_users: bool = True):
        self.var_dir = Path(var_dir)
        with private_files():
            self.var_dir.mkdir(parents=True, exist_ok=True)
            (self.var_dir / "log").mkdir(exist_ok=True)
            make_private(self.var_dir)
            self.env = service_env(self.var_dir, env)
        # The operator's broker settings: admin tasks here and `linli` commands.
        self.broker = linli_config.broker(self.env)
        # Each service connects as its own user (made by prepare()); False: as the operator
        # (a broker without the management API, e.g. the private test nodes).
        self.broker_users = broker_users
        self.service_uris: dict[str, str] = {}
        if port is not None:
            self.env["LINLI_HTTP_PORT"] = str(port)
        self.port = int(self.env.get("LINLI_HTTP_PORT", 8000))
        self.scale = {service: 1 for service in SERVICES} | (scale or {})
        self.processes: dict[tuple[str, int], subprocess.Popen] = {}
        # Supervision (supervise_once): when each process started, its back-off, and
        # the processes that exited and are waiting to start again (at a monotonic time).
        self.started_at: dict[tuple[str, int], float] = {}
        self.backoffs: dict[tuple[str, int], Backoff] = {}
        self.restart_due: dict[tuple[str, int], float] = {}
        self.restarts: collections.Counter[str] = collections.Counter()  # per service
        # Each backend process serves its metrics on its own port from here (0: none).
        self.metrics_port = metrics_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def db_url(self, service: str) -> str:
        return self.env[database_variable(service)]

    def prepare(self):
        """Migrate every database, declare every queue and make each service's
        broker user before anything runs."""
        with private_files():
            for service in SERVICES:
                migrations.upgrade(service, self.db_url(service))
            events.declare_topology(self.broker, contracts.EVENTS)
            if self.broker_users:
                management = brokerusers.Management(self.env["AMQP_URI"], self.env.get("LINLI_AMQP_MANAGEMENT_URL"))
                self.service_uris = brokerusers.ensure(management, self.env["AMQP_URI"], SERVICES,
                                                       self.var_dir / BROKER_PASSWORDS, self.env)

    def already_running(self) -> dict[str, int]:
        return running_on(self.broker)

    def start(self):
        for service in SERVICES:
            SERVICE_RESTARTS.labels(service)  # 0 until one restarts
            for index in range(self.scale[service]):
                self.start_process(service, index)

    def start_process(self, service: str, index: int = 0) -> subprocess.Popen:
        if self.broker_users and not self.service_uris:
            raise RuntimeError("prepare() makes the services' broker users: call it first")
        log_path = self.log_path(service, index)
        command = self.command(service)
        descriptor = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "ab") as log:
            # umask: SQLite's -wal and -shm files, made by the process, are its owner's only too.
            process = subprocess.Popen(command, env=self.process_env(service, index), stdout=log,
                                       stderr=subprocess.STDOUT, cwd=self.var_dir.parent, start_new_session=True,
                                       umask=PRIVATE_UMASK)
        self.processes[(service, index)] = process
        self.started_at[(service, index)] = time.monotonic()
        return process

    def command(self, service: str) -> list[str]:
        return [sys.executable, "-m", "nameko", "run", "--config", str(linli_config.config_path(service)),
                SERVICE_CLASSES[service]]

    def process_env(self, service: str, index: int = 0) -> dict:
        """The environment of one process: the stack's, with its own broker user,
        and the code this stack was started from first on its path (CODE_ROOT)."""
        env = dict(self.env)
        if CODE_ROOT is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(CODE_ROOT), env.get("PYTHONPATH"))))
        if service != "gateway":
            for var in GATEWAY_ONLY:
                env.pop(var, None)
        if service in self.service_uris:
            env["AMQP_URI"] = self.service_uris[service]
        if service == "gateway" and index > 0:
            env["LINLI_HTTP_PORT"] = str(self.port + index)
        if self.metrics_port and service in BACKENDS:
            env["LINLI_METRICS_PORT"] = str(self.metrics_port_of(service, index))
        return env

    def metrics_port_of(self, service: str, index: int = 0) -> int:
        """patrol 9100, donations 9101, welfare 9102, notifications 9103,
        volunteers 9105 (9104 is linli up's own, as it was before volunteers
        came); a second instance of each ten above (the gateway: /api/v1/metrics)."""
        offset = BACKENDS.index(service)
        return self.metrics_port + offset + (offset >= SUPERVISOR_METRICS_OFFSET) + 10 * index

    @property
    def metrics_address(self) -> str:
        """Where the metrics listen: the backends' METRICS_ADDRESS in this stack's environment."""
        return linli_config.stated("METRICS_ADDRESS", self.env, service=BACKENDS[0])

    @property
    def supervisor_metrics_port(self) -> int:
        """`linli up`'s own (its restarts): 9104, next to the first four backends'."""
        return self.metrics_port + SUPERVISOR_METRICS_OFFSET

    def ports(self) -> list[tuple[str, int, str]]:
        """(host, port, what listens there) for every port the stack's processes take."""
        host = self.env.get("LINLI_HTTP_HOST", "127.0.0.1")
        ports = [(host, self.port + index, f"gateway-{index}") for index in range(self.scale["gateway"])]
        if self.metrics_port:
            address = self.metrics_address
            ports += [(address, self.metrics_port_of(service, index), f"{service}-{index} metrics")
                      for service in BACKENDS for index in range(self.scale[service])]
            ports.append((address, self.supervisor_metrics_port, "linli up's metrics"))
        return ports

    def busy_ports(self) -> list[tuple[str, int, str]]:
        """Those of ports() that something holds already. The bind is tried without
        SO_REUSEPORT, which any listener on the port (with it or not) refuses."""
        busy = []
        for host, port, what in self.ports():
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
                # SO_REUSEADDR, as the services set it: a port left in TIME_WAIT by a stopped stack is free.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, port))
                except OSError:
                    busy.append((host, port, what))
        return busy

    def supervise_once(self, say=print) -> int:
        """Start again each process that exited, once its back-off (Backoff) has
        passed; `say` hears each exit, with its log file and the service's restart
        count (linli_service_restarts_total), and, after CANNOT_START_AFTER quick
        exits in a row, the tail of its log. Returns how many exits it saw."""
        now = time.monotonic()
        exits = 0
        for key, process in list(self.processes.items()):
            if process.poll() is None:
                continue
            exits += 1
            service, index = key
            del self.processes[key]
            backoff = self.backoffs.setdefault(key, Backoff())
            delay = backoff.delay(now - self.started_at.pop(key, now))
            self.restart_due[key] = now + delay
            self.restarts[service] += 1
            SERVICE_RESTARTS.labels(service).inc()
            log = self.log_path(service, index)
            say(f"{service}-{index} exited ({exit_status(process.returncode)}); restarting in {delay:g}s "
                f"({service} restarts: {self.restarts[service]}); its log: {log}")
            if backoff.failures == CANNOT_START_AFTER:
                say(f"{service}-{index} cannot start: it exited {CANNOT_START_AFTER} times in a row, each within "
                    f"{backoff.steady:g}s of starting. The end of {log}:\n{self.log_tail(service, index)}")
        for key, due in list(self.restart_due.items()):
            if now >= due:
                del self.restart_due[key]
                self.start_process(*key)
        return exits

    def cannot_start(self) -> list[str]:
        """Processes that exited CANNOT_START_AFTER times or more in a row, each soon after it started."""
        return [f"{service}-{index}" for (service, index), backoff in self.backoffs.items()
                if backoff.failures >= CANNOT_START_AFTER]

    def kill(self, service: str, index: int = 0):
        """SIGKILL one process, as a crash would."""
        process = self.processes.pop((service, index))
        process.kill()
        process.wait()

    def stop_process(self, service: str, index: int = 0, timeout: float = 15):
        """SIGTERM one process, as scaling down does: nameko finishes the workers
        it runs, and the broker gives the messages it held to the other instances."""
        process = self.processes.pop((service, index))
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def alive(self) -> dict[str, bool]:
        return {f"{service}-{index}": process.poll() is None
                for (service, index), process in self.processes.items()}

    def wait_ready(self, timeout: float = 60, progress=None) -> bool:
        """Poll until every service answers: the gateway's /api/v1/ready (its
        database, the broker) and /api/v1/health/services (each backend) both
        200. `progress(checks)` hears each answer: the gateway's checks and
        each service's state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [name for name, up in self.alive().items() if not up]
            if dead:
                raise RuntimeError(f"exited during start: {', '.join(dead)} (see {self.var_dir / 'log'})")
            try:
                ready = requests.get(self.url + "/api/v1/ready", timeout=5)
                services = requests.get(self.url + "/api/v1/health/services", timeout=5)
                if ready.status_code == 200 and services.status_code == 200:
                    return True
                if progress:
                    progress(ready.json().get("checks", {}) | services.json().get("services", {}))
            except (requests.RequestException, ValueError):  # not listening yet, or not yet answering JSON
                if progress:
                    progress({"gateway": "starting"})
            time.sleep(0.5)
        return False

    def stop(self, timeout: float = 15):
        """SIGTERM every process (nameko finishes running workers), then SIGKILL stragglers."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
        self.restart_due.clear()

    def log_path(self, service: str, index: int = 0) -> Path:
        return self.var_dir / "log" / f"{service}-{index}.log"

    def log_tail(self, service: str, index: int = 0, lines: int = 30) -> str:
        path = self.log_path(service, index)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""
