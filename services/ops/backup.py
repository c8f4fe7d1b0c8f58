"""`linli backup` and `linli restore`: one consistent snapshot of the five
services' databases and the secrets in var/, and bringing it back into a
stopped stack.

The snapshot is one moment across the services' databases: writes are paused in all
of them at once (SQLite: `BEGIN IMMEDIATE` held on every file; PostgreSQL:
`LOCK TABLE ... IN EXCLUSIVE MODE` on every table), a read snapshot is opened
on each while they are paused (a read transaction on SQLite's WAL; an exported
snapshot on PostgreSQL), and the writes go on at once; each database is then
copied from its snapshot (SQLite's online backup API; `pg_dump --snapshot`).
The pause lasts milliseconds whatever the size; a write under way when it
begins waits for it (the services wait on their busy and lock timeouts).

Events in flight at that moment (published by one service's outbox, not yet
handled by a consumer) live in the broker, which a backup does not hold.
Restore therefore marks unpublished again every outbox row that some
subscriber (services.contracts.SUBSCRIPTIONS) has no record of in its
processed_events: the relay publishes them when the stack starts, and a
consumer that had handled one already drops it. Nothing is lost and nothing is
applied twice.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import sqlite3
import subprocess
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from amqp.exceptions import ChannelError, NotAllowed
from sqlalchemy import MetaData, create_engine, inspect, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from services.common import broker, events
from services.common import config as linli_config
from services.common.db import KernelTables
from services.contracts import EVENTS, SUBSCRIPTIONS
from services.ops.stack import (
    BROKER_PASSWORDS, SERVICES, database_variable, default_database_url, make_private, private_files, running_on,
)

FORMAT = 1
MANIFEST = "manifest.json"
SECRETS = ("jwt-secret", "caller-key.pem", BROKER_PASSWORDS)
# How long one attempt may wait for a write under way before it lets go of what
# it paused and tries again: the pause stays well under a second.
LOCK_WAIT_SECONDS = 0.25
ATTEMPTS_FOR = 60  # seconds of attempts before giving up


class BackupError(Exception):
    """A clear reason why a backup or a restore cannot go on; nothing was changed."""


class Busy(Exception):
    """A write under way held a database past LOCK_WAIT_SECONDS."""


def _say(progress, message: str):
    if progress:
        progress(message)


def _kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    if backend in ("sqlite", "postgresql"):
        return backend
    raise BackupError(f"cannot back up a {backend} database")


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"{url} is not a SQLite file")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict]:
    """(a libpq URI without the password, the environment with PGPASSWORD):
    the password stays out of pg_dump's command line, which any user can read."""
    parsed = make_url(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    bare = parsed.set(drivername="postgresql", password=None)
    return bare.render_as_string(hide_password=False), env


def _psycopg2_connect(url: str):
    import psycopg2

    uri, env = _libpq(url)
    return psycopg2.connect(uri, **({"password": env["PGPASSWORD"]} if "PGPASSWORD" in env else {}))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- taking a snapshot -------------------------------------------------------------------


class SqliteSource:
    def __init__(self, service: str, url: str):
        self.service = service
        self.path = _sqlite_path(url)
        if not self.path.is_file():
            raise BackupError(f"{service}: no database at {self.path}")
        self.writer = sqlite3.connect(self.path, timeout=LOCK_WAIT_SECONDS, isolation_level=None)
        self.reader = sqlite3.connect(self.path, isolation_level=None)
        self.filename = f"{service}.db"

    def pause(self):
        """Take SQLite's one write lock: the services' writers wait on their busy timeout."""
        try:
            self.writer.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise Busy(self.service) from exc

    def snapshot(self):
        # The services keep their files in WAL mode (services/common/db.py), where a read transaction
        # sees the database as of its first read, however long it lasts, and holds up no writer.
        self.reader.execute("BEGIN")
        self.reader.execute("SELECT count(*) FROM sqlite_master").fetchall()

    def resume(self):
        if self.writer.in_transaction:
            self.writer.execute("ROLLBACK")

    def copy(self, target: Path):
        copy = sqlite3.connect(target)
        try:
            self.reader.backup(copy)  # within the reader's transaction: the snapshot
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise BackupError(f"{self.service}: the copy does not check out")
        finally:
            copy.close()

    def close(self):
        self.resume()
        for connection in (self.reader, self.writer):
            connection.close()


class PostgresSource:
    def __init__(self, service: str, url: str):
        self.service = service
        self.url = url
        self.filename = f"{service}.dump"
        try:
            self.locker = _psycopg2_connect(url)
            self.reader = _psycopg2_connect(url)
        except Exception as exc:
            raise BackupError(f"{service}: cannot reach its PostgreSQL database ({str(exc).strip()})") from None
        with self.locker.cursor() as cursor:
            cursor.execute("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema()")
            self.tables = [row[0] for row in cursor.fetchall()]
        self.locker.rollback()
        if not self.tables:
            raise BackupError(f"{service}: no tables in its database (never migrated?)")
        self.snapshot_id = None

    def pause(self):
        """Lock every table against writes (reads go on); give up after LOCK_WAIT_SECONDS."""
        with self.locker.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{int(LOCK_WAIT_SECONDS * 1000)}ms'")
            try:
                cursor.execute(f"LOCK TABLE {', '.join(self.tables)} IN EXCLUSIVE MODE")
            except Exception as exc:
                self.locker.rollback()
                raise Busy(self.service) from exc

    def snapshot(self):
        self.reader.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with self.reader.cursor() as cursor:
            cursor.execute("SELECT pg_export_snapshot()")
            self.snapshot_id = cursor.fetchone()[0]

    def resume(self):
        self.locker.rollback()

    def copy(self, target: Path):
        uri, env = _libpq(self.url)
        done = subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                               f"--snapshot={self.snapshot_id}", f"--file={target}", f"--dbname={uri}"],
                              env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"{self.service}: pg_dump failed: {done.stderr.strip()}")

    def close(self):
        for connection in (self.locker, self.reader):
            with contextlib.suppress(Exception):
                connection.rollback()
            connection.close()


def _source(service: str, url: str):
    return SqliteSource(service, url) if _kind(url) == "sqlite" else PostgresSource(service, url)


def _pause_all(sources, progress) -> float:
    """Pause writes in every database at once, open each one's snapshot, let
    the writes go on; the seconds they were paused. A write under way in one
    database makes this attempt let go of the others and try again shortly."""
    deadline = time.monotonic() + ATTEMPTS_FOR
    attempt = 0
    while True:
        attempt += 1
        paused = []
        started = time.monotonic()
        busy = False
        try:
            for source in sources:
                source.pause()
                paused.append(source)
            for source in sources:
                source.snapshot()
        except Busy:
            busy = True
        finally:
            for source in paused:
                source.resume()
        if not busy:
            return time.monotonic() - started
        if time.monotonic() > deadline:
            raise BackupError(f"could not pause writes in every database at once in {ATTEMPTS_FOR} s "
                              "(a long transaction?)")
        if attempt % 10 == 0:
            _say(progress, f"still waiting for a moment without writes under way ({attempt} attempts)")
        time.sleep(random.uniform(0.05, 0.2))


def backup(var_dir: Path, destination: Path, env: dict | None = None, progress=print) -> dict:
    """Write the snapshot to `destination` (a new folder: 0700, its files
    0600); returns the manifest. Built in `<destination>.partial` and renamed
    when complete, so a folder with a manifest is a whole backup."""
    var_dir, destination = Path(var_dir), Path(destination)
    if destination.exists():
        raise BackupError(f"{destination} exists already: give a new folder")
    urls = database_urls(var_dir, env)
    partial = destination.with_name(destination.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    sources = []
    try:
        for service in SERVICES:
            sources.append(_source(service, urls[service]))
        with private_files():
            partial.mkdir(parents=True, mode=0o700)
            _say(progress, f"pausing writes in all {len(sources)} databases for a snapshot ...")
            pause = _pause_all(sources, progress)
            _say(progress, f"writes paused for {pause * 1000:.0f} ms; copying each database from the snapshot")
            manifest = {"format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(),
                        "pause_seconds": round(pause, 4), "databases": {}, "secrets": {}}
            for source in sources:
                target = partial / source.filename
                source.copy(target)
                source.close()
                manifest["databases"][source.service] = {
                    "kind": "sqlite" if isinstance(source, SqliteSource) else "postgresql",
                    "file": source.filename, "bytes": target.stat().st_size, "sha256": _sha256(target)}
                _say(progress, f"  {source.service}: {target.stat().st_size / 1024:.0f} KiB")
            (partial / "secrets").mkdir(mode=0o700)
            for name in SECRETS:
                if (var_dir / name).is_file():
                    shutil.copyfile(var_dir / name, partial / "secrets" / name)
                    manifest["secrets"][name] = _sha256(partial / "secrets" / name)
            _say(progress, f"  secrets: {', '.join(manifest['secrets']) or 'none in var/ (given by environment?)'}")
            (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
            for path in partial.rglob("*"):
                path.chmod(0o700 if path.is_dir() else 0o600)
            partial.chmod(0o700)
            partial.rename(destination)
    except BaseException:
        for source in sources:
            with contextlib.suppress(Exception):
                source.close()
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return manifest


def database_urls(var_dir: Path, env: dict | None = None) -> dict[str, str]:
    """Each service's database as `linli up` would use it: LINLI_<SERVICE>_DB,
    else var/<service>.db."""
    env = dict(os.environ if env is None else env)
    return {service: env.get(database_variable(service)) or default_database_url(var_dir, service)
            for service in SERVICES}


# -- restoring ---------------------------------------------------------------------------


def read_manifest(source: Path) -> dict:
    """The backup's manifest, every file checked against it; BackupError naming what is wrong."""
    source = Path(source)
    if not source.is_dir():
        raise BackupError(f"no backup at {source}")
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} is not a complete backup: no {MANIFEST}") from None
    except ValueError:
        raise BackupError(f"{source / MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST}: not a Linli backup of format {FORMAT}")
    databases = manifest.get("databases") or {}
    missing = [service for service in SERVICES if service not in databases]
    if missing:
        raise BackupError(f"{source}: no database of {', '.join(missing)} in the manifest")
    for service in SERVICES:
        entry = databases[service]
        path = source / str(entry.get("file", ""))
        if not path.is_file():
            raise BackupError(f"{source}: {service}'s database {path.name} is missing")
        if _sha256(path) != entry.get("sha256"):
            raise BackupError(f"{source}: {path.name} is damaged (its checksum differs from the manifest's)")
        if entry.get("kind") == "sqlite":
            _check_sqlite(path)
        elif entry.get("kind") == "postgresql":
            listed = subprocess.run(["pg_restore", "--list", str(path)], capture_output=True, text=True)
            if listed.returncode != 0:
                raise BackupError(f"{source}: {path.name} is not a pg_dump archive ({listed.stderr.strip()})")
        else:
            raise BackupError(f"{source}: {service}: unknown kind {entry.get('kind')!r}")
    for name, digest in (manifest.get("secrets") or {}).items():
        path = source / "secrets" / name
        if name not in SECRETS or not path.is_file() or _sha256(path) != digest:
            raise BackupError(f"{source}: the secret {name} is missing or damaged")
    return manifest


def _check_sqlite(path: Path):
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = connection.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite database ({exc})") from None
    if result != "ok":
        raise BackupError(f"{path} fails SQLite's integrity check ({result})")


def _occupied(var_dir: Path, urls: dict[str, str]) -> list[str]:
    """What a restore would overwrite."""
    taken = [name for name in SECRETS if (var_dir / name).exists()]
    for service, url in urls.items():
        if _kind(url) == "sqlite":
            path = _sqlite_path(url)
            if path.exists() and path.stat().st_size > 0:
                taken.append(str(path))
        else:
            engine = create_engine(url, poolclass=NullPool)
            try:
                if inspect(engine).get_table_names():
                    taken.append(f"the PostgreSQL database of {service}")
            except SQLAlchemyError as exc:
                raise BackupError(f"{service}: cannot reach its PostgreSQL database ({exc.orig or exc})") from None
            finally:
                engine.dispose()
    return taken


def _broker_state(env: dict) -> tuple[dict[str, int], dict[str, int]] | None:
    """(services consuming on the target's broker vhost, event queues there that
    hold messages); None when the broker does not answer."""
    env = linli_config.with_amqp_ssl(dict(env))
    settings = {"AMQP_URI": env.get("AMQP_URI", linli_config.DEFAULT_AMQP_URI),
                "AMQP_SSL": linli_config.amqp_ssl(env)}
    try:
        running = running_on(settings)
        waiting = {}
        with broker.connection(settings) as connection:
            for sub in SUBSCRIPTIONS:
                for queue in (events.queue_name(sub), events.dead_letter_queue_name(events.queue_name(sub))):
                    channel = connection.channel()
                    try:
                        _name, messages, _consumers = channel.queue_declare(queue, passive=True)
                        if messages:
                            waiting[queue] = messages
                    except ChannelError:  # never declared here
                        pass
                    finally:
                        if channel.is_open:
                            channel.close()
        return running, waiting
    except NotAllowed:  # no such vhost: nothing runs there, nothing waits
        return {}, {}
    except Exception:  # refused, unreachable: unknown
        return None


def restore(source: Path, var_dir: Path, env: dict | None = None, force: bool = False, progress=print) -> int:
    """Bring the backup at `source` back into `var_dir` (and the PostgreSQL
    databases LINLI_<SERVICE>_DB name); returns how many events will be
    published again. Refuses, changing nothing, when the backup is not whole,
    when a stack runs on the target's broker vhost, or (without `force`) when
    the target holds databases or secrets already."""
    env = dict(os.environ if env is None else env)
    source, var_dir = Path(source), Path(var_dir)
    _say(progress, f"checking the backup in {source} ...")
    manifest = read_manifest(source)
    state = _broker_state(env)
    if state is None:
        _say(progress, "warning: the broker does not answer, so whether Linli runs there could not be checked")
    elif state[0]:
        raise BackupError(f"Linli is running on this broker vhost ({', '.join(state[0])}): stop it first")
    elif state[1]:
        # Events from after the backup's moment: handled, they would act on rows the restore takes away.
        raise BackupError(f"the broker vhost still holds {sum(state[1].values())} event(s) of the stack that ran "
                          f"there ({', '.join(sorted(state[1]))}); restore onto a new vhost (AMQP_URI=.../NEW) "
                          "or purge those queues first")
    urls = database_urls(var_dir, env)
    for service in SERVICES:
        backed_up, target = manifest["databases"][service]["kind"], _kind(urls[service])
        if backed_up != target:
            raise BackupError(f"{service} was backed up from {backed_up}, but its database here is {target} "
                              f"(LINLI_{service.upper()}_DB): restore into the same kind")
    if var_dir.exists():
        taken = _occupied(var_dir, urls)
        if taken and not force:
            raise BackupError(f"the target holds data already ({', '.join(taken)}); restore into a new var "
                              "folder and empty databases, or pass --force to overwrite them")
    with private_files():
        var_dir.mkdir(parents=True, exist_ok=True)
        make_private(var_dir)
        for name in manifest.get("secrets") or {}:
            _say(progress, f"restoring the secret {name}")
            temporary = var_dir / f".{name}.restoring"
            shutil.copyfile(source / "secrets" / name, temporary)
            temporary.chmod(0o600)
            os.replace(temporary, var_dir / name)
        done = []
        for service in SERVICES:
            entry = manifest["databases"][service]
            _say(progress, f"restoring {service} ({entry['kind']}, {entry['bytes'] / 1024:.0f} KiB) ...")
            try:
                if entry["kind"] == "sqlite":
                    _restore_sqlite(source / entry["file"], _sqlite_path(urls[service]))
                else:
                    _restore_postgres(service, source / entry["file"], urls[service], force)
            except (BackupError, OSError) as exc:
                raise BackupError(f"{exc}; restored before it: {', '.join(done) or 'no database'} (and the "
                                  "secrets): once the cause is fixed, restore again with --force") from None
            done.append(service)
        again = mark_unconsumed_for_publishing(urls)
        make_private(var_dir)
    _say(progress, f"{again} event(s) that a consumer had not handled at the backup's moment will be published "
                   "again when the stack starts (a consumer drops any it had handled)")
    return again


def _restore_sqlite(backup_file: Path, target: Path):
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(backup_file, temporary)
    temporary.chmod(0o600)
    for suffix in ("-wal", "-shm", "-journal"):  # of what was there before (--force)
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{target}{suffix}")
    os.replace(temporary, target)


def _restore_postgres(service: str, dump: Path, url: str, force: bool):
    uri, env = _libpq(url)
    command = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
               f"--dbname={uri}", str(dump)]
    if force:
        command[1:1] = ["--clean", "--if-exists"]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{service}: pg_restore failed (its database is as it was): {done.stderr.strip()}")


def mark_unconsumed_for_publishing(urls: dict[str, str]) -> int:
    """Mark unpublished every published outbox row that a subscriber of its
    event has not recorded as handled: it was in the broker at the backup's
    moment (or dead-lettered), which the restored stack does not have."""
    engines = {service: create_engine(url, poolclass=NullPool) for service, url in urls.items()}
    try:
        kernel = KernelTables(MetaData(), EVENTS)
        handled: dict[str, set[str]] = defaultdict(set)  # "service.handler" -> event ids
        table = kernel.processed_events
        for engine in engines.values():
            with engine.connect() as connection:
                for event_id, consumer in connection.execute(select(table.c.event_id, table.c.consumer)):
                    handled[consumer].add(event_id)
        subscribers = defaultdict(list)
        for sub in SUBSCRIPTIONS:
            subscribers[(sub.source, sub.event_type)].append(f"{sub.consumer}.{sub.handler}")
        again = 0
        for service, engine in engines.items():
            outbox = kernel.outbox
            with engine.begin() as connection:
                rows = connection.execute(select(outbox.c.id, outbox.c.event_type)
                                          .where(outbox.c.sent_at.is_not(None))).all()
                unhandled = [row.id for row in rows
                             if any(row.id not in handled[consumer]
                                    for consumer in subscribers.get((service, row.event_type), ()))]
                for start in range(0, len(unhandled), 500):
                    connection.execute(update(outbox).where(outbox.c.id.in_(unhandled[start:start + 500]))
                                       .values(sent_at=None))
                again += len(unhandled)
        return again
    finally:
        for engine in engines.values():
            engine.dispose()
