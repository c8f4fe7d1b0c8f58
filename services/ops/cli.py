"""The `linli` command: run the stack, manage accounts, inspect dead letters."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # nameko imports it; setuptools>=81 warns

from services.common import config as linli_config  # noqa: E402
from services import contracts  # noqa: E402
from services.common import broker, deadletters, events, migrations  # noqa: E402
from services.gateway import accounts  # noqa: E402
from services.ops.stack import BACKENDS, PRIVATE_UMASK, SERVICES, Stack, database_variable, service_env  # noqa: E402


def _scale(values: list[str]) -> dict[str, int]:
    scale = {}
    for value in values:
        service, _, count = value.partition("=")
        if service not in SERVICES or not count.isdigit() or int(count) < 1:
            raise SystemExit(f"--scale takes SERVICE=N with SERVICE one of {', '.join(SERVICES)}; got {value!r}")
        scale[service] = int(count)
    return scale


def scaled_on_sqlite(stack: Stack) -> list[str]:
    """Services to run as several instances on one SQLite file."""
    return [service for service, count in stack.scale.items()
            if count > 1 and stack.db_url(service).startswith("sqlite")]


def cmd_up(args) -> int:
    from services.ops import demo

    stack = Stack(Path(args.var), scale=_scale(args.scale), port=args.port, metrics_port=args.metrics_port)
    print(f"linli: broker {_safe_uri(stack.env['AMQP_URI'])}; data and logs in {stack.var_dir}/")
    busy = stack.busy_ports()
    if busy:
        for host, port, what in busy:
            print(f"linli: port {port} on {host} ({what}) is taken by another program, or another Linli.",
                  file=sys.stderr)
        print("linli: nothing started. Pick other ports: --port N for the gateway (instance n takes N + n), "
              "--metrics-port N for the metrics (N to N + 4; 0: none).", file=sys.stderr)
        return 1
    on_sqlite = scaled_on_sqlite(stack)
    if on_sqlite:
        print(f"linli: warning: several instances of {', '.join(on_sqlite)} on SQLite: they share one file "
              f"with no row locks (an event left behind by an outage may be published twice) and one writer; "
              f"give each a PostgreSQL database (LINLI_<SERVICE>_DB=postgresql://...)", file=sys.stderr)
    print("linli: migrating databases, declaring queues, making each service's broker user ...")
    try:
        running = stack.already_running()
        if running:
            print(f"linli: Linli is already running on this broker ({', '.join(running)}); stop it first, "
                  "or give this one its own vhost (AMQP_URI=amqp://guest:guest@localhost:5672/linli-2).",
                  file=sys.stderr)
            return 1
        stack.prepare()
    except events.QueuesNeedMigration:
        raise  # main's one line: no retry or restart mends it
    except Exception as exc:
        cannot_prepare(stack, exc)
        return 1
    if args.demo:
        accounts.create_admin(stack.db_url("gateway"), *demo.DEMO_ADMIN, name="Community office",
                              amqp_uri=stack.broker)
    if stack.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(stack.supervisor_metrics_port, addr=stack.metrics_address)  # linli_service_restarts_total

    # Ctrl-C and SIGTERM only ask: the loops below stop the stack between two
    # supervision rounds, never in the middle of one (a process half started).
    stopping = []
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    stack.start()
    print(f"linli: started {', '.join(stack.alive())}; waiting until ready ...")
    try:
        code = _serve(stack, args, demo, stopping)
    except _Stopping:
        code = 0
    print("\nlinli: stopping ...")
    stack.stop()
    print("linli: stopped")
    return code


class _Stopping(Exception):
    """Ctrl-C or SIGTERM."""


def _supervise(stack: Stack, stopping: list) -> int:
    """One round of `Stack.supervise_once`, its news on stderr; raises _Stopping when asked to stop."""
    if stopping:
        raise _Stopping
    return stack.supervise_once(lambda text: print(f"linli: {text}", file=sys.stderr, flush=True))


def _serve(stack: Stack, args, demo, stopping: list) -> int:
    """Wait until ready (restarting what exits meanwhile), load the demo, then
    supervise until asked to stop. Returns the exit code."""
    last = {}

    def progress(checks):
        nonlocal last
        if checks != last:
            print("linli:   " + ", ".join(f"{k}: {v}" for k, v in sorted(checks.items())))
            last = checks
        _supervise(stack, stopping)
        if stack.cannot_start():
            raise RuntimeError(f"{', '.join(stack.cannot_start())} cannot start (see above)")

    deadline = time.monotonic() + args.timeout
    while True:
        try:
            ready = stack.wait_ready(timeout=max(0.0, deadline - time.monotonic()), progress=progress)
            break
        except RuntimeError as exc:
            # wait_ready saw a process exit: supervision starts it again, unless it cannot start.
            if stack.cannot_start() or not _supervise(stack, stopping):
                print(f"linli: {exc}; stopping: a service that cannot start is most likely misconfigured "
                      f"(logs in {stack.var_dir / 'log'})", file=sys.stderr)
                return 1
    if not ready:
        print(f"linli: not ready after {args.timeout}s; logs in {stack.var_dir / 'log'}", file=sys.stderr)
        return 1
    if args.demo:
        loaded = demo.load(stack.url)
        print("linli: demo data " + ("loaded" if loaded else "already there"))
    print(f"\nLinli is ready at {stack.url}/  (API {stack.url}/api/v1, OpenAPI {stack.url}/api/v1/openapi.json)")
    if stack.metrics_port:
        ports = ", ".join(f"{service} :{stack.metrics_port_of(service)}" for service in BACKENDS)
        print(f"Metrics: gateway {stack.url}/api/v1/metrics; {ports}; restarts (linli up) "
              f":{stack.supervisor_metrics_port}")
    if args.demo:
        print("Demo logins:")
        for username, password, what in demo.DEMO_LOGINS:
            print(f"  {username:10} {password:20} {what}")
    print("Ctrl-C stops everything; a service that exits is started again.", flush=True)
    while True:
        _supervise(stack, stopping)
        time.sleep(0.5)


def cmd_prepare(args) -> int:
    """What `linli up` does before starting anything (migrations, queues, each
    service's broker user), alone: systemd's linli-prepare.service runs it."""
    stack = Stack(Path(args.var), broker_users=not args.no_broker_users)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            stack.prepare()
            break
        except events.QueuesNeedMigration:
            raise  # main's one line: waiting does not mend it
        except Exception as exc:
            if time.monotonic() < deadline:  # at boot the broker may still be starting
                time.sleep(2)
                continue
            cannot_prepare(stack, exc)
            return 1
    users = "each service's broker user" if stack.broker_users else "no broker users (--no-broker-users)"
    print(f"linli: prepared {_safe_uri(stack.env['AMQP_URI'])}: databases migrated, queues declared, {users}; "
          f"secrets in {stack.var_dir}/")
    return 0


def cmd_serve(args) -> int:
    """One service in the foreground, as systemd runs it: exactly the
    environment `linli up` gives that service, then nameko in this process's
    place (so that signals and the exit status are nameko's own)."""
    from services.ops import brokerusers
    from services.ops.stack import BROKER_PASSWORDS

    stack = Stack(Path(args.var), metrics_port=args.metrics_port, broker_users=not args.no_broker_users)
    if stack.broker_users:
        uri = brokerusers.known_uri(stack.env["AMQP_URI"], args.service, stack.var_dir / BROKER_PASSWORDS)
        if uri is None:
            print(f"linli: no broker user for {args.service} in {stack.var_dir / BROKER_PASSWORDS}: "
                  "run `linli prepare` first", file=sys.stderr)
            return 1
        stack.service_uris = {args.service: uri}
    env = stack.process_env(args.service)
    command = stack.command(args.service)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)


def cannot_prepare(stack: Stack, exc: Exception):
    print(f"linli: cannot prepare ({type(exc).__name__}: {exc}). Is the broker running at "
          f"{_safe_uri(stack.env['AMQP_URI'])}? `make broker` starts one. Each service's broker user is made"
          " through RabbitMQ's management API (LINLI_AMQP_MANAGEMENT_URL, default port 15672) by AMQP_URI's user,"
          " an administrator.", file=sys.stderr)


def _safe_uri(uri: str) -> str:
    def one(node: str) -> str:
        scheme, _, rest = node.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"
    return broker.each_uri(uri, one)


def read_password() -> str | None:
    """The new admin's password: typed twice at a prompt, or the first line of
    stdin (a script, a secret store). Never argv: any user on the host can read
    another's command line, and shells keep it in their history."""
    import getpass

    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password for the new admin: ")
    if getpass.getpass("The same again: ") != first:
        print("linli: the two passwords differ", file=sys.stderr)
        return None
    return first


def cmd_admin_create(args) -> int:
    from marshmallow import ValidationError

    from services.gateway.schemas import MemberCreateSchema

    password = read_password()
    if password is None:
        return 2
    try:
        MemberCreateSchema().load({"username": args.username, "password": password,
                                   "name": args.name, "roles": ["admin"]})
    except ValidationError as exc:
        print(f"linli: {json.dumps(exc.messages)}", file=sys.stderr)
        return 2
    stack = Stack(Path(args.var))
    migrations.upgrade("gateway", stack.db_url("gateway"))
    if not accounts.create_admin(stack.db_url("gateway"), args.username, password, args.name,
                                 amqp_uri=stack.broker):
        print(f"linli: the username {args.username!r} is taken", file=sys.stderr)
        return 1
    print(f"linli: admin {args.username!r} created")
    return 0


def cmd_migrate(args) -> int:
    unknown = set(args.services) - set(SERVICES)
    if unknown:
        print(f"linli: unknown service(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    env = service_env(Path(args.var))
    for service in args.services or SERVICES:
        migrations.upgrade(service, env[database_variable(service)])
        print(f"linli: {service} migrated")
    return 0


def cmd_broker_users(args) -> int:
    from services.ops import brokerusers
    from services.ops.stack import BROKER_PASSWORDS

    stack = Stack(Path(args.var))
    if args.rotate:
        running = stack.already_running()
        if running:
            # A running process keeps the old password and would fail at its next reconnect.
            print(f"linli: Linli is running on this broker ({', '.join(running)}); stop it, rotate, start it again",
                  file=sys.stderr)
            return 1
        given = [brokerusers.password_variable(s) for s in SERVICES if stack.env.get(brokerusers.password_variable(s))]
        if given:
            print(f"linli: {', '.join(given)} set: those passwords are changed where they are set, not here",
                  file=sys.stderr)
    management = brokerusers.Management(stack.env["AMQP_URI"], stack.env.get("LINLI_AMQP_MANAGEMENT_URL"))
    brokerusers.ensure(management, stack.env["AMQP_URI"], SERVICES, stack.var_dir / BROKER_PASSWORDS, stack.env,
                       rotate=args.rotate)
    vhost = brokerusers.vhost_of(stack.env["AMQP_URI"])
    print(f"linli: broker users {', '.join(brokerusers.username(s, vhost) for s in SERVICES)} ready, "
          f"{'with new passwords ' if args.rotate else ''}(passwords in {stack.var_dir / BROKER_PASSWORDS})")
    return 0


def cmd_topology(_args) -> int:
    count = events.declare_topology(linli_config.broker(), contracts.EVENTS)
    print(f"linli: declared {count} event queue(s), each with its dead-letter queue")
    return 0


def cmd_migrate_queues(_args) -> int:
    from services.ops import queues

    try:
        done = queues.migrate(linli_config.broker(), contracts.EVENTS, SERVICES, progress=_progress)
    except queues.ConsumersAttached as exc:
        print(f"linli: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # the broker went away, a queue refused ...: the next run carries on
        print(f"linli: migrate-queues stopped ({type(exc).__name__}: {exc}); run it again when the broker "
              "answers: it carries on where it stopped, losing nothing", file=sys.stderr)
        return 1
    moved = sum(count for _queue, count in done)
    print(f"linli: {len(done)} queue(s) migrated, {moved} message(s) moved; every Linli queue is a quorum queue"
          if done else "linli: every Linli queue is already a quorum queue as declared; nothing changed")
    return 0


def cmd_dlq_list(args) -> int:
    letters = deadletters.list_dead_letters(linli_config.broker(), contracts.SUBSCRIPTIONS)
    if args.json:
        for letter in letters:
            print(json.dumps(letter))
        return 0
    if not letters:
        print("linli: no dead letters")
        return 0
    for letter in letters:
        print(f"{letter['queue']}  event {letter['event_id']} {letter['source']}.{letter['type']}"
              f"  error {letter['error']} after {letter['attempts']} attempt(s) at {letter['failed_at']}")
    print(f"linli: {len(letters)} dead letter(s)")
    return 0


def cmd_dlq_replay(args) -> int:
    replayed = deadletters.replay(linli_config.broker(), contracts.SUBSCRIPTIONS, event_id=args.id)
    for letter in replayed:
        print(f"replayed {letter['source']}.{letter['type']} event {letter['event_id']} to {letter['queue']}")
    print(f"linli: {len(replayed)} dead letter(s) replayed")
    return 0


def cmd_events_tail(args) -> int:
    from services.ops.tail import tail

    unknown = set(args.service) - set(contracts.PRODUCERS)
    if unknown:
        print(f"linli: unknown service(s) {', '.join(sorted(unknown))}; "
              f"one of {', '.join(sorted(contracts.PRODUCERS))}", file=sys.stderr)
        return 2
    try:
        return tail(linli_config.broker(), args.service or sorted(contracts.PRODUCERS), args.type,
                    args.json, count=args.count)
    except KeyboardInterrupt:
        return 0


def _progress(message: str):
    print(f"linli: {message}", flush=True)


def cmd_backup(args) -> int:
    from services.ops import backup

    try:
        manifest = backup.backup(Path(args.var), Path(args.destination), progress=_progress)
    except backup.BackupError as exc:
        print(f"linli: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"linli: backup written to {args.destination} (writes paused {manifest['pause_seconds'] * 1000:.0f} ms); "
          "it holds personal data and secrets: keep it as safe as var/")
    return 0


def cmd_restore(args) -> int:
    from services.ops import backup

    try:
        backup.restore(Path(args.source), Path(args.var), force=args.force, progress=_progress)
    except backup.BackupError as exc:
        print(f"linli: cannot restore: {exc}", file=sys.stderr)
        return 1
    print(f"linli: restored {args.source} into {args.var}; `linli up` starts it")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="linli", description=__doc__)
    top.add_argument("--var", default="var", help="folder for SQLite files, logs and secrets (default ./var)")
    commands = top.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="migrate, start every service, wait until ready")
    up.add_argument("--demo", action="store_true", help="load the demo community and print its logins")
    up.add_argument("--port", type=int, default=None, help="HTTP port (default $LINLI_HTTP_PORT or 8000)")
    up.add_argument("--scale", action="append", default=[], metavar="SERVICE=N",
                    help="run N processes of a service (several need PostgreSQL)")
    up.add_argument("--timeout", type=float, default=90, help="seconds to wait for readiness")
    up.add_argument("--metrics-port", type=int, default=9100,
                    help="first port for the services' Prometheus metrics (0: none; default 9100)")
    up.set_defaults(func=cmd_up)

    prepare = commands.add_parser("prepare", help="migrate every database, declare every queue, make each "
                                  "service's broker user: what `linli up` does first (systemd: linli-prepare)")
    prepare.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                         help="keep trying this long while the broker or database does not answer (default 0)")
    prepare.add_argument("--no-broker-users", action="store_true",
                         help="services connect as AMQP_URI's user (a broker without the management API)")
    prepare.set_defaults(func=cmd_prepare)

    serve = commands.add_parser("serve", help="run one service in the foreground with the environment `linli up` "
                                "would give it (systemd: linli@SERVICE); `linli prepare` first")
    serve.add_argument("service", choices=SERVICES)
    serve.add_argument("--metrics-port", type=int, default=9100,
                       help="first port for the backends' Prometheus metrics, as `linli up` (0: none; default 9100)")
    serve.add_argument("--no-broker-users", action="store_true", help="connect as AMQP_URI's user")
    serve.set_defaults(func=cmd_serve)

    admin = commands.add_parser("admin", help="accounts").add_subparsers(dest="action", required=True)
    create = admin.add_parser("create", help="add an admin account; the password is asked for, or read "
                                             "from the first line of stdin")
    create.add_argument("--username", required=True)
    create.add_argument("--name", default="Community office")
    create.set_defaults(func=cmd_admin_create)

    migrate = commands.add_parser("migrate", help="run each service's Alembic migrations")
    migrate.add_argument("services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(SERVICES)} (default all)")
    migrate.set_defaults(func=cmd_migrate)

    users = commands.add_parser("broker-users", help="make each service's broker user and its permissions "
                                "(as AMQP_URI's administrator; `linli up` does it too)")
    users.add_argument("--rotate", action="store_true",
                       help="give every service a new random password and close the users' connections "
                            "(stop Linli first)")
    users.set_defaults(func=cmd_broker_users)

    topology = commands.add_parser("topology", help="declare every event queue and dead-letter queue")
    topology.set_defaults(func=cmd_topology)

    migrate_queues = commands.add_parser(
        "migrate-queues", help="move every Linli queue to a quorum queue in place, keeping its messages "
        "(an installation from before quorum queues, or a new QUEUE_DELIVERY_LIMIT); stop the services first")
    migrate_queues.set_defaults(func=cmd_migrate_queues)

    events_tail = commands.add_parser("events", help="the live event feed").add_subparsers(
        dest="action", required=True).add_parser("tail", help="print events as they happen (personal data removed)")
    events_tail.add_argument("--service", action="append", default=[], metavar="SERVICE",
                             help="only this service's events (again for more)")
    events_tail.add_argument("--type", action="append", default=[], metavar="TYPE",
                             help="only this event type, e.g. incident_reported (again for more)")
    events_tail.add_argument("--json", action="store_true", help="one JSON object a line")
    events_tail.add_argument("--count", type=int, default=None, help="stop after this many events")
    events_tail.set_defaults(func=cmd_events_tail)

    backup = commands.add_parser("backup", help="one consistent snapshot of every service's database and the "
                                 "secrets in var/, into a new folder (writes pause for milliseconds)")
    backup.add_argument("destination", help="a new folder for the backup")
    backup.set_defaults(func=cmd_backup)

    restore = commands.add_parser("restore", help="bring a backup back into a stopped stack: a new var folder "
                                  "and empty databases, unless --force")
    restore.add_argument("source", help="a folder `linli backup` wrote")
    restore.add_argument("--force", action="store_true",
                         help="overwrite the databases and secrets that the target holds already")
    restore.set_defaults(func=cmd_restore)

    dlq = commands.add_parser("dlq", help="dead letters").add_subparsers(dest="action", required=True)
    dlq_list = dlq.add_parser("list", help="show dead letters (ids and types, never payloads)")
    dlq_list.add_argument("--json", action="store_true", help="one JSON object a line")
    dlq_list.set_defaults(func=cmd_dlq_list)
    dlq_replay = dlq.add_parser("replay", help="send dead letters back to their queue")
    dlq_replay.add_argument("--id", default=None, help="only the dead letter of this event id")
    dlq_replay.set_defaults(func=cmd_dlq_replay)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    os.umask(PRIVATE_UMASK)  # what `linli` writes in var/ (databases, secrets) is its owner's only
    try:
        return args.func(args) or 0
    except events.QueuesNeedMigration as exc:  # an installation from before quorum queues: one line, what to do
        print(f"linli: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
