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
answers && exit 0

if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 30); do answers && { echo "ensure-postgres: started PostgreSQL"; exit 0; }; sleep 1; done
fi
echo "ensure-postgres: PostgreSQL does not answer at $URL; start it, or point LINLI_TEST_POSTGRES at one (trust auth, a role that may CREATE DATABASE)" >&2
exit 1
