#!/usr/bin/env bash
# deploy/single-host/ puts Debian's nginx in front of the gateway with TLS; its
# tests check the configuration with `nginx -t` and run it in front of a real
# stack, asked with curl (a real HTTPS client: the test process's own is
# eventlet's, whose TLS breaks under pytest). Install both when missing and we may (root, apt).
set -euo pipefail
if [ -x /usr/sbin/nginx ] && [ -x /usr/bin/curl ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "proxy: installing nginx and curl with apt ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx curl >/dev/null
  # The package starts its own server on :80 (policy-rc.d permitting); the tests run their own.
else
  echo "proxy: no /usr/sbin/nginx or /usr/bin/curl; the single-host tests need them (sudo apt-get install nginx curl)" >&2
  exit 1
fi
