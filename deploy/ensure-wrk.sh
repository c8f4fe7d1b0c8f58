#!/usr/bin/env bash
# wrk (Debian's `wrk` package, 4.1) for `make bench`'s wrk phase (issue 20: the
# issue's own `wrk -t1 -cN -dDs` against the gateway and the bare reference).
# Nothing else needs it: CI does not run the bench. Install it when we may
# (root, apt); otherwise say how and fail.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "wrk: installing Debian's wrk package with apt ..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
  wrk --version 2>&1 | head -1 || true  # wrk prints its version with a usage note and exits 1
else
  echo "wrk: not found; make bench's wrk phase needs it (sudo apt-get install wrk, or bench/run.py --only ... without wrk)" >&2
  exit 1
fi
