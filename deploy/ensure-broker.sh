#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers at $AMQP_URI (default localhost:5672):
# use it if it answers; else start an installed rabbitmq-server; else, as root
# with apt, install and start one; else say in one line how to get one.
# `linli up` and the tests also need the management API (port 15672): through
# it, as AMQP_URI's user (an administrator), `linli up` makes each service's
# own broker user and the tests make throwaway vhosts.
set -euo pipefail

AMQP_URI=${AMQP_URI:-amqp://guest:guest@localhost:5672/}

# Does an AMQP 0-9-1 broker answer the protocol header? (stdlib only: no venv needed)
amqp_answers() {
  python3 - "$AMQP_URI" <<'PY'
import socket, sys
from urllib.parse import urlparse
uri = urlparse(sys.argv[1])
try:
    with socket.create_connection((uri.hostname or "localhost", uri.port or 5672), timeout=3) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        sys.exit(0 if sock.recv(1) == b"\x01" else 1)  # a method frame: connection.start
except OSError:
    sys.exit(1)
PY
}

management_answers() {
  python3 - "$AMQP_URI" <<'PY'
import sys, urllib.request, base64
from urllib.parse import urlparse
uri = urlparse(sys.argv[1])
request = urllib.request.Request(f"http://{uri.hostname or 'localhost'}:15672/api/overview")
request.add_header("Authorization", "Basic " + base64.b64encode(
    f"{uri.username or 'guest'}:{uri.password or 'guest'}".encode()).decode())
try:
    urllib.request.urlopen(request, timeout=3)
except Exception:
    sys.exit(1)
PY
}

wait_until() {  # wait_until CHECK SECONDS
  for _ in $(seq 1 "$2"); do "$1" && return 0; sleep 1; done
  return 1
}

if ! amqp_answers; then
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "broker: installing rabbitmq-server with apt ..."
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    else
      echo "broker: no RabbitMQ at $AMQP_URI; install one (Debian: sudo apt-get install rabbitmq-server) or set AMQP_URI" >&2
      exit 1
    fi
  fi
  echo "broker: starting rabbitmq-server ..."
  rabbitmq-server -detached >/dev/null 2>&1 || true
  if ! wait_until amqp_answers 90; then
    echo "broker: rabbitmq-server did not answer within 90 s; see /var/log/rabbitmq/" >&2
    exit 1
  fi
fi

if ! management_answers; then
  if command -v rabbitmq-plugins >/dev/null 2>&1; then
    rabbitmq-plugins -q enable rabbitmq_management >/dev/null
    wait_until management_answers 60 || { echo "broker: the management API did not come up" >&2; exit 1; }
  else
    echo "broker: the management API (port 15672) does not answer; the tests need it (rabbitmq-plugins enable rabbitmq_management)" >&2
    exit 1
  fi
fi
echo "broker: RabbitMQ answers at ${AMQP_URI#*@}"
