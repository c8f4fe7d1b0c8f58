#!/usr/bin/env bash
# deploy/single-host/'s tests: Debian's nginx (its configuration checked with
# `nginx -t`, then run in front of a real stack over HTTPS), curl (the HTTPS
# client there: the test process's own TLS is eventlet's, which recurses under
# pytest), and systemd-analyze (the units checked with `verify`). Install what
# is missing when we may (root, apt); otherwise say what to install and fail.
set -euo pipefail
missing=()
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x /usr/bin/curl ] || missing+=(curl)
[ -x /usr/bin/systemd-analyze ] || missing+=(systemd)
if [ ${#missing[@]} = 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "proxy: installing ${missing[*]} with apt ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "proxy: ${missing[*]} missing; deploy/single-host/'s tests need them (sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
