#!/usr/bin/env bash
# deploy/single-host/ puts Debian's nginx in front of the gateway with TLS; its
# tests check the configuration with `nginx -t` and run it in front of a real
# stack. Install it when it is missing and we may (root, apt).
set -euo pipefail
if [ -x /usr/sbin/nginx ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "proxy: installing nginx with apt ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  # The package starts its own server on :80 (policy-rc.d permitting); the tests run their own.
else
  echo "proxy: no /usr/sbin/nginx; the single-host tests need it (sudo apt-get install nginx)" >&2
  exit 1
fi
