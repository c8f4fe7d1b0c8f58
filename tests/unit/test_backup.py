"""`linli backup` and `linli restore` on SQLite files: one moment across the
five databases while another process writes, a backup as private as var/, and
a restore that refuses a backup that is not whole and changes nothing then.
(The whole stack under load, and PostgreSQL: tests/e2e/test_backup_restore.py.)"""
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.common import migrations
from services.ops import backup
from services.ops.stack import SERVICES

# No broker in the unit suite: restore finds none there and says it could not check for a running stack.
NO_BROKER = {"AMQP_URI": "amqp://guest:guest@127.0.0.1:1/"}

# A producer and its consumer, as the services do it: donations commits an event
# to its outbox (published at once), then notifications records it as handled.
WRITER = """
import sqlite3, sys, time, uuid
var, stop_after = sys.argv[1], float(sys.argv[2])
producer = sqlite3.connect(f"{var}/donations.db", timeout=15, isolation_level=None)
consumer = sqlite3.connect(f"{var}/notifications.db", timeout=15, isolation_level=None)
for connection in (producer, consumer):
    connection.execute("PRAGMA journal_mode=WAL")
deadline = time.monotonic() + stop_after
written = 0
while time.monotonic() < deadline:
    event_id = uuid.uuid4().hex
    producer.execute("INSERT INTO outbox (id, source, event_type, envelope, created_at, sent_at) "
                     "VALUES (?, 'donations', 'goal_reached', '{}', datetime('now'), datetime('now'))", (event_id,))
    consumer.execute("INSERT INTO processed_events (event_id, consumer, processed_at) "
                     "VALUES (?, 'notifications.on_goal_reached', datetime('now'))", (event_id,))
    written += 1
print(written)
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> Path:
    var = tmp_path_factory.mktemp("template") / "var"
    var.mkdir(mode=0o700)
    for service in SERVICES:
        migrations.upgrade(service, f"sqlite:///{var / service}.db")
    (var / "jwt-secret").write_text("a-secret-of-at-least-thirty-two-characters")
    (var / "caller-key.pem").write_text("-----BEGIN PRIVATE KEY-----\n...\n")
    return var


@pytest.fixture
def var(migrated, tmp_path) -> Path:
    copy = tmp_path / "var"
    shutil.copytree(migrated, copy)
    return copy


def rows(database: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(database)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_a_backup_taken_while_another_process_writes_is_one_moment_across_the_databases(var, tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(var), "4"], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    manifest = backup.backup(var, tmp_path / "backup", env={}, progress=None)
    written = int(writer.communicate(timeout=30)[0])
    assert writer.returncode == 0

    assert manifest["pause_seconds"] < 1
    copy = tmp_path / "backup"
    handled = {row[0] for row in rows(copy / "notifications.db", "SELECT event_id FROM processed_events")}
    published = {row[0] for row in rows(copy / "donations.db", "SELECT id FROM outbox")}
    assert handled, "the backup was taken before any write"
    assert len(published) < written, "the writer went on after the backup"
    # Nothing handled that was not yet published; at most the one event between its two commits in flight.
    assert handled <= published
    assert len(published - handled) <= 1

    again = backup.restore(tmp_path / "backup", tmp_path / "restored", env=NO_BROKER, progress=None)
    unsent = {row[0] for row in rows(tmp_path / "restored" / "donations.db",
                                     "SELECT id FROM outbox WHERE sent_at IS NULL")}
    assert unsent == published - handled and again == len(unsent)
    restored_handled = rows(tmp_path / "restored" / "notifications.db", "SELECT count(*) FROM processed_events")
    assert restored_handled == [(len(handled),)]


def test_a_backup_and_what_restore_writes_are_their_owners_only(var, tmp_path):
    previous = os.umask(0o022)
    try:
        backup.backup(var, tmp_path / "backup", env={}, progress=None)
        backup.restore(tmp_path / "backup", tmp_path / "restored", env=NO_BROKER, progress=None)
    finally:
        os.umask(previous)
    made = [tmp_path / "backup", *(tmp_path / "backup").rglob("*"), tmp_path / "restored",
            *(tmp_path / "restored").rglob("*")]
    assert {str(path): mode(path) for path in made} == {
        str(path): 0o700 if path.is_dir() else 0o600 for path in made}
    assert sorted(path.name for path in (tmp_path / "backup" / "secrets").iterdir()) == ["caller-key.pem", "jwt-secret"]
    assert (tmp_path / "restored" / "jwt-secret").read_text() == (var / "jwt-secret").read_text()


def test_a_backup_never_overwrites_and_leaves_nothing_when_a_database_is_missing(var, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(backup.BackupError, match="exists already"):
        backup.backup(var, tmp_path / "taken", env={}, progress=None)
    (var / "welfare.db").unlink()
    with pytest.raises(backup.BackupError, match="welfare: no database"):
        backup.backup(var, tmp_path / "backup", env={}, progress=None)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["taken", "var"]


def damage(folder: Path, how: str):
    if how == "no manifest (a backup cut short)":
        (folder / "manifest.json").unlink()
    elif how == "a database missing":
        (folder / "welfare.db").unlink()
    elif how == "a database damaged":
        with open(folder / "donations.db", "r+b") as data:
            data.seek(4096)
            data.write(b"\xff" * 512)
    elif how == "a manifest not JSON":
        (folder / "manifest.json").write_text("{")
    elif how == "a secret damaged":
        (folder / "secrets" / "jwt-secret").write_text("another")


@pytest.mark.parametrize("how, says", [
    ("no manifest (a backup cut short)", "not a complete backup: no manifest.json"),
    ("a database missing", "welfare's database welfare.db is missing"),
    ("a database damaged", "donations.db is damaged"),
    ("a manifest not JSON", "manifest.json is not valid JSON"),
    ("a secret damaged", "the secret jwt-secret is missing or damaged"),
])
def test_restore_refuses_a_backup_that_is_not_whole_and_changes_nothing(var, tmp_path, how, says):
    backup.backup(var, tmp_path / "backup", env={}, progress=None)
    damage(tmp_path / "backup", how)
    with pytest.raises(backup.BackupError, match=says):
        backup.restore(tmp_path / "backup", tmp_path / "restored", env=NO_BROKER, progress=None)
    assert not (tmp_path / "restored").exists()


def test_restore_refuses_a_folder_that_is_no_backup(tmp_path):
    with pytest.raises(backup.BackupError, match="no backup at"):
        backup.restore(tmp_path / "nowhere", tmp_path / "restored", env=NO_BROKER, progress=None)


def test_a_sqlite_file_that_is_not_a_database_is_refused_even_with_a_matching_checksum(var, tmp_path):
    backup.backup(var, tmp_path / "backup", env={}, progress=None)
    folder = tmp_path / "backup"
    (folder / "patrol.db").write_bytes(b"not a database at all" * 100)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["databases"]["patrol"]["sha256"] = backup._sha256(folder / "patrol.db")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError, match="patrol.db is not a SQLite database"):
        backup.restore(folder, tmp_path / "restored", env=NO_BROKER, progress=None)


def test_restore_overwrites_a_var_that_holds_data_only_when_told(var, tmp_path):
    backup.backup(var, tmp_path / "backup", env={}, progress=None)
    connection = sqlite3.connect(var / "gateway.db")
    connection.execute("INSERT INTO outbox (id, source, event_type, envelope, created_at) "
                       "VALUES ('after', 'gateway', 'member_registered', '{}', datetime('now'))")
    connection.commit()
    connection.close()

    with pytest.raises(backup.BackupError, match="holds data already"):
        backup.restore(tmp_path / "backup", var, env=NO_BROKER, progress=None)
    assert rows(var / "gateway.db", "SELECT id FROM outbox") == [("after",)]

    backup.restore(tmp_path / "backup", var, env=NO_BROKER, force=True, progress=None)
    assert rows(var / "gateway.db", "SELECT id FROM outbox") == []


HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_write_lock(database: Path, seconds: float) -> subprocess.Popen:
    """Another process in a write transaction of `seconds` (a long write)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(database), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_long_write_makes_the_backup_wait_for_it_without_pausing_the_others_meanwhile(var, tmp_path):
    holder = hold_write_lock(var / "welfare.db", 1.5)
    started = time.monotonic()
    manifest = backup.backup(var, tmp_path / "backup", env={}, progress=None)
    holder.wait(timeout=10)
    assert time.monotonic() - started > 1  # it waited for the write to end
    assert manifest["pause_seconds"] < 1   # but held the other databases only while trying


def test_a_write_that_never_ends_is_a_clear_error_and_no_backup(var, tmp_path, monkeypatch):
    monkeypatch.setattr(backup, "ATTEMPTS_FOR", 1)
    holder = hold_write_lock(var / "donations.db", 5)
    try:
        with pytest.raises(backup.BackupError, match="could not pause writes in every database at once"):
            backup.backup(var, tmp_path / "backup", env={}, progress=None)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "backup").exists() and not (tmp_path / "backup.partial").exists()
