#!/usr/bin/env bash
# Make sure the PostgreSQL server of $LINLI_TEST_POSTGRES (default
# postgresql://postgres@127.0.0.1:5432) answers, for `make test-postgres`:
# use it if it answers; else start the installed Debian cluster; else say how.
set -euo pipefail

URL=${LINLI_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432}

answers() { pg_isready -q -d "$URL/postgres"; }

if ! command -v pg_isready >/dev/null; then
  echo "ensure-postgres: no PostgreSQL client here: install PostgreSQL (apt-get install postgresql) or set LINLI_TEST_POSTGRES" >&2
  exit 1
fi
# The suites run three pytest processes, each perhaps with a whole stack (six
# services, each a pool of up to max_workers + 7 connections) beside the unit
# tests' databases: PostgreSQL's default 100 connections ran out in one run.
WANT_CONNECTIONS=300

enough_connections() {
  local current
  current=$(psql -d "$URL/postgres" -Atc "show max_connections")
  [ "$current" -ge "$WANT_CONNECTIONS" ] && return 0
  if ! command -v pg_ctlcluster >/dev/null || [ ! -d /etc/postgresql ]; then
    echo "ensure-postgres: max_connections is $current; the suites want $WANT_CONNECTIONS (set it on that server)" >&2
    return 0
  fi
  echo "ensure-postgres: max_connections $current -> $WANT_CONNECTIONS (the local cluster restarts)"
  psql -d "$URL/postgres" -qc "ALTER SYSTEM SET max_connections = $WANT_CONNECTIONS"
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main restart || true
  done
  for _ in $(seq 30); do answers && return 0; sleep 1; done
  echo "ensure-postgres: PostgreSQL did not come back after the restart" >&2
  return 1
}

answers && { enough_connections; exit $?; }

if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 30); do answers && { echo "ensure-postgres: started PostgreSQL"; enough_connections; exit $?; }; sleep 1; done
fi
echo "ensure-postgres: PostgreSQL does not answer at $URL; start it, or point LINLI_TEST_POSTGRES at one (trust auth, a role that may CREATE DATABASE)" >&2
exit 1
