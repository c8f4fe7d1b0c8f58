#!/usr/bin/env bash
# promtool (Debian's `prometheus` package) for the tests of deploy/prometheus/'s
# alert rules (`promtool check rules`, `promtool test rules`). Only the one
# binary is taken out of the .deb into tools/ (git-ignored): installing the
# package would also install and start a Prometheus server.
set -euo pipefail
cd "$(dirname "$0")/.."
target=tools/promtool
if [ -x "$target" ] && "$target" --version >/dev/null 2>&1; then
  exit 0
fi
if command -v promtool >/dev/null 2>&1; then
  mkdir -p tools && ln -sf "$(command -v promtool)" "$target"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "promtool: not found; install Prometheus's promtool (Debian: the prometheus package) on PATH" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "promtool: taking it from Debian's prometheus package ..."
# apt-get download needs no root; the package lists may need an update first.
(cd "$work" && apt-get download -qq prometheus 2>/dev/null) || {
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && (cd "$work" && apt-get download -qq prometheus); else
    echo "promtool: apt-get download prometheus failed (sudo apt-get update?)" >&2; exit 1; fi; }
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p tools
install -m 0755 "$work/root/usr/bin/promtool" "$target"
"$target" --version | head -1
